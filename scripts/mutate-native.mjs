#!/usr/bin/env node
/**
 * Mutation testing of the native launcher (issue #23): each mutation below
 * breaks one security step of native/src with a one-line edit; the script
 * rebuilds a private copy of the package with it and runs the sandbox suites
 * against that copy's binaries. Every mutation must make a test fail.
 *
 *   npm run test:mutation:native [-- --only id,id] [-- --keep]
 *
 * The working tree is never touched (others build it): the package (src,
 * dist, test, native, config) is copied to a fresh directory under /tmp,
 * node_modules linked, and each mutation is applied there and undone. The
 * tests find the launcher through launcherPath(), i.e. next to the copy's
 * package.json: no switch in the product points them elsewhere.
 * Run `npm run build` first (the protected-path suite uses dist/).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SUITES = ['escape', 'layers', 'protected', 'canonical', 'bind-race'].map((n) => `test/sandbox/${n}.int.test.ts`);

/**
 * id, what the break means, file (under native/src), [search, replace]...
 * Each search string must occur exactly once (else the source moved on and
 * the list needs updating: the script stops). `suites` overrides SUITES;
 * `equivalent` marks a mutation no black-box test can see (not run).
 */
const MUTATIONS = [
  // seccomp.c
  { id: 'seccomp-arch', what: 'architecture check falls through (i386 int 0x80 runs)', file: 'seccomp.c',
    edits: [['jump(a, BPF_JEQ, GH_AUDIT_ARCH, NEXT, kill);', 'jump(a, BPF_JEQ, GH_AUDIT_ARCH, NEXT, NEXT);']] },
  { id: 'seccomp-x32', what: 'x32 syscalls not killed', file: 'seccomp.c',
    edits: [['jump(a, BPF_JGE, GH_X32_SYSCALL_BIT, kill, NEXT);', '']] },
  { id: 'seccomp-tioclinux', what: 'TIOCLINUX allowed', file: 'seccomp.c',
    edits: [['jump(a, BPF_JEQ, TIOCLINUX, deny, NEXT);', '']] },
  { id: 'seccomp-tiocsti', what: 'TIOCSTI allowed', file: 'seccomp.c',
    edits: [['jump(a, BPF_JEQ, TIOCSTI, deny, NEXT);', '']] },
  { id: 'seccomp-tfo-sendto', what: 'sendto with MSG_FASTOPEN allowed', file: 'seccomp.c',
    edits: [['deny_if_any_bit(a, __NR_sendto, 3, MSG_FASTOPEN, EPERM);', '']] },
  { id: 'seccomp-tfo-sendmsg', what: 'sendmsg with MSG_FASTOPEN allowed', file: 'seccomp.c',
    edits: [['deny_if_any_bit(a, __NR_sendmsg, 2, MSG_FASTOPEN, EPERM);', '']] },
  { id: 'seccomp-tfo-sendmmsg', what: 'sendmmsg with MSG_FASTOPEN allowed', file: 'seccomp.c',
    edits: [['deny_if_any_bit(a, __NR_sendmmsg, 3, MSG_FASTOPEN, EPERM);', '']] },
  { id: 'seccomp-af-unix', what: 'socket(AF_UNIX) allowed to the agent', file: 'seccomp.c',
    edits: [['jump(a, BPF_JEQ, AF_INET6, family_ok, deny);', 'jump(a, BPF_JEQ, AF_INET6, family_ok, NEXT); jump(a, BPF_JEQ, AF_UNIX, family_ok, deny);']] },
  { id: 'seccomp-udp', what: 'SOCK_DGRAM sockets allowed (UDP)', file: 'seccomp.c',
    edits: [['jump(a, BPF_JEQ, SOCK_STREAM, NEXT, deny);', 'jump(a, BPF_JEQ, SOCK_STREAM, NEXT, NEXT);']] },
  { id: 'seccomp-socketpair-dgram', what: 'socketpair(AF_UNIX, SOCK_DGRAM) allowed', file: 'seccomp.c',
    edits: [['jump(a, BPF_JEQ, SOCK_SEQPACKET, allow, deny);', 'jump(a, BPF_JEQ, SOCK_DGRAM, allow, NEXT); jump(a, BPF_JEQ, SOCK_SEQPACKET, allow, deny);']] },
  { id: 'seccomp-io-uring', what: 'io_uring allowed', file: 'seccomp.c',
    edits: [['__NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register,', '']] },
  { id: 'seccomp-ptrace', what: 'ptrace allowed', file: 'seccomp.c',
    edits: [['__NR_ptrace, __NR_process_vm_readv', '__NR_process_vm_readv']] },
  { id: 'seccomp-listen', what: 'listen allowed', file: 'seccomp.c',
    edits: [['\t__NR_listen,\n};', '};']] },
  { id: 'seccomp-clone-ns', what: 'clone with CLONE_NEW* allowed', file: 'seccomp.c',
    edits: [['deny_if_any_bit(a, __NR_clone, 0, CLONE_NEW_MASK, EPERM);', '']] },
  { id: 'seccomp-setid', what: 'set-user-ID mode bits allowed', file: 'seccomp.c',
    edits: [['const uint32_t setid = 06000;', 'const uint32_t setid = 0;']],
    suites: ['test/sandbox/root-workspace.int.test.ts'] },
  // landlock.c
  { id: 'landlock-ro-writable', what: 'read-only paths get write rights', file: 'landlock.c',
    edits: [['return (FS_READ | LANDLOCK_ACCESS_FS_EXECUTE) & handled;', 'return rw;']] },
  { id: 'landlock-signal-scope', what: 'signal scope dropped', file: 'landlock.c',
    edits: [['attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;', 'attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET;']] },
  { id: 'landlock-tcp-any-port', what: 'TCP connect not handled by Landlock (any port)', file: 'landlock.c',
    edits: [['attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;', 'attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP;'],
      ['if (abi >= 4) {\n\t\tstruct gh_net_port_attr', 'if (abi >= 99) {\n\t\tstruct gh_net_port_attr']] },
  // mounts.c
  { id: 'mounts-ro-bind', what: 'read-only flag dropped on binds', file: 'mounts.c',
    edits: [['(writable ? 0 : MOUNT_ATTR_RDONLY)', '(writable ? 0 : 0)']] },
  { id: 'mounts-ro-root', what: 'new root left writable', file: 'mounts.c',
    edits: [['set_attr("/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID', 'set_attr("/", MOUNT_ATTR_NOSUID']] },
  { id: 'mounts-protect-skipped', what: 'protected paths (.git, shell rc) not bound read-only', file: 'mounts.c',
    edits: [['\tmounts_protect(p, NEWROOT);', '']] },
  { id: 'mounts-source-follows-symlinks', what: "open_source without RESOLVE_NO_SYMLINKS", file: 'mounts.c',
    edits: [['.resolve = RESOLVE_NO_SYMLINKS };\n\tint fd = (int)syscall(__NR_openat2, AT_FDCWD, src,', '.resolve = 0 };\n\tint fd = (int)syscall(__NR_openat2, AT_FDCWD, src,']] },
  // plan.c
  { id: 'plan-non-canonical', what: 'non-canonical paths accepted (resolved instead of refused)', file: 'plan.c',
    edits: [['if (strlen(real) != len || strncmp(real, given, len) != 0)', 'if (len == 0 && (strlen(real) != len || strncmp(real, given, len) != 0))']] },
  // relay.c
  { id: 'relay-landlock', what: "the relay's own Landlock removed", file: 'relay.c',
    edits: [['\tlandlock_apply_relay(p);\n', '']] },
  { id: 'relay-seccomp', what: "the relay's seccomp filter removed", file: 'relay.c',
    edits: [['\tseccomp_apply(SECCOMP_RELAY);\n', '']] },
  { id: 'relay-caps', what: 'the relay keeps its capabilities', file: 'relay.c',
    edits: [['\tprivs_drop_caps_keep_uid();\n', '']] },
  { id: 'relay-ready-early', what: "the relay reports it is confined before it is (right after its chroot)", file: 'relay.c',
    edits: [['\tconst char ok = 1;\n\tif (write(ready_fd, &ok, 1) != 1)\n\t\tdie_errno(EXIT_LAUNCHER, "write ready");\n', ''],
      ['\tjail_to_socket_dir(p->socket_path);\n', '\tjail_to_socket_dir(p->socket_path);\n\tconst char ok = 1;\n\tif (write(ready_fd, &ok, 1) != 1)\n\t\tdie_errno(EXIT_LAUNCHER, "write ready");\n']],
    suites: ['test/sandbox/hostile-relay-ready-confined-at-exec.int.test.ts'] },
  { id: 'agent-no-relay-wait', what: "the agent execs without waiting for the relay's report", file: 'main.c',
    edits: [['\twhile ((got = read(p->relay_ready_fd, &ok, 1)) < 0 && errno == EINTR)\n\t\t;\n', '\tgot = 1;\n\tok = 1;\n']],
    suites: ['test/sandbox/relay-ready.int.test.ts'] },
  // main.c, privs.c
  { id: 'agent-no-new-privs', what: 'no_new_privs not set for the agent (Landlock then refuses: fail closed)', file: 'main.c',
    edits: [['if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)\n\t\tdie_errno(EXIT_LAUNCHER, "PR_SET_NO_NEW_PRIVS");\n\tlandlock_apply_agent(p);', 'landlock_apply_agent(p);']] },
  { id: 'caps-bounding-kept', what: 'bounding set not dropped, and the check after it disabled', file: 'privs.c',
    edits: [['void privs_drop_to_agent(const struct plan *p)\n{\n\tdrop_bounding_and_ambient();', 'void privs_drop_to_agent(const struct plan *p)\n{'],
      ['if (r > 0)\n\t\t\tdie(EXIT_LAUNCHER, "bounding capability', 'if (r > 1)\n\t\t\tdie(EXIT_LAUNCHER, "bounding capability']] },
  { id: 'caps-drop-skipped', what: 'bounding set not dropped (the check still runs: fail closed)', file: 'privs.c',
    edits: [['void privs_drop_to_agent(const struct plan *p)\n{\n\tdrop_bounding_and_ambient();', 'void privs_drop_to_agent(const struct plan *p)\n{']] },
  { id: 'caps-check-only', what: 'capability check after the drop disabled (drop intact)', file: 'privs.c',
    edits: [['if (d[i].effective || d[i].permitted || d[i].inheritable)', 'if (0 && (d[i].effective || d[i].permitted || d[i].inheritable))']],
    equivalent: 'the check only matters when a drop above it fails; with the drop intact no run can differ (caps-bounding-kept breaks both)' },
];

