/* Protected paths: inside every writable root (the workspace and each --rw
 * directory), the files and folders that run code or configure tools when
 * the user works there later, outside the sandbox. mounts_protect.c binds each
 * one read-only over itself, so that the command can neither write nor
 * rename, replace or delete it. This file only decides which paths; whether
 * they exist, and that no symlink leads to them, is checked when mounting.
 *
 * A path that does not exist is not protected: the launcher creates nothing
 * in a writable root, and the kernel cannot stop a name being created in a
 * writable directory (SECURITY.md, "What is not defended"). The launcher
 * notes which were absent and, after the run, warns about any that the
 * command created. */
#define _GNU_SOURCE
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

#include "sandbox.h"

#ifndef __NR_openat2
#define __NR_openat2 437
#endif

/* Relative to each writable root. Keep in step with --help in plan.c (the
 * tests protect every name it lists) and README ("Protected paths"). */
static const char *const protected_names[] = {
	/* git: config (core.fsmonitor, core.hooksPath, aliases, filters), hooks,
	 * info/attributes, modules/ and worktrees/ (their configs), and
	 * commondir, which, once created, redirects all of them: a writable
	 * .git cannot be protected piece by piece, so all of it. A .git *file*
	 * (gitdir: pointer) is protected as that file. */
	".git",
	".gitmodules",
	/* shells and direnv */
	".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile",
	".zshrc", ".zshenv", ".zprofile", ".zlogin", ".zlogout", ".envrc",
	/* editors and agents: tasks run on open, launch configs, hooks, MCP
	 * server commands (.devcontainer's initializeCommand runs on the host) */
	".vscode", ".idea", ".devcontainer", ".claude", ".mcp.json", ".codex", ".cursor", ".gemini",
	/* git hook managers that keep the hooks in the working tree, run by
	 * git through core.hooksPath (husky: .husky; by hand: .githooks) or by
	 * the manager's own hook (pre-commit, lefthook: commands in YAML) */
	".husky", ".githooks", ".pre-commit-config.yaml", "lefthook.yml", ".lefthook.yml",
	"lefthook-local.yml", ".lefthook-local.yml", ".lefthook",
};

static bool is_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* The writable directory root that holds `path` (the innermost one). */
static const struct bind *root_of(const struct plan *p, const char *path)
{
	const struct bind *best = NULL;
	for (size_t i = 0; i < p->n_binds; i++) {
		const struct bind *b = &p->binds[i];
		if (b->writable && b->is_dir && is_under(path, b->path) &&
		    (!best || strlen(b->path) > strlen(best->path)))
			best = b;
	}
	return best;
}

/* `given` as a path strictly inside a writable root, or die. It must be
 * absolute and plain (no ".", "..", "//") and name the root as given (the
 * roots are canonical): a path that reaches a root only through a symlink
 * (e.g. /home -> /usr/home) is refused, like a non-canonical --rw, rather
 * than resolved. Its prefixes are resolved, shortest first, only to say so;
 * the walk stops at the first root, so no link inside a root (which the
 * command controls) is ever followed. */
static char *inside_root(const struct plan *p, const char *given, const char *flag)
{
	if (given[0] != '/')
		die(EXIT_LAUNCHER, "%s %s: needs an absolute path", flag, given);
	size_t len = strlen(given);
	while (len > 1 && given[len - 1] == '/')
		len--;
	if (len >= PATH_MAX)
		die(EXIT_LAUNCHER, "%s: path too long", flag);
	char path[PATH_MAX];
	memcpy(path, given, len);
	path[len] = '\0';
	for (const char *c = path + 1;;) {
		const char *end = strchrnul(c, '/');
		size_t n = (size_t)(end - c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			die(EXIT_LAUNCHER, "%s %s: give a plain path (no \".\", \"..\" or \"//\")", flag, given);
		if (!*end)
			break;
		c = end + 1;
	}
	if (root_of(p, path))
		return strdup(path);
	for (char *s = path + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		char *real = realpath(path, NULL);
		*s = '/';
		if (!real)
			break;
		for (size_t i = 0; i < p->n_binds; i++) {
			const struct bind *b = &p->binds[i];
			if (b->writable && b->is_dir && strcmp(real, b->path) == 0)
				die(EXIT_LAUNCHER, "%s %s is not canonical (a symlink or ./.. in it): give its real path, "
				    "%s%s", flag, given, real, s);
		}
		free(real);
	}
	die(EXIT_LAUNCHER, "%s %s: not inside the workspace or a --rw directory", flag, given);
}

static void add_protected(struct plan *p, char *path, bool required)
{
	for (size_t i = 0; i < p->n_protected; i++)
		if (strcmp(p->protected_paths[i].path, path) == 0) {
			p->protected_paths[i].required |= required;
			free(path);
			return;
		}
	p->protected_paths = realloc(p->protected_paths, (p->n_protected + 1) * sizeof *p->protected_paths);
	if (!p->protected_paths)
		die_errno(EXIT_LAUNCHER, "alloc");
	const struct bind *root = root_of(p, path);
	p->protected_paths[p->n_protected++] =
		(struct protected_path){ .path = path, .root = root->path, .required = required };
}

/* O_PATH fd of `path` (under `root`), opened without following any
 * symlink (a trailing one comes back as itself), or -1 with errno. */
static int open_beneath(const char *root, const char *path)
{
	struct open_how dir = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS };
	int rootfd = (int)syscall(__NR_openat2, AT_FDCWD, root, &dir, sizeof dir);
	if (rootfd < 0)
		return -1;
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(__NR_openat2, rootfd, path + strlen(root) + 1, &how, sizeof how);
	int err = errno;
	close(rootfd);
	errno = err;
	return fd;
}

