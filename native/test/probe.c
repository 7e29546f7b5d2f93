/* probe: attempts one attack (or check) inside the sandbox and prints one
 * machine-checkable line: "OK[ detail]" or "<step>:<ERRNO name>".
 * Used by test/sandbox/escape.test.ts. Usage: probe SUBCOMMAND [ARGS]... */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

static int fail(const char *step)
{
	const char *n = strerrorname_np(errno);
	printf("%s:%s\n", step, n ? n : "E?");
	return 0;
}

static int ok(const char *detail)
{
	printf(detail ? "OK %s\n" : "OK\n", detail);
	return 0;
}

static int parse_addr(const char *ip, const char *port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)atoi(port));
		*len = sizeof *v4;
		return AF_INET;
	}
	if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)atoi(port));
		*len = sizeof *v6;
		return AF_INET6;
	}
	fprintf(stderr, "bad address %s\n", ip);
	exit(2);
}

/* connect with a 3 s timeout (ETIMEDOUT if nothing answers) */
static int tcp_connect(const char *ip, const char *port, const char **step)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = parse_addr(ip, port, &ss, &len);
	*step = "socket";
	int s = socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -1;
	*step = "connect";
	if (connect(s, (struct sockaddr *)&ss, len) < 0) {
		if (errno != EINPROGRESS)
			return -1;
		struct pollfd p = { .fd = s, .events = POLLOUT };
		int r = poll(&p, 1, 3000);
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			errno = err;
			return -1;
		}
	}
	int fl = fcntl(s, F_GETFL);
	fcntl(s, F_SETFL, fl & ~O_NONBLOCK);
	return s;
}

static int cmd_connect(char **a)
{
	const char *step;
	int s = tcp_connect(a[0], a[1], &step);
	if (s < 0)
		return fail(step);
	/* Connected: see whether anything answers (a relay with no server
	 * behind it resets the connection). */
	const char req[] = "ping\n";
	if (send(s, req, sizeof req - 1, MSG_NOSIGNAL) < 0)
		return fail("send");
	shutdown(s, SHUT_WR);
	struct timeval tv = { .tv_sec = 3 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char buf[256];
	ssize_t n = recv(s, buf, sizeof buf, 0);
	if (n < 0)
		return fail("recv");
	if (n == 0) {
		printf("recv:EOF\n");
		return 0;
	}
	return ok("connected");
}

static int cmd_udp(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = parse_addr(a[0], a[1], &ss, &len);
	int s = socket(fam, SOCK_DGRAM, 0);
	if (s < 0)
		return fail("socket");
	if (sendto(s, "x", 1, 0, (struct sockaddr *)&ss, len) < 0)
		return fail("sendto");
	return ok(NULL);
}

static int cmd_dns(char **a)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int r = getaddrinfo(a[0], "443", &hints, &res);
	if (r == 0)
		return ok("resolved");
	static const struct {
		int code;
		const char *name;
	} names[] = {
		{ EAI_AGAIN, "EAI_AGAIN" },   { EAI_FAIL, "EAI_FAIL" },     { EAI_NONAME, "EAI_NONAME" },
		{ EAI_SYSTEM, "EAI_SYSTEM" }, { EAI_NODATA, "EAI_NODATA" }, { EAI_ADDRFAMILY, "EAI_ADDRFAMILY" },
	};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (names[i].code == r) {
			printf("getaddrinfo:%s\n", names[i].name);
			return 0;
		}
	printf("getaddrinfo:%d\n", r);
	return 0;
}

static int cmd_socket(char **a)
{
	int s = socket(atoi(a[0]), atoi(a[1]), atoi(a[2]));
	return s < 0 ? fail("socket") : ok(NULL);
}

static int cmd_socketpair(char **a)
{
	int sv[2];
	return socketpair(atoi(a[0]), SOCK_STREAM, 0, sv) < 0 ? fail("socketpair") : ok(NULL);
}

static int cmd_bind(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = parse_addr(a[0], a[1], &ss, &len);
	int s = socket(fam, SOCK_STREAM, 0);
	if (s < 0)
		return fail("socket");
	if (bind(s, (struct sockaddr *)&ss, len) < 0)
		return fail("bind");
	return ok(NULL);
}

static int cmd_listen(char **a)
{
	(void)a;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return fail("socket");
	if (listen(s, 1) < 0) /* autobinds an ephemeral port: no bind() involved */
		return fail("listen");
	return ok(NULL);
}

