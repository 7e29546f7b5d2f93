/**
 * Schemas of an OpenAPI 3.0 or Swagger 2.0 description as JSON Schema
 * (draft-07) for ajv: `nullable` becomes a null type (OpenAPI 3.0.3 §4.7.25),
 * boolean exclusiveMinimum/Maximum become numbers, annotation-only keywords
 * are dropped, formats ajv-formats does not know are dropped (OpenAPI lets
 * tools ignore them), and `$ref`s to named schemas point into `definitions`.
 * Each root is compiled with only the definitions it reaches, once.
 */
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';

const require = createRequire(import.meta.url);
const Ajv = require('ajv') as typeof import('ajv').default;
const addFormats = require('ajv-formats') as typeof import('ajv-formats').default;

export type J = Record<string, unknown>;

const ANNOTATIONS = new Set(['nullable', 'x-nullable', 'example', 'examples', 'discriminator', 'xml', 'externalDocs', 'deprecated', 'readOnly', 'writeOnly']);
/** Keywords whose value is a map of name → schema (its keys are names, not keywords). */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'definitions']);
const SUBSCHEMA = new Set(['items', 'additionalProperties', 'not', 'additionalItems', 'contains', 'propertyNames']);
const SUBSCHEMA_LISTS = new Set(['allOf', 'anyOf', 'oneOf']);

export class SchemaSet {
  private readonly ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, logger: false });
  private readonly formats: Set<string>;
  private readonly converted = new Map<string, J>();
  private readonly compiled = new WeakMap<object, ValidateFunction>();

  /** `prefix`: where named schemas live ("#/components/schemas/" or "#/definitions/"). */
  constructor(
    private readonly doc: J,
    private readonly prefix: string,
  ) {
    addFormats(this.ajv);
    this.formats = new Set(Object.keys(this.ajv.formats));
  }

  /** The validator of a schema node taken from the description (cached by node). */
  validator(schema: J): ValidateFunction {
    let v = this.compiled.get(schema);
    if (v === undefined) {
      const root = this.convert(schema);
      const definitions: J = {};
      const todo = [...this.refsOf(root)];
      while (todo.length > 0) {
        const name = todo.pop() as string;
        if (name in definitions) continue;
        const s = this.named(name);
        definitions[name] = s;
        todo.push(...this.refsOf(s));
      }
      v = this.ajv.compile({ ...root, definitions });
      this.compiled.set(schema, v);
    }
    return v;
  }

  private named(name: string): J {
    let s = this.converted.get(name);
    if (s === undefined) {
      const path = this.prefix.slice(2, -1).split('/');
      let node: unknown = this.doc;
      for (const p of [...path, name]) node = (node as J | undefined)?.[p];
      if (node === undefined || node === null || typeof node !== 'object') throw new Error(`description has no schema ${this.prefix}${name}`);
      s = this.convert(node as J);
      this.converted.set(name, s);
    }
    return s;
  }

  private refsOf(schema: unknown, out = new Set<string>()): Set<string> {
    if (Array.isArray(schema)) for (const s of schema) this.refsOf(s, out);
    else if (schema !== null && typeof schema === 'object') {
      for (const [k, v] of Object.entries(schema)) {
        if (k === '$ref' && typeof v === 'string') out.add(unescapePointer(v.slice('#/definitions/'.length)));
        else this.refsOf(v, out);
      }
    }
    return out;
  }

  private convert(s: J): J {
    const out: J = {};
    for (const [k, v] of Object.entries(s)) {
      if (ANNOTATIONS.has(k) || k.startsWith('x-')) continue;
      if (k === '$ref' && typeof v === 'string') {
        if (!v.startsWith(this.prefix)) throw new Error(`unsupported $ref ${v} in a schema`);
        out.$ref = `#/definitions/${v.slice(this.prefix.length)}`;
      } else if (SCHEMA_MAPS.has(k) && v !== null && typeof v === 'object') {
        out[k] = Object.fromEntries(Object.entries(v).map(([n, sub]) => [n, this.convert(sub as J)]));
      } else if (SUBSCHEMA.has(k) && v !== null && typeof v === 'object') {
        out[k] = Array.isArray(v) ? v.map((x) => this.convert(x as J)) : this.convert(v as J);
      } else if (SUBSCHEMA_LISTS.has(k) && Array.isArray(v)) {
        out[k] = v.map((x) => this.convert(x as J));
      } else if (k === 'format' && typeof v === 'string') {
        if (this.formats.has(v)) out.format = v;
      } else if ((k === 'exclusiveMinimum' || k === 'exclusiveMaximum') && typeof v === 'boolean') {
        const bound = k === 'exclusiveMinimum' ? 'minimum' : 'maximum';
        if (v && typeof s[bound] === 'number') out[k] = s[bound];
      } else if ((k === 'minimum' || k === 'maximum') && s[k === 'minimum' ? 'exclusiveMinimum' : 'exclusiveMaximum'] === true) {
        continue;
      } else {
        out[k] = v;
      }
    }
    if (s.nullable !== true && s['x-nullable'] !== true) return out;
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    if (typeof out.type === 'string') return { ...out, type: [out.type, 'null'] };
    if (out.type === undefined && ('$ref' in out || 'allOf' in out || 'anyOf' in out || 'oneOf' in out)) return { anyOf: [out, { type: 'null' }] };
    return out;
  }
}

function unescapePointer(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** ajv's errors as short lines: "/items/0/user must have required property 'login'". */
export function describeErrors(errors: ErrorObject[] | null | undefined, data: unknown, max = 6): string[] {
  const lines: string[] = [];
  // A wrong type or value says more than the list of missing properties around it.
  const sorted = [...(errors ?? [])].sort((x, y) => Number(x.keyword === 'required') - Number(y.keyword === 'required'));
  for (const e of sorted) {
    const at = e.instancePath === '' ? '(root)' : e.instancePath;
    const p = e.params as Record<string, unknown>;
    const extra =
      'additionalProperty' in p ? ` '${String(p.additionalProperty)}'` : 'allowedValues' in p ? ` ${JSON.stringify(p.allowedValues)}` : '';
    lines.push(`${at} ${e.message ?? e.keyword}${extra}; got ${snippet(valueAt(data, e.instancePath))}`);
    if (lines.length >= max) {
      lines.push(`… ${(errors?.length ?? 0) - max} more`);
      break;
    }
  }
  return lines;
}

function valueAt(data: unknown, pointer: string): unknown {
  let node = data;
  for (const t of pointer.split('/').slice(1)) node = (node as J | undefined)?.[unescapePointer(t)];
  return node;
}

export function snippet(v: unknown, max = 160): string {
  const s = v === undefined ? 'nothing' : JSON.stringify(v);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
