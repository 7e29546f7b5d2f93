/**
 * Escape tests for native/gatehouse-sandbox: each test is named after the
 * attack it tries from inside the sandbox, and asserts how it fails (the
 * errno the probe prints) — or, for the one door, that it works.
 *
 * Everything runs for real: a unix-socket echo server and an HTTP server in
 * this process stand in for the gateway; native/build/probe is the attacker.
 * Build first: make -C native.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { homedir, networkInterfaces, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childrenOf, statusField } from '../helpers/sandbox-launch.js';
import { LAUNCHER_EXIT, SIMULATE_LANDLOCK_ABI_ENV, buildLauncherArgs, launcherFailure, launcherPath, probeSandbox } from '../../src/sandbox/launcher.js';
import { tempDir } from '../helpers/tmp.js';

const LAUNCHER = launcherPath();
const ASAN = `${LAUNCHER}-asan`;
const BUILD = dirname(LAUNCHER);
const PROBE = join(BUILD, 'probe');
const PORT = 8931;
const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;
const tag = randomBytes(6).toString('hex');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  launcher?: string;
  env?: NodeJS.ProcessEnv;
  flags?: string[];
  socket?: string;
  workspace?: string;
  asNobody?: boolean;
  extraFd?: number;
  onSpawn?: (child: ChildProcess) => void;
  timeoutMs?: number;
}

let root: string; // 0755 scratch dir for everything outside
let sockDir: string; // 0700: the session sockets
let echoSock: string;
let httpSock: string;
let workspace: string;
let roDir: string;
let nobodyDir: string; // socket dir + workspace for the unprivileged runs
let nobodyWorkspace: string;
let nobodyEchoSock: string;
const servers: net.Server[] = [];

function listenUnix(server: net.Server, path: string, mode?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      if (mode !== undefined) chmodSync(path, mode);
      resolve();
    });
  });
}

function echoServer(): net.Server {
  // allowHalfOpen: answer everything, then FIN after the client's FIN.
  return net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
}

function run(command: string[], opts: RunOptions = {}): Promise<Run> {
  const argv = [
    '--socket', opts.socket ?? echoSock,
    '--port', String(PORT),
    '--workspace', opts.workspace ?? workspace,
    '--ro', BUILD,
    ...(opts.flags ?? []),
    '--', ...command,
  ];
  const launcher = opts.launcher ?? LAUNCHER;
  const [file, args] = opts.asNobody === true && IS_ROOT
    ? ['setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', launcher, ...argv]]
    : [launcher, argv];
  const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe'];
  if (opts.extraFd !== undefined) stdio.push(opts.extraFd);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, stdio });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    opts.onSpawn?.(child);
  });
}

/** Runs the probe inside and returns its one-line verdict. */
async function probe(args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run([PROBE, ...args], opts);
  if (r.code !== 0) throw new Error(`probe ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

function waitForLine(child: ChildProcess, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${re}`)), 10_000);
    child.stdout?.on('data', (d: Buffer | string) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
  });
}

/** Gone, or a zombie nobody reaped yet: either way it runs no code. */
function isDead(pid: number): boolean {
  const state = statusField(pid, 'State');
  return state === undefined || state.startsWith('Z') || state.startsWith('X');
}

/** The launcher's two children: the relay (one NSpid) and init (two: host pid and 1). */
function sandboxTree(launcherPid: number): { relay: number; init: number; agent: number } {
  const kids = childrenOf(launcherPid);
  const relay = kids.find((k) => statusField(k, 'NSpid')?.split(/\s+/).length === 1);
  const init = kids.find((k) => statusField(k, 'NSpid')?.split(/\s+/).length === 2);
  const agent = init === undefined ? undefined : childrenOf(init)[0];
  if (relay === undefined || init === undefined || agent === undefined) {
    throw new Error(`unexpected process tree under ${launcherPid}: ${kids.join(',')}`);
  }
  return { relay, init, agent };
}

async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

beforeAll(async () => {
  root = tempDir('gh-escape-');
  chmodSync(root, 0o755);
  sockDir = join(root, 'sock');
  mkdirSync(sockDir, { mode: 0o700 });
  echoSock = join(sockDir, 'echo.sock');
  httpSock = join(sockDir, 'http.sock');
  workspace = join(root, 'ws');
  mkdirSync(workspace);
  roDir = join(root, 'ro');
  mkdirSync(roDir);
  writeFileSync(join(roDir, 'readme.txt'), 'read only\n');
  nobodyDir = join(root, 'nobody');
  mkdirSync(nobodyDir, { mode: 0o700 });
  nobodyWorkspace = join(nobodyDir, 'ws');
  mkdirSync(nobodyWorkspace);
  nobodyEchoSock = join(nobodyDir, 'echo.sock');
  if (IS_ROOT) {
    // As root the command runs as nobody: it must own the workspace.
    chownSync(workspace, NOBODY, NOBODY);
    chownSync(nobodyDir, NOBODY, NOBODY);
    chownSync(nobodyWorkspace, NOBODY, NOBODY);
  }
  const echo = echoServer();
  servers.push(echo);
  await listenUnix(echo, echoSock);
  const echo2 = echoServer();
  servers.push(echo2);
  await listenUnix(echo2, nobodyEchoSock, 0o666);
  const web = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => res.end(JSON.stringify({ method: req.method, url: req.url, body })));
  });
  servers.push(web as unknown as net.Server);
  await listenUnix(web as unknown as net.Server, httpSock);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(() => r(undefined)))));
  rmSync(root, { recursive: true, force: true });
});

