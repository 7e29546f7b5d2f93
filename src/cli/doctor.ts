import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { sharedDiskWarning, sharesFilesystem } from '../config/disk.js';
import { controlSocketPath } from '../server/control.js';
import { gatewayRunning as gatewayIsRunning } from '../server/control-client.js';
import { launcherPath, probeSandbox, type SandboxProbe } from '../sandbox/launcher.js';
import { bareRepositoryHint } from '../sandbox/hook-dirs.js';
import { Exit } from '../errors.js';
import { KeychainStore } from '../secrets/keychain.js';
import { dirsFrom, handle, subcommand, table, type CommandModule } from './command.js';
import { configChecks, connectorChecks, keychainCheck, nodeCheck, registryUsesSecrets, type SetupCheck } from './doctor-checks.js';
import { esc, escapeText, jsonLine } from '../terminal.js';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix: string;
}

function checks(p: SandboxProbe): Check[] {
  const ns = (name: string, ok: boolean, flag: string): Check => ({
    name: `${name} namespace`,
    ok,
    detail: ok ? 'available' : 'unavailable',
    fix: ok ? '' : `enable CONFIG_${flag}_NS${flag === 'USER' ? '; sysctl kernel.unprivileged_userns_clone=1 (Debian) or user.max_user_namespaces>0' : ''}`,
  });
  return [
    {
      name: 'Landlock',
      ok: p.landlock.abi >= p.landlock.required,
      detail: `ABI ${p.landlock.abi}${p.landlock.simulated ? ' (simulated)' : ''}, required ${p.landlock.required}`,
      fix: p.landlock.abi >= p.landlock.required ? '' : p.landlock.abi === 0 ? 'boot a kernel >= 6.7 with CONFIG_SECURITY_LANDLOCK=y and "landlock" in lsm=' : 'upgrade to a kernel >= 6.12 (ABI 6), or run with --allow-weaker',
    },
    { name: 'seccomp filters', ok: p.seccomp, detail: p.seccomp ? 'available' : 'unavailable', fix: p.seccomp ? '' : 'enable CONFIG_SECCOMP_FILTER' },
    ns('user', p.userns || p.euid === 0, 'USER'),
    ns('network', p.netns, 'NET'),
    ns('mount', p.mountns, 'NAMESPACES'),
    ns('PID', p.pidns, 'PID'),
    ns('IPC', p.ipcns, 'IPC'),
    ns('UTS', p.utsns, 'UTS'),
    { name: 'close_range', ok: p.closeRange, detail: p.closeRange ? 'available' : 'unavailable', fix: p.closeRange ? '' : 'kernel >= 5.9' },
  ];
}

/** Which mechanism keeps one sandbox's processes, memory and CPU from starving the others, and how to get a better one. */
export function limitsLine(p: SandboxProbe): string {
  const l = p.limits;
  if (l === undefined) return 'Per-sandbox limits: unknown (launcher predates them; run: make -C native)';
  const how: Record<typeof l.mechanism, string> = {
    'cgroup-v2': 'pids.max, memory.max and cpu.weight in a cgroup v2 leaf per sandbox',
    'cgroup-v1': 'pids.max, memory.limit_in_bytes and cpu.shares in cgroup v1 groups per sandbox',
    'session-uid': 'no cgroup: each sandbox runs under a uid of its own, so RLIMIT_NPROC (--max-procs) is per sandbox; memory and CPU are not limited per sandbox',
    'rlimit-per-user': 'no cgroup: RLIMIT_NPROC counts all processes of your uid, shared by every sandbox you run; memory and CPU are not limited per sandbox',
  };
  const better = l.mechanism.startsWith('cgroup')
    ? ''
    : ` To get per-sandbox limits: use a cgroup v2 machine (systemd.unified_cgroup_hierarchy=1) and run as root, or as a user under systemd's user@UID.service with delegation (Delegate=pids memory cpu)${l.sessionUid ? '' : ', or run as root (a uid per sandbox)'}.`;
  return `Per-sandbox limits: ${l.mechanism}: ${how[l.mechanism]} (${l.detail}).${better}`;
}

