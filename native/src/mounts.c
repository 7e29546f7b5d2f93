/* The command's filesystem: a new root built from bind mounts, as bubblewrap
 * does it. Runs in init, in its fresh mount namespace:
 *
 *   / rprivate -> tmpfs "base" on /tmp -> pivot_root(base, base/oldroot)
 *   -> tmpfs /newroot with: system dirs ro, /tmp tmpfs, /dev, /proc, binds
 *   -> detach /oldroot -> pivot_root(/newroot) and drop base -> / read-only
 *
 * Sources are read through /oldroot, so nothing of the host stays reachable
 * once it is detached: not the home directories, not /run, not a socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "mountapi.h"
#include "sandbox.h"

#define NEWROOT "/newroot"
#define OLDROOT "/oldroot"

static const char *const system_dirs[] = {
	"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
};
static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };

static void add_rule(struct plan *p, const char *path, enum fs_kind kind)
{
	p->rules = realloc(p->rules, (p->n_rules + 1) * sizeof *p->rules);
	char *copy = strdup(path);
	if (!p->rules || !copy)
		die_errno(EXIT_LAUNCHER, "alloc");
	p->rules[p->n_rules++] = (struct fs_rule){ .path = copy, .kind = kind };
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data)
{
	if (mount(src, dst, type, flags, data) < 0)
		die_errno(EXIT_LAUNCHER, "mount %s on %s", src ? src : "(none)", dst);
}

/* mount_setattr(2) makes a bind and all its submounts read-only (or nosuid,
 * nodev, noexec) in one call; MS_REMOUNT would need one call per submount. */
static void set_attr(const char *path, uint64_t attrs, bool recursive)
{
	struct gh_mount_attr a = { .attr_set = attrs };
	if (syscall(__NR_mount_setattr, AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &a, sizeof a) < 0)
		die_errno(EXIT_LAUNCHER, "mount_setattr %s", path);
}

static void make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		die_errno(EXIT_LAUNCHER, "mkdir %s", path);
}

/* Create the mount point for `inside` under NEWROOT, refusing to walk
 * through a symlink (a bind could otherwise land somewhere unexpected). */
static void make_mountpoint(const char *inside, bool is_dir)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s%s", NEWROOT, inside) >= (int)sizeof path)
		die(EXIT_LAUNCHER, "path too long: %s", inside);
	for (char *s = path + strlen(NEWROOT) + 1;; s++) {
		bool last = (*s == '\0');
		if (*s != '/' && !last)
			continue;
		*s = '\0';
		struct stat st;
		if (lstat(path, &st) == 0) {
			if (S_ISLNK(st.st_mode))
				die(EXIT_LAUNCHER, "mount point %s goes through a symlink", path + strlen(NEWROOT));
			if (!last && !S_ISDIR(st.st_mode))
				die(EXIT_LAUNCHER, "mount point parent %s is not a directory", path + strlen(NEWROOT));
		} else if (errno != ENOENT) {
			die_errno(EXIT_LAUNCHER, "lstat %s", path);
		} else if (!last || is_dir) {
			make_dir(path, 0755);
		} else {
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
			if (fd < 0)
				die_errno(EXIT_LAUNCHER, "create mount point %s", path);
			close(fd);
		}
		if (last)
			return;
		*s = '/';
	}
}

/* The source of a bind, opened without following any symlink. Plan paths
 * are canonical: a symlink here now means someone (an agent sharing the
 * workspace's parent) swapped a component since, and a bind that followed
 * it would mount whatever it points to, writable. */
static int open_source(const char *inside)
{
	char src[PATH_MAX];
	if (snprintf(src, sizeof src, "%s%s", OLDROOT, inside) >= (int)sizeof src)
		die(EXIT_LAUNCHER, "path too long: %s", inside);
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS };
	int fd = (int)syscall(__NR_openat2, AT_FDCWD, src, &how, sizeof how);
	if (fd < 0 && errno == ELOOP)
		die(EXIT_LAUNCHER, "%s goes through a symlink now (it did not when the plan was made): refusing to follow it", inside);
	if (fd < 0)
		die_errno(EXIT_LAUNCHER, "open %s", inside);
	return fd;
}

/* Attach a detached mount tree at `inside` under NEWROOT, through an fd of
 * the mount point opened without following symlinks. */
