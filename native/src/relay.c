/* The relay: inside the sandbox's network namespace, but still in the
 * host's mount namespace, it accepts TCP connections on 127.0.0.1:PORT
 * (and [::1]:PORT) and carries each one, both ways and with half-close, to
 * a fresh connection to the session's unix socket. One thread, poll(2).
 *
 * It is the only process that can reach the socket path, so it is locked
 * down before it reads a byte: stdin/stdout on /dev/null, no other fds,
 * chrooted into the socket's directory, no capabilities, not dumpable (no ptrace, no /proc/PID/mem), no_new_privs,
 * Landlock with no filesystem or TCP rights, and a seccomp filter that only
 * lets it make unix stream sockets. The command cannot name it anyway: it
 * lives outside the command's pid namespace. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"

#ifndef __NR_close_range
#define __NR_close_range 436
#endif

#define RELAY_BUF (64 * 1024)
#define MAX_CONNS 256
#define CONNECT_TIMEOUT_S 5

struct half {
	size_t len, off;
	bool eof;  /* source said EOF */
	bool shut; /* destination write side shut down */
	char buf[RELAY_BUF];
};

struct conn {
	int tcp, ux;
	struct half up;   /* tcp -> unix */
	struct half down; /* unix -> tcp */
	int tcp_slot, ux_slot; /* indices into the pollfd array, or -1 */
};

static struct conn *conns[MAX_CONNS];
static int n_conns;
static struct sockaddr_un target;
static socklen_t target_len;
static int last_connect_errno;

static int int_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static void close_all_except(const int *keep, int n)
{
	int sorted[8];
	memcpy(sorted, keep, (size_t)n * sizeof *keep);
	qsort(sorted, (size_t)n, sizeof *sorted, int_cmp);
	unsigned lo = 3;
	for (int i = 0; i < n; i++) {
		if ((unsigned)sorted[i] > lo && syscall(__NR_close_range, lo, (unsigned)sorted[i] - 1, 0) < 0)
			die_errno(EXIT_LAUNCHER, "close_range");
		if ((unsigned)sorted[i] + 1 > lo)
			lo = (unsigned)sorted[i] + 1;
	}
	if (syscall(__NR_close_range, lo, ~0U, 0) < 0)
		die_errno(EXIT_LAUNCHER, "close_range");
}

static void reset_and_close(int tcp)
{
	/* SO_LINGER 0: close() sends RST, so the client sees ECONNRESET
	 * instead of an EOF that could pass for a complete answer. */
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(tcp, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(tcp);
}

static int connect_session(void)
{
	int ux = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ux < 0)
		return -1;
	struct timeval tv = { .tv_sec = CONNECT_TIMEOUT_S };
	setsockopt(ux, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(ux, (struct sockaddr *)&target, target_len) < 0 ||
	    fcntl(ux, F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		close(ux);
		errno = e;
		return -1;
	}
	return ux;
}

static void accept_all(int lfd)
{
	for (;;) {
		int tcp = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (tcp < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "%s: relay: accept: %s\n", GH_NAME, strerror(errno));
			return;
		}
		if (n_conns >= MAX_CONNS) {
			reset_and_close(tcp);
			continue;
		}
		int ux = connect_session();
		if (ux < 0) {
			if (errno != last_connect_errno)
				fprintf(stderr, "%s: relay: cannot reach the session socket: %s\n", GH_NAME,
					strerror(errno));
			last_connect_errno = errno;
			reset_and_close(tcp);
			continue;
		}
		last_connect_errno = 0;
		/* The gateway answers an SSE request in several small writes; with
		 * Nagle's algorithm the second one waits for the client's delayed ACK
		 * (~40 ms). Forward each write as it comes. */
		int one = 1;
		setsockopt(tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(ux);
			reset_and_close(tcp);
			continue;
		}
		c->tcp = tcp;
		c->ux = ux;
		conns[n_conns++] = c;
	}
}