/** The set-up checks as a table, then each configuration problem on a line of its own (file:line:col: key: message). */
export function setupReport(setup: SetupCheck[]): string {
  const issues = setup.flatMap((c) => (c.issues ?? []).map((i) => `  ${escapeText(i)}\n`));
  const notes = setup.flatMap((c) => (c.note !== undefined ? [`\n${escapeText(c.name)}: ${escapeText(c.note)}\n`] : []));
  return table(['CHECK', 'STATUS', 'DETAIL', 'FIX'], setup.map((c) => [c.name, c.ok ? 'ok' : c.required === false ? 'warning' : 'PROBLEM', c.detail, c.fix])) + notes.join('') + (issues.length > 0 ? `\nConfiguration problems:\n${issues.join('')}` : '');
}

interface DoctorOptions {
  workspace?: string;
  json?: boolean;
}

export const doctorCommand: CommandModule = (program, io) => {
  const doctor = subcommand(program, 'doctor', 'check this machine for what the sandbox needs')
    .description(
      'Reports the Node.js version, whether the OS keychain is reachable and unlocked, whether the registry and\npolicies load (each problem with file:line), which kernel features the sandbox needs are present, what\nis missing and how to fix it, and whether a gateway is running.\nExit 0 when all is well, 2 when the configuration does not load, 3 when something needed is missing.',
    )
    .option('--workspace <dir>', "where agents' workspaces live (default: .): warns when it shares a filesystem with the gateway state (audit headroom)")
    .option('--json', 'machine-readable output');
  handle<DoctorOptions>(doctor, async (values) => {
    const dirs = dirsFrom(values, io.env);
    const gatewayRunning = await gatewayIsRunning(dirs.state);
    // Probed first: whether the registry's confined stdio connectors can start depends on it.
    const probe = existsSync(launcherPath()) ? await probeSandbox() : undefined;
    const setup = [nodeCheck(), await keychainCheck(new KeychainStore(), registryUsesSecrets(dirs)), ...configChecks(dirs), ...connectorChecks(dirs, probe)];
    // Needed and missing (Node, the keychain when a connector uses a secret) is 3; a configuration that does not load is 2.
    const failed = setup.filter((c) => !c.ok && c.required !== false);
    const setupCode = failed.some((c) => c.name === 'Node.js' || c.name === 'OS keychain') ? Exit.Unavailable : failed.length > 0 ? Exit.Usage : Exit.Ok;
    if (!values.json) io.out(setupReport(setup) + '\n');
    if (probe === undefined) {
      const msg = `sandbox launcher not built: ${launcherPath()} (run: npm run build)`;
      if (values.json) io.out(jsonLine({ ok: false, missing: [msg], setup, gatewayRunning }));
      else io.err(escapeText(msg) + '\n');
      return Exit.Unavailable;
    }
    const list = checks(probe);
    const workspaces = resolve(values.workspace ?? '.');
    const sharedDisk = sharesFilesystem(dirs.state, workspaces);
    if (values.json) {
      io.out(jsonLine({ ok: probe.ok && setupCode === Exit.Ok, probe, checks: list, setup, gatewayRunning, stateDir: dirs.state, workspaceSharesStateFilesystem: sharedDisk }));
      return probe.ok ? setupCode : Exit.Unavailable;
    }
    io.out(esc`Kernel ${probe.kernel} (${probe.arch}), running as uid ${probe.euid}\n\n`);
    io.out(table(['FEATURE', 'STATUS', 'DETAIL', 'FIX'], list.map((c) => [c.name, c.ok ? 'ok' : 'MISSING', c.detail, c.fix])));
    io.out(`\n${escapeText(limitsLine(probe))}\n`);
    if (sharedDisk) io.out(`\nWarning: ${escapeText(sharedDiskWarning(dirs.state, workspaces))}\n`);
    const bare = bareRepositoryHint();
    if (bare !== undefined) io.out(`\nHint: ${escapeText(bare)}\n`);
    io.out(`\nGateway: ${gatewayRunning ? esc`running (control socket ${controlSocketPath(dirs.state)})` : 'not running (gatehouse run will start one in-process)'}\n`);
    io.out(probe.ok ? '\nThe sandbox can confine agents fully on this machine.\n' : esc`\nMissing: ${probe.missing.join('; ')}\n`);
    return probe.ok ? setupCode : Exit.Unavailable;
  });
};