static int cmd_tfo(char **a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = parse_addr(a[0], a[1], &ss, &len);
	int s = socket(fam, SOCK_STREAM, 0);
	if (s < 0)
		return fail("socket");
	if (sendto(s, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&ss, len) < 0)
		return fail("sendto");
	return ok(NULL);
}

static int cmd_unix(char **a)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	if (a[0][0] == '@') { /* abstract */
		size_t n = strlen(a[0]);
		memcpy(sun.sun_path + 1, a[0] + 1, n - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		strncpy(sun.sun_path, a[0], sizeof sun.sun_path - 1);
		len = sizeof sun;
	}
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0)
		return fail("socket");
	if (connect(s, (struct sockaddr *)&sun, len) < 0)
		return fail("connect");
	return ok(NULL);
}

static socklen_t unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	strncpy(sun->sun_path, path, sizeof sun->sun_path - 1);
	return (socklen_t)sizeof *sun;
}

/* socketpair-type FAMILY TYPE: TYPE may carry SOCK_CLOEXEC/SOCK_NONBLOCK. */
static int cmd_socketpair_type(char **a)
{
	int sv[2];
	if (socketpair(atoi(a[0]), (int)strtol(a[1], NULL, 0), 0, sv) < 0)
		return fail("socketpair");
	return ok(NULL);
}

/* unix-sendto TYPE PATH: a unix socketpair of TYPE, then sendto() PATH by
 * name, then connect() to it and send: the first step that fails, or OK. */
static int cmd_unix_sendto(char **a)
{
	struct sockaddr_un sun;
	socklen_t len = unix_addr(a[1], &sun);
	int sv[2];
	if (socketpair(AF_UNIX, (int)strtol(a[0], NULL, 0), 0, sv) < 0)
		return fail("socketpair");
	if (sendto(sv[0], "pwned-sendto", 12, MSG_DONTWAIT, (struct sockaddr *)&sun, len) < 0)
		return fail("sendto");
	struct iovec iov = { .iov_base = "pwned-sendmsg", .iov_len = 13 };
	struct msghdr m = { .msg_name = &sun, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1 };
	if (sendmsg(sv[1], &m, MSG_DONTWAIT) < 0)
		return fail("sendmsg");
	if (connect(sv[0], (struct sockaddr *)&sun, len) < 0)
		return fail("connect");
	if (send(sv[0], "pwned-connect", 13, MSG_DONTWAIT) < 0)
		return fail("send");
	return ok(NULL);
}

/* sendto-fd FD PATH: send by name through an inherited socket. */
static int cmd_sendto_fd(char **a)
{
	struct sockaddr_un sun;
	socklen_t len = unix_addr(a[1], &sun);
	if (sendto(atoi(a[0]), "pwned-inherited", 15, MSG_DONTWAIT, (struct sockaddr *)&sun, len) < 0)
		return fail("sendto");
	return ok(NULL);
}

/* Outside helpers for the tests. dgram-recv PATH MS: bind a datagram
 * socket at PATH (0666), print READY, then print every datagram as
 * "GOT <text>" until MS pass without one; then DONE. */
static int cmd_dgram_recv(char **a)
{
	struct sockaddr_un sun;
	socklen_t len = unix_addr(a[0], &sun);
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sun, len) < 0 || chmod(a[0], 0666) < 0)
		return fail("bind");
	puts("READY");
	for (;;) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		if (poll(&p, 1, atoi(a[1])) <= 0)
			break;
		char buf[256];
		ssize_t n = recv(s, buf, sizeof buf - 1, 0);
		if (n < 0)
			return fail("recv");
		buf[n] = '\0';
		printf("GOT %s\n", buf);
	}
	puts("DONE");
	unlink(a[0]);
	return 0;
}

/* with-dgram-stdin PROG [ARG]...: exec PROG with an unbound unix datagram
 * socket as its stdin (as a careless caller might hand one down). */
static int cmd_with_dgram_stdin(char **a)
{
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (s < 0 || dup2(s, 0) < 0)
		return fail("socket");
	execv(a[0], a);
	return fail("exec");
}

static int cmd_io_uring(char **a)
{
	(void)a;
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	long fd = syscall(__NR_io_uring_setup, 8, &p);
	return fd < 0 ? fail("io_uring_setup") : ok(NULL);
}

