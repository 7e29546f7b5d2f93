import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { GatehouseError } from '../errors.js';
import { PATTERN_LIMITS, re2Engine, type PatternBudget } from './re2-engine.js';
import { SCHEMA_LIMITS, schemaOverLimit, type SchemaLimits } from './schema-limits.js';

// ajv ships CommonJS; load its JSON Schema 2020-12 build (MCP's default dialect, spec 2025-11-25).
const require = createRequire(import.meta.url);
const Ajv2020 = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js').default;
const addFormats = require('ajv-formats') as typeof import('ajv-formats').default;
type Ajv = InstanceType<typeof Ajv2020>;

/** Validators one checker keeps before it starts afresh (a bound whoever owns it). */
export const MAX_VALIDATORS_PER_CHECKER = 1_000;

function newAjv(budget: PatternBudget): Ajv {
  const ajv = new Ajv2020({
    strict: false,
    allErrors: false,
    validateSchema: false,
    unicodeRegExp: true,
    // A failed compile would print its generated code (megabytes for a hostile schema) to stderr.
    logger: false,
    // ajv's optimizer pass is superlinear in the generated code (10x slower at 800 properties); RE2 runs `pattern`s.
    code: { regExp: re2Engine(budget), optimize: false },
  });
  addFormats(ajv);
  // ajv compares non-scalar items pairwise (2,000 small arrays: 0.2 s; 100,000 objects: minutes, all on the event loop).
  ajv.removeKeyword('uniqueItems');
  ajv.addKeyword({ keyword: 'uniqueItems', type: 'array', schemaType: 'boolean', validate: uniqueItems });
  return ajv;
}

/**
 * `uniqueItems` in time linear in the array's size: each item reduced to a
 * canonical string (object keys sorted; JSON Schema equality, 2020-12
 * validation §4.2.2), duplicates found in a Set.
 */
function uniqueItems(this: unknown, wanted: boolean, data: unknown[]): boolean {
  const fn = uniqueItems as unknown as { errors?: Partial<ErrorObject>[] | null };
  fn.errors = null;
  if (!wanted) return true;
  const seen = new Map<string, number>();
  for (let i = 0; i < data.length; i++) {
    const k = canonicalKey(data[i]);
    const j = seen.get(k);
    if (j !== undefined) {
      fn.errors = [{ keyword: 'uniqueItems', message: `must NOT have duplicate items (items ## ${j} and ${i} are identical)`, params: { i, j } }];
      return false;
    }
    seen.set(k, i);
  }
  return true;
}

