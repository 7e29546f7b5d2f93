import { describe, expect, it } from 'vitest';
import { checkArgs } from '../../src/broker/args.js';
import { GatehouseError } from '../../src/errors.js';

const schema = {
  type: 'object',
  properties: { a: { type: 'number' }, b: { type: 'number' }, tag: { type: 'string', format: 'email' } },
  required: ['a', 'b'],
  additionalProperties: false,
};

function reason(inputSchema: object, args: unknown): string {
  try {
    checkArgs('fx__add', inputSchema, args);
  } catch (e) {
    expect(e).toBeInstanceOf(GatehouseError);
    expect((e as GatehouseError).code).toBe('ARGS_INVALID');
    return (e as Error).message;
  }
  throw new Error('expected the arguments to be refused');
}

describe('checkArgs (JSON Schema 2020-12 via ajv)', () => {
  it('accepts valid arguments', () => {
    expect(() => checkArgs('fx__add', schema, { a: 1, b: 2.5 })).not.toThrow();
  });

  it('refuses a missing required property, naming it', () => {
    expect(reason(schema, { a: 1 })).toBe('Invalid arguments for tool fx__add: arguments: missing required property "b"');
  });

  it('refuses a wrong type, naming the path', () => {
    expect(reason(schema, { a: 1, b: '2' })).toBe('Invalid arguments for tool fx__add: arguments.b must be number');
  });

  it('refuses an unknown property when additionalProperties is false', () => {
    expect(reason(schema, { a: 1, b: 2, extra: true })).toBe('Invalid arguments for tool fx__add: arguments: unknown property "extra"');
  });

  it('checks formats (ajv-formats)', () => {
    expect(reason(schema, { a: 1, b: 2, tag: 'not an email' })).toContain('arguments.tag must match format "email"');
  });

  it.each([
    ['null', null],
    ['an array', [1, 2]],
    ['a string', 'a=1'],
  ])('refuses %s as the arguments object', (_what, args) => {
    expect(reason(schema, args)).toBe('Invalid arguments for tool fx__add: arguments must be an object');
  });

  it('understands 2020-12 keywords (prefixItems)', () => {
    const s = { type: 'object', properties: { p: { type: 'array', prefixItems: [{ type: 'number' }, { type: 'string' }] } } };
    expect(() => checkArgs('t', s, { p: [1, 'x'] })).not.toThrow();
    expect(reason(s, { p: ['x', 1] })).toContain('arguments.p.0 must be number');
  });

  it('an upstream schema that cannot be compiled fails closed (the call is refused)', () => {
    const bad = { type: 'object', properties: { a: { type: 'string', pattern: '(' } } };
    const m = reason(bad, { a: 'x' });
    expect(m).toContain('Tool fx__add has an input schema the gateway cannot check');
    expect(m).toContain('the call is refused');
  });

  it('an unresolvable $ref fails closed', () => {
    expect(reason({ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }, { a: 1 })).toContain('cannot check');
  });

  it('the same schema object is compiled once and keeps working (cache)', () => {
    const s = { type: 'object', properties: { n: { type: 'integer' } } };
    for (let i = 0; i < 3; i++) expect(() => checkArgs('t', s, { n: i })).not.toThrow();
    expect(reason(s, { n: 1.5 })).toContain('arguments.n must be integer');
  });
});
