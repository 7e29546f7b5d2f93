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
 * absolute and plain (no ".", "..", "//"). Only the part up to the root may
 * go through symlinks (e.g. /home -> /usr/home): prefixes are canonicalised
 * shortest first and the first one that is a root stops the walk, so that no
 * link inside a root (which the command controls) is ever followed. */
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
			if (b->writable && b->is_dir && strcmp(real, b->path) == 0) {
				char *out;
				if (asprintf(&out, "%s%s", real, s) < 0)
					die_errno(EXIT_LAUNCHER, "alloc");
				free(real);
				return out;
			}
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

/* Whether anything is at `path` (under `root`), looked at without following
 * a symlink: a link, or a path through one, counts as something. */
static bool exists_beneath(const char *root, const char *path)
{
	struct open_how dir = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS };
	int rootfd = (int)syscall(__NR_openat2, AT_FDCWD, root, &dir, sizeof dir);
	if (rootfd < 0)
		return true; /* cannot tell: no report either way */
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(__NR_openat2, rootfd, path + strlen(root) + 1, &how, sizeof how);
	int err = errno;
	close(rootfd);
	if (fd >= 0)
		close(fd);
	return fd >= 0 || (err != ENOENT && err != ENOTDIR);
}

static void note_absent(struct plan *p)
{
	for (size_t i = 0; i < p->n_protected; i++)
		p->protected_paths[i].absent = !exists_beneath(p->protected_paths[i].root, p->protected_paths[i].path);
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
		if (!p->binds[i].writable || !p->binds[i].is_dir)
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
			    "--allow-write %s: not a protected path (protected: .git, shell start-up files, "
			    "editor and agent config inside the workspace and each --rw directory, and --protect "
			    "paths; see --help)",
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
			if (n >= 5 && strcmp(path + n - 5, "/.git") == 0 && !owner->required) {
				static const char *const inner[] = { "config", "hooks", "info", "modules", "commondir" };
				warnx_("--allow-write %s: %s/config, hooks, info, modules and commondir stay read-only "
				       "when they exist; a new commondir or worktrees/ entry could still point git at "
				       "a config the command wrote",
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
	note_absent(p);
}

void protect_report_created(const struct plan *p)
{
	for (size_t i = 0; i < p->n_protected; i++) {
		const struct protected_path *pp = &p->protected_paths[i];
		if (pp->absent && !pp->allowed && exists_beneath(pp->root, pp->path))
			warnx_("the command created %s, which did not exist when it started and so was not "
			       "protected: it may run code when you use git, your shell or an editor there; "
			       "inspect it before you do",
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
