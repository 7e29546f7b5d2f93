/**
 * An upstream's `inputSchema` is the upstream's to write: a hostile one must
 * not freeze, exhaust or poison the gateway's argument check (issue #24,
 * "Argument checking can't freeze the gateway"). Through a real gateway with
 * test/fixtures/hostile-schemas.mjs, and on SchemaChecker directly.
 */
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkArgs, MAX_VALIDATORS_PER_CHECKER, SchemaChecker } from '../../src/broker/args.js';
import { PATTERN_LIMITS } from '../../src/broker/re2-engine.js';
import { SCHEMA_LIMITS } from '../../src/broker/schema-limits.js';
import { GatehouseError } from '../../src/errors.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { executedRecords, INNOCENT_P99_BOUND_MS, innocentConnector, measureInnocent, resources, settled } from '../helpers/innocent.js';
import { FIXTURES } from './helpers.js';

const HOSTILE = join(FIXTURES, 'hostile-schemas.mjs');
// Re-listed on every list_changed (the default rate limit would let most bumps share one listing).
const hostile = (name: string) => ({ name, kind: 'stdio', command: 'node', args: [HOSTILE, 'stdio'], limits: { relistsPerMinute: 1_000_000 } });

/** The longest the event loop went without running a 10 ms interval, while `work` ran. */
async function longestStall<T>(work: () => Promise<T>): Promise<{ result: T; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 10);
  try {
    const result = await work();
    stallMs = Math.max(stallMs, performance.now() - last);
    return { result, stallMs };
  } finally {
    clearInterval(tick);
  }
}

/** The ARGS_INVALID message checkArgs throws (fails the test if it accepts). */
function refusal(checker: SchemaChecker, schema: object, args: Record<string, unknown>): string {
  try {
    checkArgs('evil__tool', schema, args, checker);
  } catch (e) {
    expect(e).toBeInstanceOf(GatehouseError);
    expect((e as GatehouseError).code).toBe('ARGS_INVALID');
    return (e as Error).message;
  }
  throw new Error('expected the call to be refused');
}

/** A call's JSON-RPC error message (the SDK client throws McpError), or its text result. */
async function outcome(client: Client, name: string, args: Record<string, unknown>): Promise<{ code?: number; text: string }> {
  try {
    const r = await client.callTool({ name, arguments: args });
    return { text: (r.content as Array<{ text?: string }>)[0]?.text ?? '' };
  } catch (e) {
    return { code: (e as { code?: number }).code ?? 0, text: (e as Error).message };
  }
}

