import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue } from '../../src/config/load-yaml.js';
import { loadRegistry } from '../../src/registry/load.js';
import { connectorSecrets } from '../../src/registry/schema.js';
import { ROOT, tempDir } from '../helpers/gateway.js';

/** A registry folder holding `files` (name → YAML text). */
function registryOf(files: Record<string, string>): string {
  const dir = tempDir('gatehouse-registry-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function issuesOf(files: Record<string, string>): ConfigIssue[] {
  const dir = registryOf(files);
  try {
    loadRegistry(dir);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues.map((i) => ({ ...i, file: i.file.slice(dir.length + 1) }));
  }
  throw new Error('expected the registry to be refused');
}

const stdio = 'name: fx\nkind: stdio\ncommand: node\nargs: ["server.js"]\n';

describe('the shipped registry', () => {
  it('loads, with the embedded stdio default and the GitHub remote server', () => {
    const r = loadRegistry(join(ROOT, 'registry'));
    const everything = r.connectors.find((c) => c.name === 'everything');
    expect(everything).toMatchObject({ kind: 'stdio', command: 'node', enabled: true, tools: { allow: ['*'], deny: [] }, timeouts: {} });
    const github = r.connectors.find((c) => c.name === 'github');
    expect(github).toMatchObject({ kind: 'http', url: 'https://api.githubcopilot.com/mcp/', tools: { deny: ['delete_*'] } });
    expect(github && connectorSecrets(github)).toEqual(['github-token']);
    expect(everything && connectorSecrets(everything)).toEqual([]);
    expect(github?.file).toBe(join(ROOT, 'registry', 'github.yaml'));
  });
});

describe('a valid connector file', () => {
  it('gets defaults filled in, and durations parsed to ms', () => {
    const dir = registryOf({ 'fx.yaml': `${stdio}timeouts: { call: 300ms, connect: 2s, callMax: 1h30m }\n`, 'notes.txt': 'not yaml: [' });
    const [c] = loadRegistry(dir).connectors;
    expect(c).toMatchObject({ name: 'fx', enabled: true, sampling: 'deny', elicitation: 'deny', env: {}, timeouts: { call: 300, connect: 2000, callMax: 5_400_000 } });
  });

  it('accepts .yml and loads files in name order', () => {
    const dir = registryOf({ 'b.yml': stdio.replace('fx', 'b'), 'a.yaml': stdio.replace('fx', 'a') });
    expect(loadRegistry(dir).connectors.map((c) => c.name)).toEqual(['a', 'b']);
  });

  it('a server run unconfined (sandbox: off) may have loader variables in env: no launcher reads them', () => {
    const dir = registryOf({ 'fx.yaml': `${stdio}sandbox: off\nenv:\n  LD_LIBRARY_PATH: /opt/lib\n` });
    expect(loadRegistry(dir).connectors[0]).toMatchObject({ sandbox: 'off', env: { LD_LIBRARY_PATH: '/opt/lib' } });
  });

  it('accepts secret references in env and header values', () => {
    const dir = registryOf({
      'gh.yaml': 'name: gh\nkind: http\nurl: https://example.com/mcp\nheaders:\n  Authorization: "Bearer ${secret:gh-token}"\n',
      'fx.yaml': `${stdio}env:\n  API_KEY: "\${secret:fx.key}"\n`,
    });
    expect(loadRegistry(dir).connectors.flatMap(connectorSecrets).sort()).toEqual(['fx.key', 'gh-token']);
  });
});

describe('every bad file is refused with file, line and key', () => {
  it.each([
    ['a misspelt key', `${stdio}comand: node\n`, { line: 5, key: 'comand', message: 'unknown key "comand" (misspelt?)' }],
    ['a misspelt nested key', `${stdio}tools:\n  alow: ["*"]\n`, { line: 6, key: 'tools.alow' }],
    ['an unknown kind', 'name: fx\nkind: ftp\n', { key: 'kind' }],
    ['a missing command', 'name: fx\nkind: stdio\n', { key: 'command', message: 'required key is missing' }],
    ['an invalid connector name', stdio.replace('name: fx', 'name: Fx_Server'), { line: 1, key: 'name' }],
    ['a wrong type', `${stdio}enabled: "yes"\n`, { line: 5, key: 'enabled' }],
    ['args that are not a list', 'name: fx\nkind: stdio\ncommand: node\nargs: server.js\n', { line: 4, key: 'args' }],
    ['a bad env variable name', `${stdio}env:\n  "BAD-NAME": x\n`, { key: 'env.BAD-NAME' }],
    ['a bad duration', `${stdio}timeouts: { call: soon }\n`, { key: 'timeouts.call', message: 'invalid duration "soon"; use a duration like 250ms, 30s, 5m, 1h30m or 7d' }],
    ['a bare-number timeout (no unit: it used to mean milliseconds)', `${stdio}timeouts:\n  connect: 2s\n  call: 300\n`, { line: 7, key: 'timeouts.call', message: 'invalid duration 300; a bare number has no unit: write 300s, 300m or 300h' }],
    ['a zero timeout', `${stdio}timeouts: { call: 0s }\n`, { key: 'timeouts.call', message: 'must be at least 1ms' }],
    ['a tools.allow glob with an unbalanced brace {a,b', `${stdio}tools:\n  allow: ["get_*", "{list,search"]\n`, { line: 6, key: 'tools.allow[1]', message: expect.stringMatching(/^malformed glob "\{list,search": unbalanced brace/) }],
    ['a tools.deny glob with a reversed range [z-a]', `${stdio}tools:\n  deny:\n    - "delete_[z-a]*"\n`, { line: 7, key: 'tools.deny[0]', message: expect.stringMatching(/reversed range "z-a"/) }],
    ['a models.allow glob with a reversed range [z-a]', 'name: p\nkind: inference\napi: anthropic\nurl: https://api.example.com\nmodels:\n  allow: ["claude-[9-0]*"]\n', { line: 6, key: 'models.allow[0]', message: expect.stringMatching(/reversed range "9-0"/) }],
    ['a budgets agent glob with an unbalanced brace {a,b', 'name: p\nkind: inference\napi: anthropic\nurl: https://api.example.com\nmodels:\n  allow: ["*"]\nbudgets:\n  "{coder,ci": { tokens: 10/hour }\n', { line: 8, key: 'budgets.{coder,ci', message: expect.stringMatching(/unbalanced brace/) }],
    ['a non-http URL', 'name: w\nkind: http\nurl: ftp://example.com/\n', { line: 3, key: 'url' }],
    ['a bad header name', 'name: w\nkind: http\nurl: https://example.com/\nheaders:\n  "Bad Header": x\n', { key: 'headers.Bad Header' }],
    ['a secret reference in the URL', 'name: w\nkind: http\nurl: "https://example.com/${secret:tok}"\n', { line: 3, key: 'url', message: 'url may not contain a ${secret:...} reference' }],
    ['a secret reference in the command', 'name: fx\nkind: stdio\ncommand: "${secret:cmd}"\n', { line: 3, key: 'command', message: 'command may not contain a ${secret:...} reference' }],
    ['a secret reference in an argument', 'name: fx\nkind: stdio\ncommand: node\nargs: ["--token=${secret:tok}"]\n', { key: 'args[0]', message: 'an argument may not contain a ${secret:...} reference' }],
    ['a bad secret reference name', `${stdio}env:\n  TOKEN: "\${secret:bad name}"\n`, { key: 'env.TOKEN', message: "invalid secret reference ${secret:bad name}: names use letters, digits, '.', '_' and '-'" }],
    ['an empty secret reference', `${stdio}env:\n  TOKEN: "\${secret:}"\n`, { key: 'env.TOKEN' }],
    // Attack: a registry entry (a template from elsewhere) turns off the launcher's Landlock or cgroup for its own server, silently.
    // Attack: a confined server's env is the launcher's own environment: LD_PRELOAD would run code in gatehouse-sandbox before it confines anything.
    ['LD_PRELOAD in a confined connector', `${stdio}env:\n  LD_PRELOAD: /tmp/evil.so\n`, { line: 6, key: 'env.LD_PRELOAD', message: expect.stringContaining('before it confines anything') }],
    ['GCONV_PATH in a confined connector', `${stdio}env:\n  GCONV_PATH: /tmp/evil\n`, { line: 6, key: 'env.GCONV_PATH' }],
    ['a launcher test switch set by a connector', `${stdio}env:\n  GATEHOUSE_SANDBOX_SIMULATE_LANDLOCK_ABI: "0"\n`, { line: 6, key: 'env.GATEHOUSE_SANDBOX_SIMULATE_LANDLOCK_ABI', message: expect.stringContaining("gatehouse-sandbox's test switches") }],
    ['a YAML syntax error', 'name: fx\nkind: stdio\ncommand: [node\n', { key: '', message: expect.stringMatching(/^YAML syntax: /) }],
    ['a duplicate key', `${stdio}name: other\n`, { line: 5, message: expect.stringMatching(/^YAML syntax: /) }],
  ])('%s', (_what, text, expected) => {
    const found = issuesOf({ 'fx.yaml': text });
    expect(found).toContainEqual(expect.objectContaining({ file: 'fx.yaml', ...expected }));
    for (const i of found) {
      expect(i.line).toBeGreaterThan(0);
      expect(i.col).toBeGreaterThan(0);
    }
  });

  it('a duplicate connector name in two files names both files and points at the name key', () => {
    const found = issuesOf({ 'a.yaml': stdio, 'b.yaml': `# the same connector again\n${stdio}` });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ file: 'b.yaml', line: 2, col: 1, key: 'name' });
    expect(found[0]?.message).toMatch(/connector "fx" is already defined in .*a\.yaml$/);
  });

  it('problems in several files are reported together', () => {
    const found = issuesOf({ 'a.yaml': `${stdio}comand: x\n`, 'b.yaml': 'name: b\nkind: nope\n' });
    expect(found.map((i) => i.file).sort()).toEqual(['a.yaml', 'b.yaml']);
  });

  it('a missing registry folder says how to point at one', () => {
    const dir = join(tempDir(), 'nope');
    expect(() => loadRegistry(dir)).toThrow(/cannot read registry directory \(ENOENT\); pass --registry DIR or set GATEHOUSE_REGISTRY/);
  });

  it('an empty registry folder is valid (no connectors)', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub'));
    expect(loadRegistry(dir).connectors).toEqual([]);
  });
});
