import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { approvalsCommand } from '../../src/cli/approvals.js';
import { auditCommand } from '../../src/cli/audit.js';
import { clientCommand } from '../../src/cli/client.js';
import type { Command, Io } from '../../src/cli/command.js';
import { connectorCommand } from '../../src/cli/connector.js';
import { configChecks, keychainCheck, minimumNode, nodeCheck, registryUsesSecrets } from '../../src/cli/doctor-checks.js';
import { doctorCommand } from '../../src/cli/doctor.js';
import { logsCommand } from '../../src/cli/logs.js';
import { policyCommand } from '../../src/cli/policy.js';
import { buildProgram } from '../../src/cli/program.js';
import { runCommand } from '../../src/cli/run.js';
import { secretCommand } from '../../src/cli/secret.js';
import { serveCommand } from '../../src/cli/serve.js';
import { statusCommand } from '../../src/cli/status.js';
import { tokenCommand } from '../../src/cli/token.js';
import { GatehouseError } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/gateway.js';

const io: Io = { out: () => undefined, err: () => undefined, env: {}, stdin: process.stdin, isTTY: false };
const program = buildProgram(io, [serveCommand, runCommand, statusCommand, clientCommand, doctorCommand, tokenCommand, policyCommand, approvalsCommand, secretCommand, connectorCommand, logsCommand, auditCommand]);

/** Why `gatehouse WORDS…` is not a command of ours (unknown command or --option), or undefined when it is. */
function notACommand(words: string[]): string | undefined {
  let cmd: Command = program;
  let depth = 0;
  for (const w of words) {
    const sub = cmd.commands.find((c) => c.name() === w);
    if (!sub) break;
    cmd = sub;
    depth++;
  }
  if (depth === 0) return `unknown command "${words[0] ?? ''}"`;
  for (const w of words) {
    if (!w.startsWith('--')) continue;
    const flag = w.split('=')[0];
    let known = false;
    for (let c: Command | null = cmd; c; c = c.parent) if (c.options.some((o) => o.long === flag)) known = true;
    if (!known) return `unknown option ${flag} of "${cmd.name()}"`;
  }
  return undefined;
}

/** Every "gatehouse …" a text mentions, as words (stops at what cannot be part of a command line). */
function mentionedCommands(text: string): string[][] {
  return [...text.matchAll(/\bgatehouse((?: +[A-Za-z0-9@%+=:,./_-]+)+)/g)].map((m) => (m[1] ?? '').trim().split(/ +/).map((w) => w.replace(/[.,]+$/, '')));
}

