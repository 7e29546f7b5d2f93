/* die() with errno, and the few I/O helpers every step needs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif

const char *gh_role = NULL; /* NULL in the launcher, "relay"/"init"/"agent" in children */
static int status_fd = -1;  /* children report their failure code here */

void gh_set_child(const char *role, int fd)
{
	gh_role = role;
	status_fd = fd;
}

const char *errno_name(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "E?";
}

/* Messages name paths, and an agent chooses the names in its workspace: a
 * control character (ESC, a newline forging a line of ours), a C1 control
 * (U+0080-009F, e.g. U+009B CSI) or a bidi/zero-width/line-separator
 * character is written as an escape, never to the terminal as it is. */
static void put_escaped(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = p[0];
		if (c < 0x20 || c == 0x7f) {
			fprintf(stderr, "\\x%02x", c);
			p++;
		} else if (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			fprintf(stderr, "\\u%04x", (unsigned)p[1]);
			p += 2;
		} else if (c == 0xe2 && (p[1] == 0x80 || p[1] == 0x81) && p[2] != 0) {
			unsigned cp = 0x2000 | ((unsigned)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
			bool invisible = (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
					 (cp >= 0x2060 && cp <= 0x2069);
			if (invisible)
				fprintf(stderr, "\\u%04x", cp);
			else
				fwrite(p, 1, 3, stderr);
			p += 3;
		} else {
			fputc((int)c, stderr);
			p++;
		}
	}
}

static _Noreturn void vdie(int code, int err, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	fprintf(stderr, "%s: error%s%s: ", GH_NAME, gh_role ? " in " : "", gh_role ? gh_role : "");
	put_escaped(msg);
	if (err)
		fprintf(stderr, ": %s (%s)", strerror(err), errno_name(err));
	fputc('\n', stderr);
	fflush(stderr);
	if (status_fd >= 0) {
		/* The launcher reads this to tell our failure from the command's exit. */
		ssize_t unused = write(status_fd, &code, sizeof code);
		(void)unused;
	}
	if (gh_role)
		_exit(code);
	exit(code);
}

void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdie(code, 0, fmt, ap);
}

void die_errno(int code, const char *fmt, ...)
{
	int err = errno;
	va_list ap;
	va_start(ap, fmt);
	vdie(code, err ? err : EIO, fmt, ap);
}

void warnx_(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: warning: ", GH_NAME);
	put_escaped(msg);
	fputc('\n', stderr);
}

void write_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die_errno(EXIT_LAUNCHER, "open %s", path);
	size_t len = strlen(content);
	ssize_t n = write(fd, content, len);
	if (n < 0 || (size_t)n != len)
		die_errno(EXIT_LAUNCHER, "write %s", path);
	if (close(fd) < 0)
		die_errno(EXIT_LAUNCHER, "close %s", path);
}

int pidfd_self(void)
{
	int fd = (int)syscall(__NR_pidfd_open, getpid(), 0);
	if (fd < 0)
		die_errno(EXIT_UNAVAILABLE, "pidfd_open (needs Linux >= 5.3)");
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		die_errno(EXIT_LAUNCHER, "fcntl pidfd");
	return fd;
}

/* PR_SET_PDEATHSIG, then close the race where the parent died before the
 * prctl: a pidfd polls readable once its process has exited (getppid() is
 * no help across a pid namespace, where it returns 0). Credential changes
 * clear PDEATHSIG, so call this again after every one. */
void die_with_parent(int parent_pidfd)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		die_errno(EXIT_LAUNCHER, "prctl(PR_SET_PDEATHSIG)");
	struct pollfd pfd = { .fd = parent_pidfd, .events = POLLIN };
	int r = poll(&pfd, 1, 0);
	if (r < 0)
		die_errno(EXIT_LAUNCHER, "poll parent pidfd");
	if (r > 0)
		_exit(EXIT_LAUNCHER); /* parent already gone: nobody to supervise us */
}

/* Make sure 0, 1 and 2 are open so that no later fd lands on them. */
void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n < 0)
			die_errno(EXIT_LAUNCHER, "open /dev/null");
		if (n != fd)
			die(EXIT_LAUNCHER, "could not fill standard fd %d", fd);
	}
}
