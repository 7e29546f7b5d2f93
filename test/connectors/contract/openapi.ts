/**
 * A provider's published API description (OpenAPI 3.0 or Swagger 2.0) as a
 * contract: a recorded request is matched to its operation by method and path
 * template, and its path and query parameters, content type and JSON body
 * are checked against the operation; the answer is checked against the
 * response documented for its status (or `default`). Every check returns
 * violations as readable lines; none means the exchange conforms.
 */
import { readFileSync } from 'node:fs';
import { SchemaSet, describeErrors, snippet, type J } from './schema.js';

export interface Exchange {
  method: string;
  /** Raw path as sent (percent-encoded), below `basePath`. */
  path: string;
  query: string;
  contentType: string | undefined;
  body: string;
  response?: { status: number; contentType: string | undefined; body: string; injected?: boolean } | undefined;
}

interface Param {
  name: string;
  in: string;
  required: boolean;
  schema: J;
  /** Array values: one query key per item (OpenAPI `explode`), else comma-separated. */
  explode: boolean;
  multiSegment: boolean;
}

export interface Operation {
  id: string;
  method: string;
  template: string;
  params: Param[];
  /** Media type → schema of the request body; undefined when the operation takes none. */
  body: { required: boolean; types: Map<string, J | undefined> } | undefined;
  responses: Record<string, J>;
  pattern: RegExp;
  greedy: RegExp | undefined;
  /** The pattern without the last path parameter ("/contents/{path}" → "/contents"). */
  trimmed: RegExp | undefined;
  names: string[];
  literal: number;
}

/**
 * Statuses the provider documents for every operation outside the operations
 * themselves (GitHub's "rate limits" and "authenticating" pages): status →
 * pointer to the schema of the JSON body ("" when the provider documents
 * none), used when the operation lists no such status.
 */
export type SharedResponses = Record<string, string>;

/**
 * One known gap between a published document and the provider's own
 * reference text, waived with its source. `at` is what is waived:
 * - an ajv instance path ("/error") with `value` the one enum value, or the one extra property name, allowed there, for answers of `status`;
 * - "method" with `value` a method the operation's provider also accepts for it;
 * - "content-type" with `value` a response media type the operation's text documents, for answers of `status`;
 * - "path" with `value` "(omitted)": the operation's last, multi-segment path parameter may be left out.
 */
export interface Waiver {
  operation: string;
  status?: string;
  at: string;
  value: unknown;
  why: string;
}

export interface DescriptionOptions {
  name: string;
  /** Prefix of recorded paths that the description's paths do not carry (e.g. Slack's "/api"). */
  basePath?: string;
  shared?: SharedResponses;
  waivers?: Waiver[];
  /** Which documented response an answer is (default: its status, then "NXX", then "default"). */
  responseKey?: (status: number, body: unknown) => string | undefined;
}

const OMITTED = '\u0000omitted';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json$/i;

export class Description {
  readonly name: string;
  readonly operations: Operation[] = [];
  /** Waivers that excused a violation in some check (so stale ones can be found). */
  readonly waived = new Set<Waiver>();
  private readonly doc: J;
  private readonly schemas: SchemaSet;
  private readonly swagger: boolean;
  private readonly opts: DescriptionOptions;

  constructor(doc: J, opts: DescriptionOptions) {
    this.doc = doc;
    this.opts = opts;
    this.name = opts.name;
    this.swagger = doc.swagger === '2.0';
    this.schemas = new SchemaSet(doc, this.swagger ? '#/definitions/' : '#/components/schemas/');
    for (const [template, item] of Object.entries(doc.paths as Record<string, J>)) {
      const shared = (item.parameters as J[] | undefined) ?? [];
      for (const m of METHODS) if (item[m] !== undefined) this.operations.push(this.operation(template, m, item[m] as J, shared));
    }
  }

  static load(file: string, opts: DescriptionOptions): Description {
    return new Description(JSON.parse(readFileSync(file, 'utf8')) as J, opts);
  }