describe('through the gateway: two connectors serving hostile schemas', () => {
  let t: TestGateway;
  let agent: Client;

  beforeAll(async () => {
    t = await startTestGateway({ connectors: (log) => [hostile('evil'), hostile('twin'), innocentConnector(log)] });
    agent = await t.client('alice');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('catastrophic-backtracking pattern ^(a+)+$ against "a"×31 + "!": refused at once, the event loop never stalls', async () => {
    const { result, stallMs } = await longestStall(() => outcome(agent, 'evil__redos', { s: `${'a'.repeat(31)}!` }));
    expect(result.code).toBe(-32602);
    expect(result.text).toContain('arguments.s must match pattern "^(a+)+$"');
    // JavaScript's RegExp takes ~10 s here (and doubles per "a"); RE2 a fraction of a millisecond.
    expect(stallMs).toBeLessThan(2_000);
    // The same pattern still accepts what it should, and lets it through.
    expect(await outcome(agent, 'evil__redos', { s: 'aaaa' })).toEqual({ text: 'called redos' });
  });

  it('a lookbehind pattern RE2 cannot run: the call is refused (fail closed), naming the pattern', async () => {
    const r = await outcome(agent, 'evil__lookback', { s: 'ab' });
    expect(r.code).toBe(-32602);
    expect(r.text).toContain('Tool evil__lookback has an input schema the gateway cannot check');
    expect(r.text).toContain('pattern "(?<=a)b" cannot run on the gateway\'s linear-time regex engine (RE2)');
    expect(r.text).toContain('the call is refused');
    const refused = t.audit().filter((a) => a.tool === 'evil__lookback');
    expect(refused.map((a) => a.outcome)).toEqual(['rejected']);
  });

  it('two connectors whose schemas use the same $id: both are checked and called', async () => {
    expect(await outcome(agent, 'evil__bump', { n: 1 })).toEqual({ text: 'bumped 1 to version 1' });
    expect(await outcome(agent, 'twin__bump', { n: 2 })).toEqual({ text: 'bumped 2 to version 1' });
    // The $ref inside the $id'd schema still checks.
    expect((await outcome(agent, 'twin__bump', { n: -1 })).code).toBe(-32602);
  });

  it('a connector whose tool list changes 300 times under a schema with an $id keeps working; cached validators stay bounded', async () => {
    const rounds = 300;
    let bumped = 0;
    for (let i = 0; i < rounds; i++) {
      // Each call is checked against the listing the previous call caused: a fresh schema object with the same $id.
      const r = await outcome(agent, 'evil__bump', { n: i });
      expect(r.code, r.text).toBeUndefined();
      bumped++;
    }
    expect(bumped).toBe(rounds);
    const { checkers, validators } = t.gw.gateway.schemaCheckers();
    expect(checkers).toBe(3);
    // One checker per connector and listing: at most the current listing's tools called (3 each, the innocent's echo), never one per refresh.
    expect(validators).toBeLessThanOrEqual(7);
  });

  it('a connector restart (its schema holding an $id) does not make its tool uncallable', async () => {
    const up = (t.gw.gateway as unknown as { upstreams: Map<string, { restart(): Promise<void> }> }).upstreams.get('twin');
    expect(up).toBeDefined();
    for (let i = 0; i < 3; i++) {
      await up?.restart();
      expect(await outcome(agent, 'twin__bump', { n: i })).toEqual({ text: `bumped ${i} to version 1` });
    }
  });

  it('every schema attack at once, while an innocent agent measures its latency: refused or checked fast, innocent p99 within bound, resources back, one record per executed call', async () => {
    const base = resources();
    const before = executedRecords(t, 'evil').length;
    let executed = 0;
    const m = await measureInnocent(t, async () => {
      for (let i = 0; i < 3; i++) {
        expect((await outcome(agent, 'evil__redos', { s: `${'a'.repeat(31)}!` })).code).toBe(-32602);
        const nested = await outcome(agent, 'evil__nested', { v: 'x' });
        expect(nested.code).toBe(-32602);
        expect(nested.text).toContain('input schema the gateway cannot check');
        expect((await outcome(agent, 'evil__broken', { a: 1 })).code).toBe(-32602);
        expect(await outcome(agent, 'evil__unique', { a: Array.from({ length: 20_000 }, (_, k) => ({ k })) })).toEqual({ text: 'called unique' });
        executed++;
        expect((await outcome(agent, 'evil__bump', { n: i })).code).toBeUndefined();
        executed++;
      }
    });
    expect(m.errors).toEqual([]);
    expect(m.p99, `innocent p99 ${m.p99.toFixed(0)} ms over ${m.samples.length} samples`).toBeLessThan(INNOCENT_P99_BOUND_MS);
    await settled(base);
    expect(executedRecords(t, 'evil').length - before).toBe(executed);
  });
});

describe('SchemaChecker: limits before compiling', () => {
  /** `depth` levels of `anyOf`, each two JSON levels deep. */
  const nestedAnyOf = (depth: number): object => {
    let s: object = { type: 'string' };
    for (let i = 0; i < depth; i++) s = { anyOf: [s, { type: 'number' }] };
    return { type: 'object', properties: { a: s } };
  };

  it('an oversized schema (1 MB of description) is refused without compiling, naming the byte limit', () => {
    const schema = { type: 'object', properties: { a: { type: 'string', description: 'x'.repeat(1024 * 1024) } } };
    const m = refusal(new SchemaChecker(), schema, { a: 'x' });
    expect(m).toContain(`over the ${SCHEMA_LIMITS.maxBytes.toLocaleString('en-US')}-byte limit; it was not compiled`);
    expect(m).toContain('the call is refused');
  });

  it('a 1 MB deeply nested anyOf schema is refused without compiling, naming the depth limit', async () => {
    const schema = nestedAnyOf(20_000);
    const { result, stallMs } = await longestStall(async () => refusal(new SchemaChecker(), schema, { a: 'x' }));
    expect(result).toContain(`the schema nests deeper than ${SCHEMA_LIMITS.maxDepth} levels; it was not compiled`);
    expect(stallMs).toBeLessThan(2_000);
  });

  it('a wide schema with thousands of subschemas is refused without compiling, naming the count limit', () => {
    const properties = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`p${i}`, { type: 'string' }]));
    const m = refusal(new SchemaChecker(), { type: 'object', properties }, { p1: 'x' });
    expect(m).toContain(`the schema has more than ${SCHEMA_LIMITS.maxNodes.toLocaleString('en-US')} subschemas; it was not compiled`);
  });

  it('a schema within the limits but nested just under the depth limit still works', () => {
    const c = new SchemaChecker();
    const schema = nestedAnyOf(30);
    expect(() => checkArgs('t', schema, { a: 'x' }, c)).not.toThrow();
    expect(refusal(c, schema, { a: true })).toContain('Invalid arguments for tool evil__tool');
  });

  it('a backreference RE2 refuses: the schema is uncheckable and the call refused', () => {
    const m = refusal(new SchemaChecker(), { type: 'object', properties: { s: { type: 'string', pattern: '(a)\\1' } } }, { s: 'aa' });
    expect(m).toContain('has an input schema the gateway cannot check (pattern "(a)\\\\1" cannot run');
  });

  it('a lookahead in patternProperties RE2 refuses: the call is refused', () => {
    const m = refusal(new SchemaChecker(), { type: 'object', patternProperties: { '^(?!x)': { type: 'string' } } }, { a: 'b' });
    expect(m).toContain('cannot run on the gateway\'s linear-time regex engine');
  });

  it('a pattern whose RE2 program is too big (\\p{L}{2000}) is refused, naming the instruction limit', () => {
    const m = refusal(new SchemaChecker(), { type: 'object', properties: { s: { type: 'string', pattern: '\\p{L}{1000}\\p{L}{1000}x' } } }, { s: 'a' });
    expect(m).toContain(`over the ${PATTERN_LIMITS.maxInstructions} limit`);
  });

  it('catastrophic-backtracking patterns run on RE2: 100,000 "a"s + "!" decided at once, in properties and patternProperties', async () => {
    const c = new SchemaChecker();
    const attacks: Array<[object, Record<string, unknown>]> = [
      [{ type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } }, { s: `${'a'.repeat(100_000)}!` }],
      [{ type: 'object', properties: { s: { type: 'string', pattern: '^(a|a)*$' } } }, { s: `${'a'.repeat(100_000)}!` }],
      [{ type: 'object', patternProperties: { '^(a+)+$': { type: 'number' } } }, { [`${'a'.repeat(100_000)}`]: 'not a number' }],
    ];
    expect(attacks.length).toBeGreaterThan(0);
    const { stallMs } = await longestStall(async () => {
      for (const [schema, args] of attacks) expect(refusal(c, schema, args)).toContain('Invalid arguments for tool evil__tool');
    });
    // JavaScript's RegExp would never finish these (2^100,000 paths).
    expect(stallMs).toBeLessThan(2_000);
  });

  it('a compile error prints nothing (no generated code on stderr)', () => {
    const written: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    const origError = console.error;
    process.stderr.write = ((chunk: string | Uint8Array) => (written.push(String(chunk)), true)) as typeof process.stderr.write;
    console.error = (...a: unknown[]) => void written.push(a.map(String).join(' '));
    try {
      refusal(new SchemaChecker(), { type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }, { a: 1 });
    } finally {
      process.stderr.write = orig;
      console.error = origError;
    }
    expect(written).toEqual([]);
  });
});

