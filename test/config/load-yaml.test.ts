import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, formatIssue, loadYamlConfig, parseYamlConfig, type ConfigIssue } from '../../src/config/load-yaml.js';
import { tempDir } from '../helpers/gateway.js';

const Schema = z.strictObject({
  name: z.string(),
  port: z.number().int(),
  nested: z.strictObject({ items: z.array(z.strictObject({ id: z.string() })).default([]) }).optional(),
});

/** The error `parseYamlConfig` throws for `text`; fails the test when it throws nothing or something else. */
function configError(text: string, file = '/cfg/a.yaml'): ConfigError {
  let thrown: unknown;
  try {
    parseYamlConfig(file, text, Schema);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(ConfigError);
  expect((thrown as ConfigError).code).toBe('CONFIG_INVALID');
  return thrown as ConfigError;
}

function issues(text: string, file = '/cfg/a.yaml'): ConfigIssue[] {
  return configError(text, file).issues;
}

describe('parseYamlConfig', () => {
  it('returns the parsed, validated value', () => {
    expect(parseYamlConfig('/x.yaml', 'name: a\nport: 1\n', Schema)).toEqual({ name: 'a', port: 1 });
  });

  it('a misspelt key is an error at its line and column, naming the key', () => {
    expect(issues('name: a\nport: 1\nprot: 2\n')).toEqual([{ file: '/cfg/a.yaml', line: 3, col: 1, key: 'prot', message: 'unknown key "prot" (misspelt?)' }]);
  });

  it('a misspelt nested key names the full path', () => {
    const found = issues('name: a\nport: 1\nnested:\n  items:\n    - id: x\n    - idd: y\n');
    expect(found).toContainEqual(expect.objectContaining({ line: 6, col: 7, key: 'nested.items[1].idd', message: 'unknown key "idd" (misspelt?)' }));
    expect(found).toContainEqual(expect.objectContaining({ key: 'nested.items[1].id', message: 'required key is missing' }));
  });

  it('a value of the wrong type points at the key', () => {
    const [i] = issues('name: a\nport: "eighty"\n');
    expect(i).toMatchObject({ line: 2, col: 1, key: 'port' });
    expect(i?.message).toMatch(/expected number/);
  });

  it('a missing required key says so', () => {
    expect(issues('name: a\n')).toEqual([expect.objectContaining({ key: 'port', message: 'required key is missing' })]);
  });

  it('every problem is reported at once', () => {
    expect(issues('name: 1\nport: x\nextra: 1\n').map((i) => i.key).sort()).toEqual(['extra', 'name', 'port']);
  });

  it('a YAML syntax error names the file, line and column', () => {
    const [i] = issues('name: a\nport: [1, 2\n');
    expect(i?.file).toBe('/cfg/a.yaml');
    expect(i?.line).toBeGreaterThanOrEqual(2);
    expect(i?.message).toMatch(/^YAML syntax: /);
  });

  it('a duplicate key is an error, not last-one-wins', () => {
    const [i] = issues('name: a\nport: 1\nname: b\n');
    expect(i).toMatchObject({ line: 3 });
    expect(i?.message).toMatch(/YAML syntax: .*unique/i);
  });

  it('an alias bomb (billion laughs) is refused', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(10).fill(`*${'abcdefgh'[i]}`).join(', ')}]`), 'name: *h', 'port: 1'].join('\n');
    expect(() => parseYamlConfig('/bomb.yaml', bomb, Schema)).toThrow(ConfigError);
    expect(issues(bomb, '/bomb.yaml')).toEqual([expect.objectContaining({ file: '/bomb.yaml', message: expect.stringMatching(/^YAML: .*alias.*expand the aliases/i) })]);
  });

  it('an empty file is validated as an empty object (so required keys are reported)', () => {
    expect(issues('').map((i) => i.key).sort()).toEqual(['name', 'port']);
  });

  it('formatIssue reads file:line:col: key: message', () => {
    expect(formatIssue({ file: '/r/gh.yaml', line: 4, col: 3, key: 'tools.allow', message: 'bad' })).toBe('/r/gh.yaml:4:3: tools.allow: bad');
    expect(formatIssue({ file: '/r/gh.yaml', line: 1, col: 1, key: '', message: 'bad' })).toBe('/r/gh.yaml:1:1: (top level): bad');
  });

  it('the error message lists every issue, one per line', () => {
    const e = configError('name: 1\nprot: 2\n');
    const lines = e.message.split('\n');
    expect(lines).toHaveLength(e.issues.length);
    expect(lines.length).toBeGreaterThanOrEqual(3); // name, prot, and the missing port
    for (const l of lines) expect(l).toMatch(/^\/cfg\/a\.yaml:\d+:\d+: /);
    expect(lines).toContain('/cfg/a.yaml:2:1: prot: unknown key "prot" (misspelt?)');
  });
});

describe('loadYamlConfig', () => {
  it('reads a file and reports problems against its path', () => {
    const file = join(tempDir(), 'c.yaml');
    writeFileSync(file, 'name: a\nport: 1\nbogus: true\n');
    expect(() => loadYamlConfig(file, Schema)).toThrow(`${file}:3:1: bogus: unknown key "bogus" (misspelt?)`);
  });

  it('a missing file is a ConfigError naming it', () => {
    const file = join(tempDir(), 'missing.yaml');
    expect(() => loadYamlConfig(file, Schema)).toThrow(`${file}:0:0: (top level): cannot read: ENOENT`);
  });
});
