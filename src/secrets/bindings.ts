import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { ConfigIssue } from '../config/load-yaml.js';
import { secretRefs } from './template.js';

/**
 * Which connector may receive which secret, decided once, at load.
 *
 * The ownership rule:
 *  1. A secret named after a connector — `NAME`, `NAME-…`, `NAME.…` or
 *     `NAME_…` for a connector `NAME` (the longest such name wins, so
 *     `github-enterprise-token` belongs to `github-enterprise`, not `github`)
 *     — is owned by that connector, whether or not it references it.
 *  2. Any other secret is owned by the one connector that references it.
 *  3. A connector that references a secret it does not own is rejected, and
 *     so is every connector when several reference a secret that no name
 *     claims. There is no sharing: store the value under a second name.
 *
 * So a file added later cannot pick up another connector's credential by
 * writing `${secret:github-token}`; the error names the file, line and key.
 */
export interface SecretBindings {
  /** secret name → the one connector allowed to receive it. */
  readonly owner: ReadonlyMap<string, string>;
}

/** Keys under which a secret could redirect or reframe a request rather than authenticate it. */
const ROUTING_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'keep-alive', 'proxy-connection', 'expect']);

export interface BindingSource {
  name: string;
  file: string;
  kind: string;
}

interface Use {
  secret: string;
  connector: string;
  file: string;
  path: (string | number)[];
}

/** Every `${secret:NAME}` in a connector definition, with the key path where it appears. */
export function secretUses(c: BindingSource): Use[] {
  const uses: Use[] = [];
  const visit = (v: unknown, path: (string | number)[]) => {
    if (typeof v === 'string') {
      for (const secret of new Set(secretRefs(v))) uses.push({ secret, connector: c.name, file: c.file, path });
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => visit(x, [...path, i]));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) if (k !== 'file') visit(x, [...path, k]);
    }
  };
  visit(c, []);
  return uses;
}

/** The connector a secret's name claims, if any (rule 1). */
export function ownerByName(secret: string, connectors: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const c of connectors) {
    const claims = secret === c || (secret.startsWith(c) && /^[-._]/.test(secret.slice(c.length)));
    if (claims && (best === undefined || c.length > best.length)) best = c;
  }
  return best;
}

export interface BindingProblem {
  file: string;
  path: (string | number)[];
  message: string;
}

/** Applies the ownership rule. Pure: problems carry key paths; `bindingIssues` turns them into file:line issues. */
export function bindSecrets(connectors: readonly BindingSource[]): { bindings: SecretBindings; problems: BindingProblem[] } {
  const names = connectors.map((c) => c.name);
  const uses = connectors.flatMap(secretUses);
  const users = new Map<string, Use[]>();
  for (const u of uses) users.set(u.secret, [...(users.get(u.secret) ?? []), u]);
  const owner = new Map<string, string>();
  const problems: BindingProblem[] = [];
  const at = (u: Use) => `${u.file} (${keyOf(u.path)})`;

  for (const [secret, list] of users) {
    const byName = ownerByName(secret, names);
    if (byName !== undefined) {
      owner.set(secret, byName);
      for (const u of list) {
        if (u.connector !== byName) {
          problems.push({
            file: u.file,
            path: u.path,
            message: `connector "${u.connector}" references secret "${secret}", which belongs to connector "${byName}" (a secret named after a connector is bound to it); store this connector's own credential under a name of its own, e.g. gatehouse secret set ${u.connector}-token`,
          });
        }
      }
      continue;
    }
    const connectorsUsing = [...new Set(list.map((u) => u.connector))];
    if (connectorsUsing.length === 1) {
      owner.set(secret, connectorsUsing[0] as string);
      continue;
    }
    const first = list[0] as Use;
    for (const u of list) {
      if (u.connector === first.connector) continue;
      problems.push({
        file: u.file,
        path: u.path,
        message: `secret "${secret}" is already bound to connector "${first.connector}" at ${at(first)}; a secret goes to one connector only: give each connector its own secret (e.g. ${u.connector}-token), or name it after its connector (${first.connector}-…)`,
      });
    }
  }

  for (const u of uses) {
    const [top, header] = u.path;
    if (top === 'headers' && typeof header === 'string' && ROUTING_HEADERS.has(header.toLowerCase())) {
      problems.push({ file: u.file, path: u.path, message: `a secret may not be used in the ${header} header (it could redirect or reframe the request); use it in an authentication header` });
    }
  }
  return { bindings: { owner }, problems };
}

/** Binding problems as config issues located at file:line:col. */
export function bindingIssues(problems: readonly BindingProblem[], read: (file: string) => string = (f) => readFileSync(f, 'utf8')): ConfigIssue[] {
  return problems.map((p) => {
    const { line, col } = locate(p.file, p.path, read);
    return { file: p.file, line, col, key: keyOf(p.path), message: p.message };
  });
}

function keyOf(path: readonly (string | number)[]): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function locate(file: string, path: readonly (string | number)[], read: (file: string) => string): { line: number; col: number } {
  try {
    const lc = new LineCounter();
    const doc = parseDocument(read(file), { lineCounter: lc });
    let node: unknown = doc.contents;
    let offset = (node as { range?: number[] } | null)?.range?.[0] ?? 0;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && p.key.value === seg);
        if (!pair) break;
        offset = (pair.key as { range?: number[] }).range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
        offset = (node as { range?: number[] } | undefined)?.range?.[0] ?? offset;
      } else break;
    }
    return lc.linePos(offset);
  } catch {
    return { line: 0, col: 0 };
  }
}