#define HASH_MAX (1 << 20)

/* FNV-1a of a small regular file's bytes, read through the O_PATH fd (no
 * second lookup). Only a backstop: the kernel sets ctime on every change
 * of the inode, and the inode number changes when the file is replaced. */
static bool hash_file(int fd, uint64_t *out)
{
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	int rfd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (rfd < 0)
		return false;
	uint64_t h = 0xcbf29ce484222325ULL;
	char buf[8192];
	ssize_t n;
	size_t total = 0;
	while ((n = read(rfd, buf, sizeof buf)) > 0 && total <= HASH_MAX) {
		total += (size_t)n;
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ULL;
	}
	close(rfd);
	if (n < 0)
		return false;
	*out = h;
	return true;
}

/* What is at `path` (under `root`) now. Something that cannot be opened
 * without following a link (a symlink swapped in above it) is present,
 * with type 0, so that it differs from anything recorded. */
static struct file_id identify(const char *root, const char *path)
{
	struct file_id id = { 0 };
	int fd = open_beneath(root, path);
	if (fd < 0) {
		id.present = errno != ENOENT && errno != ENOTDIR;
		return id;
	}
	struct stat st;
	id.present = true;
	if (fstat(fd, &st) == 0) {
		id.dev = st.st_dev;
		id.ino = st.st_ino;
		id.type = st.st_mode & S_IFMT;
		id.size = st.st_size;
		id.mtime_s = st.st_mtim.tv_sec;
		id.mtime_ns = st.st_mtim.tv_nsec;
		id.ctime_s = st.st_ctim.tv_sec;
		id.ctime_ns = st.st_ctim.tv_nsec;
		if (S_ISREG(st.st_mode) && st.st_size <= HASH_MAX)
			id.hashed = hash_file(fd, &id.hash);
	}
	close(fd);
	return id;
}

/* A directory bound read-only as a whole shows the live directory: what the
 * host changes inside it stays covered. Only the protected name itself can
 * lose its bind (Linux >= 3.18 detaches a mount in every namespace when its
 * mount point is unlinked or renamed over outside): git's lock-and-rename,
 * an editor's save, another run's cleanup do that to files. So a directory
 * is compared by identity, a file by identity, times and content. */
static bool same_file(const struct file_id *a, const struct file_id *b)
{
	if (a->dev != b->dev || a->ino != b->ino || a->type != b->type || !a->type)
		return false;
	if (a->type == S_IFDIR)
		return true;
	return a->size == b->size && a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns &&
	       a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns &&
	       (!a->hashed || !b->hashed || a->hash == b->hash);
}

static void note_present(struct plan *p)
{
	for (size_t i = 0; i < p->n_protected; i++) {
		struct protected_path *pp = &p->protected_paths[i];
		pp->id = identify(pp->root, pp->path);
		pp->absent = !pp->id.present;
	}
}