static int cmd_read(char **a)
{
	int fd = open(a[0], O_RDONLY);
	if (fd < 0)
		return fail("open");
	char buf[64];
	if (read(fd, buf, sizeof buf) < 0)
		return fail("read");
	return ok(NULL);
}

static int cmd_ls(char **a)
{
	DIR *d = opendir(a[0]);
	return d ? ok(NULL) : fail("opendir");
}

static int cmd_stat(char **a)
{
	struct stat st;
	return stat(a[0], &st) < 0 ? fail("stat") : ok(NULL);
}

static int cmd_write(char **a)
{
	int fd = open(a[0], O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		return fail("open");
	if (write(fd, "pwned\n", 6) < 0)
		return fail("write");
	return ok(NULL);
}

static int cmd_link(char **a)
{
	return link(a[0], a[1]) < 0 ? fail("link") : ok(NULL);
}

static int cmd_rename(char **a)
{
	return rename(a[0], a[1]) < 0 ? fail("rename") : ok(NULL);
}

static int cmd_symlink_write(char **a)
{
	/* symlink TARGET LINK in the workspace, then write through it */
	if (symlink(a[0], a[1]) < 0)
		return fail("symlink");
	return cmd_write(&a[1]);
}

static int cmd_unshare(char **a)
{
	return unshare((int)strtol(a[0], NULL, 0)) < 0 ? fail("unshare") : ok(NULL);
}

static int cmd_clone(char **a)
{
	long flags = strtol(a[0], NULL, 0);
	long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		return fail("clone");
	if (pid == 0)
		_exit(0);
	waitpid((pid_t)pid, NULL, 0);
	return ok(NULL);
}

static int cmd_clone3(char **a)
{
	(void)a;
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	} args = { .exit_signal = SIGCHLD };
	long pid = syscall(435, &args, sizeof args);
	if (pid < 0)
		return fail("clone3");
	if (pid == 0)
		_exit(0);
	waitpid((pid_t)pid, NULL, 0);
	return ok(NULL);
}

static int cmd_fork(char **a)
{
	(void)a;
	pid_t pid = fork();
	if (pid < 0)
		return fail("fork");
	if (pid == 0)
		_exit(7);
	int st;
	waitpid(pid, &st, 0);
	return WEXITSTATUS(st) == 7 ? ok(NULL) : fail("wait");
}

static int cmd_setns(char **a)
{
	int fd = open(a[0], O_RDONLY);
	if (fd < 0)
		return fail("open");
	return setns(fd, 0) < 0 ? fail("setns") : ok(NULL);
}

static int cmd_mount(char **a)
{
	(void)a;
	return mount("none", "/tmp", "tmpfs", 0, NULL) < 0 ? fail("mount") : ok(NULL);
}

static int cmd_chroot(char **a)
{
	return chroot(a[0]) < 0 ? fail("chroot") : ok(NULL);
}

static int cmd_ptrace(char **a)
{
	pid_t pid = atoi(a[0]);
	return ptrace(PTRACE_ATTACH, pid, 0, 0) < 0 ? fail("ptrace") : ok(NULL);
}

static int cmd_kill(char **a)
{
	return kill(atoi(a[0]), atoi(a[1])) < 0 ? fail("kill") : ok(NULL);
}

static int cmd_mem(char **a)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%s/mem", a[0]);
	int fd = open(path, O_RDONLY);
	return fd < 0 ? fail("open") : ok(NULL);
}

static int cmd_vm_read(char **a)
{
	char buf[8];
	struct iovec local = { buf, sizeof buf }, remote = { (void *)0x400000, sizeof buf };
	return process_vm_readv(atoi(a[0]), &local, 1, &remote, 1, 0) < 0 ? fail("process_vm_readv") : ok(NULL);
}

static int cmd_setuid(char **a)
{
	return setuid((uid_t)atoi(a[0])) < 0 ? fail("setuid") : ok(NULL);
}

static int cmd_personality(char **a)
{
	return personality((unsigned long)strtoul(a[0], NULL, 0)) < 0 ? fail("personality") : ok(NULL);
}

static int cmd_tiocsti(char **a)
{
	int fd = atoi(a[0]);
	char c = '#';
	return ioctl(fd, TIOCSTI, &c) < 0 ? fail("ioctl") : ok(NULL);
}