  /** The operation a request goes to: literal segments beat parameters; a multi-segment parameter only when nothing else fits. */
  match(method: string, path: string): { op: Operation; values: Record<string, string> } | undefined {
    const rel = this.relative(path);
    if (rel === undefined) return undefined;
    const cands = this.operations.filter((o) => o.method === method.toUpperCase());
    for (const greedy of [false, true]) {
      const hits = cands.flatMap((op) => {
        const re = greedy ? op.greedy : op.pattern;
        const m = re?.exec(rel);
        return m ? [{ op, values: Object.fromEntries(op.names.map((n, i) => [n, m[i + 1] ?? ''])) }] : [];
      });
      hits.sort((a, b) => b.op.literal - a.op.literal);
      if (hits[0]) return hits[0];
    }
    for (const op of this.operations) {
      const m = op.pattern.exec(rel);
      if (m && op.method !== method.toUpperCase() && this.waiver(op.id, undefined, 'method', method.toUpperCase())) return { op, values: Object.fromEntries(op.names.map((n, i) => [n, m[i + 1] ?? ''])) };
    }
    for (const op of cands) {
      const last = op.names[op.names.length - 1];
      const found = op.trimmed?.exec(rel);
      if (last !== undefined && found && this.waiver(op.id, undefined, 'path', '(omitted)')) {
        return { op, values: { ...Object.fromEntries(op.names.slice(0, -1).map((n, i) => [n, found[i + 1] ?? ''])), [last]: OMITTED } };
      }
    }
    return undefined;
  }

  /** Every response key `op` documents ("404", "4XX", "default"), then the provider-wide `shared` statuses it does not list. */
  documentedStatuses(op: Operation): string[] {
    return [...new Set([...Object.keys(op.responses), ...Object.keys(this.opts.shared ?? {})])];
  }

  private waiver(operation: string, status: string | undefined, at: string, value: unknown): Waiver | undefined {
    const w = this.opts.waivers?.find((x) => x.operation === operation && x.status === status && x.at === at && x.value === value);
    if (w) this.waived.add(w);
    return w;
  }

  /** Everything wrong with one recorded request and its answer. */
  check(x: Exchange): string[] {
    const where = `${x.method} ${x.path}${x.query === '' ? '' : `?${x.query}`}`;
    const found = this.match(x.method, x.path);
    if (!found) {
      const near = this.operations.filter((o) => this.relative(x.path)?.split('/')[1] === o.template.split('/')[1]).map((o) => `${o.method} ${o.template}`);
      return [`${where}: ${this.name} has no operation for this method and path${near.length > 0 ? ` (nearest: ${near.slice(0, 4).join(', ')})` : ''}`];
    }
    const { op } = found;
    const head = `${where} → ${op.id} (${op.method} ${op.template})`;
    const out = [...this.checkRequest(op, found.values, x), ...(x.response ? this.checkResponse(op, x.response) : ['no answer was recorded'])];
    return out.map((v) => `${head}: ${v}`);
  }

  private relative(path: string): string | undefined {
    const base = this.opts.basePath ?? '';
    if (base === '') return path;
    return path.startsWith(`${base}/`) ? path.slice(base.length) : undefined;
  }

  private checkRequest(op: Operation, values: Record<string, string>, x: Exchange): string[] {
    const out: string[] = [];
    for (const p of op.params.filter((q) => q.in === 'path')) {
      const raw = values[p.name] ?? '';
      if (raw === OMITTED) continue;
      let v: string;
      try {
        v = p.multiSegment ? raw.split('/').map(decodeURIComponent).join('/') : decodeURIComponent(raw);
      } catch {
        out.push(`path parameter ${p.name}: ${snippet(raw)} is not valid percent-encoding`);
        continue;
      }
      if (!p.multiSegment && v.includes('/')) out.push(`path parameter ${p.name}: ${snippet(v)} contains "/"`);
      out.push(...this.validate(p.schema, coerce([v], p), `path parameter ${p.name}`));
    }

    const query = new URLSearchParams(x.query);
    const declared = op.params.filter((p) => p.in === 'query');
    for (const key of new Set(query.keys())) {
      if (!declared.some((p) => p.name === key)) out.push(`query parameter ${key} is not in the description (it has: ${declared.map((p) => p.name).join(', ') || 'none'})`);
    }
    for (const p of declared) {
      const got = query.getAll(p.name);
      if (got.length === 0) {
        if (p.required) out.push(`required query parameter ${p.name} is missing`);
        continue;
      }
      if (got.length > 1 && !(isArray(p.schema) && p.explode)) out.push(`query parameter ${p.name} is repeated`);
      out.push(...this.validate(p.schema, coerce(got, p), `query parameter ${p.name}`));
    }

    const hasBody = x.body !== '';
    if (!op.body) {
      if (hasBody) out.push(`the operation takes no request body, but one was sent: ${snippet(x.body)}`);
      return out;
    }
    if (!hasBody) {
      if (op.body.required) out.push('the request body is required, but none was sent');
      return out;
    }
    const type = mediaType(x.contentType);
    if (!op.body.types.has(type)) return [...out, `request content type ${x.contentType ?? '(none)'} is not one the operation accepts (${[...op.body.types.keys()].join(', ')})`];
    if (!JSON_TYPE.test(type)) return [...out, `request content type ${type} cannot be checked (only JSON)`];
    let data: unknown;
    try {
      data = JSON.parse(x.body);
    } catch {
      return [...out, `request body is not JSON: ${snippet(x.body)}`];
    }
    const schema = op.body.types.get(type);
    if (schema) out.push(...this.validate(schema, data, 'request body'));
    return out;
  }

