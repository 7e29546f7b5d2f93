/* A hand-written seccomp BPF filter (no libseccomp). Default allow, with:
 *  - foreign ABIs killed (i386 via int 0x80, x32 syscalls on x86_64,
 *    AArch32 on arm64), as their syscall numbers mean other things;
 *  - socket(): AF_INET/AF_INET6 + SOCK_STREAM + protocol 0 or IPPROTO_TCP
 *    only (no unix, UDP, raw, packet, netlink, vsock, MPTCP, SCTP); the
 *    relay instead gets AF_UNIX stream only. socketpair(): AF_UNIX stream
 *    or seqpacket only (a datagram pair can sendto() any named socket);
 *  - namespace, mount, tracing, kernel-extension and keyring syscalls
 *    refused with EPERM; clone() with any CLONE_NEW* flag refused; clone3()
 *    answers ENOSYS (its flags live in memory BPF cannot read; libc then
 *    falls back to clone()); io_uring (which bypasses the socket() checks
 *    via IORING_OP_SOCKET) refused; listen() and TCP Fast Open refused;
 *    TIOCSTI/TIOCLINUX ioctls refused; personality() only queries.
 * Arguments are compared on their low 32 bits: int arguments are truncated
 * by the kernel too, so high garbage bits cannot slip past a check. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

#if defined(__x86_64__)
#define GH_AUDIT_ARCH AUDIT_ARCH_X86_64
#define GH_X32_SYSCALL_BIT 0x40000000U
#elif defined(__aarch64__)
#define GH_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "gatehouse-sandbox: seccomp filter supports x86_64 and aarch64 only"
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#endif

/* Syscalls newer than the build host's headers (numbers are shared by all
 * architectures from 403 on). */
#ifndef __NR_open_tree
#define __NR_open_tree 428
#define __NR_move_mount 429
#define __NR_fsopen 430
#define __NR_fsconfig 431
#define __NR_fsmount 432
#define __NR_fspick 433
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef __NR_quotactl_fd
#define __NR_quotactl_fd 443
#endif
#ifndef __NR_open_tree_attr
#define __NR_open_tree_attr 467
#endif
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

#define CLONE_NEW_MASK                                                                             \
	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
	 CLONE_NEWNET)

/* Refused with EPERM for both the command and the relay. */
static const int denied[] = {
	__NR_ptrace, __NR_process_vm_readv, __NR_process_vm_writev, __NR_pidfd_getfd,
	__NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register,
	__NR_unshare, __NR_setns, __NR_chroot, __NR_pivot_root,
	__NR_mount, __NR_umount2, __NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_fspick,
	__NR_move_mount, __NR_open_tree, __NR_open_tree_attr, __NR_mount_setattr,
	__NR_bpf, __NR_perf_event_open, __NR_userfaultfd,
	__NR_add_key, __NR_request_key, __NR_keyctl,
	__NR_init_module, __NR_finit_module, __NR_delete_module,
	__NR_kexec_load,
#ifdef __NR_kexec_file_load
	__NR_kexec_file_load,
#endif
	__NR_acct, __NR_swapon, __NR_swapoff, __NR_reboot, __NR_syslog,
	__NR_quotactl, __NR_quotactl_fd, __NR_vhangup, __NR_open_by_handle_at,
	__NR_settimeofday, __NR_clock_settime, __NR_clock_adjtime,
#ifdef __NR_iopl
	__NR_iopl, __NR_ioperm,
#endif
#ifdef __NR_uselib
	__NR_uselib,
#endif
#ifdef __NR_lookup_dcookie
	__NR_lookup_dcookie,
#endif
	__NR_listen,
};

#define MAX_INSNS 400
#define MAX_LABELS 256
#define MAX_FIXUPS 512
#define NEXT (-1)

/* A tiny assembler with forward labels, so that no jump offset is counted
 * by hand. BPF jumps are forward-only and 8-bit: checked at link time. */
struct bpf_asm {
	struct sock_filter insn[MAX_INSNS];
	unsigned n;
	int label_at[MAX_LABELS];
	unsigned n_labels;
	struct {
		unsigned insn;
		int label;
		bool jt;
	} fix[MAX_FIXUPS];
	unsigned n_fix;
};

