/* Per-sandbox resource limits: one cgroup leaf per sandbox (cgroup v2), or
 * one group per controller (v1), made by the launcher before init exists,
 * joined by init (through cgroup.procs fds opened here) before it forks
 * the command, and removed once init is reaped:
 *
 *   v2: <base>/gatehouse/<pid>-<start>   pids.max memory.max memory.swap.max cpu.weight
 *       base = /sys/fs/cgroup as root, else the caller's user@UID.service
 *   v1: /sys/fs/cgroup/{pids,memory,cpu}/gatehouse/<pid>-<start>
 *       pids.max memory.limit_in_bytes (+memsw) cpu.shares
 *
 * A leaf whose launcher (pid + start time) is gone is stale and removed by
 * the next launch. Limits given explicitly are required (no cgroup: exit
 * 124); the defaults apply where a cgroup can be made, and otherwise the
 * uid's RLIMIT_NPROC is what bounds the command (per session as root). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CG_MNT "/sys/fs/cgroup"
#define CG_PARENT "gatehouse"

enum { CTRL_PIDS, CTRL_MEMORY, CTRL_CPU, N_CTRL };
static const char *const ctrl_name[N_CTRL] = { "pids", "memory", "cpu" };
static const unsigned ctrl_bit[N_CTRL] = { LIMIT_PIDS, LIMIT_MEMORY, LIMIT_CPU };

static struct plan *owner_plan; /* for the atexit clean-up of the launcher */
static pid_t owner_pid;

static void join(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s/%s", a, b);
	if (n < 0 || (size_t)n >= len)
		die(EXIT_LAUNCHER, "cgroup: path too long: %s/%s", a, b);
}

static bool fs_is(const char *path, unsigned long magic)
{
	struct statfs s;
	return statfs(path, &s) == 0 && (unsigned long)s.f_type == magic;
}

static void why(struct plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why(struct plan *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->limits.why, sizeof p->limits.why, fmt, ap);
	va_end(ap);
}

/* Returns 0 or the errno of the failed step. */
static int try_write(const char *dir, const char *file, const char *value)
{
	char path[PATH_MAX];
	join(path, sizeof path, dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno;
	int err = write(fd, value, strlen(value)) < 0 ? errno : 0;
	if (close(fd) < 0 && !err)
		err = errno;
	return err;
}

static void must_write(const char *dir, const char *file, const char *value)
{
	int err = try_write(dir, file, value);
	if (err) {
		errno = err;
		die_errno(EXIT_LAUNCHER, "cgroup: write %s to %s/%s", value, dir, file);
	}
}

static bool read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *s = list; (s = strstr(s, word)); s += n)
		if ((s == list || s[-1] == ' ') && (s[n] == '\0' || s[n] == ' ' || s[n] == '\n'))
			return true;
	return false;
}

/* Field 22 of /proc/PID/stat (start time in ticks), 0 if there is no such process. */
static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (!read_small(path, buf, sizeof buf))
		return 0;
	char *s = strrchr(buf, ')');
	if (!s)
		return 0;
	unsigned long long t = 0;
	/* after ")": state(3) ppid ... starttime is the 20th field from state */
	if (sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &t) != 1)
		return 0;
	return t;
}

/* Removes leaves whose launcher is gone (killed before it could clean up). */
static void remove_stale(const char *parent)
{
	DIR *d = opendir(parent);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		int pid;
		unsigned long long t;
		char end;
		if (e->d_type != DT_DIR || sscanf(e->d_name, "%d-%llu%c", &pid, &t, &end) != 2 || pid <= 0)
			continue;
		if (start_time(pid) == t)
			continue;
		char path[PATH_MAX];
		join(path, sizeof path, parent, e->d_name);
		rmdir(path); /* EBUSY while something still runs in it: leave it */
	}
	closedir(d);
}

static bool make_dir_ok(const char *path)
{
	return mkdir(path, 0755) == 0 || errno == EEXIST;
}

