/**
 * Loads every top-level *.yaml / *.yml in the policies folder (files starting
 * with "." are skipped), follows `extends:`, validates everything and merges
 * it into one immutable Policy. Any problem throws one ConfigError listing
 * every issue with file:line:col: key.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { ConfigError, parseYamlConfig, type ConfigIssue } from '../config/load-yaml.js';
import { compileName, splitPath } from './matchers.js';
import { buildIndex } from './rule-index.js';
import { compileEgressMatcher } from './egress.js';
import { PolicyFileSchema, type AskInput, type PolicyFile, type RuleSpec } from './schema.js';
import { positionOf, itemLines } from './yaml-pos.js';
import type { AnnotationKey, AskSpec, Effect, Policy, Rule } from './types.js';

export const DEFAULT_ASK_TIMEOUT_MS = 5 * 60_000;

/** Strictness order used to merge `default:` across files: the strictest stated default wins. */
const STRICTNESS: Record<Effect, number> = { allow: 0, ask: 1, deny: 2 };

interface LoadedFile {
  file: string;
  text: string;
  spec: PolicyFile;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ file, line: 0, col: 0, key: '', message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }]);
  }
}

/** The policy files of a folder, in the order they are merged (by name). */
export function policyFilesIn(dir: string): string[] {
  const abs = resolve(dir);
  let names: string[];
  try {
    names = readdirSync(abs, { withFileTypes: true })
      .filter((d) => (d.isFile() || d.isSymbolicLink()) && !d.name.startsWith('.') && /\.ya?ml$/i.test(d.name))
      .map((d) => d.name);
  } catch (e) {
    throw new ConfigError([{ file: abs, line: 0, col: 0, key: '', message: `cannot read policies folder: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }]);
  }
  return names.sort().map((n) => join(abs, n));
}

/** Where file texts come from: the disk, or (in tests) a map of texts. */
export interface PolicySource {
  read(file: string): string;
  exists(file: string): boolean;
}

const diskSource: PolicySource = { read: readText, exists: existsSync };

/** A PolicySource over texts in memory, keyed by absolute path. */
export function memorySource(files: Record<string, string>): PolicySource {
  const m = new Map(Object.entries(files).map(([k, v]) => [resolve(k), v]));
  return {
    read(file) {
      const t = m.get(file);
      if (t === undefined) throw new ConfigError([{ file, line: 0, col: 0, key: '', message: 'cannot read: ENOENT' }]);
      return t;
    },
    exists: (file) => m.has(file),
  };
}

/** `extends: [presets/balanced]` names a file relative to the extending file; ".yaml" / ".yml" may be left out. */
function resolveExtends(src: PolicySource, from: string, name: string): string | undefined {
  const base = resolve(dirname(from), name);
  const tries = extname(base) === '' ? [`${base}.yaml`, `${base}.yml`] : [base];
  return tries.find((f) => src.exists(f));
}

function askSpec(a: AskInput | undefined): AskSpec {
  const spec: AskSpec = { timeoutMs: a?.timeout ?? DEFAULT_ASK_TIMEOUT_MS };
  if (a?.grant !== undefined) spec.grant = { ttlMs: a.grant.ttl, maxUses: a.grant.maxUses };
  return spec;
}

function defaultMessage(r: RuleSpec): string {
  switch (r.effect) {
    case 'deny':
      return `Denied by policy rule "${r.id}".`;
    case 'ask':
      return `Policy rule "${r.id}" needs a human approval for this call.`;
    case 'allow':
      return `Allowed by policy rule "${r.id}".`;
  }
}

function compileRule(r: RuleSpec, file: string, line: number): Rule {
  const m = r.match ?? {};
  const rule: Rule = {
    id: r.id,
    file,
    line,
    effect: r.effect,
    message: r.message ?? defaultMessage(r),
    agent: m.agent === undefined ? null : compileName(m.agent),
    connector: m.connector === undefined ? null : compileName(m.connector),
    tool: m.model !== undefined ? compileName(m.model) : m.tool === undefined ? null : compileName(m.tool),
    on: m.egress !== undefined ? 'egress' : m.model !== undefined ? 'model' : m.tool !== undefined ? 'tool' : 'any',
    args: Object.entries(m.args ?? {}).map(([key, checks]) => ({ key, path: splitPath(key), checks })),
    annotations: Object.entries(m.annotations ?? {})
      .filter((e): e is [AnnotationKey, boolean] => typeof e[1] === 'boolean'),
    when: r.when ?? null,
  };
  if (m.egress !== undefined) rule.egress = compileEgressMatcher(m.egress);
  if (r.limit !== undefined) rule.limit = r.limit;
  if (r.effect === 'ask') rule.ask = askSpec(r.ask);
  return rule;
}

/**
 * Loads and merges a policy folder. Throws ConfigError (code CONFIG_INVALID)
 * naming file:line:col: key for every problem found.
 */
export function loadPolicies(dir: string): Policy {
  return loadPolicyFiles(policyFilesIn(dir));
}

/** Loads and merges the given files (plus what they extend), in the given order. */
export function loadPolicyFiles(files: readonly string[], src: PolicySource = diskSource): Policy {
  const issues: ConfigIssue[] = [];
  const loaded: LoadedFile[] = [];
  const done = new Set<string>();
  const inProgress = new Set<string>();

  const visit = (file: string): void => {
    if (done.has(file)) return;
    inProgress.add(file);
    let text: string;
    let spec: PolicyFile;
    try {
      text = src.read(file);
      spec = parseYamlConfig(file, text, PolicyFileSchema);
    } catch (e) {
      if (e instanceof ConfigError) issues.push(...e.issues);
      else throw e;
      inProgress.delete(file);
      done.add(file);
      return;
    }
    (spec.extends ?? []).forEach((name, i) => {
      const target = resolveExtends(src, file, name);
      const at = positionOf(text, ['extends', i]);
      if (target === undefined) {
        issues.push({ file, ...at, key: `extends[${i}]`, message: `no policy file "${name}" (looked for ${name}.yaml / .yml next to this file)` });
      } else if (inProgress.has(target)) {
        issues.push({ file, ...at, key: `extends[${i}]`, message: `"${name}" extends this file back (a cycle)` });
      } else {
        visit(target);
      }
    });
    inProgress.delete(file);
    done.add(file);
    loaded.push({ file, text, spec });
  };
  for (const f of files) visit(resolve(f));

  // Cross-file checks: rule ids are unique across the whole set.
  const firstDef = new Map<string, { file: string; line: number }>();
  const rules: Rule[] = [];
  for (const { file, text, spec } of loaded) {
    const lines = itemLines(text, 'rules');
    (spec.rules ?? []).forEach((r, i) => {
      const line = lines[i] ?? 0;
      const prev = firstDef.get(r.id);
      if (prev !== undefined) {
        const at = positionOf(text, ['rules', i, 'id']);
        issues.push({ file, ...at, key: `rules[${i}].id`, message: `duplicate rule id "${r.id}" (first defined at ${prev.file}:${prev.line})` });
        return;
      }
      firstDef.set(r.id, { file, line });
      rules.push(compileRule(r, file, line));
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);

  // Merge `default:`: files that state one vote, the strictest wins; none stated → deny.
  const warnings: string[] = [];
  const stated = loaded.filter((l) => l.spec.default !== undefined);
  let def: Effect = 'deny';
  if (stated.length > 0) {
    const winner = stated.reduce((a, b) => (STRICTNESS[b.spec.default as Effect] > STRICTNESS[a.spec.default as Effect] ? b : a));
    def = winner.spec.default as Effect;
    const kinds = new Set(stated.map((l) => l.spec.default));
    if (kinds.size > 1) {
      warnings.push(`files disagree on "default" (${stated.map((l) => `${l.file}: ${l.spec.default}`).join(', ')}); the strictest, ${def}, is in force`);
    }
  }
  if (loaded.length === 0) warnings.push('no policy files: every call is denied');
  for (const r of rules) {
    if (r.on === 'egress') {
      if (r.effect === 'allow' && r.agent === null && r.connector === null) {
        warnings.push(`${r.file}:${r.line}: egress rule "${r.id}" lets every agent and every connector reach ${r.egress?.host.pattern ?? ''}`);
      }
      continue;
    }
    if (r.effect === 'allow' && r.agent === null && r.connector === null && r.tool === null && r.args.length === 0 && r.when === null) {
      warnings.push(`${r.file}:${r.line}: rule "${r.id}" allows every call of every agent`);
    }
    // prefix and glob compare strings: on a path they are passed by "/safe/../etc" and "/safe-evil".
    for (const a of r.effect === 'allow' ? r.args : []) {
      const stringOnly = a.checks.find((c) => /^(prefix|glob) "\//.test(c.describe));
      if (stringOnly !== undefined) {
        warnings.push(`${r.file}:${r.line}: rule "${r.id}" args.${a.key}: ${stringOnly.describe.split(' ')[0]} is string-only and a path passes it with ".." or a longer name; use path: { under: DIR }`);
      }
    }
  }

  const hash = createHash('sha256');
  for (const l of loaded) hash.update(`${l.file}\u0000${l.text.length}\u0000${l.text}`);

  return Object.freeze({
    default: def,
    defaultAsk: askSpec(undefined),
    rules: Object.freeze(rules),
    files: Object.freeze(loaded.map((l) => l.file)),
    digest: hash.digest('hex'),
    warnings: Object.freeze(warnings),
    // Egress rules are decided apart (egress.ts): never a candidate for a tool or model call.
    index: buildIndex(rules.filter((r) => r.on !== 'egress')),
  });
}