static void emit(struct bpf_asm *a, uint16_t code, uint32_t k)
{
	if (a->n >= MAX_INSNS)
		die(EXIT_LAUNCHER, "seccomp: program too long");
	a->insn[a->n++] = (struct sock_filter)BPF_STMT(code, k);
}

static int label(struct bpf_asm *a)
{
	if (a->n_labels >= MAX_LABELS)
		die(EXIT_LAUNCHER, "seccomp: too many labels");
	a->label_at[a->n_labels] = -1;
	return (int)a->n_labels++;
}

static void here(struct bpf_asm *a, int l)
{
	a->label_at[l] = (int)a->n;
}

static void jump(struct bpf_asm *a, uint16_t op, uint32_t k, int jt, int jf)
{
	unsigned at = a->n;
	emit(a, BPF_JMP | op | BPF_K, k);
	const int targets[2] = { jt, jf };
	for (int i = 0; i < 2; i++) {
		if (targets[i] == NEXT)
			continue;
		if (a->n_fix >= MAX_FIXUPS)
			die(EXIT_LAUNCHER, "seccomp: too many jumps");
		a->fix[a->n_fix].insn = at;
		a->fix[a->n_fix].label = targets[i];
		a->fix[a->n_fix].jt = (i == 0);
		a->n_fix++;
	}
}

static void link_program(struct bpf_asm *a)
{
	for (unsigned i = 0; i < a->n_fix; i++) {
		int to = a->label_at[a->fix[i].label];
		int off = to - (int)a->fix[i].insn - 1;
		if (to < 0 || off < 0 || off > 255)
			die(EXIT_LAUNCHER, "seccomp: bad jump (label %d, offset %d)", a->fix[i].label, off);
		if (a->fix[i].jt)
			a->insn[a->fix[i].insn].jt = (uint8_t)off;
		else
			a->insn[a->fix[i].insn].jf = (uint8_t)off;
	}
}