describe('SchemaChecker: uniqueItems in linear time', () => {
  const unique = { type: 'object', properties: { a: { type: 'array', uniqueItems: true } } };

  it('uniqueItems over 20,000 distinct objects (ajv compares pairwise: ~20 s) is decided without stalling the event loop', async () => {
    const a = Array.from({ length: 20_000 }, (_, i) => ({ x: i, y: [i, String(i)] }));
    const { stallMs } = await longestStall(async () => checkArgs('evil__tool', unique, { a }, new SchemaChecker()));
    expect(stallMs).toBeLessThan(3_000);
  });

  it('duplicates are found whatever the key order, and named by their positions', () => {
    const msg = refusal(new SchemaChecker(), unique, { a: [{ q: 0 }, { a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }] });
    expect(msg).toContain('arguments.a must NOT have duplicate items (items ## 1 and 2 are identical)');
  });

  it('values equal only after a type change are distinct (1 vs "1", [1] vs ["1"], null vs "null", {} vs [])', () => {
    expect(() => checkArgs('t', unique, { a: [1, '1', [1], ['1'], { 1: 1 }, { 1: '1' }, null, 'null', true, 'true', {}, []] }, new SchemaChecker())).not.toThrow();
  });

  it('uniqueItems: false, and a non-array value, are not checked for duplicates', () => {
    expect(() => checkArgs('t', { type: 'object', properties: { a: { uniqueItems: false } } }, { a: [1, 1] }, new SchemaChecker())).not.toThrow();
    expect(() => checkArgs('t', { type: 'object', properties: { a: { uniqueItems: true } } }, { a: 'xx' }, new SchemaChecker())).not.toThrow();
  });
});

describe('SchemaChecker: $id and cache bounds', () => {
  const withId = () => ({ $id: 'https://schemas.example/a.json', type: 'object', properties: { n: { $ref: '#/$defs/n' } }, $defs: { n: { $id: 'https://schemas.example/n.json', type: 'integer' } } });

  it('two tools of one connector, and every relisting, may share an $id', () => {
    const c = new SchemaChecker();
    for (let i = 0; i < 50; i++) {
      expect(() => checkArgs('t', withId(), { n: i }, c)).not.toThrow();
      expect(refusal(c, withId(), { n: 'x' })).toContain('arguments.n must be integer');
    }
  });

  it('a checker holds at most MAX_VALIDATORS_PER_CHECKER validators, whoever owns it', () => {
    const c = new SchemaChecker();
    for (let i = 0; i < MAX_VALIDATORS_PER_CHECKER * 2 + 5; i++) {
      checkArgs('t', withId(), { n: 1 }, c);
      expect(c.size).toBeLessThanOrEqual(MAX_VALIDATORS_PER_CHECKER);
    }
  });

  it('the same schema object is compiled once', () => {
    const c = new SchemaChecker();
    const s = withId();
    for (let i = 0; i < 10; i++) checkArgs('t', s, { n: i }, c);
    expect(c.size).toBe(1);
  });
});