static int cmd_syscall(char **a)
{
	long nr = strtol(a[0], NULL, 0);
	long r = syscall(nr, 0, 0, 0, 0, 0, 0);
	return r < 0 ? fail("syscall") : ok(NULL);
}

static int cmd_status(char **a)
{
	(void)a;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return fail("open");
	char line[256];
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) || !strncmp(line, "Seccomp", 7) ||
		    !strncmp(line, "Uid", 3) || !strncmp(line, "Gid", 3) || !strncmp(line, "Groups", 6))
			fputs(line, stdout);
	return 0;
}

static int cmd_fds(char **a)
{
	(void)a;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return fail("opendir");
	int self = dirfd(d);
	struct dirent *e;
	int first = 1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == self)
			continue;
		printf("%s%s", first ? "" : ",", e->d_name);
		first = 0;
	}
	putchar('\n');
	return 0;
}

static int cmd_env(char **a)
{
	(void)a;
	extern char **environ;
	for (char **e = environ; *e; e++)
		puts(*e);
	return 0;
}

static int cmd_whoami(char **a)
{
	(void)a;
	char cwd[4096], host[256];
	if (!getcwd(cwd, sizeof cwd))
		return fail("getcwd");
	gethostname(host, sizeof host);
	printf("uid=%u gid=%u pid=%d ppid=%d sid=%d cwd=%s host=%s\n", getuid(), getgid(), getpid(), getppid(),
	       getsid(0), cwd, host);
	return 0;
}

/* N concurrent connections, each sends SIZE bytes, half-closes, and must
 * read back exactly the same bytes (the test's server echoes). */
static int cmd_echo(char **a)
{
	int n = atoi(a[2]);
	size_t size = (size_t)atol(a[3]);
	int *fds = calloc((size_t)n, sizeof *fds);
	unsigned char *out = malloc(size + 1), *in = malloc(size + 1);
	size_t *sent = calloc((size_t)n, sizeof *sent), *got = calloc((size_t)n, sizeof *got);
	for (size_t i = 0; i < size; i++)
		out[i] = (unsigned char)(i * 31 + 7);
	unsigned char **bufs = calloc((size_t)n, sizeof *bufs);
	for (int i = 0; i < n; i++) {
		const char *step;
		fds[i] = tcp_connect(a[0], a[1], &step);
		if (fds[i] < 0)
			return fail(step);
		fcntl(fds[i], F_SETFL, O_NONBLOCK);
		bufs[i] = malloc(size + 1);
	}
	int done = 0;
	struct pollfd *p = calloc((size_t)n, sizeof *p);
	while (done < n) {
		for (int i = 0; i < n; i++) {
			p[i].fd = fds[i] >= 0 ? fds[i] : -1;
			p[i].events = POLLIN | (sent[i] < size ? POLLOUT : 0);
		}
		if (poll(p, (nfds_t)n, 10000) <= 0) {
			errno = ETIMEDOUT;
			return fail("poll");
		}
		for (int i = 0; i < n; i++) {
			if (fds[i] < 0 || !p[i].revents)
				continue;
			if (sent[i] < size && (p[i].revents & POLLOUT)) {
				ssize_t w = send(fds[i], out + sent[i], size - sent[i], MSG_NOSIGNAL);
				if (w < 0 && errno != EAGAIN)
					return fail("send");
				if (w > 0 && (sent[i] += (size_t)w) == size)
					shutdown(fds[i], SHUT_WR);
			}
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t r = recv(fds[i], bufs[i] + got[i], size + 1 - got[i], 0);
				if (r < 0 && errno != EAGAIN)
					return fail("recv");
				if (r > 0)
					got[i] += (size_t)r;
				if (r == 0) {
					if (got[i] != size || memcmp(bufs[i], out, size) != 0) {
						printf("mismatch:%zu/%zu\n", got[i], size);
						return 0;
					}
					close(fds[i]);
					fds[i] = -1;
					done++;
				}
			}
		}
	}
	(void)in;
	printf("OK %d x %zu\n", n, size);
	return 0;
}

static int cmd_sleep(char **a)
{
	printf("READY %d\n", getpid());
	fflush(stdout);
	sleep((unsigned)atoi(a[0]));
	return 0;
}

static void on_term(int sig)
{
	(void)sig;
	_exit(42);
}

static int cmd_trap(char **a)
{
	signal(SIGTERM, on_term);
	return cmd_sleep(a);
}

static int cmd_exit(char **a)
{
	exit(atoi(a[0]));
}

