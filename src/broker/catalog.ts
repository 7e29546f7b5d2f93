import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { isExposed, type ExposureFilter } from '../registry/exposure.js';

/** What LLM APIs accept as a tool name. */
export const EXPOSED_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
export const SEPARATOR = '__';

export interface CatalogEntry {
  /** Name the agent sees. */
  name: string;
  connector: string;
  /** Name at the upstream. */
  upstreamName: string;
  /** The tool as listed to the agent (name replaced). */
  tool: Tool;
}

export interface CatalogProblem {
  connector: string;
  tool: string;
  message: string;
}

export interface Catalog {
  /** Lookup by exact exposed name. */
  byName: ReadonlyMap<string, CatalogEntry>;
  /** Stable order: by exposed name (code-unit order). */
  sorted: readonly CatalogEntry[];
  problems: readonly CatalogProblem[];
}

export function exposedName(prefix: string, upstreamName: string): string {
  return prefix === '' ? upstreamName : `${prefix}${SEPARATOR}${upstreamName}`;
}

export interface CatalogSource {
  connector: string;
  prefix: string;
  filter: ExposureFilter;
  tools: readonly Tool[];
}

/** A registered connector's namespace: exposed names `<prefix>__…` are its own, ready or not. */
export interface Namespace {
  connector: string;
  prefix: string;
}

/**
 * Builds the agent-facing catalog. Pure. Names that are invalid or collide
 * (exactly or by case) are reported and left out, so a look-alike can never
 * shadow another tool.
 *
 * `redact` removes secret values from everything an upstream says about a
 * tool (title, description, schemas with their defaults, examples and enums,
 * annotations, `_meta`), as from results; a tool whose name holds one is left
 * out. (tools/list redacts again when it answers, for values learned later.)
 *
 * A name `<p>__…` belongs to the connector whose prefix is `<p>` (folded, as
 * collisions are). `reserved` lists every registered connector's namespace,
 * so one that is not ready, or disabled, keeps its names: a `prefix: ""`
 * connector listing them is refused, never served in its place.
 */
export function buildCatalog(sources: readonly CatalogSource[], redact: <T>(v: T) => T = (v) => v, reserved: readonly Namespace[] = []): Catalog {
  const problems: CatalogProblem[] = [];
  const candidates: CatalogEntry[] = [];
  const owners = new Map<string, Namespace>();
  for (const ns of [...reserved, ...sources]) {
    const k = ns.prefix.toLowerCase();
    if (ns.prefix !== '' && !owners.has(k)) owners.set(k, ns);
  }
  for (const src of sources) {
    for (const listed of src.tools) {
      const tool = redact(listed);
      if (tool.name !== listed.name) {
        problems.push({ connector: src.connector, tool: tool.name, message: 'the tool name holds a secret value; the tool is not exposed' });
        continue;
      }
      if (!isExposed(src.filter, tool.name)) continue;
      const name = exposedName(src.prefix, tool.name);
      if (!EXPOSED_NAME.test(name)) {
        problems.push({
          connector: src.connector,
          tool: tool.name,
          message: `exposed name ${JSON.stringify(name)} is not 1-64 characters of [a-zA-Z0-9_-]; the tool is not exposed (shorten the prefix or deny it in tools.deny)`,
        });
        continue;
      }
      const owner = src.prefix === '' ? ownerOf(owners, name) : undefined;
      if (owner !== undefined) {
        problems.push({
          connector: src.connector,
          tool: tool.name,
          message: `exposed name ${JSON.stringify(name)} is in the namespace of connector ${JSON.stringify(owner.connector)} (prefix ${JSON.stringify(owner.prefix)}); a connector with prefix "" may not take it, the tool is not exposed`,
        });
        continue;
      }
      candidates.push({ name, connector: src.connector, upstreamName: tool.name, tool: { ...tool, name } });
    }
  }
  const byFolded = new Map<string, CatalogEntry[]>();
  for (const c of candidates) {
    const k = c.name.toLowerCase();
    byFolded.set(k, [...(byFolded.get(k) ?? []), c]);
  }
  const byName = new Map<string, CatalogEntry>();
  for (const group of byFolded.values()) {
    if (group.length > 1) {
      const who = group.map((g) => `${g.connector}:${g.upstreamName}`).join(', ');
      for (const g of group) {
        problems.push({ connector: g.connector, tool: g.upstreamName, message: `exposed name ${JSON.stringify(g.name)} collides with ${who}; none of them is exposed (set a different prefix)` });
      }
      continue;
    }
    const only = group[0];
    if (only) byName.set(only.name, only);
  }
  const sorted = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { byName, sorted, problems };
}

/** The namespace `name` falls in: one whose prefix, folded, is what comes before any "__" in it. */
function ownerOf(owners: ReadonlyMap<string, Namespace>, name: string): Namespace | undefined {
  const folded = name.toLowerCase();
  for (let i = folded.indexOf(SEPARATOR); i !== -1; i = folded.indexOf(SEPARATOR, i + 1)) {
    const owner = owners.get(folded.slice(0, i));
    if (owner !== undefined) return owner;
  }
  return undefined;
}

/** Opaque cursor pagination over the sorted catalog. */
export function pageOf<T>(items: readonly T[], cursor: string | undefined, pageSize: number): { page: T[]; nextCursor?: string } {
  let start = 0;
  if (cursor !== undefined) {
    const m = /^o:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!m) throw new RangeError('invalid cursor');
    start = Number(m[1]);
  }
  const page = items.slice(start, start + pageSize);
  const next = start + pageSize;
  return next < items.length ? { page, nextCursor: Buffer.from(`o:${next}`).toString('base64url') } : { page };
}

/** The boolean hints of a tool's annotations (untrusted; policy may only get stricter on them). */
export function hintsOf(a: Tool['annotations']): { readOnlyHint?: boolean; destructiveHint?: boolean; idempotentHint?: boolean; openWorldHint?: boolean } | undefined {
  if (!a) return undefined;
  const out: { readOnlyHint?: boolean; destructiveHint?: boolean; idempotentHint?: boolean; openWorldHint?: boolean } = {};
  if (typeof a.readOnlyHint === 'boolean') out.readOnlyHint = a.readOnlyHint;
  if (typeof a.destructiveHint === 'boolean') out.destructiveHint = a.destructiveHint;
  if (typeof a.idempotentHint === 'boolean') out.idempotentHint = a.idempotentHint;
  if (typeof a.openWorldHint === 'boolean') out.openWorldHint = a.openWorldHint;
  return out;
}