static void attach_tree(int tree, const char *inside, bool is_dir)
{
	char dst[PATH_MAX];
	snprintf(dst, sizeof dst, "%s%s", NEWROOT, inside);
	make_mountpoint(inside, is_dir);
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS };
	int at = (int)syscall(__NR_openat2, AT_FDCWD, dst, &how, sizeof how);
	if (at < 0)
		die_errno(EXIT_LAUNCHER, "open mount point %s", inside);
	if (syscall(__NR_move_mount, tree, "", at, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		die_errno(EXIT_LAUNCHER, "move_mount %s", inside);
	close(at);
}

static void bind_path(const char *inside, bool writable)
{
	int src = open_source(inside);
	int tree = (int)syscall(__NR_open_tree, src, "", OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
	if (tree < 0)
		die_errno(EXIT_LAUNCHER, "open_tree %s", inside);
	close(src);
	struct stat st;
	if (fstat(tree, &st) < 0)
		die_errno(EXIT_LAUNCHER, "stat %s", inside);
	struct gh_mount_attr a = { .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (writable ? 0 : MOUNT_ATTR_RDONLY) };
	if (syscall(__NR_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0)
		die_errno(EXIT_LAUNCHER, "mount_setattr %s", inside);
	attach_tree(tree, inside, S_ISDIR(st.st_mode));
	close(tree);
}

/* A writable bind as root: a detached clone of the tree, idmapped so that
 * the command's ids are the owner's on disk (idmap.c), then attached. The
 * owner is checked again on the clone itself, so a change of owner since
 * the mapping was made cannot hand the command someone else's files. */
static void bind_idmapped(const struct bind *b)
{
	int src = open_source(b->path);
	int tree = (int)syscall(__NR_open_tree, src, "", OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
	if (tree < 0)
		die_errno(EXIT_LAUNCHER, "open_tree %s", b->path);
	close(src);
	struct stat st;
	if (fstat(tree, &st) < 0)
		die_errno(EXIT_LAUNCHER, "stat %s", b->path);
	if (st.st_uid != b->owner_uid || st.st_gid != b->owner_gid)
		die(EXIT_LAUNCHER, "%s changed owner during setup", b->path);
	struct gh_mount_attr a = { .attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
				   .userns_fd = (uint64_t)b->idmap_userns_fd };
	if (syscall(__NR_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0) {
		if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
			char fix[128];
			snprintf(fix, sizeof fix, b->owner_uid ? "run gatehouse as its owner (uid %u), not as root"
							     : "chown it to the user who runs the agent and run gatehouse as that user",
				 (unsigned)b->owner_uid);
			die_errno(EXIT_UNAVAILABLE,
				  "%s: cannot make an idmapped mount (its filesystem, or one mounted below it, does "
				  "not support them: Linux >= 5.12 with ext4, xfs, btrfs, or tmpfs >= 6.3). As root "
				  "the agent has a uid of its own and writes as the owner (uid %u) only through one: "
				  "move the path to such a filesystem, or %s",
				  b->path, (unsigned)b->owner_uid, fix);
		}
		die_errno(EXIT_LAUNCHER, "mount_setattr(MOUNT_ATTR_IDMAP) %s", b->path);
	}
	attach_tree(tree, b->path, S_ISDIR(st.st_mode));
	close(tree);
}

static void copy_symlink(const char *inside)
{
	char src[PATH_MAX], dst[PATH_MAX], target[PATH_MAX];
	snprintf(src, sizeof src, "%s%s", OLDROOT, inside);
	snprintf(dst, sizeof dst, "%s%s", NEWROOT, inside);
	ssize_t n = readlink(src, target, sizeof target - 1);
	if (n < 0)
		die_errno(EXIT_LAUNCHER, "readlink %s", inside);
	target[n] = '\0';
	if (symlink(target, dst) < 0)
		die_errno(EXIT_LAUNCHER, "symlink %s", inside);
}

static void setup_system_dirs(struct plan *p)
{
	for (size_t i = 0; i < sizeof system_dirs / sizeof *system_dirs; i++) {
		const char *d = system_dirs[i];
		char src[PATH_MAX];
		snprintf(src, sizeof src, "%s%s", OLDROOT, d);
		struct stat st;
		if (lstat(src, &st) < 0) {
			if (errno == ENOENT)
				continue;
			die_errno(EXIT_LAUNCHER, "lstat %s", d);
		}
		if (S_ISLNK(st.st_mode)) {
			copy_symlink(d); /* merged /usr: /bin -> usr/bin */
		} else if (S_ISDIR(st.st_mode)) {
			bind_path(d, false);
			add_rule(p, d, FS_RO);
		}
	}
}

static void setup_tmp(struct plan *p)
{
	char opts[96];
	snprintf(opts, sizeof opts, "mode=1777,size=%lum,nr_inodes=262144", p->tmp_size_mib);
	make_dir(NEWROOT "/tmp", 0755);
	do_mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts);
	add_rule(p, "/tmp", FS_RW);
}

static void setup_dev(struct plan *p)
{
	make_dir(NEWROOT "/dev", 0755);
	do_mount("tmpfs", NEWROOT "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64");
	for (size_t i = 0; i < sizeof dev_nodes / sizeof *dev_nodes; i++) {
		char src[PATH_MAX], dst[PATH_MAX];
		snprintf(src, sizeof src, OLDROOT "/dev/%s", dev_nodes[i]);
		snprintf(dst, sizeof dst, NEWROOT "/dev/%s", dev_nodes[i]);
		int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
		if (fd < 0)
			die_errno(EXIT_LAUNCHER, "create %s", dst);
		close(fd);
		do_mount(src, dst, NULL, MS_BIND, NULL);
		/* Device nodes stay writable on a read-only mount; keep them usable
		 * as devices (no nodev) but not as a place for anything else. */
		set_attr(dst, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, false);
	}
	static const char *const links[][2] = {
		{ "/proc/self/fd", NEWROOT "/dev/fd" },   { "/proc/self/fd/0", NEWROOT "/dev/stdin" },
		{ "/proc/self/fd/1", NEWROOT "/dev/stdout" }, { "/proc/self/fd/2", NEWROOT "/dev/stderr" },
		{ "pts/ptmx", NEWROOT "/dev/ptmx" },
	};
	for (size_t i = 0; i < sizeof links / sizeof *links; i++)
		if (symlink(links[i][0], links[i][1]) < 0)
			die_errno(EXIT_LAUNCHER, "symlink %s", links[i][1]);
	make_dir(NEWROOT "/dev/pts", 0755);
	do_mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
	make_dir(NEWROOT "/dev/shm", 0755);
	do_mount("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=64m");
	set_attr(NEWROOT "/dev", MOUNT_ATTR_RDONLY, false);
	add_rule(p, "/dev", FS_DEV);
	add_rule(p, "/dev/shm", FS_RW);
}

static void setup_proc(struct plan *p)
{
	/* A fresh procfs shows only the new pid namespace. It must be mounted
	 * while the host's /proc is still visible (mount_too_revealing()). */
	make_dir(NEWROOT "/proc", 0755);
	do_mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	add_rule(p, "/proc", FS_PROC);
}

void mounts_setup(struct plan *p)
{
	/* Nothing we do may propagate back to the host's mount namespace. */
	do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k,nr_inodes=64");
	if (chdir("/tmp") < 0)
		die_errno(EXIT_LAUNCHER, "chdir base");
	make_dir("newroot", 0755);
	make_dir("oldroot", 0755);
	if (syscall(SYS_pivot_root, "/tmp", "/tmp/oldroot") < 0)
		die_errno(EXIT_LAUNCHER, "pivot_root to base");
	if (chdir("/") < 0)
		die_errno(EXIT_LAUNCHER, "chdir /");

	do_mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=4096");
	add_rule(p, "/", FS_ROOT);
	setup_system_dirs(p);
	setup_tmp(p);
	setup_dev(p);
	setup_proc(p);
#ifdef GH_TEST_HOOKS
	/* Test builds only (the ASan one): hold here so a test can swap a bind
	 * source for a symlink after the plan was made. */
	const char *hold = getenv("GATEHOUSE_SANDBOX_TEST_HOLD_BEFORE_BINDS_MS");
	if (hold) {
		warnx_("test hook: holding before binds");
		usleep((useconds_t)strtoul(hold, NULL, 10) * 1000);
	}
	/* Test builds only: --ro binds left writable, so that Landlock alone
	 * must refuse the writes (test/sandbox/layers.test.ts). */
	const bool ro_mount_off = getenv("GATEHOUSE_SANDBOX_TEST_NO_RO_MOUNT") != NULL;
	if (ro_mount_off)
		warnx_("test hook: --ro binds mounted writable (Landlock alone guards them)");
#else
	const bool ro_mount_off = false;
#endif
	for (size_t i = 0; i < p->n_binds; i++) {
		if (p->binds[i].idmap_userns_fd >= 0)
			bind_idmapped(&p->binds[i]);
		else
			bind_path(p->binds[i].path, p->binds[i].writable || ro_mount_off);
		add_rule(p, p->binds[i].path, p->binds[i].writable ? FS_RW : FS_RO);
	}
	/* Read-only .git, shell and editor config inside writable roots. */
	mounts_protect(p, NEWROOT);

	if (umount2(OLDROOT, MNT_DETACH) < 0)
		die_errno(EXIT_LAUNCHER, "detach old root");
	/* pivot_root(".", ".") stacks base on top of newroot; detach it. */
	if (chdir(NEWROOT) < 0)
		die_errno(EXIT_LAUNCHER, "chdir newroot");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die_errno(EXIT_LAUNCHER, "pivot_root to newroot");
	if (umount2(".", MNT_DETACH) < 0)
		die_errno(EXIT_LAUNCHER, "detach base");
	if (chdir("/") < 0)
		die_errno(EXIT_LAUNCHER, "chdir /");
	set_attr("/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, false);
}