  private checkResponse(op: Operation, r: NonNullable<Exchange['response']>): string[] {
    const status = String(r.status);
    const key = this.opts.responseKey?.(r.status, parseJson(r.body)) ?? [status, `${status[0]}XX`, 'default'].find((k) => k in op.responses);
    let res = key !== undefined ? op.responses[key] : undefined;
    if (res === undefined) res = this.shared(status);
    const who = r.injected ? 'the injected answer' : 'the simulator';
    if (res === undefined) return [`${who} answered ${status}, which the operation does not document (it lists ${Object.keys(op.responses).join(', ')})`];
    const schemas = this.responseSchemas(res);
    if (r.body === '') return schemas.size > 0 && r.status !== 204 && r.status !== 304 && !/^3/.test(status) ? [`${who} answered ${status} with no body; the description gives one (${[...schemas.keys()].join(', ')})`] : [];
    if (schemas.size === 0) return [];
    const type = mediaType(r.contentType);
    if (!schemas.has(type) && this.waiver(op.id, status, 'content-type', type)) return [];
    if (!schemas.has(type)) return [`${who} answered ${status} as ${r.contentType ?? '(no content type)'}; the description gives ${[...schemas.keys()].join(', ')}`];
    const schema = schemas.get(type);
    if (!schema || !JSON_TYPE.test(type)) return [];
    let data: unknown;
    try {
      data = JSON.parse(r.body);
    } catch {
      return [`${who} answered ${status} with a body that is not JSON: ${snippet(r.body)}`];
    }
    return this.validate(schema, data, `${who}'s ${status} answer (response ${key ?? status})`, op.id, status);
  }

  private readonly sharedResponses = new Map<string, J>();

  private shared(status: string): J | undefined {
    const ref = this.opts.shared?.[status];
    if (ref === undefined) return undefined;
    let res = this.sharedResponses.get(status);
    if (res === undefined) {
      res = ref === '' ? {} : this.swagger ? { schema: { $ref: ref } } : { content: { 'application/json': { schema: { $ref: ref } } } };
      this.sharedResponses.set(status, res);
    }
    return res;
  }

  private responseSchemas(res: J): Map<string, J | undefined> {
    const out = new Map<string, J | undefined>();
    if (this.swagger) {
      if (res.schema !== undefined) for (const t of this.produces()) out.set(t, res.schema as J);
      return out;
    }
    for (const [t, c] of Object.entries((res.content as Record<string, J> | undefined) ?? {})) out.set(mediaType(t), c.schema as J | undefined);
    return out;
  }

  private produces(): string[] {
    return ((this.doc.produces as string[] | undefined) ?? ['application/json']).map(mediaType);
  }

  private validate(schema: J, data: unknown, what: string, operation?: string, status?: string): string[] {
    const v = this.schemas.validator(schema);
    if (v(data)) return [];
    let errors = v.errors ?? [];
    if (operation !== undefined) {
      errors = errors.filter((e) => {
        const value = e.keyword === 'enum' ? valueAtPointer(data, e.instancePath) : e.keyword === 'additionalProperties' ? (e.params as { additionalProperty?: string }).additionalProperty : undefined;
        return value === undefined || this.waiver(operation, status, e.instancePath, value) === undefined;
      });
      if (errors.length === 0) return [];
    }
    return [`${what} does not match the description:\n    ${describeErrors(errors, data).join('\n    ')}`];
  }

