/* Mounts the protected paths that protect.c chose, inside the new root
 * (init, own mount namespace, before the old root is detached):
 *
 *   - every directory between a writable root and a protected path is bound
 *     onto itself (writable), so it cannot be renamed away with the
 *     protected path inside it (rename of a mount point: EBUSY);
 *   - the protected path is cloned (open_tree), made read-only recursively
 *     and attached over itself: writes give EROFS, rename/unlink EBUSY;
 *   - an --allow-write path inside it gets a writable clone attached back.
 *
 * Paths are resolved from the root with RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH
 * and mounted through the fd, so a symlink the command planted in an earlier
 * run cannot redirect a mount. A protected path that is (or goes through, or
 * contains) a symlink, or a file with a second hard link, refuses the launch:
 * the user's tools outside would follow it to something the command can
 * write (git's object stores, data addressed by hash, are not walked).
 * Nothing is ever created on disk: an absent path is not protected. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mountapi.h"
#include "sandbox.h"

#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif

/* Entries looked at inside one protected folder before giving up (a .git
 * with this many loose files is better opened with --allow-write). */
#define MAX_CHECKED 200000

static _Noreturn void refuse(const char *path, const char *what)
{
	die(EXIT_LAUNCHER,
	    "protected path %s %s; the command may have planted it in an earlier run, and tools outside "
	    "the sandbox would follow it to something the command can write: remove it, or pass "
	    "--allow-write %s",
	    path, what, path);
}

static int openat2_(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
	struct open_how how = { .flags = flags, .resolve = resolve };
	return (int)syscall(__NR_openat2, dirfd, path, &how, sizeof how);
}

/* O_PATH fd of `path` (inside `root`) as seen under newroot now, or -1 when
 * it is absent. A trailing symlink comes back as itself (O_NOFOLLOW). */