static void ld_nr(struct bpf_asm *a)
{
	emit(a, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
}

static void ld_arg(struct bpf_asm *a, int i)
{
	emit(a, BPF_LD | BPF_W | BPF_ABS, (uint32_t)ARG_LO(i));
}

static void ret(struct bpf_asm *a, uint32_t action)
{
	emit(a, BPF_RET | BPF_K, action);
}

#define ERRNO(e) (SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))

/* Each block below starts and ends with the syscall number in A: a
 * non-matching syscall jumps to `skip` before any argument is loaded, and
 * a matching one ends in a return on every path. */

/* Refuse `nr` when its argument `arg` has any bit of `mask`. */
static void deny_if_any_bit(struct bpf_asm *a, int nr, int arg, uint32_t mask, int err)
{
	int skip = label(a), deny = label(a);
	jump(a, BPF_JEQ, (uint32_t)nr, NEXT, skip);
	ld_arg(a, arg);
	jump(a, BPF_JSET, mask, deny, NEXT);
	ret(a, SECCOMP_RET_ALLOW);
	here(a, deny);
	ret(a, ERRNO(err));
	here(a, skip);
}

/* Allow `nr` only when argument `arg` is one of `vals`. */
static void allow_only_values(struct bpf_asm *a, int nr, int arg, const uint32_t *vals, size_t n, int err)
{
	int skip = label(a), allow = label(a);
	jump(a, BPF_JEQ, (uint32_t)nr, NEXT, skip);
	ld_arg(a, arg);
	for (size_t i = 0; i < n; i++)
		jump(a, BPF_JEQ, vals[i], allow, NEXT);
	ret(a, ERRNO(err));
	here(a, allow);
	ret(a, SECCOMP_RET_ALLOW);
	here(a, skip);
}

/* socketpair(): AF_UNIX, SOCK_STREAM or SOCK_SEQPACKET (plus the two flag
 * bits). Such a pair is connected from birth and can address nobody else:
 * connect() gives EISCONN, a name given to sendto()/sendmsg() gives EISCONN
 * (stream) or is ignored (seqpacket). A SOCK_DGRAM socket, connected or
 * not, sends to whatever datagram socket it names (journald's /dev/log,
 * syslog), which Landlock (ABI <= 7) does not mediate. */
static void socketpair_block(struct bpf_asm *a)
{
	int skip = label(a), deny = label(a), allow = label(a);
	jump(a, BPF_JEQ, __NR_socketpair, NEXT, skip);
	ld_arg(a, 0);
	jump(a, BPF_JEQ, AF_UNIX, NEXT, deny);
	ld_arg(a, 1);
	emit(a, BPF_ALU | BPF_AND | BPF_K, ~(uint32_t)(SOCK_NONBLOCK | SOCK_CLOEXEC));
	jump(a, BPF_JEQ, SOCK_STREAM, allow, NEXT);
	jump(a, BPF_JEQ, SOCK_SEQPACKET, allow, deny);
	here(a, allow);
	ret(a, SECCOMP_RET_ALLOW);
	here(a, deny);
	ret(a, ERRNO(EPERM));
	here(a, skip);
}

/* The same rule for sockets the command would inherit as fd 0-2 (the only
 * fds it inherits): a socket there must be a connected AF_UNIX stream or
 * seqpacket one (what a pipe-like stdio, e.g. Node's or journald's, is).
 * Anything else could send or connect where the command's own sockets
 * cannot, in the caller's network namespace: refuse to start. */
static void refuse_open_sockets_on_stdio(void)
{
	for (int fd = 0; fd < 3; fd++) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			die_errno(EXIT_LAUNCHER, "fstat fd %d", fd);
		if (!S_ISSOCK(st.st_mode))
			continue;
		int domain = -1, type = -1, listening = 0;
		socklen_t l1 = sizeof domain, l2 = sizeof type, l3 = sizeof listening;
		struct sockaddr_storage peer;
		socklen_t lp = sizeof peer;
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l1) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l2) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l3) < 0)
			die_errno(EXIT_LAUNCHER, "getsockopt fd %d", fd);
		bool connected = getpeername(fd, (struct sockaddr *)&peer, &lp) == 0;
		if (domain != AF_UNIX || (type != SOCK_STREAM && type != SOCK_SEQPACKET) || listening || !connected)
			die(EXIT_LAUNCHER,
			    "fd %d is a socket (family %d, type %d%s) the command could send or connect through "
			    "to places its own sockets cannot reach; give it a pipe, a file or a terminal instead",
			    fd, domain, type, listening ? ", listening" : connected ? "" : ", not connected");
	}
}

static void socket_block(struct bpf_asm *a, enum seccomp_profile profile)
{
	int skip = label(a), deny = label(a), family_ok = label(a), allow = label(a);
	jump(a, BPF_JEQ, __NR_socket, NEXT, skip);
	ld_arg(a, 0); /* domain */
	if (profile == SECCOMP_AGENT) {
		jump(a, BPF_JEQ, AF_INET, family_ok, NEXT);
		jump(a, BPF_JEQ, AF_INET6, family_ok, deny);
	} else {
		jump(a, BPF_JEQ, AF_UNIX, family_ok, deny);
	}
	here(a, family_ok);
	ld_arg(a, 1); /* type, minus the two flag bits */
	emit(a, BPF_ALU | BPF_AND | BPF_K, ~(uint32_t)(SOCK_NONBLOCK | SOCK_CLOEXEC));
	jump(a, BPF_JEQ, SOCK_STREAM, NEXT, deny);
	ld_arg(a, 2); /* protocol: MPTCP (262) and SCTP are not TCP */
	if (profile == SECCOMP_AGENT) {
		jump(a, BPF_JEQ, 0, allow, NEXT);
		jump(a, BPF_JEQ, IPPROTO_TCP, allow, deny);
	} else {
		jump(a, BPF_JEQ, 0, allow, deny);
	}
	here(a, allow);
	ret(a, SECCOMP_RET_ALLOW);
	here(a, deny);
	ret(a, ERRNO(EPERM));
	here(a, skip);
}

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef __NR_openat2
#define __NR_openat2 437
#endif

/* No set-user/group-ID bit on any file the command makes: as root its
 * writes land as the owner of the workspace (idmap.c), so a setuid file
 * there would be the owner's (root's) outside. The mount is nosuid inside;
 * this keeps the bit off the disk. openat2() carries its mode in memory
 * BPF cannot read: ENOSYS, and libc's open() never needs it. */
