import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/command.js';
import { auditCommand } from '../../src/cli/audit.js';
import { logsCommand } from '../../src/cli/logs.js';
import { runGatehouse } from '../../src/cli/program.js';

const logs = (argv: string[], o: Io) => runGatehouse(['logs', ...argv], o, [logsCommand]);
const audit = (argv: string[], o: Io) => runGatehouse(['audit', ...argv], o, [auditCommand]);
import { call, lines, openLog, tempState } from './helpers.js';

function io(env: NodeJS.ProcessEnv = {}): Io & { stdout: string; stderr: string } {
  const o = {
    stdout: '',
    stderr: '',
    out: (s: string) => void (o.stdout += s),
    err: (s: string) => void (o.stderr += s),
    env,
    stdin: process.stdin,
    isTTY: false,
  };
  return o;
}

let state: string;
let dir: string;

beforeAll(async () => {
  ({ state, dir } = tempState());
  const log = await openLog(dir, { checkpointEvery: 20 });
  for (let i = 0; i < 60; i++) await log.append(call(i));
  await log.close();
});

describe('gatehouse logs', () => {
  it('prints a table: time, event, agent, tool, decision, rule, outcome, latency', async () => {
    const o = io();
    expect(await logs(['--state', state, '--event', 'tools/call', '--limit', '5'], o)).toBe(0);
    const rows = o.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^TIME\s+EVENT\s+AGENT\s+TOOL\s+DECISION\s+RULE\s+OUTCOME\s+LATENCY$/);
    expect(rows).toHaveLength(6);
    expect(rows[1]).toMatch(/tools\/call\s+agent-\d\s+\w+__\w+\s+(allow|deny)\s+\S+\s+(ok|denied)\s+4\.3ms/);
    expect(o.stderr).toContain('more match');
  });

  it('--json prints JSON lines, newest first; --reverse oldest first', async () => {
    const o = io();
    await logs(['--state', state, '--json', '--decision', 'deny'], o);
    const recs = o.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { seq: number; decision: string });
    expect(recs.length).toBeGreaterThan(3);
    expect(recs.every((r) => r.decision === 'deny')).toBe(true);
    expect(recs[0]!.seq).toBeGreaterThan(recs[1]!.seq);
    const r = io();
    await logs(['--state', state, '--json', '--decision', 'deny', '--reverse'], r);
    expect(r.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(recs.map((x) => x.seq).reverse());
  });

  it('--help, and usage errors', async () => {
    const o = io();
    expect(await logs(['--help'], o)).toBe(0);
    expect(o.stdout).toContain('--follow');
    expect(await logs(['--state', state, '--decision', 'maybe'], io())).toBe(2);
    expect(await logs(['--state', state, '--since', 'yesterday'], io())).toBe(2);
    expect(await logs(['--bogus'], io())).toBe(2);
  });
});

describe('gatehouse logs: filters are checked, a missing log is an error', () => {
  it('an unknown --outcome, --decision or --event is a usage error naming the allowed values (a typo must not look like "no records")', async () => {
    for (const [flag, value, allowed] of [
      ['--outcome', 'sucess', 'ok, error, denied, timeout, rejected, cancelled, pending, unknown'],
      ['--decision', 'maybe', 'allow, deny, ask'],
      ['--event', 'tool/call', 'tools/call'],
      ['--event', 'modle.*', 'model.call'],
    ] as const) {
      const o = io();
      expect(await logs(['--state', state, flag, value], o), `${flag} ${value}`).toBe(2);
      expect(o.stderr).toContain(`gatehouse logs: ${flag}:`);
      expect(o.stderr).toContain(allowed);
      expect(o.stderr).toContain('Run "gatehouse logs --help" for usage.');
      expect(o.stdout).toBe('');
    }
  });

  it('known values and event globs pass: --outcome unknown, --event "model.*", --since 1h30m', async () => {
    for (const args of [['--outcome', 'unknown'], ['--event', 'model.*'], ['--event', 'tools/call.intent'], ['--since', '1h30m']]) {
      expect(await logs(['--state', state, ...args], io()), args.join(' ')).toBe(0);
    }
  });

  it('a bare number as --since is refused with a hint, not read as milliseconds', async () => {
    const o = io();
    expect(await logs(['--state', state, '--since', '90'], o)).toBe(2);
    expect(o.stderr).toMatch(/--since: invalid duration "90"; a bare number has no unit: write 90s, 90m or 90h/);
  });

  it('a state directory without an audit log is an error (exit 3) saying how to fix it, not "no matching records"', async () => {
    const o = io();
    const missing = join(tempState().state, 'nowhere');
    expect(await logs(['--state', missing], o)).toBe(3);
    expect(o.stderr).toContain(`no audit log in ${join(missing, 'audit')}`);
    expect(o.stderr).toContain('--state');
    expect(o.stderr).not.toContain('no matching audit records');
  });
});