static short wanted(const struct half *in, const struct half *out)
{
	/* `in` is read from this fd, `out` is written to it. */
	short ev = 0;
	if (!in->eof && in->len == 0)
		ev |= POLLIN;
	if (out->len > out->off)
		ev |= POLLOUT;
	return ev;
}

/* Move bytes src -> dst. Returns false when the connection must be aborted. */
static bool pump(struct half *h, int src, short src_rev, int dst, short dst_rev)
{
	bool fresh = false;
	if (!h->eof && h->len == 0 && (src_rev & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t n = recv(src, h->buf, sizeof h->buf, 0);
		if (n > 0) {
			h->len = (size_t)n;
			h->off = 0;
			fresh = true;
		} else if (n == 0) {
			h->eof = true;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			return false;
		}
	}
	if (h->len > h->off && (fresh || (dst_rev & (POLLOUT | POLLHUP | POLLERR)))) {
		ssize_t n = send(dst, h->buf + h->off, h->len - h->off, MSG_NOSIGNAL);
		if (n > 0) {
			h->off += (size_t)n;
			if (h->off == h->len)
				h->len = h->off = 0;
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			return false;
		}
	}
	if (h->eof && h->len == 0 && !h->shut) {
		if (shutdown(dst, SHUT_WR) < 0 && errno != ENOTCONN)
			return false;
		h->shut = true;
	}
	return true;
}

static _Noreturn void relay_loop(const int *lfds, int n_listen)
{
	static struct pollfd pfd[2 + 2 * MAX_CONNS];
	for (;;) {
		int k = 0;
		for (int i = 0; i < n_listen; i++)
			pfd[k++] = (struct pollfd){ .fd = n_conns < MAX_CONNS ? lfds[i] : -1, .events = POLLIN };
		for (int i = 0; i < n_conns; i++) {
			struct conn *c = conns[i];
			short te = wanted(&c->up, &c->down), ue = wanted(&c->down, &c->up);
			/* An fd we want nothing from is left out, or its POLLHUP would spin. */
			c->tcp_slot = te ? k : -1;
			if (te)
				pfd[k++] = (struct pollfd){ .fd = c->tcp, .events = te };
			c->ux_slot = ue ? k : -1;
			if (ue)
				pfd[k++] = (struct pollfd){ .fd = c->ux, .events = ue };
		}
		if (poll(pfd, (nfds_t)k, -1) < 0) {
			if (errno == EINTR)
				continue;
			die_errno(EXIT_LAUNCHER, "poll");
		}
		int kept = 0;
		for (int i = 0; i < n_conns; i++) {
			struct conn *c = conns[i];
			short tr = c->tcp_slot >= 0 ? pfd[c->tcp_slot].revents : 0;
			short ur = c->ux_slot >= 0 ? pfd[c->ux_slot].revents : 0;
			bool ok = pump(&c->up, c->tcp, tr, c->ux, ur) && pump(&c->down, c->ux, ur, c->tcp, tr);
			if (!ok) {
				close(c->ux);
				reset_and_close(c->tcp);
				free(c);
			} else if (c->up.shut && c->down.shut) {
				close(c->ux);
				close(c->tcp);
				free(c);
			} else {
				conns[kept++] = c;
			}
		}
		n_conns = kept;
		for (int i = 0; i < n_listen; i++)
			if (pfd[i].revents & POLLIN)
				accept_all(lfds[i]);
	}
}

/* chroot into the socket's directory: from here on the relay can name that
 * one directory and nothing else, so even a compromised relay (uid 0 when
 * launched as root) cannot reach /run/docker.sock or any other socket. */
static void jail_to_socket_dir(const char *socket_path)
{
	char dir[sizeof target.sun_path];
	const char *slash = strrchr(socket_path, '/');
	size_t dlen = (size_t)(slash - socket_path);
	memcpy(dir, socket_path, dlen);
	dir[dlen ? dlen : 1] = '\0';
	if (dlen == 0)
		dir[0] = '/';
	if (chroot(dir) < 0)
		die_errno(EXIT_LAUNCHER, "chroot to the socket directory %s", dir);
	if (chdir("/") < 0)
		die_errno(EXIT_LAUNCHER, "chdir / in the socket directory");
	memset(&target, 0, sizeof target);
	target.sun_family = AF_UNIX;
	snprintf(target.sun_path, sizeof target.sun_path, "/%s", slash + 1);
	target_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(target.sun_path) + 1);
}