describe('gatehouse-sandbox launcher', () => {
  it('guard: the launcher, its ASan build and the probe are built (make -C native)', () => {
    expect(existsSync(LAUNCHER), LAUNCHER).toBe(true);
    expect(existsSync(ASAN), ASAN).toBe(true);
    expect(existsSync(PROBE), PROBE).toBe(true);
  });

  it('--probe reports Landlock ABI >= 6, namespaces and seccomp on this kernel', async () => {
    const p = await probeSandbox();
    expect(p.ok, p.missing.join('; ')).toBe(true);
    expect(p.landlock.abi).toBeGreaterThanOrEqual(6);
    expect(p.netns && p.pidns && p.mountns && p.seccomp).toBe(true);
  });

  it('buildLauncherArgs produces the CLI the launcher accepts', async () => {
    const args = buildLauncherArgs({
      socketPath: echoSock, port: PORT, workspace, ro: [BUILD], env: { GATEHOUSE_MCP_URL: `http://127.0.0.1:${PORT}/mcp` },
      command: [PROBE, 'env'],
    });
    expect(args.slice(-3)).toEqual(['--', PROBE, 'env']);
    const r = await new Promise<string>((resolve) => {
      const c = spawn(LAUNCHER, args, { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.on('close', () => resolve(out));
    });
    expect(r).toContain(`GATEHOUSE_MCP_URL=http://127.0.0.1:${PORT}/mcp`);
    expect(() => buildLauncherArgs({ socketPath: 'rel.sock', port: PORT, workspace, command: ['x'] })).toThrow(/absolute/);
    expect(() => buildLauncherArgs({ socketPath: echoSock, port: 0, workspace, command: ['x'] })).toThrow(/port/);
    expect(() => buildLauncherArgs({ socketPath: echoSock, port: PORT, workspace, env: { 'A-B': '1' }, command: ['x'] })).toThrow(/env name/);
  });

  it('buildLauncherArgs passes --cwd before the command and refuses a relative one before anything starts', () => {
    const args = buildLauncherArgs({ socketPath: echoSock, port: PORT, workspace, ro: [BUILD], cwd: BUILD, command: ['./probe', 'whoami'] });
    const at = args.indexOf('--cwd');
    expect(at).toBeGreaterThan(-1);
    expect(args[at + 1]).toBe(BUILD);
    expect(at).toBeLessThan(args.indexOf('--'));
    expect(args.slice(-3)).toEqual(['--', './probe', 'whoami']);
    expect(buildLauncherArgs({ socketPath: echoSock, port: PORT, workspace, command: ['x'] })).not.toContain('--cwd');
    expect(() => buildLauncherArgs({ socketPath: echoSock, port: PORT, workspace, cwd: 'native/build', command: ['x'] })).toThrow(/cwd must be absolute/);
  });
});

describe('the one door: 127.0.0.1:PORT reaches the session socket', () => {
  it('round-trips bytes over 8 concurrent connections with a 1 MB payload each, with half-close', async () => {
    expect(await probe(['echo', '127.0.0.1', String(PORT), '8', String(1 << 20)])).toBe(`OK 8 x ${1 << 20}`);
  });

  it('also answers on [::1]:PORT (clients that resolve localhost to ::1 first)', async () => {
    expect(await probe(['echo', '::1', String(PORT), '2', '1000'])).toBe('OK 2 x 1000');
  });

  it('node -e inside does an HTTP request through the relay to the HTTP server on the unix socket', async () => {
    const script = `fetch(process.env.GATEHOUSE_MCP_URL, { method: 'POST', body: 'hello' })
      .then((r) => r.text()).then((t) => console.log(t)).catch((e) => { console.error(e); process.exit(3); })`;
    const r = await run(['/usr/bin/node', '-e', script], {
      socket: httpSock,
      flags: ['--env', `GATEHOUSE_MCP_URL=http://127.0.0.1:${PORT}/mcp`],
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ method: 'POST', url: '/mcp', body: 'hello' });
  });

  it('with the session server gone the relay port resets and nothing else opens', async () => {
    const gone = join(sockDir, 'gone.sock');
    const s = echoServer();
    await listenUnix(s, gone);
    await new Promise((r) => s.close(() => r(undefined)));
    expect(existsSync(gone)).toBe(false);
    const opts = { socket: gone };
    expect(await probe(['connect', '127.0.0.1', String(PORT)], opts)).toMatch(/^(connect|send|recv):(ECONNRESET|EPIPE)$/);
    expect(await probe(['connect', '1.1.1.1', '443'], opts)).toBe('connect:EACCES');
    expect(await probe(['connect', '1.1.1.1', String(PORT)], opts)).toBe('connect:ENETUNREACH');
    expect(await probe(['unix', gone], opts)).toBe('socket:EPERM');
  });
});

// Table of attacks: [name, probe args, expected verdict]. Named after the attack.
type Attack = { name: string; args: string[]; expect: string | RegExp };
const sysno = process.arch === 'arm64'
  ? { bpf: 280, perf_event_open: 241, keyctl: 219, userfaultfd: 282, kexec_load: 104, init_module: 105 }
  : { bpf: 321, perf_event_open: 298, keyctl: 250, userfaultfd: 323, kexec_load: 246, init_module: 175 };
const hostAddrs = Object.values(networkInterfaces()).flat()
  .filter((a): a is NonNullable<typeof a> => a !== undefined && !a.internal && !a.address.startsWith('fe80'))
  .map((a) => a.address);
if (hostAddrs.length === 0) hostAddrs.push('192.0.2.1'); // never an empty list

const attacks: Attack[] = [
  { name: 'TCP to an outside IPv4 address (1.1.1.1:443) is denied by Landlock', args: ['connect', '1.1.1.1', '443'], expect: 'connect:EACCES' },
  { name: 'TCP to an outside IPv4 address on the relay port finds no route (netns has only lo)', args: ['connect', '1.1.1.1', String(PORT)], expect: 'connect:ENETUNREACH' },
  { name: 'TCP to an outside IPv6 address ([2606:4700::1111]:443) is denied by Landlock', args: ['connect', '2606:4700::1111', '443'], expect: 'connect:EACCES' },
  { name: 'TCP to an outside IPv6 address on the relay port finds no route', args: ['connect', '2606:4700::1111', String(PORT)], expect: 'connect:ENETUNREACH' },
  ...hostAddrs.flatMap((ip): Attack[] => [
    { name: `TCP to the host's own address ${ip}:22 is denied`, args: ['connect', ip, '22'], expect: 'connect:EACCES' },
    { name: `TCP to the host's own address ${ip} on the relay port finds no route`, args: ['connect', ip, String(PORT)], expect: 'connect:ENETUNREACH' },
  ]),
  { name: 'TCP to 127.0.0.1 on another port than the relay is denied', args: ['connect', '127.0.0.1', String(PORT + 1)], expect: 'connect:EACCES' },
  { name: 'TCP to 127.0.0.1:22 is denied', args: ['connect', '127.0.0.1', '22'], expect: 'connect:EACCES' },
  { name: 'UDP to an outside address (1.1.1.1:53)', args: ['udp', '1.1.1.1', '53'], expect: 'socket:EPERM' },
  { name: 'UDP to 127.0.0.1:53', args: ['udp', '127.0.0.1', '53'], expect: 'socket:EPERM' },
  { name: 'UDP over IPv6 ([::1]:53)', args: ['udp', '::1', '53'], expect: 'socket:EPERM' },
  { name: 'DNS lookup of a name (getaddrinfo example.com)', args: ['dns', 'example.com'], expect: /^getaddrinfo:EAI_/ },
  { name: 'raw IP socket (AF_INET, SOCK_RAW, ICMP)', args: ['socket', '2', '3', '1'], expect: 'socket:EPERM' },
  { name: 'ICMP ping socket (AF_INET, SOCK_DGRAM, ICMP)', args: ['socket', '2', '2', '1'], expect: 'socket:EPERM' },
  { name: 'packet socket (AF_PACKET, SOCK_RAW)', args: ['socket', '17', '3', '0'], expect: 'socket:EPERM' },
  { name: 'netlink socket (AF_NETLINK route)', args: ['socket', '16', '3', '0'], expect: 'socket:EPERM' },
  { name: 'vsock socket (AF_VSOCK) to reach the hypervisor', args: ['socket', '40', '1', '0'], expect: 'socket:EPERM' },
  { name: 'MPTCP socket (IPPROTO_MPTCP=262) to dodge Landlock TCP rules', args: ['socket', '2', '1', '262'], expect: 'socket:EPERM' },
  { name: 'MPTCP over IPv6', args: ['socket', '10', '1', '262'], expect: 'socket:EPERM' },
  { name: 'SCTP socket', args: ['socket', '2', '1', '132'], expect: 'socket:EPERM' },
  { name: 'AF_ALG crypto socket', args: ['socket', '38', '5', '0'], expect: 'socket:EPERM' },
  { name: 'unix socket creation (AF_UNIX, SOCK_STREAM)', args: ['socket', '1', '1', '0'], expect: 'socket:EPERM' },
  { name: 'socketpair other than AF_UNIX (AF_INET)', args: ['socketpair', '2'], expect: 'socketpair:EPERM' },
  { name: 'unix datagram socketpair (AF_UNIX, SOCK_DGRAM): it could sendto() any named datagram socket', args: ['socketpair-type', '1', '2'], expect: 'socketpair:EPERM' },
  { name: 'unix datagram socketpair hidden behind SOCK_CLOEXEC|SOCK_NONBLOCK', args: ['socketpair-type', '1', String(0x80802)], expect: 'socketpair:EPERM' },
  { name: 'unix SOCK_RAW socketpair (the kernel makes it a datagram socket)', args: ['socketpair-type', '1', '3'], expect: 'socketpair:EPERM' },
  { name: 'unix socketpair with a type plus unknown high bits', args: ['socketpair-type', '1', String(0x40000001)], expect: 'socketpair:EPERM' },
  { name: 'io_uring_setup (IORING_OP_SOCKET would bypass socket() checks)', args: ['io_uring'], expect: 'io_uring_setup:EPERM' },
  { name: 'bind a TCP port (127.0.0.1:9000)', args: ['bind', '127.0.0.1', '9000'], expect: 'bind:EACCES' },
  { name: 'bind an ephemeral TCP port (0.0.0.0:0)', args: ['bind', '0.0.0.0', '0'], expect: 'bind:EACCES' },
  { name: 'listen on an auto-bound TCP socket', args: ['listen'], expect: 'listen:EPERM' },
  { name: 'TCP Fast Open sendto (connect without connect())', args: ['tfo', '127.0.0.1', String(PORT + 1)], expect: 'sendto:EPERM' },
  // Allowed, these answer ECONNREFUSED: no connect() hook (Landlock's) sees a Fast Open connect.
  { name: 'TCP Fast Open through sendmsg(MSG_FASTOPEN)', args: ['tfo-msg', '127.0.0.1', String(PORT + 1)], expect: 'sendmsg:EPERM' },
  { name: 'TCP Fast Open through sendmmsg(MSG_FASTOPEN)', args: ['tfo-mmsg', '127.0.0.1', String(PORT + 1)], expect: 'sendmmsg:EPERM' },
  { name: 'unshare(CLONE_NEWUSER)', args: ['unshare', '0x10000000'], expect: 'unshare:EPERM' },
  { name: 'unshare(CLONE_NEWNET)', args: ['unshare', '0x40000000'], expect: 'unshare:EPERM' },
  { name: 'clone(CLONE_NEWUSER)', args: ['clone', '0x10000000'], expect: 'clone:EPERM' },
  { name: 'clone(CLONE_NEWNS|CLONE_NEWPID)', args: ['clone', '0x20020000'], expect: 'clone:EPERM' },
  { name: 'clone3 (flags BPF cannot see) answers ENOSYS', args: ['clone3'], expect: 'clone3:ENOSYS' },
  { name: 'setns into a namespace', args: ['setns', '/proc/self/ns/net'], expect: 'setns:EPERM' },
  { name: 'mount a tmpfs', args: ['mount'], expect: 'mount:EPERM' },
  { name: 'chroot', args: ['chroot', '/tmp'], expect: 'chroot:EPERM' },
  { name: 'ptrace init (pid 1 of the sandbox)', args: ['ptrace', '1'], expect: 'ptrace:EPERM' },
  { name: 'signal init (pid 1) — Landlock signal scope', args: ['kill', '1', '15'], expect: 'kill:EPERM' },
  { name: 'read /proc/1/mem of init', args: ['mem', '1'], expect: 'open:EACCES' },
  { name: 'read /proc/1/environ of init', args: ['read', '/proc/1/environ'], expect: 'open:EACCES' },
  { name: 'ptrace a host process (the test runner)', args: ['ptrace', String(process.pid)], expect: 'ptrace:EPERM' },
  { name: 'signal a host process (the test runner) — not in the pid namespace', args: ['kill', String(process.pid), '0'], expect: 'kill:ESRCH' },
  { name: '/proc/<pid>/mem of a host process (the test runner)', args: ['mem', String(process.pid)], expect: 'open:ENOENT' },
  { name: 'process_vm_readv of a host process', args: ['vm-read', String(process.pid)], expect: 'process_vm_readv:EPERM' },
  { name: 'setuid(0)', args: ['setuid', '0'], expect: /^setuid:(EPERM|EINVAL)$/ }, // EINVAL: 0 is unmapped in a user ns
  { name: 'personality(ADDR_NO_RANDOMIZE)', args: ['personality', '0x0040000'], expect: 'personality:EPERM' },
  { name: 'TIOCSTI to inject keystrokes into a terminal', args: ['tiocsti', '0'], expect: 'ioctl:EPERM' },
  // Allowed, a pty or /dev/null answers ENOTTY: only seccomp says EPERM.
  { name: 'TIOCLINUX (paste selection) on a terminal the agent opens (/dev/ptmx)', args: ['tioclinux', '/dev/ptmx'], expect: 'ioctl:EPERM' },
  { name: 'TIOCLINUX on an inherited fd (stdin)', args: ['tioclinux', '0'], expect: 'ioctl:EPERM' },
  { name: 'bpf()', args: ['syscall', String(sysno.bpf)], expect: 'syscall:EPERM' },
  { name: 'perf_event_open()', args: ['syscall', String(sysno.perf_event_open)], expect: 'syscall:EPERM' },
  { name: 'keyctl() on the kernel keyring', args: ['syscall', String(sysno.keyctl)], expect: 'syscall:EPERM' },
  { name: 'userfaultfd()', args: ['syscall', String(sysno.userfaultfd)], expect: 'syscall:EPERM' },
  { name: 'kexec_load()', args: ['syscall', String(sysno.kexec_load)], expect: 'syscall:EPERM' },
  { name: 'init_module()', args: ['syscall', String(sysno.init_module)], expect: 'syscall:EPERM' },
  // The read-only mount answers before Landlock: EROFS is its errno (Landlock's is EACCES, see layers.test.ts).
  { name: 'write to /etc (read-only system dir)', args: ['write', '/etc/gatehouse-escape'], expect: 'open:EROFS' },
  { name: 'write to /usr/bin (read-only system dir)', args: ['write', '/usr/bin/gatehouse-escape'], expect: 'open:EROFS' },
  { name: 'write into a --ro directory', args: ['write', join(BUILD, 'gatehouse-escape')], expect: 'open:EROFS' },
  { name: 'write to / (the read-only new root)', args: ['write', '/gatehouse-escape'], expect: 'open:EROFS' },
  { name: 'hardlink a read-only system file into writable /tmp (to write it there)', args: ['link', '/etc/hostname', '/tmp/x'], expect: 'link:EXDEV' },
  { name: 'see the host /run (D-Bus, docker.sock, ssh-agent sockets)', args: ['ls', '/run'], expect: 'opendir:ENOENT' },
  { name: 'see the host /var/run', args: ['ls', '/var/run'], expect: 'opendir:ENOENT' },
  { name: 'see the host /root', args: ['ls', '/root'], expect: 'opendir:ENOENT' },
  { name: 'see the host /home', args: ['ls', '/home'], expect: 'opendir:ENOENT' },
  { name: 'see the host /sys', args: ['ls', '/sys'], expect: 'opendir:ENOENT' },
];

describe('escape attempts (each must fail, and fail this way)', () => {
  it('guard: the attack table is not empty', () => {
    expect(attacks.length).toBeGreaterThan(50);
  });

  // One it() per row (not it.each): a title that names the whole attack, untruncated.
  for (const { name, args, expect: want } of attacks) {
    it(name, async () => {
      const got = await probe(args);
      if (typeof want === 'string') expect(got).toBe(want);
      else expect(got).toMatch(want);
    });
  }

  it('x32 syscall ABI on x86_64 kills the process (SIGSYS)', async () => {
    const r = await run([PROBE, 'x32']);
    expect(r.code).toBe(process.arch === 'x64' ? 128 + 31 : 0);
  });

  it.runIf(process.arch === 'x64')('i386 syscall (int 0x80: getpid in the 32-bit table) kills the process (SIGSYS) on the architecture check', async () => {
    // Control: outside, the same int 0x80 runs (the kernel has IA32 emulation), so SIGSYS is the filter's.
    const outside = await new Promise<{ out: string; signal: NodeJS.Signals | null }>((resolve) => {
      const c = spawn(PROBE, ['i386'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let o = '';
      c.stdout.on('data', (d: Buffer) => (o += d.toString()));
      c.on('close', (_code, signal) => resolve({ out: o.trim(), signal }));
    });
    const r = await run([PROBE, 'i386']);
    expect(r.stdout).toBe('');
    if (outside.signal === 'SIGSEGV') {
      // A kernel without IA32 emulation (CONFIG_IA32_EMULATION=n or ia32_emulation=0, as on some VMs): int 0x80
      // faults before any filter sees it, inside as outside. Still never run; the filter's own check is proven
      // where the kernel can run it (the branch below, and npm run test:mutation:native there).
      expect(r.code).toBe(128 + 11);
      return;
    }
    expect(outside.out).toMatch(/^OK ran as i386 getpid: \d+$/);
    expect(r.code).toBe(128 + 31);
  });

  it('connect to a host unix socket the test opens outside (fake docker.sock, not shared)', async () => {
    const dir = mkdtempSync(join(root, 'docker-'));
    const path = join(dir, 'docker.sock');
    const s = net.createServer();
    await listenUnix(s, path, 0o666);
    try {
      expect(await probe(['stat', path])).toBe('stat:ENOENT');
      expect(await probe(['unix', path])).toBe('socket:EPERM');
    } finally {
      s.close();
    }
  });

  it('connect to a unix socket that IS visible under a --ro path (fake D-Bus) — seccomp still blocks', async () => {
    const dir = mkdtempSync(join(root, 'run-'));
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'dbus'));
    const path = join(dir, 'dbus', 'system_bus_socket');
    const s = net.createServer();
    await listenUnix(s, path, 0o666);
    try {
      expect(await probe(['stat', path], { flags: ['--ro', dir] })).toBe('OK');
      expect(await probe(['unix', path], { flags: ['--ro', dir] })).toBe('socket:EPERM');
    } finally {
      s.close();
    }
  });

  it('connect to a host abstract unix socket (\\0gatehouse-test-<rand>)', async () => {
    const name = `gatehouse-test-${tag}`;
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(`\0${name}`, () => r()));
    try {
      expect(await probe(['unix', `@${name}`])).toBe('socket:EPERM');
    } finally {
      s.close();
    }
  });

  /** A datagram socket at `path` (outside, 0666) that reports what reaches it. */
  async function dgramReceiver(path: string): Promise<{ received: Promise<string[]> }> {
    const rx = spawn(PROBE, ['dgram-recv', path, '3000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    rx.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const received = new Promise<string[]>((resolve) => rx.on('close', () => resolve(out.split('\n').filter((l) => l.startsWith('GOT ')))));
    await waitForLine(rx, /READY/);
    return { received };
  }

  it("agent opens a unix datagram socketpair and sendto()s the host's /dev/log", async () => {
    // A log socket visible read-only inside, as /dev/log or syslog's would be.
    const dir = mkdtempSync(join(root, 'devlog-'));
    chmodSync(dir, 0o755);
    const log = join(dir, 'log');
    const { received } = await dgramReceiver(log);
    // Control: the same attack from outside reaches it (sendto, sendmsg, connect+send).
    const control = await new Promise<string>((resolve) => {
      const c = spawn(PROBE, ['unix-sendto', '2', log], { stdio: ['ignore', 'pipe', 'inherit'] });
      let o = '';
      c.stdout.on('data', (d: Buffer) => (o += d.toString()));
      c.on('close', () => resolve(o.trim()));
    });
    expect(control).toBe('OK');
    const flags = ['--ro', dir];
    expect(await probe(['unix-sendto', '2', log], { flags })).toBe('socketpair:EPERM');
    expect(await probe(['unix-sendto', String(0x80802), log], { flags })).toBe('socketpair:EPERM');
    // What stays allowed cannot address anyone: stream says EISCONN, seqpacket
    // ignores the name (its peer gets it) and cannot connect elsewhere.
    expect(await probe(['unix-sendto', '1', log], { flags })).toBe('sendto:EISCONN');
    expect(await probe(['unix-sendto', '5', log], { flags })).toMatch(/^connect:(EISCONN|EPROTOTYPE)$/);
    expect(await received).toEqual(['GOT pwned-sendto', 'GOT pwned-sendmsg', 'GOT pwned-connect']); // the control's, nothing more
  });

  it('agent inherits an unconnected unix datagram socket as stdin and sendto()s by name: the launcher refuses to start', async () => {
    const dir = mkdtempSync(join(root, 'devlog-'));
    chmodSync(dir, 0o755);
    const log = join(dir, 'log');
    const { received } = await dgramReceiver(log);
    const argv = ['--socket', echoSock, '--port', String(PORT), '--workspace', workspace, '--ro', BUILD, '--ro', dir, '--', PROBE, 'sendto-fd', '0', log];
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(PROBE, ['with-dgram-stdin', LAUNCHER, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      c.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(r.code).toBe(LAUNCHER_EXIT.launcherError);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/fd 0 is a socket \(family 1, type 2, not connected\)/);
    expect(await received).toEqual([]);
  });

  it("read a secret in the invoking user's home (~/.ssh-like key and ~/.local/share/keyrings)", async () => {
    const home = homedir();
    const keyDir = join(home, `.gatehouse-escape-${tag}`);
    const ringDir = join(home, '.local', 'share', 'keyrings');
    const ring = join(ringDir, `gatehouse-test-${tag}.keyring`);
    mkdirSync(keyDir, { mode: 0o700 });
    const ringDirExisted = existsSync(ringDir);
    mkdirSync(ringDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(keyDir, 'id_ed25519'), 'PRIVATE KEY\n', { mode: 0o644 });
    writeFileSync(ring, 'KEYRING\n', { mode: 0o644 });
    try {
      expect(await probe(['read', join(keyDir, 'id_ed25519')])).toBe('open:ENOENT');
      expect(await probe(['read', ring])).toBe('open:ENOENT');
      expect(await probe(['ls', ringDir])).toBe('opendir:ENOENT');
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
      rmSync(ringDirExisted ? ring : join(home, '.local'), { recursive: !ringDirExisted, force: true });
    }
  });

  it('write outside the workspace through a symlink planted in the workspace', async () => {
    const outside = mkdtempSync(join(root, 'outside-'));
    const target = join(outside, 'target.txt');
    writeFileSync(target, 'original\n');
    chmodSync(outside, 0o777);
    chmodSync(target, 0o666); // even world-writable: it must not be reachable
    const link = join(workspace, `escape-link-${tag}`);
    symlinkSync(target, link);
    const roLink = join(workspace, `escape-ro-link-${tag}`);
    symlinkSync(join(roDir, 'readme.txt'), roLink);
    try {
      expect(await probe(['write', link])).toBe('open:ENOENT');
      expect(readFileSync(target, 'utf8')).toBe('original\n');
      // readme.txt is 0644 root-owned: the permission check (EACCES) may answer before the mount (EROFS); layers.test.ts tests each layer alone.
      expect(await probe(['write', roLink], { flags: ['--ro', roDir] })).toMatch(/^open:(EACCES|EROFS)$/);
      expect(readFileSync(join(roDir, 'readme.txt'), 'utf8')).toBe('read only\n');
      // And the agent's own symlink to a --ro file changes nothing either.
      expect(await probe(['symlink-write', join(roDir, 'readme.txt'), join(workspace, `own-link-${tag}`)], { flags: ['--ro', roDir] }))
        .toMatch(/^open:(EACCES|EROFS)$/);
    } finally {
      rmSync(link, { force: true });
      rmSync(roLink, { force: true });
      rmSync(join(workspace, `own-link-${tag}`), { force: true });
    }
  });

  it('hardlink or rename a --ro file into the workspace to gain write access', async () => {
    const flags = ['--ro', roDir];
    expect(await probe(['link', join(roDir, 'readme.txt'), join(workspace, `hl-${tag}`)], { flags })).toBe('link:EXDEV');
    expect(await probe(['rename', join(roDir, 'readme.txt'), join(workspace, `mv-${tag}`)], { flags })).toMatch(/^rename:(EXDEV|EACCES|EROFS)$/);
    expect(readFileSync(join(roDir, 'readme.txt'), 'utf8')).toBe('read only\n');
  });

  it('the workspace is writable at its own path, /tmp is private, and the cwd is the workspace', async () => {
    const w = await probe(['whoami']);
    expect(w).toContain(`cwd=${workspace}`);
    // As root: a per-session uid (2^31 + slot, issue #12 item 7), never the shared nobody.
    expect(w).toMatch(IS_ROOT ? /uid=(2147\d{6}) gid=\1 / : new RegExp(`uid=${process.getuid?.()} `));
    expect(w).toContain('pid=2 ppid=1');
    expect(await probe(['write', join(workspace, `ok-${tag}`)])).toBe('OK');
    expect(readFileSync(join(workspace, `ok-${tag}`), 'utf8')).toBe('pwned\n');
    const hostTmp = join(tmpdir(), `gh-private-tmp-${tag}`);
    expect(await probe(['write', hostTmp])).toBe('OK');
    expect(existsSync(hostTmp)).toBe(false);
  });

  it('run the unshare(1) binary inside (unshare -U)', async () => {
    const r = await run(['/usr/bin/unshare', '-U', '/bin/true']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Operation not permitted/);
  });

  it('setuid escalation: NoNewPrivs 1 and every capability set empty', async () => {
    const status = await probe(['status']);
    expect(status).toMatch(/^NoNewPrivs:\t1$/m);
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) {
      expect(status).toMatch(new RegExp(`^${set}:\\t0000000000000000$`, 'm'));
    }
    expect(status).toMatch(/^Seccomp:\t2$/m);
    // A setuid-root binary runs without privilege (no_new_privs).
    const r = await run(['/bin/mount', '-t', 'tmpfs', 'none', '/tmp']);
    expect(r.code).not.toBe(0);
  });

  it('inherited fds: a leaked fd 3 from the caller is closed, only 0-2 are open', async () => {
    const fd = openSync(join(root, 'leak.txt'), 'w');
    try {
      expect(await probe(['fds'], { extraFd: fd })).toBe('0,1,2');
    } finally {
      closeSync(fd);
    }
  });

  it('environment: nothing from the caller but the allowlist (GATEHOUSE_TEST_SECRET is gone)', async () => {
    const secret = `s3cret-${tag}`;
    const env = { ...process.env, GATEHOUSE_TEST_SECRET: secret, SSH_AUTH_SOCK: '/tmp/agent.sock', LC_ALL: 'C', TZ: 'UTC' };
    const out = await probe(['env'], { env, flags: ['--env', 'GATEHOUSE_MCP_URL=http://127.0.0.1:1/mcp'] });
    expect(out).not.toContain(secret);
    const names = out.split('\n').map((l) => l.slice(0, l.indexOf('=')));
    const allowed = /^(PATH|LANG|LANGUAGE|TERM|TZ|LC_[A-Z_]+|HOME|GATEHOUSE_SANDBOX|GATEHOUSE_MCP_URL)$/;
    for (const n of names) expect(n).toMatch(allowed);
    expect(out).toContain('HOME=/tmp/home');
    expect(out).toContain('LC_ALL=C');
    expect(out).toContain('GATEHOUSE_MCP_URL=http://127.0.0.1:1/mcp');
  });

  it('the relay cannot be ptraced, signalled or read (/proc/<pid>/mem) from inside, and is itself confined', async () => {
    // The command reads the relay's host pid from stdin, then attacks it.
    const script = `read pid; for a in "ptrace $pid" "kill $pid 9" "mem $pid" "vm-read $pid"; do ${PROBE} $a; done`;
    const args = buildLauncherArgs({ socketPath: echoSock, port: PORT, workspace, ro: [BUILD], command: ['/bin/sh', '-c', script] });
    const child = spawn(LAUNCHER, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const closed = new Promise((r) => child.on('close', r));
    const pid = child.pid ?? 0;
    const ready = await until(() => {
      try {
        sandboxTree(pid);
        return true;
      } catch {
        return false;
      }
    });
    expect(ready).toBe(true);
    const { relay } = sandboxTree(pid);
    expect(statusField(relay, 'NoNewPrivs')).toBe('1');
    expect(statusField(relay, 'CapEff')).toBe('0000000000000000');
    expect(statusField(relay, 'CapBnd')).toBe('0000000000000000');
    expect(statusField(relay, 'Seccomp')).toBe('2');
    if (IS_ROOT) {
      // chrooted into the socket's directory: it can name no other socket.
      expect(readlinkSync(`/proc/${relay}/root`)).toBe(sockDir);
    } else {
      // Not dumpable: even its own user cannot look at /proc/<relay>/root.
      expect(() => readlinkSync(`/proc/${relay}/root`)).toThrow(/EACCES/);
    }
    child.stdin.end(`${relay}\n`);
    expect(await closed).toBe(0);
    expect(out.trim().split('\n')).toEqual(['ptrace:EPERM', 'kill:ESRCH', 'open:ENOENT', 'process_vm_readv:EPERM']);
  });
});

describe('lifecycle', () => {
  it('refuses to start when Landlock is unavailable (simulated ABI 0), even with --allow-weaker', async () => {
    for (const flags of [[], ['--allow-weaker']]) {
      const r = await run([PROBE, 'whoami'], { env: { ...process.env, [SIMULATE_LANDLOCK_ABI_ENV]: '0' }, flags });
      expect(r.code).toBe(LAUNCHER_EXIT.unavailable);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/Landlock is not available/);
      expect(launcherFailure(r.code ?? 0, r.stderr)?.code).toBe('SANDBOX_UNAVAILABLE');
    }
  });

  it('refuses to start on Landlock ABI 5 (simulated) and names the missing scopes', async () => {
    const r = await run([PROBE, 'whoami'], { env: { ...process.env, [SIMULATE_LANDLOCK_ABI_ENV]: '5' } });
    expect(r.code).toBe(LAUNCHER_EXIT.unavailable);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Landlock ABI 5 is too old (need 6)');
    expect(r.stderr).toContain('LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET');
    expect(r.stderr).toContain('LANDLOCK_SCOPE_SIGNAL');
    expect(r.stderr).toContain('--allow-weaker');
  });

  it('--allow-weaker on ABI 3 (simulated) runs, says what is missing, and the netns still holds', async () => {
    const env = { ...process.env, [SIMULATE_LANDLOCK_ABI_ENV]: '3' };
    const r = await run([PROBE, 'connect', '127.0.0.1', String(PORT + 1)], { env, flags: ['--allow-weaker'] });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('LANDLOCK_ACCESS_NET_CONNECT_TCP');
    expect(r.stdout.trim()).toBe('connect:ECONNREFUSED'); // no Landlock TCP rule, but nothing listens
    expect(await probe(['connect', '1.1.1.1', '443'], { env, flags: ['--allow-weaker'] })).toBe('connect:ENETUNREACH');
    expect(await probe(['socket', '2', '2', '0'], { env, flags: ['--allow-weaker'] })).toBe('socket:EPERM');
  });

  it('the exit code of the command is propagated', async () => {
    expect((await run([PROBE, 'exit', '7'])).code).toBe(7);
    expect((await run([PROBE, 'exit', '0'])).code).toBe(0);
  });

  it('a missing command exits 127 and a non-executable one 126, with a launcher error line', async () => {
    const nf = await run(['/nonexistent-gatehouse']);
    expect(nf.code).toBe(LAUNCHER_EXIT.notFound);
    expect(launcherFailure(nf.code ?? 0, nf.stderr)?.code).toBe('SANDBOX_FAILED');
    const ne = await run([join(roDir, 'readme.txt')], { flags: ['--ro', roDir] });
    expect(ne.code).toBe(LAUNCHER_EXIT.cannotExecute);
    expect(launcherFailure(7, 'gatehouse-sandbox: error: x')).toBeUndefined();
  });

  it('a session socket in a missing directory fails the launch (125), the command never runs', async () => {
    const r = await run([PROBE, 'whoami'], { socket: join(root, 'no-such-dir', 's.sock') });
    expect(r.code).toBe(LAUNCHER_EXIT.launcherError);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/relay: chroot to the socket directory .*ENOENT/);
  });

  it('usage errors exit 125 without starting anything', async () => {
    const r = await run([PROBE, 'whoami'], { workspace: join(root, 'does-not-exist') });
    expect(r.code).toBe(LAUNCHER_EXIT.launcherError);
    expect(r.stderr).toMatch(/^gatehouse-sandbox: error: --workspace/m);
  });

  it('SIGTERM to the launcher is forwarded to the command, and its exit code propagated', async () => {
    let child: ChildProcess | undefined;
    const trapped = run([PROBE, 'trap', '30'], { onSpawn: (c) => { child = c; } });
    if (child === undefined) throw new Error('no child');
    await waitForLine(child, /READY \d+/);
    child.kill('SIGTERM');
    expect((await trapped).code).toBe(42); // the probe's SIGTERM handler exits 42

    let child2: ChildProcess | undefined;
    const plain = run([PROBE, 'sleep', '30'], { onSpawn: (c) => { child2 = c; } });
    if (child2 === undefined) throw new Error('no child');
    await waitForLine(child2, /READY \d+/);
    child2.kill('SIGTERM');
    expect((await plain).code).toBe(128 + 15);
  });

  it('SIGKILL to the launcher kills the command (and the relay)', async () => {
    let child: ChildProcess | undefined;
    const running = run([PROBE, 'sleep', '30'], { onSpawn: (c) => { child = c; } });
    if (child === undefined || child.pid === undefined) throw new Error('no child');
    await waitForLine(child, /READY \d+/);
    const tree = sandboxTree(child.pid);
    expect(isDead(tree.agent)).toBe(false);
    child.kill('SIGKILL');
    await running;
    expect(await until(() => isDead(tree.agent) && isDead(tree.relay) && isDead(tree.init))).toBe(true);
  });

  it('the launcher dies with its parent (PR_SET_PDEATHSIG), taking the command with it', async () => {
    // sh starts the launcher in the background, prints its pid, and is then killed.
    const sh = spawn('/bin/sh', ['-c', `${LAUNCHER} --socket ${echoSock} --port ${PORT} --workspace ${workspace} --ro ${BUILD} -- ${PROBE} sleep 30 & echo LAUNCHER $!; wait`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await waitForLine(sh, /LAUNCHER \d+[\s\S]*READY \d+/);
    const launcherPid = Number(/LAUNCHER (\d+)/.exec(line)?.[1]);
    const tree = sandboxTree(launcherPid);
    sh.kill('SIGKILL');
    expect(await until(() => isDead(launcherPid) && isDead(tree.agent))).toBe(true);
  });
});

describe('unprivileged launcher (user namespace path)', () => {
  // Filled in once the top-level beforeAll has made the paths.
  const opts: RunOptions = { asNobody: true };
  beforeAll(() => {
    opts.socket = nobodyEchoSock;
    opts.workspace = nobodyWorkspace;
  });

  it('as a normal user: every capability set empty, NoNewPrivs 1, own uid', async () => {
    const status = await probe(['status'], opts);
    expect(status).toMatch(/^NoNewPrivs:\t1$/m);
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) {
      expect(status).toMatch(new RegExp(`^${set}:\\t0000000000000000$`, 'm'));
    }
  });

  it('as a normal user: the relay carries 4 concurrent 1 MB round trips', async () => {
    const r = await run([PROBE, 'echo', '127.0.0.1', String(PORT), '4', String(1 << 20)], opts);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`OK 4 x ${1 << 20}`);
  });

  it('as a normal user: outside TCP, unix sockets, user namespaces and pid 1 stay out of reach', async () => {
    expect(await probe(['connect', '1.1.1.1', '443'], opts)).toBe('connect:EACCES');
    expect(await probe(['unix', nobodyEchoSock], opts)).toBe('socket:EPERM');
    expect(await probe(['socketpair-type', '1', '2'], opts)).toBe('socketpair:EPERM');
    expect(await probe(['unshare', '0x10000000'], opts)).toBe('unshare:EPERM');
    expect(await probe(['kill', '1', '15'], opts)).toBe('kill:EPERM');
    expect(await probe(['mem', '1'], opts)).toBe('open:EACCES');
    expect(await probe(['fds'], opts)).toBe('0,1,2');
  });
});

describe('ASan+UBSan build (same attacks, sanitizer-clean)', () => {
  const opts: RunOptions = { launcher: ASAN };
  const clean = (stderr: string): void => {
    expect(stderr).not.toMatch(/AddressSanitizer|LeakSanitizer|runtime error|UndefinedBehaviorSanitizer/);
  };

  it('ASan: relay round trip of 4 x 1 MB', async () => {
    const r = await run([PROBE, 'echo', '127.0.0.1', String(PORT), '4', String(1 << 20)], opts);
    clean(r.stderr);
    expect(r.stdout.trim()).toBe(`OK 4 x ${1 << 20}`);
  });

  it('ASan: outside TCP, UDP and unix sockets fail; caps empty; only fds 0-2', async () => {
    for (const [args, want] of [
      [['connect', '1.1.1.1', '443'], 'connect:EACCES'],
      [['udp', '1.1.1.1', '53'], 'socket:EPERM'],
      [['unix', echoSock], 'socket:EPERM'],
      [['fds'], '0,1,2'],
    ] as const) {
      const r = await run([PROBE, ...args], opts);
      clean(r.stderr);
      expect(r.stdout.trim()).toBe(want);
    }
    const s = await run([PROBE, 'status'], opts);
    clean(s.stderr);
    expect(s.stdout).toMatch(/^CapBnd:\t0000000000000000$/m);
  });

  it('ASan: exit codes, refusal on old Landlock, and the unprivileged path', async () => {
    const e = await run([PROBE, 'exit', '9'], opts);
    clean(e.stderr);
    expect(e.code).toBe(9);
    const nf = await run(['/nonexistent-gatehouse'], opts);
    expect(nf.code).toBe(127);
    const old = await run([PROBE, 'whoami'], { ...opts, env: { ...process.env, [SIMULATE_LANDLOCK_ABI_ENV]: '4' } });
    clean(old.stderr);
    expect(old.code).toBe(124);
    const u = await run([PROBE, 'echo', '127.0.0.1', String(PORT), '2', '65536'], { ...opts, asNobody: true, socket: nobodyEchoSock, workspace: nobodyWorkspace });
    clean(u.stderr);
    expect(u.stdout.trim()).toBe('OK 2 x 65536');
  });
});
