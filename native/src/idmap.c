/* As root the command runs under a uid of its own, which owns nothing on
 * disk. Each writable bind (workspace, --rw) is therefore mounted
 * idmapped (mount_setattr(MOUNT_ATTR_IDMAP)): on that mount, and only
 * there, the command's uid/gid is the path's owner on disk, so it writes
 * as the owner and files it creates land owned by the owner. Read-only
 * binds and system dirs keep their plain ids.
 *
 * The mapping is a user namespace whose uid_map is "OWNER COMMAND 1"
 * (on-disk id inside, caller's id outside), written by the launcher from
 * outside; a throw-away child holds the namespace until its fd is open. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

int idmap_userns(uid_t owner_uid, gid_t owner_gid, uid_t uid, gid_t gid)
{
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		die_errno(EXIT_UNAVAILABLE, "clone(CLONE_NEWUSER) for an idmapped mount");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		for (;;)
			pause();
	}
	char path[64], map[64];
	snprintf(map, sizeof map, "%u %u 1\n", (unsigned)owner_uid, (unsigned)uid);
	snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
	write_file(path, map);
	snprintf(map, sizeof map, "%u %u 1\n", (unsigned)owner_gid, (unsigned)gid);
	snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
	write_file(path, map);
	snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err = errno;
	/* Not waited for here (a millisecond on a loaded machine): the
	 * supervisor's wait loop reaps it with the sandbox's other children. */
	kill(pid, SIGKILL);
	if (fd < 0) {
		errno = err;
		die_errno(EXIT_LAUNCHER, "open %s", path);
	}
	return fd;
}

void idmap_prepare(struct plan *p)
{
	if (!p->as_root)
		return; /* unprivileged, the caller's own ids are the command's */
	for (size_t i = 0; i < p->n_binds; i++) {
		struct bind *b = &p->binds[i];
		if (!b->writable)
			continue;
		struct stat st;
		if (lstat(b->path, &st) < 0)
			die_errno(EXIT_LAUNCHER, "stat %s", b->path);
		b->owner_uid = st.st_uid;
		b->owner_gid = st.st_gid;
		b->idmap_userns_fd = idmap_userns(st.st_uid, st.st_gid, p->uid, p->gid);
	}
}

void idmap_close(struct plan *p)
{
	for (size_t i = 0; i < p->n_binds; i++)
		if (p->binds[i].idmap_userns_fd >= 0) {
			close(p->binds[i].idmap_userns_fd);
			p->binds[i].idmap_userns_fd = -1;
		}
}
