/**
 * The `gatehouse` command line as a whole (the built CLI, dist/): every
 * command and subcommand takes the shared directory flags and --help; typos
 * get "did you mean" and exit 2 with the --help hint; data in a usage error
 * stays escaped; durations are the one grammar everywhere.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { logsCommand } from '../../src/cli/logs.js';
import { policyCommand } from '../../src/cli/policy.js';
import { runGatehouse } from '../../src/cli/program.js';
import type { Io } from '../../src/cli/command.js';
import { runCli } from '../helpers/cli.js';
import { CLI, tempDir } from '../helpers/gateway.js';

const built = existsSync(CLI);

function io(env: NodeJS.ProcessEnv = {}): Io & { stdout: string; stderr: string } {
  const o = { stdout: '', stderr: '', out: (s: string) => void (o.stdout += s), err: (s: string) => void (o.stderr += s), env, stdin: process.stdin, isTTY: false };
  return o;
}

/** The names in the "Commands:" section of a help text (without the implicit `help`). */
function commandsIn(help: string): string[] {
  const section = help.split('\nCommands:\n')[1];
  if (section === undefined) return [];
  return section
    .split('\n\n')[0]!
    .split('\n')
    .map((l) => /^ {2}(\S+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && n !== 'help');
}

describe.runIf(built)('every command and subcommand (the built CLI)', { timeout: 120_000 }, () => {
  it('has --help (exit 0) listing the shared --registry/--policies/--state flags', async () => {
    const seen: string[] = [];
    const walk = async (path: string[]): Promise<void> => {
      const r = await runCli([...path, '--help']);
      expect(r.code, path.join(' ')).toBe(0);
      expect(r.stdout, path.join(' ')).toContain(`Usage: gatehouse${path.map((p) => ` ${p}`).join('')}`);
      for (const flag of ['--registry <dir>', '--policies <dir>', '--state <dir>']) expect(r.stdout, `${path.join(' ')} ${flag}`).toContain(flag);
      seen.push(path.join(' '));
      // Siblings at once: each is its own CLI process (the walk was ~40 starts one after another).
      await Promise.all(commandsIn(r.stdout).map((sub) => walk([...path, sub])));
    };
    await walk([]);
    // Not empty: the walk found the commands and their subcommands.
    for (const c of ['serve', 'run', 'logs', 'policy explain', 'token mint', 'approvals approve', 'audit pubkey', 'secret set', 'connector test']) expect(seen).toContain(c);
  });

  it('a typo in a command, a subcommand or an option: "did you mean", exit 2, and the --help hint', async () => {
    for (const [args, said, meant, hint] of [
      [['logz'], "gatehouse: unknown command 'logz'", '(Did you mean logs?)', 'Run "gatehouse --help" for usage.'],
      [['policy', 'chek'], "gatehouse policy: unknown command 'chek'", '(Did you mean check?)', 'Run "gatehouse policy --help" for usage.'],
      [['logs', '--outcom', 'ok'], "gatehouse logs: unknown option '--outcom'", '(Did you mean --outcome?)', 'Run "gatehouse logs --help" for usage.'],
      [['token', 'mint', '--stat', 'x'], "gatehouse token mint: unknown option '--stat'", '(Did you mean --state?)', 'Run "gatehouse token mint --help" for usage.'],
    ] as const) {
      const r = await runCli([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toBe(`${said}\n${meant}\n${hint}\n`);
    }
  });

  it('a missing subcommand prints the help on stderr and exits 2 (a script forgot it); no command at all too', async () => {
    const r = await runCli(['token']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/mint\s+a bearer token/);
    expect(r.stdout).toBe('');
    expect((await runCli([])).code).toBe(2);
  });

  it('--version prints the version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('usage errors keep data escaped', () => {
  it('an unknown option carrying ESC[2J and a newline is shown escaped, on one line', async () => {
    const o = io();
    expect(await runGatehouse(['logs', '--\x1b[2J\nforged: yes'], o, [logsCommand])).toBe(2);
    expect(o.stderr).not.toContain('\x1b');
    expect(o.stderr.split('\n')[0]).toBe("gatehouse logs: unknown option '--\\x1b[2J\\nforged: yes'");
  });
});

describe('the shared directory flags', () => {
  const policies = (): string => {
    const dir = tempDir();
    writeFileSync(join(dir, 'main.yaml'), 'version: 1\nrules:\n  - id: r\n    match: { tool: "gh__*" }\n    effect: allow\n');
    return dir;
  };

  it('policy explain takes --registry and --state (it refused them before)', async () => {
    const o = io();
    const code = await runGatehouse(['policy', 'explain', '--agent', 'a', '--tool', 'gh__x', '--policies', policies(), '--registry', tempDir(), '--state', tempDir()], o, [policyCommand]);
    expect(o.stderr).toBe('');
    expect(code).toBe(0);
    expect(o.stdout).toContain('Decision: ALLOW by rule "r"');
  });

  it('are taken at any level: before the command, between command and subcommand, after it', async () => {
    const dir = policies();
    for (const argv of [
      ['--policies', dir, 'policy', 'check'],
      ['policy', '--policies', dir, 'check'],
      ['policy', 'check', '--policies', dir],
    ]) {
      const o = io();
      expect(await runGatehouse(argv, o, [policyCommand]), argv.join(' ')).toBe(0);
      expect(o.stdout).toContain(`OK ${dir}:`);
    }
  });

  it('policy check|explain|test fall back to the shipped policies where ./policies does not exist, as serve does', async () => {
    const empty = tempDir();
    const cwd = process.cwd();
    process.chdir(empty);
    try {
      const o = io();
      expect(await runGatehouse(['policy', 'check'], o, [policyCommand])).toBe(0);
      expect(o.stdout).toContain(`OK ${join(cwd, 'policies')}:`);
      const e = io();
      expect(await runGatehouse(['policy', 'explain', '--agent', 'a', '--tool', 'github__delete_repo'], e, [policyCommand])).not.toBe(2);
      expect(e.stderr).toBe('');
    } finally {
      process.chdir(cwd);
    }
    // A folder given explicitly that does not exist is still an error, not the shipped default.
    const m = io();
    expect(await runGatehouse(['policy', 'check', '--policies', join(empty, 'nope')], m, [policyCommand])).not.toBe(0);
  });
});

describe.runIf(built)('durations on the command line: one grammar', { timeout: 60_000 }, () => {
  it('a bare number is refused with a hint naming the flag; 1h30m works', async () => {
    const state = tempDir();
    for (const [args, flag] of [
      [['token', 'mint', '--agent', 'a', '--ttl', '90', '--state', state], '--ttl'],
      [['logs', '--since', '90', '--state', state], '--since'],
      [['approvals', 'approve', 'x', '--grant', '30', '--state', state], '--grant'],
      [['serve', '--session-idle', '90', '--port', '0', '--state', state], '--session-idle'],
    ] as const) {
      const r = await runCli([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(flag);
      expect(r.stderr).toMatch(/a bare number has no unit: write (90|30)s/);
    }
    const ok = await runCli(['token', 'mint', '--agent', 'a', '--ttl', '1h30m', '--state', state, '--json']);
    expect(ok.code).toBe(0);
    const { expiresAt } = JSON.parse(ok.stdout) as { expiresAt: string };
    expect(Math.abs(Date.parse(expiresAt) - Date.now() - 90 * 60_000)).toBeLessThan(5_000);
  });
});

describe('gatehouse run --help', () => {
  it('says where the in-process gateway logs (a file under the state directory, never the agent stderr)', async () => {
    const { runCommand } = await import('../../src/cli/run.js');
    const o = io();
    expect(await runGatehouse(['run', '--help'], o, [runCommand])).toBe(0);
    expect(o.stdout).toContain('<state>/logs/run.log');
  });
});
