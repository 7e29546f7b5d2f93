import { readFileSync } from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { ZodType } from 'zod';
import { errorMessage, GatehouseError } from '../errors.js';
import { issueMessage, issuePath, keyOf } from './zod-issues.js';

/** One problem in a config file, located at file:line:col and a dotted key path. */
export interface ConfigIssue {
  file: string;
  line: number;
  col: number;
  key: string;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.key === '' ? '(top level)' : i.key}: ${i.message}`;
}

export class ConfigError extends GatehouseError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super('CONFIG_INVALID', issues.map(formatIssue).join('\n'), { details: { issues: issues.length } });
    this.issues = issues;
  }
}

type Path = ReadonlyArray<PropertyKey>;

/** Finds the line/column where `path` starts in the document (the deepest node that exists). */
export function locate(doc: Document, lc: LineCounter, path: Path): { line: number; col: number } {
  let node: unknown = doc.contents;
  let offset = 0;
  const rangeOf = (n: unknown): number | undefined => (n as { range?: [number, number, number] } | null)?.range?.[0];
  offset = rangeOf(node) ?? 0;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === seg);
      if (!pair) break;
      offset = rangeOf(pair.key) ?? offset;
      node = pair.value;
      // For a key whose value is the problem, pointing at the key reads best.
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) break;
      offset = rangeOf(item) ?? offset;
      node = item;
    } else {
      break;
    }
  }
  const pos = lc.linePos(offset);
  return { line: pos.line, col: pos.col };
}

/**
 * Parses YAML text and validates it with a (strict) zod schema. Every problem,
 * syntax or schema, is reported with file, line, column and key.
 */
export function parseYamlConfig<T>(file: string, text: string, schema: ZodType<T>): T {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, merge: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lc.linePos(e.pos[0]);
        return { file, line: pos.line, col: pos.col, key: '', message: `YAML syntax: ${e.message.split('\n')[0] ?? e.message}` };
      }),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 50 });
  } catch (e) {
    // yaml throws a plain ReferenceError for an alias bomb: report it like any other config problem.
    throw new ConfigError([{ file, line: 1, col: 1, key: '', message: `YAML: ${errorMessage(e)}; expand the aliases (&name / *name) into plain values` }]);
  }
  const result = schema.safeParse(data ?? {}, { reportInput: true });
  if (result.success) return result.data;
  const issues: ConfigIssue[] = result.error.issues.map((issue) => {
    const path = issuePath(issue);
    const where = locate(doc, lc, path);
    return { file, line: where.line, col: where.col, key: keyOf(path), message: issueMessage(issue) };
  });
  throw new ConfigError(issues);
}

export function loadYamlConfig<T>(file: string, schema: ZodType<T>): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ file, line: 0, col: 0, key: '', message: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }]);
  }
  return parseYamlConfig(file, text, schema);
}
