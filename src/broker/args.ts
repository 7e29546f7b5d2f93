import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { GatehouseError } from '../errors.js';

// ajv ships CommonJS; load its JSON Schema 2020-12 build (MCP's default dialect, spec 2025-11-25).
const require = createRequire(import.meta.url);
const Ajv2020 = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js').default;
const addFormats = require('ajv-formats') as typeof import('ajv-formats').default;

const ajv = new Ajv2020({ strict: false, allErrors: false, validateSchema: false, unicodeRegExp: true });
addFormats(ajv);

const compiled = new WeakMap<object, ValidateFunction | Error>();

function compile(schema: object): ValidateFunction | Error {
  let v = compiled.get(schema);
  if (v === undefined) {
    try {
      v = ajv.compile(schema);
    } catch (e) {
      v = e instanceof Error ? e : new Error(String(e));
    }
    compiled.set(schema, v);
  }
  return v;
}

function describe(e: ErrorObject): string {
  const where = e.instancePath === '' ? 'arguments' : `arguments${e.instancePath.replace(/\//g, '.')}`;
  if (e.keyword === 'additionalProperties') return `${where}: unknown property ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)}`;
  if (e.keyword === 'required') return `${where}: missing required property ${JSON.stringify((e.params as { missingProperty: string }).missingProperty)}`;
  return `${where} ${e.message ?? 'is invalid'}`;
}

/**
 * Checks tool arguments against the upstream's `inputSchema` before anything
 * is forwarded. An upstream schema that does not compile fails closed.
 */
export function checkArgs(toolName: string, inputSchema: object, args: unknown): asserts args is Record<string, unknown> {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new GatehouseError('ARGS_INVALID', `Invalid arguments for tool ${toolName}: arguments must be an object`);
  }
  const inf = nonFinitePath(args);
  if (inf !== undefined) {
    throw new GatehouseError('ARGS_INVALID', `Invalid arguments for tool ${toolName}: ${inf} is not a finite number (JSON numbers beyond ±1.8e308 cannot be forwarded as sent)`);
  }
  const v = compile(inputSchema);
  if (v instanceof Error) {
    throw new GatehouseError('ARGS_INVALID', `Tool ${toolName} has an input schema the gateway cannot check (${v.message}); the call is refused`);
  }
  if (!v(args)) {
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
