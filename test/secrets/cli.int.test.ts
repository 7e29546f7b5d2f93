/** `gatehouse secret ...` through the built CLI, against a real Secret Service. */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keychainToolsPresent, startKeychain, type Keychain } from '../helpers/keychain.js';
import { CLI, dirFlags, runCli, writeTree } from './helpers.js';

const VALUE = 'cli-Secret/Value+123=';

describe.skipIf(!keychainToolsPresent() || !existsSync(CLI))('gatehouse secret (CLI, real Secret Service)', { timeout: 60_000 }, () => {
  let keychain: Keychain;
  let tree: ReturnType<typeof writeTree>;
  let env: Record<string, string>;
  const cli = (args: string[], stdin = '') => runCli(['secret', ...args, ...dirFlags(tree.dirs)], env, stdin);

  beforeAll(async () => {
    keychain = await startKeychain();
    env = { ...keychain.env };
    tree = writeTree([
      { name: 'github', kind: 'http', url: 'https://example.com/mcp', headers: { Authorization: 'Bearer ${secret:github-token}' } },
      { name: 'tool', kind: 'stdio', command: 'node', args: ['x.js'], env: { KEY: '${secret:tool-key}' } },
    ]);
  });
  afterAll(async () => {
    await keychain?.stop();
    if (keychain) rmSync(keychain.home, { recursive: true, force: true });
    if (tree) rmSync(tree.root, { recursive: true, force: true });
  });

  it('set, list, check, delete round trip; values never printed', async () => {
    let r = await cli(['check']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/github-token\s+missing\s+github/);
    expect(r.stdout).toContain('fix: gatehouse secret set github-token');

    r = await cli(['set', 'github-token'], `${VALUE}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('used by github');
    r = await cli(['set', 'tool-key'], `${VALUE}-2`);
    expect(r.code, r.stderr).toBe(0);
    r = await cli(['set', 'spare-token'], 'spare-value-123');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('no connector');

    r = await cli(['list', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      secrets: [
        { name: 'github-token', present: true, connectors: ['github'] },
        { name: 'spare-token', present: true, connectors: [] },
        { name: 'tool-key', present: true, connectors: ['tool'] },
      ],
    });
    r = await cli(['list']);
    expect(r.stdout).toMatch(/spare-token\s+present\s+\(unused\)/);
    r = await cli(['check', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true });

    r = await cli(['delete', 'github-token']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('no longer ready: github');
    r = await cli(['delete', 'github-token']);
    expect(r.code).toBe(1);
    r = await cli(['list', '--json']);
    expect(JSON.parse(r.stdout).secrets[0]).toEqual({ name: 'github-token', present: false, connectors: ['github'] });
    r = await cli(['check']);
    expect(r.code).toBe(1);

    // The audit log has the names, not the values; so does every file in the state dir.
    const audit = readFileSync(join(tree.dirs.state, 'audit', 'audit.jsonl'), 'utf8');
    expect(audit).toContain('"event":"secret.set"');
    expect(audit).toContain('"event":"secret.delete"');
    expect(audit).toContain('"name":"github-token"');
    for (const f of readdirSync(tree.dirs.state, { recursive: true, withFileTypes: true }).filter((d) => d.isFile())) {
      const text = readFileSync(join(f.parentPath, f.name), 'latin1');
      expect(text, f.name).not.toContain('cli-Secret');
      expect(text, f.name).not.toContain('spare-value');
    }
  });

  it('refuses what it must: empty, CR/LF, NUL, short, bad names, a value on the command line', async () => {
    for (const [stdin, why] of [
      ['', 'is empty'],
      ['\n', 'is empty'],
      ['abc\r\ndef-ghijk', 'carriage return'],
      ['abcdef\nghijk', 'line feed'],
      ['abcdef\0ghijk', 'NUL'],
      ['short', 'shorter than 8'],
    ] as const) {
      const r = await cli(['set', 'spare-token'], stdin);
      expect(r.code, JSON.stringify(stdin)).toBe(2);
      expect(r.stderr).toContain(why);
      expect(r.stderr).toContain('nothing was stored');
    }
    expect((await cli(['set', 'spare-token', '--allow-short'], 'short')).code).toBe(0);
    // A multi-line value may go to an env, not to a header.
    expect((await cli(['set', 'tool-key', '--multiline'], 'line-one\nline-two')).code).toBe(0);
    const header = await cli(['set', 'github-token', '--multiline'], 'line-one\nline-two');
    expect(header.code).toBe(2);
    expect(header.stderr).toContain('headers.Authorization');
    expect((await cli(['set', '../etc'], 'valid-value-123')).code).toBe(2);
    expect((await cli(['set', 'a', 'b'], 'valid-value-123')).code).toBe(2);
    expect((await cli(['set', 'x-token', '--value', 'v'])).code).toBe(2);
  });

  it('--help on the command and each subcommand', async () => {
    for (const sub of [[], ['set'], ['list'], ['delete'], ['check']]) {
      const r = await runCli(['secret', ...sub, '--help'], env);
      expect(r.code, sub.join(' ')).toBe(0);
      expect(r.stdout).toContain(`Usage: gatehouse secret ${sub[0] ?? '[options] [command]'}`);
      expect(r.stdout).toContain('--registry <dir>');
      if (sub.length === 0) expect(r.stdout).toMatch(/set <name>\s+store a value/);
    }
    const top = await runCli(['--help'], env);
    expect(top.stdout).toMatch(/secret\s+manage service credentials/);
  });
});