function canonicalKey(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'undefined';
  if (Array.isArray(v)) return `[${v.map(canonicalKey).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalKey(o[k])}`)
    .join(',')}}`;
}

/**
 * Compiles upstream `inputSchema`s, each once per schema object (one object
 * per tool per listing). Owned per connector and replaced when its tool list
 * changes or it restarts (src/broker/gateway.ts), so validators never outlive
 * the list they came from and `$id`s of two connectors never meet. Each compile
 * also starts from an empty ajv registry: two tools (or two listings) with the
 * same `$id` never collide, and ajv's own cache holds nothing between compiles.
 */
export class SchemaChecker {
  private ajv: Ajv | undefined;
  private readonly patterns: PatternBudget = { instructions: 0 };
  private compiled = new WeakMap<object, ValidateFunction | Error>();
  private count = 0;

  constructor(private readonly limits: SchemaLimits = SCHEMA_LIMITS) {}

  /** Schemas compiled (or refused) by this checker since it last started afresh. */
  get size(): number {
    return this.count;
  }

  /** The schema's validator, or why it cannot be checked (over a limit, a pattern RE2 refuses, does not compile). */
  validator(schema: object): ValidateFunction | Error {
    let v = this.compiled.get(schema);
    if (v !== undefined) return v;
    if (this.count >= MAX_VALIDATORS_PER_CHECKER) {
      this.ajv = undefined;
      this.compiled = new WeakMap();
      this.count = 0;
    }
    const over = schemaOverLimit(schema, this.limits);
    if (over !== undefined) {
      v = new Error(`${over}; it was not compiled`);
    } else {
      const ajv = (this.ajv ??= newAjv(this.patterns));
      this.patterns.instructions = PATTERN_LIMITS.maxInstructionsPerSchema;
      try {
        v = ajv.compile(schema);
      } catch (e) {
        v = e instanceof Error ? e : new Error(String(e));
      } finally {
        ajv.removeSchema();
      }
    }
    this.compiled.set(schema, v);
    this.count++;
    return v;
  }
}

/** For callers without a connector's checker (unit tests, PipelineDeps without `schemaChecker`). */
const shared = new SchemaChecker();

function describe(e: ErrorObject): string {
  const where = e.instancePath === '' ? 'arguments' : `arguments${e.instancePath.replace(/\//g, '.')}`;
  if (e.keyword === 'additionalProperties') return `${where}: unknown property ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)}`;
  if (e.keyword === 'required') return `${where}: missing required property ${JSON.stringify((e.params as { missingProperty: string }).missingProperty)}`;
  return `${where} ${e.message ?? 'is invalid'}`;
}

/**
 * Checks tool arguments against the upstream's `inputSchema` before anything
 * is forwarded. A schema the gateway cannot check (over a limit, a pattern RE2
 * refuses, does not compile) fails closed: the call is refused.
 */
export function checkArgs(toolName: string, inputSchema: object, args: unknown, checker: SchemaChecker = shared): asserts args is Record<string, unknown> {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new GatehouseError('ARGS_INVALID', `Invalid arguments for tool ${toolName}: arguments must be an object`);
  }
  const inf = nonFinitePath(args);
  if (inf !== undefined) {
    throw new GatehouseError('ARGS_INVALID', `Invalid arguments for tool ${toolName}: ${inf} is not a finite number (JSON numbers beyond ±1.8e308 cannot be forwarded as sent)`);
  }
  const v = checker.validator(inputSchema);
  if (v instanceof Error) {
    throw new GatehouseError('ARGS_INVALID', `Tool ${toolName} has an input schema the gateway cannot check (${v.message}); the call is refused`);
  }
  let valid: boolean;
  try {
    valid = v(args) as boolean;
  } catch (e) {
    // Arguments nested deeper than the stack (a uniqueItems array of deep items): fail closed.
    throw new GatehouseError('ARGS_INVALID', `Invalid arguments for tool ${toolName}: they cannot be checked against the tool's input schema (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!valid) {
    const first = v.errors?.[0];
    throw new GatehouseError('ARGS_INVALID', `Invalid arguments for tool ${toolName}: ${first ? describe(first) : 'does not match the input schema'}`);
  }
}

/**
 * Where a non-finite number sits (JSON.parse turns 1e400 into Infinity, which the
 * schema check accepts as a number and JSON.stringify then sends on as null).
 * Iterative: the value may be as deep as the edge allows.
 */
function nonFinitePath(args: object): string | undefined {
  // [value, path of its parent, key in the parent]: the path string is built only for the culprit.
  const stack: Array<[unknown, string, string | number]> = [[args, '', 'arguments']];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [v, parent, key] = item;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return typeof key === 'number' ? `${parent}[${key}]` : parent === '' ? key : `${parent}.${key}`;
    } else if (v !== null && typeof v === 'object') {
      const here = parent === '' ? String(key) : typeof key === 'number' ? `${parent}[${key}]` : `${parent}.${key}`;
      if (Array.isArray(v)) for (let i = 0; i < v.length; i++) stack.push([v[i], here, i]);
      else for (const k of Object.keys(v)) stack.push([(v as Record<string, unknown>)[k], here, k]);
    }
  }
  return undefined;
}
