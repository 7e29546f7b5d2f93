import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * Rooms depend downwards only (README, "Architecture"). Top first; a room may
 * import only rooms listed after it. Rooms of one layer share a line and are
 * in a fixed order too, so no two rooms can need each other.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['cli', 'app'],
  ['console', 'sandbox', 'server'],
  ['broker', 'inference', 'egress', 'tools'],
  ['upstreams', 'connectors'],
  ['registry', 'policy', 'secrets', 'telemetry'],
  ['audit'],
  ['config', 'log', 'terminal', 'errors', 'pipelined', 'undici'],
];
const ORDER = LAYERS.flat();

const SRC = join(import.meta.dirname, '../../src');

interface Import {
  line: number;
  spec: string;
}

/**
 * Every `import … from`, `export … from`, side-effect `import '…'`, dynamic
 * `import('…')` and type `import('…')` of a file, read by TypeScript's own
 * parser (so comments, strings and regular expressions cannot hide or fake one).
 */
function importsOf(text: string): Import[] {
  const file = ts.createSourceFile('x.ts', text, ts.ScriptTarget.Latest, true);
  const found: Import[] = [];
  const add = (spec: ts.Node) => {
    if (ts.isStringLiteralLike(spec)) found.push({ line: file.getLineAndCharacterOfPosition(spec.getStart(file)).line + 1, spec: spec.text });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) add(node.moduleSpecifier);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0]) add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found.sort((a, b) => a.line - b.line);
}

/** The room of a file under src/: its folder, or its own name for a file at the top (errors.ts, log.ts). */
function roomOf(file: string): string {
  const [first, ...rest] = file.split('/');
  return rest.length === 0 ? (first as string).replace(/\.[jt]s$/, '') : (first as string);
}

/**
 * Imports that run against the order, as `file:line imports X (room a may not import room b)`.
 * `files` maps paths relative to src/ (posix) to their text.
 */
function layerViolations(files: ReadonlyMap<string, string>): { violations: string[]; imports: number } {
  const violations: string[] = [];
  let imports = 0;
  for (const [file, text] of files) {
    const from = roomOf(file);
    const rank = ORDER.indexOf(from);
    for (const { line, spec } of importsOf(text)) {
      imports++;
      if (!spec.startsWith('.')) continue; // a package
      const target = posix.normalize(posix.join(posix.dirname(file), spec));
      const where = `src/${file}:${line} imports ${spec}`;
      if (target.startsWith('..')) {
        violations.push(`${where} (outside src/)`);
        continue;
      }
      const to = roomOf(target);
      if (to === from) continue;
      if (rank === -1) violations.push(`${where} (room ${from} is not in the layer order: add it to README and this test)`);
      else if (ORDER.indexOf(to) === -1) violations.push(`${where} (room ${to} is not in the layer order: add it to README and this test)`);
      else if (ORDER.indexOf(to) < rank) violations.push(`${where} (room ${from} may not import room ${to})`);
    }
  }
  return { violations, imports };
}

function sources(dir: string, out = new Map<string, string>()): Map<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts')) out.set(relative(SRC, p).split('\\').join('/'), readFileSync(p, 'utf8'));
  }
  return out;
}

let checked: ReturnType<typeof layerViolations> | undefined;
const tree = () => (checked ??= layerViolations(sources(SRC)));

describe('layers: rooms depend downwards only', () => {
  it('no file in src/ imports a room above its own, or a peer against the fixed order', () => {
    const { violations } = tree();
    expect(violations, violations.join('\n')).toEqual([]);
  });

  it('the checker saw the whole tree (more than 300 imports)', () => {
    expect(tree().imports).toBeGreaterThan(300);
  });

  it('flags an upward import: audit importing broker', () => {
    const files = new Map([['audit/x.ts', "import { z } from 'zod';\nimport { Gateway } from '../broker/gateway.js';\n"]]);
    expect(layerViolations(files).violations).toEqual(['src/audit/x.ts:2 imports ../broker/gateway.js (room audit may not import room broker)']);
  });

  it('flags a peer import against the fixed order: server importing sandbox, connectors importing upstreams', () => {
    const files = new Map([
      ['server/x.ts', "import type { SandboxSessions } from '../sandbox/sandbox-sessions.js';\n"],
      ['connectors/y.ts', "export { Upstream } from '../upstreams/upstream.js';\n"],
      ['sandbox/z.ts', "import { createApp } from '../server/app.js';\n"],
    ]);
    expect(layerViolations(files).violations).toEqual([
      'src/server/x.ts:1 imports ../sandbox/sandbox-sessions.js (room server may not import room sandbox)',
      'src/connectors/y.ts:1 imports ../upstreams/upstream.js (room connectors may not import room upstreams)',
    ]);
  });

  it('reads export-from, multi-line, side-effect, dynamic and type imports (past strings, regexes and comments), and top-level files as rooms', () => {
    const text = [
      "import {",
      "  a,",
      "  b,",
      "} from '../app/gateway.js';",
      "export * from '../cli/main.js';",
      "import '../server/app.js';",
      "const m = await import('../broker/session-server.js');",
      "// import { x } from '../cli/run.js'; (a comment is not an import)",
      "const glob = 'src/**/*.ts'; const re = /[\"\\\\]/g; import type { Gateway } from '../broker/gateway.js';",
      "type L = import('../app/run.js').RunOptions;",
      "import { GatehouseError } from '../errors.js';",
    ].join('\n');
    expect(layerViolations(new Map([['policy/x.ts', text]])).violations).toEqual([
      'src/policy/x.ts:4 imports ../app/gateway.js (room policy may not import room app)',
      'src/policy/x.ts:5 imports ../cli/main.js (room policy may not import room cli)',
      'src/policy/x.ts:6 imports ../server/app.js (room policy may not import room server)',
      'src/policy/x.ts:7 imports ../broker/session-server.js (room policy may not import room broker)',
      'src/policy/x.ts:9 imports ../broker/gateway.js (room policy may not import room broker)',
      'src/policy/x.ts:10 imports ../app/run.js (room policy may not import room app)',
    ]);
    expect(layerViolations(new Map([['errors.ts', "import { x } from './log.js';\n"]])).violations).toEqual([
      'src/errors.ts:1 imports ./log.js (room errors may not import room log)',
    ]);
  });

  it('flags a room that is not in the order (a new folder must be placed first)', () => {
    expect(layerViolations(new Map([['gadgets/x.ts', "import { a } from '../audit/append.js';\n"]])).violations).toEqual([
      'src/gadgets/x.ts:1 imports ../audit/append.js (room gadgets is not in the layer order: add it to README and this test)',
    ]);
  });
});