#ifdef GH_TEST_HOOKS
/* Test builds only: sleeps the milliseconds the variable `name` gives, if set; returns its value. */
static const char *hold_for(const char *name)
{
	const char *ms = getenv(name);
	if (ms)
		nanosleep(&(struct timespec){ .tv_sec = atol(ms) / 1000, .tv_nsec = (atol(ms) % 1000) * 1000000L }, NULL);
	return ms;
}
#endif

void relay_run(const struct plan *p, const int *listen_fds, int n_listen, int ready_fd)
{
#ifdef GH_TEST_HOOKS
	/* Test builds only: a relay slow to start confining itself, or one that
	 * dies before it is confined; the command must wait, or never start
	 * (test/sandbox/relay-ready.int.test.ts). */
	const char *slow = hold_for("GATEHOUSE_SANDBOX_TEST_RELAY_READY_MS");
	if (getenv("GATEHOUSE_SANDBOX_TEST_RELAY_DIE"))
		_exit(EXIT_LAUNCHER);
#endif
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		die_errno(EXIT_LAUNCHER, "sigprocmask");
	signal(SIGPIPE, SIG_IGN);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
		die_errno(EXIT_LAUNCHER, "stdin/stdout to /dev/null");
	int keep[3] = { listen_fds[0], n_listen > 1 ? listen_fds[1] : listen_fds[0], ready_fd };
	close_all_except(keep, 3);

	jail_to_socket_dir(p->socket_path);
#ifdef GH_TEST_HOOKS
	/* Half confined (chrooted, not yet capability-less, Landlocked or under
	 * seccomp): the command must not be running meanwhile. */
	hold_for("GATEHOUSE_SANDBOX_TEST_RELAY_CONFINE_MS");
#endif
	privs_drop_caps_keep_uid();
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		die_errno(EXIT_LAUNCHER, "PR_SET_DUMPABLE 0");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die_errno(EXIT_LAUNCHER, "PR_SET_NO_NEW_PRIVS");
	landlock_apply_relay(p);
	seccomp_apply(SECCOMP_RELAY);
#ifdef GH_TEST_HOOKS
	/* Test builds only (the ASan one): what a compromised relay would try,
	 * once confined. Opening a file of its own directory is refused only by
	 * Landlock (the relay may be root and owns that directory), a TCP
	 * socket only by seccomp: test/sandbox/layers.test.ts reads the line. */
	const char *try_open = getenv("GATEHOUSE_SANDBOX_TEST_RELAY_OPEN");
	if (try_open) {
		int fd = open(try_open, O_RDONLY | O_CLOEXEC);
		const char *open_r = fd < 0 ? errno_name(errno) : "OK";
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		warnx_("test hook: relay open %s: %s; tcp socket: %s", try_open, open_r, s < 0 ? errno_name(errno) : "OK");
		if (fd >= 0)
			close(fd);
		if (s >= 0)
			close(s);
	}
#endif
#ifdef GH_TEST_HOOKS
	if (slow)
		warnx_("test hook: relay ready");
#endif
	/* Tell the agent we are confined; it execs the command only then. */
	const char ok = 1;
	if (write(ready_fd, &ok, 1) != 1)
		die_errno(EXIT_LAUNCHER, "write ready");
	close(ready_fd);
	relay_loop(listen_fds, n_listen);
}
