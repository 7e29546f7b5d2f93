/* Credentials, capabilities and resource limits. The command ends with no
 * capability in any set (bounding, ambient, permitted, effective,
 * inheritable) and an unprivileged uid; this is verified, not assumed. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

static void drop_bounding_and_ambient(void)
{
	for (int cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break; /* past CAP_LAST_CAP */
			die_errno(EXIT_LAUNCHER, "PR_CAPBSET_READ %d", cap);
		}
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			die_errno(EXIT_LAUNCHER, "PR_CAPBSET_DROP %d", cap);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		die_errno(EXIT_LAUNCHER, "PR_CAP_AMBIENT_CLEAR_ALL");
}

static void clear_cap_sets(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
	if (syscall(SYS_capset, &h, d) < 0)
		die_errno(EXIT_LAUNCHER, "capset(all empty)");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		die_errno(EXIT_LAUNCHER, "PR_SET_KEEPCAPS 0");
}

void privs_check_clean(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		die_errno(EXIT_LAUNCHER, "capget");
	for (int i = 0; i < 2; i++)
		if (d[i].effective || d[i].permitted || d[i].inheritable)
			die(EXIT_LAUNCHER, "capabilities still present after drop");
	for (int cap = 0; cap < 64; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (r < 0)
			break;
		if (r > 0)
			die(EXIT_LAUNCHER, "bounding capability %d still present after drop", cap);
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) > 0)
			die(EXIT_LAUNCHER, "ambient capability %d still present after drop", cap);
	}
}

void privs_drop_caps_keep_uid(void)
{
	drop_bounding_and_ambient();
	clear_cap_sets();
	privs_check_clean();
}

void privs_drop_to_agent(const struct plan *p)
{
	drop_bounding_and_ambient();
	if (p->as_root) {
		if (setgroups(0, NULL) < 0)
			die_errno(EXIT_LAUNCHER, "setgroups(0)");
		if (setresgid(p->gid, p->gid, p->gid) < 0)
			die_errno(EXIT_LAUNCHER, "setresgid(%u)", (unsigned)p->gid);
		if (setresuid(p->uid, p->uid, p->uid) < 0)
			die_errno(EXIT_LAUNCHER, "setresuid(%u)", (unsigned)p->uid);
	}
	/* Unprivileged, the ids were mapped 1:1 to (uid, gid) already. */
	clear_cap_sets();
	uid_t r, e, s;
	gid_t rg, eg, sg;
	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
		die_errno(EXIT_LAUNCHER, "getresuid");
	if (r != p->uid || e != p->uid || s != p->uid || rg != p->gid || eg != p->gid || sg != p->gid)
		die(EXIT_LAUNCHER, "ids are %u/%u, expected %u/%u", (unsigned)e, (unsigned)eg, (unsigned)p->uid,
		    (unsigned)p->gid);
	privs_check_clean();
}

static void cap_limit(int resource, rlim_t want, const char *name)
{
	struct rlimit rl;
	if (getrlimit(resource, &rl) < 0)
		die_errno(EXIT_LAUNCHER, "getrlimit %s", name);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		want = rl.rlim_max; /* only ever lower a limit */
	rl.rlim_cur = rl.rlim_max = want;
	if (setrlimit(resource, &rl) < 0)
		die_errno(EXIT_LAUNCHER, "setrlimit %s", name);
}

void privs_set_rlimits(const struct plan *p)
{
	cap_limit(RLIMIT_NPROC, p->max_procs, "RLIMIT_NPROC");
	cap_limit(RLIMIT_NOFILE, p->max_files, "RLIMIT_NOFILE");
	cap_limit(RLIMIT_CORE, 0, "RLIMIT_CORE");
}