static int cmd_x32(char **a)
{
	(void)a;
#ifdef __x86_64__
	syscall(0x40000000 | SYS_getpid); /* killed by the filter: never returns */
#endif
	return fail("x32");
}

/* i386: a 32-bit syscall (int 0x80, getpid = 20 in the i386 table) from
 * this 64-bit process. Its numbers mean other things than x86_64's: the
 * filter must kill it on the architecture check (SIGSYS), never run it. */
static int cmd_i386(char **a)
{
	(void)a;
#ifdef __x86_64__
	long r;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return fail("int80");
	}
	printf("OK ran as i386 getpid: %ld\n", r);
	return 0;
#else
	return ok("not x86_64");
#endif
}

/* tioclinux PATH|FD: TIOCLINUX (TIOCL_PASTESEL = 3 pastes the console
 * selection as input, like TIOCSTI) on a terminal opened at PATH, or on FD.
 * Only seccomp answers EPERM; the tty itself says ENOTTY or EINVAL. */
static int cmd_tioclinux(char **a)
{
	int fd = a[0][0] == '/' ? open(a[0], O_RDWR | O_NOCTTY | O_CLOEXEC) : atoi(a[0]);
	if (fd < 0)
		return fail("open");
	char sub = 3;
	return ioctl(fd, TIOCLINUX, &sub) < 0 ? fail("ioctl") : ok(NULL);
}

/* tfo-msg / tfo-mmsg IP PORT: TCP Fast Open through sendmsg()/sendmmsg()
 * (a connect that no connect() hook sees), as cmd_tfo does with sendto(). */
static int tfo_via(char **a, bool mmsg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = parse_addr(a[0], a[1], &ss, &len);
	int s = socket(fam, SOCK_STREAM, 0);
	if (s < 0)
		return fail("socket");
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	struct mmsghdr mm = { .msg_hdr = { .msg_name = &ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1 } };
	if (mmsg)
		return sendmmsg(s, &mm, 1, MSG_FASTOPEN) < 0 ? fail("sendmmsg") : ok(NULL);
	return sendmsg(s, &mm.msg_hdr, MSG_FASTOPEN) < 0 ? fail("sendmsg") : ok(NULL);
}

static int cmd_tfo_msg(char **a)
{
	return tfo_via(a, false);
}

static int cmd_tfo_mmsg(char **a)
{
	return tfo_via(a, true);
}

/* Limits (test/sandbox/limits.test.ts). forkflood: fork children that
 * wait until fork fails, say how many and why, hold them HOLD seconds. */
static int cmd_forkflood(char **a)
{
	unsigned n = 0;
	for (;;) {
		pid_t pid = fork();
		if (pid < 0)
			break;
		if (pid == 0) {
			for (;;)
				pause();
		}
		if (++n >= 100000)
			break;
	}
	const char *e = strerrorname_np(errno);
	printf("FLOOD %u %s\n", n, e ? e : "E?");
	sleep((unsigned)atoi(a[0]));
	return 0;
}

/* alloc: touch MIB mebibytes, one at a time; prints only if it survives. */
static int cmd_alloc(char **a)
{
	long mib = atol(a[0]);
	for (long i = 0; i < mib; i++) {
		char *p = malloc(1 << 20);
		if (!p)
			return fail("malloc");
		memset(p, 1, 1 << 20);
	}
	printf("OK alloc %ld\n", mib);
	return 0;
}

/* Workspace ownership as root (test/sandbox/root-workspace.test.ts).
 * setid FILE: every way to put a set-user-ID bit on a file. */
static int cmd_setid(char **a)
{
	char line[256] = "";
	const char *r;
#define STEP(name, call)                                                       \
	do {                                                                   \
		r = (call) < 0 ? strerrorname_np(errno) : "OK";                \
		snprintf(line + strlen(line), sizeof line - strlen(line), "%s%s:%s", \
			 *line ? " " : "", name, r ? r : "E?");                 \
	} while (0)
	int fd = open(a[0], O_WRONLY | O_CREAT | O_EXCL, 04755);
	STEP("create", fd);
	if (fd < 0)
		fd = open(a[0], O_WRONLY | O_CREAT, 0755);
	STEP("chmod", chmod(a[0], 04755));
	STEP("fchmod", fchmod(fd, 02755));
	STEP("fchmodat", fchmodat(AT_FDCWD, a[0], 06755, 0));
	STEP("openat2", syscall(SYS_openat2, AT_FDCWD, a[0], NULL, 0));
#undef STEP
	puts(line);
	return 0;
}