describe('doctor: set-up checks', () => {
  it('Node.js: older than engines.node is a problem with a fix; equal or newer is fine', () => {
    expect(minimumNode('>=20.19')).toEqual([20, 19, 0]);
    expect(nodeCheck('20.18.3', '>=20.19')).toMatchObject({ ok: false, detail: '20.18.3, required >=20.19' });
    expect(nodeCheck('18.20.0', '>=20.19').fix).toMatch(/install Node\.js >=20\.19/);
    expect(nodeCheck('20.19.0', '>=20.19').ok).toBe(true);
    expect(nodeCheck('22.1.0', '>=20.19').ok).toBe(true);
    // The version this package declares is the one checked.
    expect(nodeCheck().detail).toContain('>=20.19');
  });

  it('keychain: reachable and unlocked is ok; locked or unreachable says which, keeps the full reason, and names the fix', async () => {
    expect(await keychainCheck({ description: 'test', probe: async () => undefined })).toMatchObject({ ok: true });
    const locked = await keychainCheck({ description: 'test', probe: async () => { throw new GatehouseError('KEYCHAIN_UNAVAILABLE', 'the OS keychain is unavailable: X is locked (prompt dismissed). Unlock it.'); } });
    expect(locked).toMatchObject({ ok: false, detail: 'locked', fix: expect.stringContaining('gatehouse secret check') });
    expect(locked.note).toContain('prompt dismissed');
    const gone = await keychainCheck({ description: 'test', probe: async () => { throw new GatehouseError('KEYCHAIN_UNAVAILABLE', 'cannot be reached'); } });
    expect(gone.detail).toBe('cannot be reached');
  });

  it('keychain: unreachable while no connector uses a secret is a warning that does not fail doctor', async () => {
    const fail = { description: 'test', probe: async () => { throw new GatehouseError('KEYCHAIN_UNAVAILABLE', 'cannot be reached'); } };
    expect(await keychainCheck(fail, false)).toMatchObject({ ok: false, required: false, detail: 'cannot be reached (no connector uses a secret yet)' });
    const root = tempDir('gatehouse-doctor-kc-');
    const dirs = { registry: join(root, 'registry'), policies: join(root, 'policies'), state: join(root, 'state') };
    mkdirSync(dirs.registry);
    writeFileSync(join(dirs.registry, 'a.yaml'), 'name: a\nkind: stdio\ncommand: y\n');
    expect(registryUsesSecrets(dirs)).toBe(false);
    writeFileSync(join(dirs.registry, 'b.yaml'), 'name: b\nkind: http\nurl: https://x.example/mcp\nheaders: { Authorization: "Bearer ${secret:b-token}" }\n');
    expect(registryUsesSecrets(dirs)).toBe(true);
  });

  it('configuration: each registry and policy problem is reported with file:line', () => {
    const root = tempDir('gatehouse-doctor-');
    const dirs = { registry: join(root, 'registry'), policies: join(root, 'policies'), state: join(root, 'state') };
    mkdirSync(dirs.registry);
    mkdirSync(dirs.policies);
    writeFileSync(join(dirs.registry, 'x.yaml'), 'name: x\nkind: stdio\ncomand: y\n');
    writeFileSync(join(dirs.policies, 'p.yaml'), 'version: 1\ndefault: deny\nrules:\n  - id: a\n    efect: allow\n');
    const [reg, pol] = configChecks(dirs);
    expect(reg?.ok).toBe(false);
    expect(reg?.issues).toContain(`${join(dirs.registry, 'x.yaml')}:3:1: comand: unknown key "comand" (misspelt?)`);
    expect(pol?.ok).toBe(false);
    expect(pol?.issues?.some((i) => i.startsWith(`${join(dirs.policies, 'p.yaml')}:`) && /:\d+:\d+: /.test(i))).toBe(true);
    writeFileSync(join(dirs.registry, 'x.yaml'), 'name: x\nkind: stdio\ncommand: y\n');
    expect(configChecks(dirs)[0]).toMatchObject({ ok: true });
  });

  it('the command checker itself refuses what is not a command (so the next test can fail)', () => {
    expect(notACommand(['secret', 'check'])).toBeUndefined();
    expect(notACommand(['policy', 'check', '--policies', '/x'])).toBeUndefined();
    expect(notACommand(['secrets', 'check'])).toMatch(/unknown command/);
    expect(notACommand(['policy', 'check', '--polices', '/x'])).toMatch(/unknown option --polices/);
  });

  it('every gatehouse command doctor prints (fixes, notes, hints) is a command and options that exist', async () => {
    const root = tempDir('gatehouse-doctor-cli-');
    const registry = join(root, 'registry');
    const policies = join(root, 'policies');
    mkdirSync(registry);
    mkdirSync(policies);
    writeFileSync(join(registry, 'x.yaml'), 'name: x\nkind: stdio\ncomand: y\n');
    writeFileSync(join(policies, 'p.yaml'), 'version: 1\ndefault: deny\nrules:\n  - id: a\n    efect: allow\n');
    const args = ['doctor', '--registry', registry, '--policies', policies, '--state', join(root, 'state')];
    const text = await runCli(args, { env: { HOME: root } });
    const json = await runCli([...args, '--json'], { env: { HOME: root } });
    expect(text.code).not.toBe(0);
    expect(text.stdout).toMatch(/x\.yaml:3:1: comand: unknown key/);
    const report = JSON.parse(json.stdout) as { setup: Array<{ fix: string }>; checks?: Array<{ fix: string }> };
    const fixes = [...report.setup, ...(report.checks ?? [])].map((c) => c.fix).join('\n');
    const commands = [...mentionedCommands(fixes), ...mentionedCommands(text.stdout), ...mentionedCommands(text.stderr)];
    // Not an empty list: the broken configuration guarantees fixes that name commands.
    expect(commands.length).toBeGreaterThanOrEqual(2);
    for (const c of commands) expect(notACommand(c), `gatehouse ${c.join(' ')}`).toBeUndefined();
  });
});
