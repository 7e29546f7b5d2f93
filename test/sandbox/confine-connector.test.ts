/**
 * What a confined stdio connector is given (planConnector), and the registry
 * fields that shape it (egress:, sandbox:): each refusal names the file,
 * line and key, and a plan never exposes what must stay outside.
 */
import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue } from '../../src/config/load-yaml.js';
import { loadRegistry } from '../../src/registry/load.js';
import type { StdioConnector } from '../../src/registry/schema.js';
import { CONNECTOR_PROXY_PORT, packageDirOf, planConnector } from '../../src/sandbox/confine-connector.js';
import { tempDir } from '../helpers/tmp.js';

function layout() {
  const root = realpathSync(tempDir('gh-plan-'));
  const dirs = { state: join(root, 'state'), registry: join(root, 'config', 'registry'), policies: join(root, 'config', 'policies') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  // A project with its own modules, and a bare script folder.
  const proj = join(root, 'srv');
  mkdirSync(join(proj, 'node_modules', '@scope', 'pkg', 'dist'), { recursive: true });
  writeFileSync(join(proj, 'package.json'), '{}');
  writeFileSync(join(proj, 'node_modules', '@scope', 'pkg', 'package.json'), '{}');
  writeFileSync(join(proj, 'node_modules', '@scope', 'pkg', 'dist', 'index.js'), '');
  mkdirSync(join(proj, 'bin'));
  writeFileSync(join(proj, 'bin', 'server.mjs'), '');
  return { root, dirs, proj };
}

const connector = (over: Partial<StdioConnector>): StdioConnector =>
  ({ name: 'fx', kind: 'stdio', command: 'node', args: [], env: {}, egress: [], sandbox: { ro: [], rw: [] }, file: '/reg/fx.yaml', ...over }) as StdioConnector;

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent-home', LANG: 'C.UTF-8' };

describe('packageDirOf', () => {
  it('a module in node_modules: the outermost node_modules (its dependencies are hoisted there)', () => {
    const { proj } = layout();
    expect(packageDirOf(join(proj, 'node_modules/@scope/pkg/dist/index.js'))).toBe(join(proj, 'node_modules'));
  });
  it('a script of a project: the folder with its package.json', () => {
    const { proj } = layout();
    expect(packageDirOf(join(proj, 'bin', 'server.mjs'))).toBe(proj);
  });
  it('a file under the system directories adds nothing (already read-only inside)', () => {
    expect(packageDirOf('/usr/bin/node')).toBeUndefined();
    expect(packageDirOf('/usr/lib/node_modules/npm/bin/npx-cli.js')).toBeUndefined();
  });
  it('a lone script with no package.json above it: only its own folder', () => {
    const dir = realpathSync(tempDir('gh-lone-'));
    writeFileSync(join(dir, 's.js'), '');
    expect(packageDirOf(join(dir, 's.js'))).toBe(dir);
  });
});

describe('planConnector', () => {
  it('relative script arguments become absolute; its package is read-only, HOME and cwd the private folder, the proxy set', () => {
    const { dirs, proj } = layout();
    const p = planConnector(connector({}), { command: process.execPath, args: ['node_modules/@scope/pkg/dist/index.js', 'stdio', '--flag'], env, cwd: proj }, { dirs, env: { HOME: '/nonexistent-home' } });
    expect(p.command).toEqual([realpathSync(process.execPath), join(proj, 'node_modules/@scope/pkg/dist/index.js'), 'stdio', '--flag']);
    expect(p.ro).toEqual([join(proj, 'node_modules')]);
    expect(p.workspace).toBe(join(dirs.state, 'connectors', 'fx'));
    // Its registry cwd is not visible inside: it runs in its private folder.
    expect(p.cwd).toBe(p.workspace);
    expect(p.env).toMatchObject({ HOME: p.workspace, HTTPS_PROXY: `http://127.0.0.1:${CONNECTOR_PROXY_PORT}`, NO_PROXY: 'localhost,127.0.0.1,::1' });
  });

  it('a cwd inside what it sees read-only is kept', () => {
    const { dirs, proj } = layout();
    const p = planConnector(connector({}), { command: process.execPath, args: ['bin/server.mjs'], env, cwd: proj }, { dirs, env: { HOME: '/nonexistent-home' } });
    expect(p.ro).toEqual([proj]);
    expect(p.cwd).toBe(proj);
  });

  it('a server installed where the state directory lies inside its package is refused, naming what it would see', () => {
    const { root } = layout();
    // The whole layout is one "project": the state directory is inside the package folder.
    writeFileSync(join(root, 'package.json'), '{}');
    writeFileSync(join(root, 'tool.mjs'), '');
    const dirs = { state: join(root, 'state'), registry: join(root, 'config', 'registry'), policies: join(root, 'config', 'policies') };
    expect(() => planConnector(connector({}), { command: process.execPath, args: ['tool.mjs'], env, cwd: root }, { dirs, env: { HOME: '/nonexistent-home' } })).toThrow(
      /connector "fx" would see what must stay outside its sandbox: .*state directory.*sandbox: off only for a server you trust/,
    );
  });

  it('a server inside a home directory cannot take the whole home: sandbox.rw of the home is refused', () => {
    const { dirs, proj } = layout();
    const home = realpathSync(tempDir('gh-home-'));
    expect(() => planConnector(connector({ sandbox: { ro: [], rw: [home] } }), { command: process.execPath, args: [], env, cwd: proj }, { dirs, env: { HOME: home } })).toThrow(/home directory/);
  });

  it('sandbox.ro naming a path that does not exist is refused with the file', () => {
    const { dirs, proj } = layout();
    expect(() => planConnector(connector({ sandbox: { ro: ['/no/such/path'], rw: [] } }), { command: process.execPath, args: [], env, cwd: proj }, { dirs, env: {} })).toThrow(
      '/reg/fx.yaml: sandbox.ro: /no/such/path does not exist',
    );
  });

  it("a symlinked script is run and bound by its real path (the link's folder is not inside)", () => {
    const { dirs, proj } = layout();
    const links = realpathSync(tempDir('gh-links-'));
    symlinkSync(join(proj, 'bin', 'server.mjs'), join(links, 'server.mjs'));
    const p = planConnector(connector({}), { command: process.execPath, args: [join(links, 'server.mjs')], env, cwd: links }, { dirs, env: {} });
    expect(p.ro).toEqual([proj]);
    expect(p.command[1]).toBe(join(proj, 'bin', 'server.mjs'));
  });

  it('a command that is not there fails as spawn would', () => {
    const { dirs, proj } = layout();
    expect(() => planConnector(connector({}), { command: 'no-such-command-xyz', args: [], env, cwd: proj }, { dirs, env: {} })).toThrow(/ENOENT/);
  });
});

function issuesOf(text: string): ConfigIssue[] {
  const dir = tempDir('gh-reg-');
  writeFileSync(join(dir, 'fx.yaml'), text);
  try {
    loadRegistry(dir);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues;
  }
  throw new Error('expected the registry to be refused');
}

const stdio = 'name: fx\nkind: stdio\ncommand: node\nargs: ["server.js"]\n';

describe('registry egress: and sandbox: fields', () => {
  it('accepts host:port entries (names, globs, IPv4, [IPv6]) and sandbox: off', () => {
    const dir = tempDir('gh-reg-');
    writeFileSync(join(dir, 'fx.yaml'), `${stdio}egress: ["api.github.com:443", "*.npmjs.org:443", "10.0.0.5:8080", "[::1]:9000"]\nsandbox: off\n`);
    const c = loadRegistry(dir).connectors[0] as StdioConnector;
    expect(c.egress).toEqual(['api.github.com:443', '*.npmjs.org:443', '10.0.0.5:8080', '[::1]:9000']);
    expect(c.sandbox).toBe('off');
  });

  it('defaults to confined with no extra paths and no egress', () => {
    const dir = tempDir('gh-reg-');
    writeFileSync(join(dir, 'fx.yaml'), stdio);
    expect(loadRegistry(dir).connectors[0]).toMatchObject({ egress: [], sandbox: { ro: [], rw: [] } });
  });

  it('a tool connector is pinned strictly, screened with warnings and its results flagged by default (issue #16)', () => {
    const dir = tempDir('gh-reg-');
    writeFileSync(join(dir, 'fx.yaml'), stdio);
    writeFileSync(join(dir, 'web.yaml'), 'name: web\nkind: http\nurl: https://mcp.example.com/mcp\n');
    for (const c of loadRegistry(dir).connectors) expect(c).toMatchObject({ pin: 'strict', screen: 'warn', results: { invisible: 'flag' } });
  });

  it.each([
    ['a host without a port', 'egress: ["api.github.com"]', 'egress[0]', /write host:port/],
    ['port 0', 'egress: ["api.github.com:0"]', 'egress[0]', /write host:port/],
    ['port 65536', 'egress: ["api.github.com:65536"]', 'egress[0]', /write host:port/],
    ['a URL instead of host:port', 'egress: ["https://api.github.com:443"]', 'egress[0]', /write host:port/],
    ['userinfo smuggled in the host', 'egress: ["user@evil.example:443"]', 'egress[0]', /write host:port/],
    ['a malformed glob', 'egress: ["{a,b.example:443"]', 'egress[0]', /unbalanced brace/],
    ['a secret reference', 'egress: ["${secret:x}:443"]', 'egress[0]', /may not contain a \$\{secret/],
    ['sandbox: on (only off or paths)', 'sandbox: on', 'sandbox', /./],
    ['a relative extra path', 'sandbox: { ro: ["data"] }', 'sandbox.ro[0]', /absolute path/],
    ['a path with ..', 'sandbox: { rw: ["/srv/../root"] }', 'sandbox.rw[0]', /without "\." or "\.\." segments/],
    ['an unknown sandbox key', 'sandbox: { network: true }', 'sandbox.network', /unknown key/],
  ])('%s is refused with file, line and key', (_what, line, key, message) => {
    const found = issuesOf(`${stdio}${line}\n`);
    expect(found).toContainEqual(expect.objectContaining({ line: 5, key, message: expect.stringMatching(message) }));
  });
});