/* flip A B MS: what an agent sharing the parent of another sandbox's path
 * does: swap A and B (a directory and a symlink) with RENAME_EXCHANGE, as
 * fast as it can, for MS milliseconds. Prints the number of swaps. */
static int cmd_flip(char **a)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	long ms = atol(a[2]), n = 0;
	do {
		if (renameat2(AT_FDCWD, a[0], AT_FDCWD, a[1], RENAME_EXCHANGE) < 0)
			return fail("renameat2");
		n++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
	printf("flips %ld\n", n);
	return 0;
}

/* chown PATH UID: give a file away (or take it). */
static int cmd_chown(char **a)
{
	return chown(a[0], (uid_t)atol(a[1]), (gid_t)-1) < 0 ? fail("chown") : ok(NULL);
}

static const struct {
	const char *name;
	int argc;
	int (*fn)(char **);
} cmds[] = {
	{ "connect", 2, cmd_connect },	 { "udp", 2, cmd_udp },
	{ "dns", 1, cmd_dns },		 { "socket", 3, cmd_socket },
	{ "socketpair", 1, cmd_socketpair }, { "bind", 2, cmd_bind },
	{ "listen", 0, cmd_listen },	 { "tfo", 2, cmd_tfo },
	{ "unix", 1, cmd_unix },	 { "io_uring", 0, cmd_io_uring },
	{ "read", 1, cmd_read },	 { "ls", 1, cmd_ls },
	{ "stat", 1, cmd_stat },	 { "write", 1, cmd_write },
	{ "link", 2, cmd_link },	 { "rename", 2, cmd_rename },
	{ "symlink-write", 2, cmd_symlink_write }, { "unshare", 1, cmd_unshare },
	{ "clone", 1, cmd_clone },	 { "clone3", 0, cmd_clone3 },
	{ "fork", 0, cmd_fork },	 { "setns", 1, cmd_setns },
	{ "mount", 0, cmd_mount },	 { "chroot", 1, cmd_chroot },
	{ "ptrace", 1, cmd_ptrace },	 { "kill", 2, cmd_kill },
	{ "mem", 1, cmd_mem },		 { "vm-read", 1, cmd_vm_read },
	{ "setuid", 1, cmd_setuid },	 { "personality", 1, cmd_personality },
	{ "tiocsti", 1, cmd_tiocsti },	 { "syscall", 1, cmd_syscall },
	{ "status", 0, cmd_status },	 { "fds", 0, cmd_fds },
	{ "env", 0, cmd_env },		 { "whoami", 0, cmd_whoami },
	{ "echo", 4, cmd_echo },	 { "sleep", 1, cmd_sleep },
	{ "trap", 1, cmd_trap },	 { "exit", 1, cmd_exit },
	{ "x32", 0, cmd_x32 },		 { "i386", 0, cmd_i386 },
	{ "tioclinux", 1, cmd_tioclinux }, { "tfo-msg", 2, cmd_tfo_msg },
	{ "tfo-mmsg", 2, cmd_tfo_mmsg },
	{ "socketpair-type", 2, cmd_socketpair_type }, { "unix-sendto", 2, cmd_unix_sendto },
	{ "sendto-fd", 2, cmd_sendto_fd },	{ "dgram-recv", 2, cmd_dgram_recv },
	{ "with-dgram-stdin", -1, cmd_with_dgram_stdin }, /* -N: at least N arguments */
	{ "forkflood", 1, cmd_forkflood }, { "alloc", 1, cmd_alloc },
	{ "setid", 1, cmd_setid },	 { "chown", 2, cmd_chown },
	{ "flip", 3, cmd_flip },
};

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2)
		for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
			if (!strcmp(argv[1], cmds[i].name)) {
				if (cmds[i].argc >= 0 ? argc - 2 != cmds[i].argc : argc - 2 < -cmds[i].argc) {
					fprintf(stderr, "probe %s: expected %d arguments\n", argv[1], cmds[i].argc);
					return 2;
				}
				return cmds[i].fn(&argv[2]);
			}
	fprintf(stderr, "usage: probe SUBCOMMAND [ARGS]...; subcommands:");
	for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
		fprintf(stderr, " %s", cmds[i].name);
	fputc('\n', stderr);
	return 2;
}