  private operation(template: string, method: string, op: J, shared: J[]): Operation {
    const list = [...shared, ...((op.parameters as J[] | undefined) ?? [])].map((p) => this.deref(p));
    const byKey = new Map<string, J>();
    for (const p of list) byKey.set(`${String(p.in)}:${String(p.name)}`, p);
    const params: Param[] = [...byKey.values()].filter((p) => p.in !== 'body' && p.in !== 'formData').map((p) => this.param(p));

    let body: Operation['body'];
    if (this.swagger) {
      const consumes = ((op.consumes as string[] | undefined) ?? (this.doc.consumes as string[] | undefined) ?? ['application/json']).map(mediaType);
      const inBody = [...byKey.values()].find((p) => p.in === 'body');
      const form = [...byKey.values()].filter((p) => p.in === 'formData');
      // A JSON body carries the form fields as properties (Slack: https://docs.slack.dev/apis/web-api/#posting_json).
      const schema: J | undefined = inBody
        ? (inBody.schema as J)
        : form.length > 0
          ? { type: 'object', additionalProperties: false, properties: Object.fromEntries(form.map((p) => [p.name, paramSchema(p)])), required: form.filter((p) => p.required === true).map((p) => p.name) }
          : undefined;
      if (schema) body = { required: inBody?.required === true || form.some((p) => p.required === true), types: new Map(consumes.map((t) => [t, schema])) };
    } else if (op.requestBody !== undefined) {
      const rb = this.deref(op.requestBody as J);
      body = { required: rb.required === true, types: new Map(Object.entries((rb.content as Record<string, J> | undefined) ?? {}).map(([t, c]) => [mediaType(t), c.schema as J | undefined])) };
    }

    const responses: Record<string, J> = {};
    for (const [k, r] of Object.entries((op.responses as Record<string, J> | undefined) ?? {})) responses[k === 'default' ? k : k.toUpperCase()] = this.deref(r);

    const names: string[] = [];
    // Each {name} matches one segment; with `greedyLast`, the template's final parameter may span several.
    const src = (greedyLast: boolean, tpl = template) => {
      const parts = tpl.split(/(\{[^}]+\})/);
      const last = parts[parts.length - 1] === '' ? parts.length - 2 : -1;
      return new RegExp(
        `^${parts.map((s, i) => (/^\{.+\}$/.test(s) ? (greedyLast && i === last ? '(.+)' : '([^/]+)') : s.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))).join('')}$`,
      );
    };
    for (const m of template.matchAll(/\{([^}]+)\}/g)) names.push(m[1] as string);
    const pattern = src(false);
    const lastName = names[names.length - 1];
    const greedy = lastName !== undefined && template.endsWith(`{${lastName}}`) && params.some((p) => p.name === lastName && p.multiSegment) ? src(true) : undefined;
    return {
      id: typeof op.operationId === 'string' ? op.operationId : `${method} ${template}`,
      method: method.toUpperCase(),
      template,
      params,
      body,
      responses,
      pattern,
      greedy,
      trimmed: lastName !== undefined && template.endsWith(`/{${lastName}}`) ? src(false, template.slice(0, -(lastName.length + 3))) : undefined,
      names,
      literal: template.replace(/\{[^}]+\}/g, '').length,
    };
  }

  private param(p: J): Param {
    const schema = this.swagger ? paramSchema(p) : ((p.schema as J | undefined) ?? {});
    const style = p.style ?? (p.in === 'query' || p.in === 'cookie' ? 'form' : 'simple');
    return {
      name: String(p.name),
      in: String(p.in),
      required: p.required === true,
      schema,
      explode: this.swagger ? p.collectionFormat === 'multi' : typeof p.explode === 'boolean' ? p.explode : style === 'form',
      multiSegment: p['x-multi-segment'] === true,
    };
  }

  /** Follows a `$ref` to a parameter, request body or response (schemas stay references: ajv resolves them). */
  private deref(node: J): J {
    let n = node;
    for (let i = 0; i < 10 && typeof n.$ref === 'string'; i++) {
      const ref = n.$ref;
      let target: unknown = this.doc;
      for (const t of ref.slice(2).split('/')) target = (target as J | undefined)?.[t.replace(/~1/g, '/').replace(/~0/g, '~')];
      if (target === undefined) throw new Error(`${this.name}: dangling $ref ${ref}`);
      n = target as J;
    }
    return n;
  }
}

function paramSchema(p: J): J {
  const out: J = {};
  for (const [k, v] of Object.entries(p)) if (!['name', 'in', 'description', 'required', 'collectionFormat', 'allowEmptyValue'].includes(k) && !k.startsWith('x-')) out[k] = v;
  return out;
}

function isArray(schema: J): boolean {
  return schema.type === 'array';
}

/** Query and path values are text on the wire; the schema's type says how to read them. */
function coerce(values: string[], p: Param): unknown {
  if (isArray(p.schema)) {
    const items = p.explode ? values : (values[0] ?? '').split(',');
    return items.map((v) => scalar(v, (p.schema.items as J | undefined) ?? {}));
  }
  return scalar(values[0] ?? '', p.schema);
}

function scalar(v: string, schema: J): unknown {
  const t = schema.type;
  if ((t === 'integer' || t === 'number') && /^-?\d+(?:\.\d+)?(?:e[+-]?\d+)?$/i.test(v)) return Number(v);
  if (t === 'boolean' && (v === 'true' || v === 'false')) return v === 'true';
  return v;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function mediaType(t: string | undefined): string {
  return (t ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function valueAtPointer(data: unknown, pointer: string): unknown {
  let node = data;
  for (const t of pointer.split('/').slice(1)) node = (node as J | undefined)?.[t.replace(/~1/g, '/').replace(/~0/g, '~')];
  return node;
}