void protect_plan(struct plan *p, const char *const *extra, size_t n_extra, const char *const *allow,
		  size_t n_allow)
{
	for (size_t i = 0; i < p->n_binds; i++) {
		struct stat st;
		if (stat(p->binds[i].path, &st) < 0)
			die_errno(EXIT_LAUNCHER, "stat %s", p->binds[i].path);
		p->binds[i].is_dir = S_ISDIR(st.st_mode);
	}
	for (size_t i = 0; i < p->n_binds; i++) {
		if (!p->binds[i].writable || !p->binds[i].is_dir || p->binds[i].own_home)
			continue;
		for (size_t j = 0; j < sizeof protected_names / sizeof *protected_names; j++) {
			char *path;
			if (asprintf(&path, "%s/%s", p->binds[i].path, protected_names[j]) < 0)
				die_errno(EXIT_LAUNCHER, "alloc");
			add_protected(p, path, false);
		}
	}
	for (size_t i = 0; i < n_extra; i++)
		add_protected(p, inside_root(p, extra[i], "--protect"), true);

	for (size_t i = 0; i < n_allow; i++) {
		char *path = inside_root(p, allow[i], "--allow-write");
		struct protected_path *owner = NULL;
		for (size_t j = 0; j < p->n_protected && !owner; j++)
			if (strcmp(p->protected_paths[j].path, path) == 0 || is_under(path, p->protected_paths[j].path))
				owner = &p->protected_paths[j];
		if (!owner)
			die(EXIT_LAUNCHER,
			    "--allow-write %s: not a protected path (protected: .git, git hook managers' files, shell "
			    "start-up files, editor and agent config inside the workspace and each --rw directory, "
			    "and --protect paths; see --help)",
			    path);
		warnx_("--allow-write %s: the command may change it, and what it writes there can run code "
		       "outside the sandbox later (git hooks and config, shell and editor settings)",
		       path);
		if (strcmp(owner->path, path) == 0) {
			owner->allowed = true;
			/* A writable .git (so that the command can commit) still keeps
			 * the pieces that run code read-only; commondir and worktrees/
			 * could redirect git elsewhere, which the warning says. */
			size_t n = strlen(path);
			if (n >= 5 && strcmp(path + n - 5, "/.git") == 0) {
				/* config.worktree (extensions.worktreeConfig), worktrees/ (their
				 * gitdirs and configs), and an interrupted rebase's or
				 * cherry-pick's todo lists, whose `exec` lines run on
				 * `git rebase --continue`. */
				static const char *const inner[] = { "config", "config.worktree", "hooks", "info", "modules",
								     "commondir", "worktrees", "rebase-merge", "rebase-apply",
								     "sequencer" };
				warnx_("--allow-write %s: %s/config, config.worktree, hooks, info, modules, commondir, "
				       "worktrees and rebase/sequencer state stay read-only when they exist (and are named "
				       "after the run when the command creates them)",
				       path, path);
				for (size_t k = 0; k < sizeof inner / sizeof *inner; k++) {
					char *sub;
					if (asprintf(&sub, "%s/%s", path, inner[k]) < 0)
						die_errno(EXIT_LAUNCHER, "alloc");
					add_protected(p, sub, false);
				}
			}
			free(path);
			continue;
		}
		/* A writable hole inside a read-only protected folder. */
		p->write_holes = realloc(p->write_holes, (p->n_write_holes + 1) * sizeof *p->write_holes);
		if (!p->write_holes)
			die_errno(EXIT_LAUNCHER, "alloc");
		p->write_holes[p->n_write_holes++] = path;
	}
	note_present(p);
}

void protect_report_created(const struct plan *p)
{
	for (size_t i = 0; i < p->n_protected; i++) {
		const struct protected_path *pp = &p->protected_paths[i];
		if (pp->allowed)
			continue;
		struct file_id now = identify(pp->root, pp->path);
		if (pp->absent && now.present)
			warnx_("the command created %s, which did not exist when it started and so was not "
			       "protected: it may run code when you use git, your shell or an editor there; "
			       "inspect it before you do",
			       pp->path);
		else if (!pp->absent && now.present && !same_file(&pp->id, &now))
			warnx_("%s was replaced or changed during the run (something outside the sandbox "
			       "replaced it, so its read-only bind no longer covered it, and the command may "
			       "have written it): inspect it before you use git, your shell or an editor there",
			       pp->path);
	}
}

void protect_free(struct plan *p)
{
	for (size_t i = 0; i < p->n_protected; i++)
		free(p->protected_paths[i].path);
	free(p->protected_paths);
	for (size_t i = 0; i < p->n_write_holes; i++)
		free(p->write_holes[i]);
	free(p->write_holes);
}