static void setid_block(struct bpf_asm *a)
{
	const uint32_t setid = 06000; /* S_ISUID | S_ISGID */
	static const int mode_arg[][2] = {
#ifdef __NR_chmod
		{ __NR_chmod, 1 }, { __NR_creat, 1 }, { __NR_open, 2 }, { __NR_mknod, 1 },
#endif
		{ __NR_fchmod, 1 }, { __NR_fchmodat, 2 }, { __NR_fchmodat2, 2 }, { __NR_openat, 3 },
		{ __NR_mknodat, 2 },
	};
	for (size_t i = 0; i < sizeof mode_arg / sizeof *mode_arg; i++)
		deny_if_any_bit(a, mode_arg[i][0], mode_arg[i][1], setid, EPERM);
	int skip = label(a);
	jump(a, BPF_JEQ, __NR_openat2, NEXT, skip);
	ret(a, ERRNO(ENOSYS));
	here(a, skip);
}

static void build(struct bpf_asm *a, enum seccomp_profile profile)
{
	int kill = label(a);
	emit(a, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	jump(a, BPF_JEQ, GH_AUDIT_ARCH, NEXT, kill);
	ld_nr(a);
#ifdef GH_X32_SYSCALL_BIT
	jump(a, BPF_JGE, GH_X32_SYSCALL_BIT, kill, NEXT);
#endif
	for (size_t i = 0; i < sizeof denied / sizeof *denied; i++) {
		int skip = label(a);
		jump(a, BPF_JEQ, (uint32_t)denied[i], NEXT, skip);
		ret(a, ERRNO(EPERM));
		here(a, skip);
	}
	{
		int skip = label(a);
		jump(a, BPF_JEQ, __NR_clone3, NEXT, skip);
		ret(a, ERRNO(ENOSYS));
		here(a, skip);
	}
	deny_if_any_bit(a, __NR_clone, 0, CLONE_NEW_MASK, EPERM);
	if (profile == SECCOMP_AGENT)
		setid_block(a);
	socket_block(a, profile);
	socketpair_block(a);
	static const uint32_t persona_query[] = { 0 /* PER_LINUX */, 0xffffffffU /* query */ };
	allow_only_values(a, __NR_personality, 0, persona_query, 2, EPERM);
	deny_if_any_bit(a, __NR_sendto, 3, MSG_FASTOPEN, EPERM);
	deny_if_any_bit(a, __NR_sendmsg, 2, MSG_FASTOPEN, EPERM);
	deny_if_any_bit(a, __NR_sendmmsg, 3, MSG_FASTOPEN, EPERM);
	{
		/* TIOCSTI pushes input into a terminal; TIOCLINUX can too. */
		int skip = label(a), deny = label(a);
		jump(a, BPF_JEQ, __NR_ioctl, NEXT, skip);
		ld_arg(a, 1);
		jump(a, BPF_JEQ, TIOCSTI, deny, NEXT);
		jump(a, BPF_JEQ, TIOCLINUX, deny, NEXT);
		ret(a, SECCOMP_RET_ALLOW);
		here(a, deny);
		ret(a, ERRNO(EPERM));
		here(a, skip);
	}
	ret(a, SECCOMP_RET_ALLOW);
	here(a, kill);
	ret(a, SECCOMP_RET_KILL_PROCESS);
	link_program(a);
}

bool seccomp_available(void)
{
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0)
		return false;
	uint32_t action = SECCOMP_RET_KILL_PROCESS;
	return syscall(__NR_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

void seccomp_apply(enum seccomp_profile profile)
{
	static struct bpf_asm a; /* static: ~3 KiB, and the program must outlive nothing */
	if (profile == SECCOMP_AGENT)
		refuse_open_sockets_on_stdio();
	memset(&a, 0, sizeof a);
	build(&a, profile);
	struct sock_fprog prog = { .len = (unsigned short)a.n, .filter = a.insn };
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		die(EXIT_LAUNCHER, "no_new_privs must be set before seccomp");
	if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		die_errno(EXIT_LAUNCHER, "seccomp(SECCOMP_SET_MODE_FILTER)");
}