describe('gatehouse audit pubkey on a missing state directory', () => {
  it('creates no key (a key made there would sign nothing and be trusted): exit 3 and how to fix it', async () => {
    const missing = join(tempState().state, 'typo');
    const o = io();
    expect(await audit(['pubkey', '--state', missing], o)).toBe(3);
    expect(o.stdout).toBe('');
    expect(o.stderr).toContain('no audit checkpoint key');
    expect(o.stderr).toContain('gatehouse serve');
    expect(existsSync(missing)).toBe(false);
  });
});

describe('gatehouse audit verify / pubkey', () => {
  it('exit 0 on a valid log, with --json report', async () => {
    const o = io();
    expect(await audit(['verify', '--state', state], o)).toBe(0);
    expect(o.stdout).toMatch(/^audit log OK: 6\d records/);
    const j = io();
    expect(await audit(['verify', '--state', state, '--json'], j)).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: true, signaturesChecked: true, problems: [] });
  });

  it('exit 1 on a tampered log, naming the first bad record; --pubkey of another key fails signatures', async () => {
    const t = tempState();
    const log = await openLog(t.dir, { checkpointEvery: 10 });
    for (let i = 0; i < 30; i++) await log.append(call(i));
    await log.close();
    const file = join(t.dir, 'audit.jsonl');
    const ls = lines(file);
    // The call after the first checkpoint (where the checkpoint lands depends on when its signature is done).
    const at = ls.findIndex((l) => l.includes('"title":"issue 10"'));
    const seq = (JSON.parse(ls[at]!) as { seq: number }).seq;
    ls[at] = ls[at]!.replace('"title":"issue', '"title":"ISSUE');
    writeFileSync(file, ls.join('\n') + '\n');
    const o = io();
    expect(await audit(['verify', '--state', t.state], o)).toBe(1);
    expect(o.stdout).toContain('audit log INVALID');
    expect(o.stdout).toContain(`audit.jsonl:${at + 1} (seq ${seq}): edited`);

    const p = io();
    expect(await audit(['pubkey', '--state', state], p)).toBe(0);
    const other = join(t.state, 'other.jwk');
    writeFileSync(other, p.stdout);
    expect(JSON.parse(readFileSync(other, 'utf8'))).not.toHaveProperty('d');
    const clean = tempState();
    const l2 = await openLog(clean.dir, { checkpointEvery: 5 });
    for (let i = 0; i < 12; i++) await l2.append(call(i));
    await l2.close();
    const v = io();
    expect(await audit(['verify', '--state', clean.state, '--pubkey', other, '--json'], v)).toBe(1);
    expect((JSON.parse(v.stdout) as { problems: { kind: string }[] }).problems[0]?.kind).toBe('signature');
  });

  it('usage errors: --from, --anchor, unknown subcommand', async () => {
    expect(await audit(['verify', '--state', state, '--from', '0'], io())).toBe(2);
    expect(await audit(['verify', '--state', state, '--anchor', 'x'], io())).toBe(2);
    expect(await audit(['frobnicate'], io())).toBe(2);
    const h = io();
    expect(await audit(['verify', '--help'], h)).toBe(0);
    expect(h.stdout).toContain('Exit: 0 valid, 1 invalid, 2 usage');
  });

  const cli = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
  it.runIf(existsSync(cli))('the built CLI: exit codes 0 / 1 / 2', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    expect(run('audit', 'verify', '--state', state).status).toBe(0);
    expect(run('audit', 'verify', '--state', state, '--from', 'x').status).toBe(2);
    expect(run('logs', '--state', state, '--limit', '0').status).toBe(2);
    const t = run('logs', '--state', state, '--json', '--limit', '3');
    expect(t.status).toBe(0);
    expect(t.stdout.trimEnd().split('\n')).toHaveLength(3);
  });
});