const args = process.argv.slice(2);
const only = args.includes('--only') ? new Set(args[args.indexOf('--only') + 1]?.split(',')) : undefined;
const keep = args.includes('--keep');
const started = Date.now();

const work = mkdtempSync(join(tmpdir(), 'gh-mutate-native-'));
chmodSync(work, 0o755); // the sandboxed probe (another uid) must traverse it
const pkg = join(work, 'gatehouse');
for (const entry of ['package.json', 'tsconfig.json', 'tsconfig.test.json', 'vitest.config.ts', 'src', 'dist', 'test', 'native', 'policies', 'registry']) {
  if (existsSync(join(REPO, entry))) cpSync(join(REPO, entry), join(pkg, entry), { recursive: true, filter: (p) => !p.includes('/native/build') });
}
symlinkSync(join(REPO, 'node_modules'), join(pkg, 'node_modules'));
const native = join(pkg, 'native');
const pristine = new Map();

function build() {
  const r = spawnSync('make', ['-s', '-C', native], { encoding: 'utf8' });
  return r.status === 0 ? undefined : (r.stderr || r.stdout).split('\n').find((l) => l.includes('error')) ?? `make exited ${r.status}`;
}

/** Runs the suites; returns the name of the first failing test, or undefined when all pass. */
function runSuites(suites) {
  const out = join(work, 'vitest.json');
  rmSync(out, { force: true });
  spawnSync(process.execPath, [join(pkg, 'node_modules/vitest/vitest.mjs'), 'run', '--bail', '1', '--reporter=json', `--outputFile=${out}`, ...suites],
    { cwd: pkg, encoding: 'utf8', stdio: ['ignore', 'ignore', 'ignore'], timeout: 600_000 });
  if (!existsSync(out)) return 'vitest produced no report (crashed or timed out)';
  const report = JSON.parse(readFileSync(out, 'utf8'));
  for (const file of report.testResults) {
    const failed = file.assertionResults.find((t) => t.status === 'failed');
    if (failed) return `${file.name.replace(`${pkg}/`, '')}: ${failed.title}`;
    if (file.status === 'failed') return `${file.name.replace(`${pkg}/`, '')}: ${file.message.split('\n')[0]}`;
  }
  return report.numFailedTests > 0 ? 'a test failed' : undefined;
}

