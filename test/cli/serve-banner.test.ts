/**
 * `gatehouse serve` prints the command that mints a token for it. With a
 * state directory that is not the default, a token minted by a command
 * without --state comes from other keys and gets 401; the printed command
 * carries --state (and --registry/--policies) so it works as printed, and a
 * token from another state directory gets a 401 that says so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nonDefaultDirFlags } from '../../src/cli/serve.js';
import { runCli } from '../helpers/cli.js';
import { CLI, MCP_HEADERS, initializeBody, tempDir, writeConfig } from '../helpers/gateway.js';

describe('nonDefaultDirFlags', () => {
  it('names only the directories a plain command would not pick, quoting what the shell would split', () => {
    const home = tempDir();
    const env = { HOME: home };
    const dirs = { registry: '/r', policies: '/p q', state: join(home, '.local', 'state', 'gatehouse') };
    expect(nonDefaultDirFlags(dirs, env)).toBe(" --registry /r --policies '/p q'");
    // GATEHOUSE_STATE is not in the other terminal where the command is pasted: still printed.
    expect(nonDefaultDirFlags({ ...dirs, state: '/s' }, { ...env, GATEHOUSE_STATE: '/s' })).toContain(' --state /s');
  });
});

describe.runIf(existsSync(CLI))('serve banner: the printed token command works against this gateway', { timeout: 90_000 }, () => {
  let child: ChildProcess | undefined;
  let banner = '';
  let url = '';
  let dirs: { registry: string; policies: string; state: string };
  beforeAll(async () => {
    dirs = writeConfig(tempDir(), []);
    child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--registry', dirs.registry, '--policies', dirs.policies, '--state', dirs.state], {
      env: { PATH: process.env.PATH ?? '', HOME: tempDir() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      child?.stdout?.on('data', (d: Buffer) => {
        banner += d.toString();
        if (/token mint[^\n]*\n/.test(banner)) resolve();
      });
      child?.once('exit', (c) => reject(new Error(`serve exited ${c}: ${banner}`)));
    });
    url = /serving MCP at (\S+)/.exec(banner)?.[1] ?? '';
  });
  afterAll(() => void child?.kill('SIGTERM'));

  const initialize = (token: string) => fetch(url, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${token}` }, body: JSON.stringify(initializeBody()) });

  it('the token command includes --state (and --registry/--policies); a token minted with it is accepted', async () => {
    const line = /^ {2}(.*token mint .*)$/m.exec(banner)?.[1] ?? '';
    expect(line).toContain(` --state ${dirs.state}`);
    expect(line).toContain(` --registry ${dirs.registry}`);
    const [node, script, ...args] = line.split(' ');
    expect(node).toBe('node');
    expect(script).toMatch(/main\.js$/);
    // Run as printed, from another shell: no GATEHOUSE_* in its environment.
    const minted = await runCli(args, { env: { HOME: tempDir() } });
    expect(minted.code).toBe(0);
    expect((await initialize(minted.stdout.trim())).status).toBe(200);
  });

  it('a token from another state directory: 401 whose message says so and how to fix it', async () => {
    const other = await runCli(['token', 'mint', '--agent', 'laptop-claude', '--state', tempDir()]);
    expect(other.code).toBe(0);
    const res = await initialize(other.stdout.trim());
    expect(res.status).toBe(401);
    const text = await res.text();
    expect(text).toContain('minted for another gateway (another state directory)');
    expect(text).toContain('--state');
  });
});
