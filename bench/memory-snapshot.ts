/**
 * What an open session holds: two V8 heap snapshots of one gateway (before
 * and after opening N sessions) summed by constructor, as DevTools' Summary
 * view groups them, and diffed.
 */
import { readFileSync } from 'node:fs';

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface ConstructorTotals {
  /** Self bytes and object count per constructor. */
  by: Map<string, { bytes: number; count: number }>;
  /** Compiled code and closures by their function's name (`(closure) onclose`): which code a growth is. */
  named: Map<string, { bytes: number; count: number }>;
  total: number;
}

/** DevTools' grouping: objects by constructor name, the rest by kind (closures, arrays, strings, V8 internals by their name). */
function groupName(type: string, name: string): string {
  switch (type) {
    case 'object':
    case 'native':
      return name;
    case 'closure':
      return '(closure)';
    case 'string':
    case 'concatenated string':
    case 'sliced string':
      return '(string)';
    case 'code':
      return '(compiled code)';
    case 'array':
      return name === '' ? '(array)' : `(array) ${name}`;
    case 'hidden':
    case 'object shape':
      return name.startsWith('system / ') ? `(system) ${name.slice('system / '.length)}` : `(system) ${name}`;
    default:
      return `(${type})`;
  }
}

/** Self size and count per constructor in a `.heapsnapshot`. */
export function constructorTotals(file: string): ConstructorTotals {
  const s = JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const [ti, ni, si] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];
  const by = new Map<string, { bytes: number; count: number }>();
  const named = new Map<string, { bytes: number; count: number }>();
  const add = (m: Map<string, { bytes: number; count: number }>, key: string, bytes: number) => {
    const row = m.get(key) ?? { bytes: 0, count: 0 };
    row.bytes += bytes;
    row.count += 1;
    m.set(key, row);
  };
  let total = 0;
  for (let i = 0; i < s.nodes.length; i += width) {
    const bytes = s.nodes[i + si]!;
    const type = types[s.nodes[i + ti]!] ?? '?';
    const name = s.strings[s.nodes[i + ni]!] ?? '';
    const key = groupName(type, name);
    add(by, key, bytes);
    if (type === 'code' || type === 'closure') add(named, `${key} ${name === '' ? '(anonymous)' : name.slice(0, 60)}`, bytes);
    total += bytes;
  }
  return { by, named, total };
}

export interface DiffRow {
  what: string;
  bytes: number;
  count: number;
}

/** Growth per constructor from `before` to `after`, largest first. */
export function diffTotals(before: ConstructorTotals, after: ConstructorTotals): { rows: DiffRow[]; named: DiffRow[]; total: number } {
  return { rows: diffMaps(before.by, after.by), named: diffMaps(before.named, after.named), total: after.total - before.total };
}

function diffMaps(before: ConstructorTotals['by'], after: ConstructorTotals['by']): DiffRow[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys]
    .map((what) => ({ what, bytes: (after.get(what)?.bytes ?? 0) - (before.get(what)?.bytes ?? 0), count: (after.get(what)?.count ?? 0) - (before.get(what)?.count ?? 0) }))
    .sort((a, b) => b.bytes - a.bytes);
}