function apply(m) {
  const path = join(native, 'src', m.file);
  let text = readFileSync(path, 'utf8');
  pristine.set(path, text);
  for (const [from, to] of m.edits) {
    const n = text.split(from).length - 1;
    if (n !== 1) throw new Error(`${m.id}: ${JSON.stringify(from)} occurs ${n} times in ${m.file} (update the list)`);
    text = text.replace(from, to);
  }
  writeFileSync(path, text);
}

function undo() {
  for (const [path, text] of pristine) writeFileSync(path, text);
  pristine.clear();
}

const rows = [];
try {
  // Every search string must still match before anything runs.
  for (const m of MUTATIONS) {
    apply(m);
    undo();
  }
  const baseErr = build();
  if (baseErr) throw new Error(`the unmutated copy does not build: ${baseErr}`);
  const allSuites = [...new Set([...SUITES, ...MUTATIONS.flatMap((m) => m.suites ?? [])])];
  const baseline = runSuites(allSuites);
  if (baseline) throw new Error(`the suites fail without any mutation, so nothing below would mean anything: ${baseline}`);
  console.log(`baseline: suites pass on the unmutated copy (${Math.round((Date.now() - started) / 1000)} s)`);

  for (const m of MUTATIONS) {
    if (only && !only.has(m.id)) continue;
    const t0 = Date.now();
    if (m.equivalent) {
      rows.push({ m, verdict: 'equivalent', by: m.equivalent, s: 0 });
      continue;
    }
    apply(m);
    try {
      const buildErr = build();
      const by = buildErr ? undefined : runSuites(m.suites ?? SUITES);
      rows.push({ m, verdict: buildErr ? 'BUILD FAILED' : by ? 'caught' : 'NOT CAUGHT', by: buildErr ?? by ?? '', s: Math.round((Date.now() - t0) / 1000) });
    } finally {
      undo();
    }
    const r = rows[rows.length - 1];
    console.log(`${r.verdict.padEnd(12)} ${m.id} (${r.s} s)${r.by ? `: ${r.by}` : ''}`);
  }
} finally {
  undo();
  if (!keep) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}

console.log('\n| mutation | break | result | first failing test |\n|---|---|---|---|');
for (const { m, verdict, by } of rows) console.log(`| ${m.id} | ${m.file}: ${m.what} | ${verdict} | ${by.replaceAll('|', '\\|')} |`);
const bad = rows.filter((r) => r.verdict === 'NOT CAUGHT' || r.verdict === 'BUILD FAILED');
const total = Math.round((Date.now() - started) / 1000);
console.log(`\n${rows.filter((r) => r.verdict === 'caught').length} caught, ${bad.length} not caught or not built, ${rows.filter((r) => r.verdict === 'equivalent').length} equivalent; ${total} s in all`);
process.exitCode = bad.length > 0 ? 1 : 0;
