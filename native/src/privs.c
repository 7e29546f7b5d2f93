/* Credentials, capabilities and resource limits. The command ends with no
 * capability in any set (bounding, ambient, permitted, effective,
 * inheritable) and an unprivileged uid; this is verified, not assumed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

/* As root without --uid: a uid of this session's own, so that RLIMIT_NPROC
 * (and everything else keyed on the uid) is not shared with any other
 * sandbox. The lowest free slot of a documented range is held by an flock
 * on SESSION_UID_LOCK_DIR/uid-N for as long as the launcher lives. */
void privs_session_uid(struct plan *p)
{
	if (!p->as_root || p->uid_set)
		return;
	if (mkdir(SESSION_UID_LOCK_DIR, 0700) < 0 && errno != EEXIST)
		die_errno(EXIT_LAUNCHER, "mkdir %s", SESSION_UID_LOCK_DIR);
	int dir = open(SESSION_UID_LOCK_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (dir < 0 || fstat(dir, &st) < 0)
		die_errno(EXIT_LAUNCHER, "open %s", SESSION_UID_LOCK_DIR);
	if (st.st_uid != 0 || (st.st_mode & 022))
		die(EXIT_LAUNCHER, "%s must be owned by root and not group/other-writable", SESSION_UID_LOCK_DIR);
	for (unsigned long slot = 0; slot < SESSION_UID_COUNT; slot++) {
		char name[32];
		snprintf(name, sizeof name, "uid-%lu", slot);
		int fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			die_errno(EXIT_LAUNCHER, "open %s/%s", SESSION_UID_LOCK_DIR, name);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			close(dir);
			p->limits.uid_lock_fd = fd;
			p->uid = (uid_t)(SESSION_UID_BASE + slot);
			if (!p->gid_set)
				p->gid = (gid_t)(SESSION_UID_BASE + slot);
			return;
		}
		if (errno != EWOULDBLOCK)
			die_errno(EXIT_LAUNCHER, "flock %s/%s", SESSION_UID_LOCK_DIR, name);
		close(fd);
	}
	die(EXIT_LAUNCHER, "all %lu per-session uids are in use", SESSION_UID_COUNT);
}