static int open_inside(const char *newroot, const char *root, const char *path)
{
	char where[PATH_MAX];
	if (snprintf(where, sizeof where, "%s%s", newroot, root) >= (int)sizeof where)
		die(EXIT_LAUNCHER, "path too long: %s", root);
	int rootfd = openat2_(AT_FDCWD, where, O_PATH | O_DIRECTORY | O_CLOEXEC, RESOLVE_NO_SYMLINKS);
	if (rootfd < 0)
		die_errno(EXIT_LAUNCHER, "open %s", root);
	int fd = openat2_(rootfd, path + strlen(root) + 1, O_PATH | O_NOFOLLOW | O_CLOEXEC,
			  RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
	int err = errno;
	close(rootfd);
	if (fd >= 0)
		return fd;
	if (err == ENOENT || err == ENOTDIR)
		return -1;
	if (err == ELOOP)
		refuse(path, "goes through a symlink");
	errno = err;
	die_errno(EXIT_LAUNCHER, "open protected path %s", path);
}

static int clone_tree(int fd, const char *path)
{
	int tree = (int)syscall(__NR_open_tree, fd, "", OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
	if (tree < 0)
		die_errno(EXIT_LAUNCHER, "open_tree %s", path);
	return tree;
}

static void attach_tree(int tree, int fd, const char *path)
{
	if (syscall(__NR_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		die_errno(EXIT_LAUNCHER, "move_mount onto %s", path);
	close(tree);
}

static bool is_mount_root(int fd, const char *path)
{
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, 0, &stx) < 0)
		die_errno(EXIT_LAUNCHER, "statx %s", path);
	if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
		die(EXIT_LAUNCHER, "statx %s: the kernel does not report mount roots", path);
	return stx.stx_attributes & STATX_ATTR_MOUNT_ROOT;
}

static bool is_hole(const struct plan *p, const char *path)
{
	for (size_t i = 0; i < p->n_write_holes; i++)
		if (strcmp(p->write_holes[i], path) == 0)
			return true;
	return false;
}

static void check_file(const char *path, const struct stat *st)
{
	if (S_ISLNK(st->st_mode))
		refuse(path, "is a symlink");
	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1)
		refuse(path, "has a second hard link (another name to write it through)");
}

/* Git's object stores (.git/objects, .git/modules/X/objects, lfs/objects)
 * hold data looked up by hash, never run, and most of a repository's
 * files, some hard-linked by git clone --local: not walked. */
static bool is_git_objects(const char *top, const char *name)
{
	size_t n = strlen(top);
	return n >= 5 && strcmp(top + n - 5, "/.git") == 0 && strcmp(name, "objects") == 0;
}

/* Refuses the tree under `fd` (a directory of `top`) if anything in it
 * leads elsewhere. `path` is a PATH_MAX buffer holding its name. */
static void check_tree(const struct plan *p, const char *top, int fd, char *path, size_t *count)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		die_errno(EXIT_LAUNCHER, "open %s", path);
	DIR *d = fdopendir(dfd);
	if (!d)
		die_errno(EXIT_LAUNCHER, "fdopendir %s", path);
	size_t len = strlen(path);
	struct dirent *e;
	while ((errno = 0, e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (++*count > MAX_CHECKED)
			die(EXIT_LAUNCHER, "protected path %s holds more than %d entries to check; pass --allow-write %s "
			    "to leave it writable", top, MAX_CHECKED, top);
		if (snprintf(path + len, PATH_MAX - len, "/%s", e->d_name) >= (int)(PATH_MAX - len))
			die(EXIT_LAUNCHER, "path too long under %s", top);
		if (!is_hole(p, path)) { /* the user let that one be written */
			struct stat st;
			if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				die_errno(EXIT_LAUNCHER, "stat %s", path);
			check_file(path, &st);
			if (S_ISDIR(st.st_mode) && !is_git_objects(top, e->d_name)) {
				int sub = openat(dirfd(d), e->d_name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
				if (sub < 0)
					die_errno(EXIT_LAUNCHER, "open %s", path);
				check_tree(p, top, sub, path, count);
				close(sub);
			}
		}
		path[len] = '\0';
	}
	if (errno)
		die_errno(EXIT_LAUNCHER, "readdir %s", path);
	closedir(d);
}

/* Bind every directory strictly between the root and `pp` onto itself. */
static bool pin_parents(const char *newroot, const struct protected_path *pp)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s", pp->path);
	for (char *s = parent + strlen(pp->root) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		int fd = open_inside(newroot, pp->root, parent);
		if (fd < 0)
			return false; /* then the protected path is absent too */
		struct stat st;
		if (fstat(fd, &st) < 0)
			die_errno(EXIT_LAUNCHER, "stat %s", parent);
		if (S_ISLNK(st.st_mode))
			refuse(parent, "is a symlink");
		if (!S_ISDIR(st.st_mode)) {
			close(fd);
			return false;
		}
		if (!is_mount_root(fd, parent))
			attach_tree(clone_tree(fd, parent), fd, parent);
		close(fd);
		*s = '/';
	}
	return true;
}

static void protect_one(const struct plan *p, const char *newroot, const struct protected_path *pp)
{
	if (!pin_parents(newroot, pp)) {
		if (pp->required)
			die(EXIT_LAUNCHER, "--protect %s: no such directory or file", pp->path);
		return;
	}
	int fd = open_inside(newroot, pp->root, pp->path);
	if (fd < 0) {
		if (pp->required)
			die(EXIT_LAUNCHER, "--protect %s: no such directory or file", pp->path);
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		die_errno(EXIT_LAUNCHER, "stat %s", pp->path);
	check_file(pp->path, &st);
	if (S_ISDIR(st.st_mode)) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s", pp->path);
		size_t count = 0;
		check_tree(p, pp->path, fd, path, &count);
	}

	/* Writable clones of the holes, taken before the folder turns read-only. */
	int holes[p->n_write_holes + 1];
	for (size_t i = 0; i < p->n_write_holes; i++) {
		holes[i] = -1;
		const char *h = p->write_holes[i];
		if (strncmp(h, pp->path, strlen(pp->path)) != 0 || h[strlen(pp->path)] != '/')
			continue;
		int hfd = open_inside(newroot, pp->root, h);
		if (hfd < 0) {
			warnx_("--allow-write %s: does not exist, stays read-only", h);
			continue;
		}
		struct stat hst;
		if (fstat(hfd, &hst) < 0)
			die_errno(EXIT_LAUNCHER, "stat %s", h);
		if (!S_ISLNK(hst.st_mode)) /* a symlink stays as it is, read-only */
			holes[i] = clone_tree(hfd, h);
		close(hfd);
	}

	int tree = clone_tree(fd, pp->path);
	struct gh_mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
	if (syscall(__NR_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0)
		die_errno(EXIT_LAUNCHER, "mount_setattr read-only %s", pp->path);
	attach_tree(tree, fd, pp->path);
	close(fd);

	for (size_t i = 0; i < p->n_write_holes; i++) {
		if (holes[i] < 0)
			continue;
		int hfd = open_inside(newroot, pp->root, p->write_holes[i]);
		if (hfd < 0)
			die(EXIT_LAUNCHER, "--allow-write %s vanished during setup", p->write_holes[i]);
		attach_tree(holes[i], hfd, p->write_holes[i]);
		close(hfd);
	}
}

void mounts_protect(const struct plan *p, const char *newroot)
{
	for (size_t i = 0; i < p->n_protected; i++)
		if (!p->protected_paths[i].allowed)
			protect_one(p, newroot, &p->protected_paths[i]);
}
