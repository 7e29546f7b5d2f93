import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addGeneric, genericReport, parseHeaderFlag } from '../../src/cli/connector-add.js';
import { ConfigError } from '../../src/config/load-yaml.js';
import { GatehouseError } from '../../src/errors.js';
import { loadRegistry } from '../../src/registry/load.js';
import type { SecretStore } from '../../src/secrets/store.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/gateway.js';

function store(values: Record<string, string> = {}, broken = false): SecretStore {
  return {
    description: 'a test store',
    get: async (n) => {
      if (broken) throw new GatehouseError('KEYCHAIN_UNAVAILABLE', 'the OS keychain is unavailable: locked');
      return values[n] ?? null;
    },
    set: async () => undefined,
    delete: async () => false,
    list: async () => Object.keys(values),
  };
}

function registry(): string {
  const dir = join(tempDir('gatehouse-cadd-'), 'registry');
  mkdirSync(dir);
  return dir;
}

describe('gatehouse connector add NAME -- CMD / --url', () => {
  it('stdio: writes registry/NAME.yaml that the registry loads, with the command and its arguments', async () => {
    const dir = registry();
    const r = await addGeneric({ name: 'files', registryDir: dir, command: ['npx', '-y', '@modelcontextprotocol/server-filesystem', '/tmp'] }, store());
    expect(r.file).toBe(join(dir, 'files.yaml'));
    const c = loadRegistry(dir).connectors.find((x) => x.name === 'files');
    expect(c).toMatchObject({ kind: 'stdio', command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/tmp'] });
    expect(r.missing).toEqual([]);
  });

  it('http: writes url and headers; a header secret that is not set yet is named with the command that sets it', async () => {
    const dir = registry();
    const r = await addGeneric({ name: 'linear', registryDir: dir, url: 'https://mcp.linear.app/mcp', headers: ['Authorization: Bearer ${secret:linear-key}'] }, store());
    const c = loadRegistry(dir).connectors.find((x) => x.name === 'linear');
    expect(c).toMatchObject({ kind: 'http', url: 'https://mcp.linear.app/mcp', headers: { Authorization: 'Bearer ${secret:linear-key}' } });
    expect(r.missing).toEqual(['linear-key']);
    expect(genericReport(r, 'gatehouse')).toContain('  gatehouse secret set linear-key\n');
  });

  it('a secret that is set is not named', async () => {
    const r = await addGeneric({ name: 'linear', registryDir: registry(), url: 'https://mcp.linear.app/mcp', headers: ['Authorization: Bearer ${secret:linear-key}'] }, store({ 'linear-key': 'v' }));
    expect(r.missing).toEqual([]);
    expect(genericReport(r, 'gatehouse')).not.toContain('secret set');
  });

  it('a keychain that cannot be asked still writes the file and points at doctor', async () => {
    const r = await addGeneric({ name: 'linear', registryDir: registry(), url: 'https://mcp.linear.app/mcp', headers: ['Authorization: Bearer ${secret:k}'] }, store({}, true));
    expect(existsSync(r.file)).toBe(true);
    expect(genericReport(r, 'gatehouse')).toMatch(/gatehouse doctor .*locked/);
  });

  it('an invalid entry is not written: a bad URL is a configuration error naming the file, line and key', async () => {
    const dir = registry();
    const e = await addGeneric({ name: 'bad', registryDir: dir, url: 'ftp://x.example/mcp' }, store()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).issues[0]).toMatchObject({ file: join(dir, 'bad.yaml'), key: 'url' });
    expect((e as ConfigError).issues[0]?.line).toBeGreaterThan(0);
    expect(existsSync(join(dir, 'bad.yaml'))).toBe(false);
  });

  it('an invalid header name or secret reference is not written either', async () => {
    const dir = registry();
    await expect(addGeneric({ name: 'bad', registryDir: dir, url: 'https://x.example/mcp', headers: ['Bad Header: v'] }, store())).rejects.toBeInstanceOf(ConfigError);
    await expect(addGeneric({ name: 'bad', registryDir: dir, url: 'https://x.example/mcp', headers: ['X: ${secret:bad name}'] }, store())).rejects.toBeInstanceOf(ConfigError);
    expect(existsSync(join(dir, 'bad.yaml'))).toBe(false);
  });

  it('a secret reference in the command is refused (a command line is not a secret store)', async () => {
    await expect(addGeneric({ name: 'x', registryDir: registry(), command: ['srv', '--key', '${secret:k}'] }, store())).rejects.toBeInstanceOf(ConfigError);
  });

  it('refuses to overwrite an existing file without --force, and overwrites with it', async () => {
    const dir = registry();
    writeFileSync(join(dir, 'files.yaml'), '# mine\n');
    await expect(addGeneric({ name: 'files', registryDir: dir, command: ['srv'] }, store())).rejects.toThrow(/already exists; pass --force/);
    expect(readFileSync(join(dir, 'files.yaml'), 'utf8')).toBe('# mine\n');
    await addGeneric({ name: 'files', registryDir: dir, command: ['srv'], force: true }, store());
    expect(readFileSync(join(dir, 'files.yaml'), 'utf8')).toContain('command: srv');
  });

  it('refuses a name another file of the registry already defines', async () => {
    const dir = registry();
    writeFileSync(join(dir, 'other.yaml'), 'name: files\nkind: stdio\ncommand: x\n');
    await expect(addGeneric({ name: 'files', registryDir: dir, command: ['srv'] }, store())).rejects.toThrow(/already defined in .*other\.yaml/);
  });

  it('usage errors: both or neither of command and --url, --header with a command, a header without ":", a bad name', async () => {
    const dir = registry();
    await expect(addGeneric({ name: 'x', registryDir: dir }, store())).rejects.toThrow(/either a command after "--".* or --url/);
    await expect(addGeneric({ name: 'x', registryDir: dir, command: ['a'], url: 'https://x.example' }, store())).rejects.toThrow(/either/);
    await expect(addGeneric({ name: 'x', registryDir: dir, command: ['a'], headers: ['A: b'] }, store())).rejects.toThrow(/--header applies to --url only/);
    expect(() => parseHeaderFlag('Authorization Bearer x')).toThrow(/--header .*"Name: value"/);
    await expect(addGeneric({ name: 'Bad_Name', registryDir: dir, command: ['a'] }, store())).rejects.toThrow(/connector name/);
    await expect(addGeneric({ name: 'x', registryDir: join(dir, 'nope'), command: ['a'] }, store())).rejects.toThrow(/does not exist/);
  });
});

describe('gatehouse connector add (the CLI)', () => {
  it('NAME -- CMD ARGS writes a stdio entry (arguments that look like flags stay the server\'s); --url with --header a remote one', async () => {
    const dir = registry();
    const a = await runCli(['connector', 'add', 'files', '--registry', dir, '--', 'npx', '-y', '@modelcontextprotocol/server-filesystem', '--root', '/tmp']);
    expect(a.code).toBe(0);
    expect(loadRegistry(dir).connectors.find((c) => c.name === 'files')).toMatchObject({ kind: 'stdio', command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '--root', '/tmp'] });
    const b = await runCli(['connector', 'add', 'lin', '--registry', dir, '--url', 'https://mcp.linear.app/mcp', '--header', 'Authorization: Bearer ${secret:lin-key}', '--header', 'X-Team: core']);
    expect(b.code).toBe(0);
    expect(b.stdout).toContain('secret set lin-key');
    expect(loadRegistry(dir).connectors.find((c) => c.name === 'lin')).toMatchObject({ kind: 'http', headers: { Authorization: 'Bearer ${secret:lin-key}', 'X-Team': 'core' } });
  });

  it('an invalid entry exits 2 naming file:line and key, and writes nothing; template flags are refused with a command or --url', async () => {
    const dir = registry();
    const r = await runCli(['connector', 'add', 'bad', '--registry', dir, '--url', 'ftp://x.example/mcp']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+: url: /);
    expect(existsSync(join(dir, 'bad.yaml'))).toBe(false);
    const s = await runCli(['connector', 'add', 'x', '--registry', dir, '--secret', 's', '--', 'srv']);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/--secret applies to templates only/);
  });

  it('the template form still works', async () => {
    const dir = registry();
    const r = await runCli(['connector', 'add', 'github', '--registry', dir]);
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, 'github.yaml'))).toBe(true);
  });
});
