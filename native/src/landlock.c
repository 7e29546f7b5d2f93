/* Landlock: filesystem rules mirroring the mounts, TCP connect to the relay
 * port only, no TCP bind, abstract unix sockets and signals scoped.
 * The system's <linux/landlock.h> may predate ABI 4, so everything past
 * ABI 3 is defined here, and the syscalls are called by number.
 * ABI history: 1 fs (Linux 5.13), 2 REFER (5.19), 3 TRUNCATE (6.2),
 * 4 TCP bind/connect (6.7), 5 IOCTL_DEV (6.10), 6 scopes (6.12), 7 audit (6.15). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif
/* enum landlock_rule_type cannot be #ifndef-tested; own names instead. */
#define GH_RULE_PATH_BENEATH 1
#define GH_RULE_NET_PORT 2

/* Full-size copies of the uapi structs (the kernel accepts a larger struct
 * as long as the fields it does not know are zero). */
struct gh_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};
struct gh_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));
struct gh_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};

#define FS_ABI1 ((1ULL << 13) - 1) /* EXECUTE .. MAKE_SYM */
#define FS_FILE_ONLY                                                                               \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |   \
	 LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)

int landlock_kernel_abi(void)
{
	long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return abi < 0 ? 0 : (int)abi;
}

/* The kernel's ABI, lowered (never raised) by the test switch. */
int landlock_effective_abi(void)
{
	int abi = landlock_kernel_abi();
	const char *sim = getenv(SIMULATE_ABI_ENV);
	if (sim && *sim) {
		char *end;
		long v = strtol(sim, &end, 10);
		if (*end || v < 0)
			die(EXIT_LAUNCHER, "%s=%s: expected a number >= 0", SIMULATE_ABI_ENV, sim);
		if (v < abi)
			abi = (int)v;
	}
	return abi;
}

static uint64_t handled_fs(int abi)
{
	uint64_t fs = FS_ABI1;
	if (abi >= 2)
		fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return fs;
}

static const struct {
	int abi;
	const char *what;
} features[] = {
	{ 2, "REFER (renaming/linking across directories; ABI 2, Linux 5.19)" },
	{ 3, "TRUNCATE (ABI 3, Linux 6.2)" },
	{ 4, "TCP bind/connect rules: LANDLOCK_ACCESS_NET_BIND_TCP, LANDLOCK_ACCESS_NET_CONNECT_TCP (ABI 4, Linux 6.7)" },
	{ 5, "IOCTL_DEV (ioctl on device files; ABI 5, Linux 6.10)" },
	{ 6, "scoping: LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, LANDLOCK_SCOPE_SIGNAL (ABI 6, Linux 6.12)" },
};

void landlock_describe_missing(int abi, int required, char *buf, size_t len)
{
	buf[0] = '\0';
	size_t used = 0;
	for (size_t i = 0; i < sizeof features / sizeof *features; i++) {
		if (features[i].abi <= abi || features[i].abi > required)
			continue;
		int n = snprintf(buf + used, len - used, "%s%s", used ? "; " : "", features[i].what);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
}

static uint64_t rights_for(enum fs_kind kind, uint64_t handled)
{
	const uint64_t rw = handled & ~(LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK);
	switch (kind) {
	case FS_ROOT:
		return LANDLOCK_ACCESS_FS_READ_DIR;
	case FS_RO:
		return (FS_READ | LANDLOCK_ACCESS_FS_EXECUTE) & handled;
	case FS_RW:
		return rw;
	case FS_DEV:
		return (FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
			LANDLOCK_ACCESS_FS_IOCTL_DEV) & handled;
	case FS_PROC:
		return FS_READ;
	}
	return 0;
}

static int create_ruleset(int abi, uint64_t fs, bool net, bool scoped)
{
	struct gh_ruleset_attr attr = { .handled_access_fs = fs };
	if (net && abi >= 4)
		attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
	if (scoped && abi >= 6)
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
	int fd = (int)syscall(__NR_landlock_create_ruleset, &attr, sizeof attr, 0);
	if (fd < 0)
		die_errno(EXIT_LAUNCHER, "landlock_create_ruleset");
	return fd;
}

static void restrict_self(int ruleset)
{
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		die(EXIT_LAUNCHER, "no_new_privs must be set before Landlock");
	if (syscall(__NR_landlock_restrict_self, ruleset, 0) < 0)
		die_errno(EXIT_LAUNCHER, "landlock_restrict_self");
	close(ruleset);
}

void landlock_apply_agent(const struct plan *p)
{
	const int abi = p->landlock_abi;
	const uint64_t fs = handled_fs(abi);
	int rs = create_ruleset(abi, fs, true, true);

	for (size_t i = 0; i < p->n_rules; i++) {
		int fd = open(p->rules[i].path, O_PATH | O_CLOEXEC);
		if (fd < 0)
			die_errno(EXIT_LAUNCHER, "landlock: open %s", p->rules[i].path);
		struct stat st;
		if (fstat(fd, &st) < 0)
			die_errno(EXIT_LAUNCHER, "landlock: fstat %s", p->rules[i].path);
		uint64_t allowed = rights_for(p->rules[i].kind, fs);
		if (!S_ISDIR(st.st_mode))
			allowed &= FS_FILE_ONLY;
		struct gh_path_beneath_attr pb = { .allowed_access = allowed, .parent_fd = fd };
		if (allowed && syscall(__NR_landlock_add_rule, rs, GH_RULE_PATH_BENEATH, &pb, 0) < 0)
			die_errno(EXIT_LAUNCHER, "landlock_add_rule %s", p->rules[i].path);
		close(fd);
	}
	if (abi >= 4) {
		struct gh_net_port_attr np = { .allowed_access = LANDLOCK_ACCESS_NET_CONNECT_TCP, .port = p->port };
		if (syscall(__NR_landlock_add_rule, rs, GH_RULE_NET_PORT, &np, 0) < 0)
			die_errno(EXIT_LAUNCHER, "landlock_add_rule tcp connect %u", p->port);
	}
	restrict_self(rs);
}

/* The relay opens no file and makes no TCP connection or bind: it only
 * accepts on its inherited listeners and connects to a unix socket path
 * (which Landlock, up to ABI 7, does not mediate). */
void landlock_apply_relay(const struct plan *p)
{
	if (p->landlock_abi < 1)
		die(EXIT_UNAVAILABLE, "Landlock is not available");
	int rs = create_ruleset(p->landlock_abi, handled_fs(p->landlock_abi), true, true);
	restrict_self(rs);
}
