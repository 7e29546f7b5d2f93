/* --probe: one JSON object saying what this kernel offers, for
 * `gatehouse doctor`. Namespaces are tried in a throw-away child. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif

enum { NS_USER = 1, NS_NET = 2, NS_MNT = 4, NS_PID = 8, NS_IPC = 16, NS_UTS = 32, NS_CGROUP = 64 };

static int try_namespaces(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		int ok = 0;
		if (unshare(CLONE_NEWUSER) == 0)
			ok |= NS_USER;
		/* Unprivileged, the rest needs the user namespace first. */
		if (geteuid() != 0 && !(ok & NS_USER))
			_exit(0);
		static const struct {
			int flag, bit;
		} each[] = {
			{ CLONE_NEWNET, NS_NET },   { CLONE_NEWNS, NS_MNT }, { CLONE_NEWPID, NS_PID },
			{ CLONE_NEWIPC, NS_IPC },   { CLONE_NEWUTS, NS_UTS }, { CLONE_NEWCGROUP, NS_CGROUP },
		};
		for (size_t i = 0; i < sizeof each / sizeof *each; i++)
			if (unshare(each[i].flag) == 0)
				ok |= each[i].bit;
		_exit(ok);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 0;
}

static bool syscall_exists(long nr)
{
	/* Invalid arguments: EBADF/EINVAL when present, ENOSYS when not. */
	long r = syscall(nr, -1, 0, 0, 0, 0);
	return !(r < 0 && errno == ENOSYS);
}

static void json_bool(const char *k, bool v, bool comma)
{
	printf("\"%s\":%s%s", k, v ? "true" : "false", comma ? "," : "");
}

static void json_str(const char *k, const char *v, bool comma)
{
	printf("\"%s\":\"", k);
	for (const unsigned char *c = (const unsigned char *)v; *c; c++)
		if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if (*c < 0x20 || *c == 0x7f)
			printf("\\u%04x", *c);
		else
			putchar(*c);
	printf("\"%s", comma ? "," : "");
}

/* Which per-sandbox limit a launch by this user would get (cgroup.c). */
static void print_limits(bool root)
{
	char detail[512];
	enum cgroup_mode mode;
	cgroup_describe(detail, sizeof detail, &mode);
	const char *mech = mode == CGROUP_V2 ? "cgroup-v2" : mode == CGROUP_V1 ? "cgroup-v1" : root ? "session-uid" : "rlimit-per-user";
	printf("\"limits\":{");
	json_str("mechanism", mech, true);
	json_str("detail", detail, true);
	json_bool("sessionUid", root, false);
	printf("},");
}

int doctor_run(void)
{
	const int kernel_abi = landlock_kernel_abi();
	const int abi = landlock_effective_abi();
	const int ns = try_namespaces();
	const bool root = geteuid() == 0;
	const bool seccomp = seccomp_available();
	const bool mount_setattr = syscall_exists(__NR_mount_setattr);
	const bool close_range = syscall_exists(__NR_close_range);
	const bool pidfd = syscall_exists(__NR_pidfd_open);
	struct utsname u;
	if (uname(&u) < 0)
		memset(&u, 0, sizeof u);

	const char *missing[16];
	int n_missing = 0;
	char landlock_msg[512];
	if (abi < 1) {
		missing[n_missing++] = "Landlock is not available (CONFIG_SECURITY_LANDLOCK, lsm= boot parameter)";
	} else if (abi < LANDLOCK_ABI_REQUIRED) {
		char what[400];
		landlock_describe_missing(abi, LANDLOCK_ABI_REQUIRED, what, sizeof what);
		snprintf(landlock_msg, sizeof landlock_msg, "Landlock ABI %d < %d: missing %s", abi,
			 LANDLOCK_ABI_REQUIRED, what);
		missing[n_missing++] = landlock_msg;
	}
	if (!root && !(ns & NS_USER))
		missing[n_missing++] = "unprivileged user namespaces";
	if (!(ns & NS_NET))
		missing[n_missing++] = "network namespaces";
	if (!(ns & NS_MNT))
		missing[n_missing++] = "mount namespaces";
	if (!(ns & NS_PID))
		missing[n_missing++] = "pid namespaces";
	if (!(ns & NS_IPC) || !(ns & NS_UTS) || !(ns & NS_CGROUP))
		missing[n_missing++] = "ipc/uts/cgroup namespaces";
	if (!seccomp)
		missing[n_missing++] = "seccomp filters (with SECCOMP_RET_KILL_PROCESS)";
	if (!mount_setattr)
		missing[n_missing++] = "mount_setattr (Linux 5.12)";
	if (!close_range)
		missing[n_missing++] = "close_range (Linux 5.9)";
	if (!pidfd)
		missing[n_missing++] = "pidfd_open (Linux 5.3)";

	printf("{\"version\":\"%s\",\"arch\":\"%s\",\"kernel\":\"%s\",\"euid\":%u,", GH_VERSION, u.machine,
	       u.release, (unsigned)geteuid());
	printf("\"landlock\":{\"abi\":%d,\"kernelAbi\":%d,\"required\":%d,\"simulated\":%s},", abi, kernel_abi,
	       LANDLOCK_ABI_REQUIRED, abi != kernel_abi ? "true" : "false");
	print_limits(root);
	json_bool("userns", ns & NS_USER, true);
	json_bool("netns", ns & NS_NET, true);
	json_bool("mountns", ns & NS_MNT, true);
	json_bool("pidns", ns & NS_PID, true);
	json_bool("ipcns", ns & NS_IPC, true);
	json_bool("utsns", ns & NS_UTS, true);
	json_bool("cgroupns", ns & NS_CGROUP, true);
	json_bool("seccomp", seccomp, true);
	json_bool("mountSetattr", mount_setattr, true);
	json_bool("closeRange", close_range, true);
	json_bool("pidfd", pidfd, true);
	json_bool("ok", n_missing == 0, true);
	json_bool("weakerPossible", n_missing == 1 && abi >= 1 && abi < LANDLOCK_ABI_REQUIRED, true);
	printf("\"missing\":[");
	for (int i = 0; i < n_missing; i++)
		printf("%s\"%s\"", i ? "," : "", missing[i]); /* fixed ASCII strings: no escaping needed */
	printf("]}\n");
	fflush(stdout);
	return n_missing == 0 ? 0 : EXIT_UNAVAILABLE;
}