static void leaf_name(char *buf, size_t len)
{
	snprintf(buf, len, "%d-%llu", (int)getpid(), start_time(getpid()));
}

static void add_leaf(struct plan *p, const char *dir)
{
	struct limits *l = &p->limits;
	char procs[PATH_MAX];
	join(procs, sizeof procs, dir, "cgroup.procs");
	l->leaf[l->n_leaf] = strdup(dir);
	if (!l->leaf[l->n_leaf])
		die_errno(EXIT_LAUNCHER, "strdup");
	l->procs_fd[l->n_leaf] = open(procs, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	l->n_leaf++;
	if (l->procs_fd[l->n_leaf - 1] < 0)
		die_errno(EXIT_LAUNCHER, "cgroup: open %s", procs);
}

/* The cgroup v2 directory we may create children in, or false (and why). */
static bool v2_base(struct plan *p, char *base, size_t len)
{
	if (!fs_is(CG_MNT, CGROUP2_SUPER_MAGIC)) {
		why(p, "%s is not a cgroup v2 hierarchy (v1 or hybrid)", CG_MNT);
		return false;
	}
	if (p->as_root) {
		snprintf(base, len, "%s", CG_MNT);
		return true;
	}
	char buf[4096], user[64];
	snprintf(user, sizeof user, "/user@%u.service", (unsigned)p->outer_uid);
	char *s, *at;
	if (!read_small("/proc/self/cgroup", buf, sizeof buf) || !(s = strstr(buf, "0::/")) ||
	    !(at = strstr(s, user))) {
		why(p, "not root, and not inside a systemd user manager (user@%u.service) that delegates cgroups",
		    (unsigned)p->outer_uid);
		return false;
	}
	at[strlen(user)] = '\0';
	snprintf(base, len, "%s%s", CG_MNT, s + 3);
	return true;
}

static bool try_v2(struct plan *p)
{
	struct limits *l = &p->limits;
	char base[PATH_MAX], parent[PATH_MAX], leaf[PATH_MAX], name[64], list[256], path[PATH_MAX];
	if (!v2_base(p, base, sizeof base))
		return false;
	join(parent, sizeof parent, base, CG_PARENT);
	if (!make_dir_ok(parent)) {
		why(p, "cannot create %s: %s", parent, strerror(errno));
		return false;
	}
	/* Enable the controllers for our children (the root may need it too). */
	for (int c = 0; c < N_CTRL; c++) {
		char plus[16];
		snprintf(plus, sizeof plus, "+%s", ctrl_name[c]);
		if (p->as_root)
			try_write(base, "cgroup.subtree_control", plus);
		try_write(parent, "cgroup.subtree_control", plus);
	}
	join(path, sizeof path, parent, "cgroup.subtree_control");
	if (!read_small(path, list, sizeof list))
		list[0] = '\0';
	for (int c = 0; c < N_CTRL; c++)
		if ((c == CTRL_PIDS || (l->explicit_ & ctrl_bit[c])) && !has_word(list, ctrl_name[c])) {
			why(p, "the %s controller is not delegated to %s", ctrl_name[c], parent);
			return false;
		}
	remove_stale(parent);
	leaf_name(name, sizeof name);
	join(leaf, sizeof leaf, parent, name);
	if (mkdir(leaf, 0755) < 0) {
		why(p, "cannot create %s: %s", leaf, strerror(errno));
		return false;
	}
	l->mode = CGROUP_V2;
	add_leaf(p, leaf);
	char v[32];
	snprintf(v, sizeof v, "%lu", l->pids_max);
	must_write(leaf, "pids.max", v);
	if (has_word(list, "memory")) {
		snprintf(v, sizeof v, "%llu", l->memory_max);
		must_write(leaf, "memory.max", v);
		int err = try_write(leaf, "memory.swap.max", "0"); /* no swapping past the limit */
		if (err && err != ENOENT)
			die_errno(EXIT_LAUNCHER, "cgroup: write %s/memory.swap.max", leaf);
	}
	if (has_word(list, "cpu")) {
		snprintf(v, sizeof v, "%lu", l->cpu_weight);
		must_write(leaf, "cpu.weight", v);
	}
	return true;
}

static bool try_v1(struct plan *p)
{
	struct limits *l = &p->limits;
	char name[64], leaf[N_CTRL][PATH_MAX];
	bool ok[N_CTRL] = { false };
	leaf_name(name, sizeof name);
	for (int c = 0; c < N_CTRL; c++) {
		char mnt[PATH_MAX], parent[PATH_MAX];
		join(mnt, sizeof mnt, CG_MNT, ctrl_name[c]);
		join(parent, sizeof parent, mnt, CG_PARENT);
		join(leaf[c], sizeof leaf[c], parent, name);
		if (!fs_is(mnt, CGROUP_SUPER_MAGIC)) {
			if (c == CTRL_PIDS || (l->explicit_ & ctrl_bit[c]))
				why(p, "no cgroup v1 %s hierarchy at %s", ctrl_name[c], mnt);
		} else if (!make_dir_ok(parent) || (remove_stale(parent), mkdir(leaf[c], 0755) < 0)) {
			if (c == CTRL_PIDS || (l->explicit_ & ctrl_bit[c]))
				why(p, "cannot create %s: %s", leaf[c], strerror(errno));
		} else {
			ok[c] = true;
			continue;
		}
		if (c == CTRL_PIDS || (l->explicit_ & ctrl_bit[c])) {
			for (int d = 0; d < c; d++)
				if (ok[d])
					rmdir(leaf[d]);
			return false;
		}
	}
	l->mode = CGROUP_V1;
	char v[32];
	for (int c = 0; c < N_CTRL; c++) {
		if (!ok[c])
			continue;
		add_leaf(p, leaf[c]);
		switch (c) {
		case CTRL_PIDS:
			snprintf(v, sizeof v, "%lu", l->pids_max);
			must_write(leaf[c], "pids.max", v);
			break;
		case CTRL_MEMORY: {
			snprintf(v, sizeof v, "%llu", l->memory_max);
			must_write(leaf[c], "memory.limit_in_bytes", v);
			int err = try_write(leaf[c], "memory.memsw.limit_in_bytes", v); /* no swap past it */
			if (err && err != ENOENT)
				die_errno(EXIT_LAUNCHER, "cgroup: write %s/memory.memsw.limit_in_bytes", leaf[c]);
			break;
		}
		case CTRL_CPU: {
			unsigned long shares = l->cpu_weight * 1024 / 100;
			snprintf(v, sizeof v, "%lu", shares < 2 ? 2 : shares);
			must_write(leaf[c], "cpu.shares", v);
			break;
		}
		}
	}
	return true;
}

static void cleanup_at_exit(void)
{
	if (owner_plan && getpid() == owner_pid)
		cgroup_remove(owner_plan);
}

void cgroup_setup(struct plan *p)
{
	const char *sim = getenv(SIMULATE_NO_CGROUP_ENV);
	if (sim && *sim && strcmp(sim, "0") != 0)
		why(p, "simulated by %s", SIMULATE_NO_CGROUP_ENV);
	else if (!try_v2(p)) {
		char v2_why[sizeof p->limits.why];
		memcpy(v2_why, p->limits.why, sizeof v2_why);
		if (!try_v1(p) && fs_is(CG_MNT, CGROUP2_SUPER_MAGIC))
			memcpy(p->limits.why, v2_why, sizeof v2_why); /* pure v2: its reason is the one */
	}
	if (p->limits.mode == CGROUP_NONE) {
		if (p->limits.explicit_)
			die(EXIT_UNAVAILABLE,
			    "--pids-max/--memory-max/--cpu-weight need a per-sandbox cgroup, and none can be made "
			    "here: %s. %s (see gatehouse doctor); or drop the flags to rely on RLIMIT_NPROC "
			    "(--max-procs)",
			    p->limits.why,
			    p->as_root ? "Mount cgroup v2 (or the v1 pids, memory and cpu hierarchies) at " CG_MNT
				       : "Run as root, or under a systemd user manager that delegates cgroup v2");
		return;
	}
	owner_plan = p;
	owner_pid = getpid();
	static bool registered;
	if (!registered && atexit(cleanup_at_exit) == 0)
		registered = true;
}

/* In init, before its cgroup namespace and before the command exists. */
void cgroup_join(const struct plan *p)
{
	const struct limits *l = &p->limits;
	for (size_t i = 0; i < l->n_leaf; i++) {
		if (write(l->procs_fd[i], "0", 1) != 1)
			die_errno(EXIT_LAUNCHER, "cgroup: join %s", l->leaf[i]);
		close(l->procs_fd[i]);
	}
}

void cgroup_close_fds(struct plan *p)
{
	struct limits *l = &p->limits;
	for (size_t i = 0; i < l->n_leaf; i++)
		if (l->procs_fd[i] >= 0) {
			close(l->procs_fd[i]);
			l->procs_fd[i] = -1;
		}
}

/* Once init is reaped, every process of its pid namespace is gone; the
 * kernel may still take a moment to drop them from a v2 cgroup. */
void cgroup_remove(struct plan *p)
{
	struct limits *l = &p->limits;
	cgroup_close_fds(p);
	for (size_t i = 0; i < l->n_leaf; i++) {
		for (int tries = 0; rmdir(l->leaf[i]) < 0 && errno == EBUSY && tries < 200; tries++)
			nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
		if (access(l->leaf[i], F_OK) == 0)
			warnx_("cgroup %s could not be removed (%s); the next launch removes it", l->leaf[i],
			       strerror(errno));
		free(l->leaf[i]);
		l->leaf[i] = NULL;
	}
	l->n_leaf = 0;
	owner_plan = NULL;
}

/* For --probe: which mechanism a launch by this user would use, without creating anything. */
const char *cgroup_describe(char *buf, size_t len, enum cgroup_mode *mode)
{
	const char *sim = getenv(SIMULATE_NO_CGROUP_ENV);
	struct plan p;
	memset(&p, 0, sizeof p);
	p.as_root = geteuid() == 0;
	p.outer_uid = geteuid();
	*mode = CGROUP_NONE;
	char base[PATH_MAX], list[256], path[PATH_MAX];
	if (sim && *sim && strcmp(sim, "0") != 0) {
		snprintf(buf, len, "simulated by %s", SIMULATE_NO_CGROUP_ENV);
	} else if (v2_base(&p, base, sizeof base)) {
		join(path, sizeof path, base, "cgroup.controllers");
		if (!read_small(path, list, sizeof list) || !has_word(list, "pids"))
			snprintf(buf, len, "the pids controller is not available in %s", base);
		else if (access(base, W_OK) < 0)
			snprintf(buf, len, "%s is not writable by uid %u", base, (unsigned)p.outer_uid);
		else {
			*mode = CGROUP_V2;
			snprintf(buf, len, "cgroup v2 leaf per sandbox under %s/%s (controllers: %.*s)", base,
				 CG_PARENT, (int)strcspn(list, "\n"), list);
		}
	} else if (fs_is(CG_MNT "/pids", CGROUP_SUPER_MAGIC)) {
		if (access(CG_MNT "/pids", W_OK) < 0)
			snprintf(buf, len, "cgroup v1 at %s is writable by root only", CG_MNT);
		else {
			*mode = CGROUP_V1;
			snprintf(buf, len, "cgroup v1 groups per sandbox under %s/{pids%s%s}/%s", CG_MNT,
				 fs_is(CG_MNT "/memory", CGROUP_SUPER_MAGIC) ? ",memory" : "",
				 fs_is(CG_MNT "/cpu", CGROUP_SUPER_MAGIC) ? ",cpu" : "", CG_PARENT);
		}
	} else {
		snprintf(buf, len, "%s", p.limits.why);
	}
	return buf;
}
