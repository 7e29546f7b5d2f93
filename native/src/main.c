/* The process tree:
 *
 *   launcher (host pid ns, host mount ns; new user*, net, ipc, uts ns)
 *   |   supervises: forwards signals to init, exits with the command's code
 *   +-- relay  (same namespaces as the launcher: sees the session socket)
 *   +-- init   (pid 1 of a new pid ns, in the sandbox's cgroup (if any);
 *       |       new mount + cgroup ns; builds the
 *       |       root, then waits, reaps and forwards signals)
 *       +-- agent: setsid, credentials, rlimits, env, no_new_privs,
 *                  Landlock, seccomp, close fds, exec COMMAND
 *   (* user namespace only when not started as root)
 *
 * The command is not pid 1, so it keeps ordinary signal semantics. Setup
 * failures in init or agent are written as an exit code to a CLOEXEC status
 * pipe; EOF without a code means the exec succeeded. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

#ifndef __NR_close_range
#define __NR_close_range 436
#endif

extern char **environ;

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

static void forwarded_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaddset(set, forwarded[i]);
	sigaddset(set, SIGCHLD);
}

static int status_of(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return EXIT_LAUNCHER;
}

static void preflight(struct plan *p)
{
	p->landlock_abi = landlock_effective_abi();
	if (p->landlock_abi < 1)
		die(EXIT_UNAVAILABLE,
		    "Landlock is not available on this kernel (needs CONFIG_SECURITY_LANDLOCK=y and "
		    "\"landlock\" in the lsm= boot parameter); refusing to run unconfined");
	if (p->landlock_abi < LANDLOCK_ABI_REQUIRED) {
		char what[600];
		landlock_describe_missing(p->landlock_abi, LANDLOCK_ABI_REQUIRED, what, sizeof what);
		if (!p->allow_weaker)
			die(EXIT_UNAVAILABLE,
			    "Landlock ABI %d is too old (need %d): missing %s; pass --allow-weaker to run "
			    "without them",
			    p->landlock_abi, LANDLOCK_ABI_REQUIRED, what);
		warnx_("--allow-weaker: Landlock ABI %d, running without %s", p->landlock_abi, what);
	}
	if (!seccomp_available())
		die(EXIT_UNAVAILABLE, "seccomp filters are not available (CONFIG_SECCOMP_FILTER)");
}

/* Environment: an allowlist from ours, then HOME, then --env (wins). */
static char **build_env(const struct plan *p, bool *home_given)
{
	size_t cap = 16 + p->n_env, n = 0;
	for (char **e = environ; *e; e++)
		cap++;
	char **env = calloc(cap, sizeof *env);
	if (!env)
		die_errno(EXIT_LAUNCHER, "calloc");
	static const char *const keep[] = { "PATH=", "LANG=", "LANGUAGE=", "TERM=", "TZ=", "LC_" };
	for (char **e = environ; *e; e++)
		for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
			if (strncmp(*e, keep[i], strlen(keep[i])) == 0 && strchr(*e, '=')) {
				env[n++] = *e;
				break;
			}
	bool has_path = false;
	for (size_t i = 0; i < n; i++)
		has_path |= strncmp(env[i], "PATH=", 5) == 0;
	if (!has_path)
		env[n++] = "PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
	char *home_var = NULL;
	if (p->home && asprintf(&home_var, "HOME=%s", p->home) < 0)
		die_errno(EXIT_LAUNCHER, "alloc");
	env[n++] = home_var ? home_var : "HOME=/tmp/home";
	env[n++] = "GATEHOUSE_SANDBOX=1";
	*home_given = false;
	for (size_t j = 0; j < p->n_env; j++) {
		size_t klen = (size_t)(strchr(p->env[j], '=') - p->env[j]) + 1;
		if (strncmp(p->env[j], "HOME=", 5) == 0)
			*home_given = true;
		size_t i;
		for (i = 0; i < n; i++)
			if (strncmp(env[i], p->env[j], klen) == 0)
				break;
		env[i] = (char *)p->env[j];
		if (i == n)
			n++;
	}
	env[n] = NULL;
	return env;
}

static _Noreturn void agent_main(const struct plan *p, int status_fd)
{
	gh_set_child("agent", status_fd);
	if (setsid() < 0) /* no controlling tty: TIOCSTI cannot reach the caller's terminal */
		die_errno(EXIT_LAUNCHER, "setsid");
	privs_drop_to_agent(p);
	/* After the credential change, which clears PDEATHSIG. Our parent is
	 * init (pid 1 here); if it is gone the namespace is being torn down. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		die_errno(EXIT_LAUNCHER, "prctl(PR_SET_PDEATHSIG)");
	if (getppid() != 1)
		_exit(EXIT_LAUNCHER);
	privs_set_rlimits(p);
	/* In the new root, as the command's uid: whatever this path leads to now,
	 * the command could chdir there itself. */
	const char *cwd = p->cwd ? p->cwd : p->workspace;
	if (chdir(cwd) < 0)
		die_errno(EXIT_LAUNCHER, "chdir %s", cwd);
	bool home_given;
	char **env = build_env(p, &home_given);
	if (!home_given && !p->home && mkdir("/tmp/home", 0700) < 0 && errno != EEXIST)
		die_errno(EXIT_LAUNCHER, "mkdir /tmp/home");

	sigset_t none;
	sigemptyset(&none);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL); /* some numbers (glibc-internal) fail; that is fine */
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		die_errno(EXIT_LAUNCHER, "sigprocmask");

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die_errno(EXIT_LAUNCHER, "PR_SET_NO_NEW_PRIVS");
	landlock_apply_agent(p);
	seccomp_apply(SECCOMP_AGENT);

	/* The command starts only once the relay is confined and serving: it
	 * confined itself while the namespaces, cgroup and mounts were made.
	 * Before the dup3 below, which may take the ready fd's number. */
	char ok = 0;
	ssize_t got;
	while ((got = read(p->relay_ready_fd, &ok, 1)) < 0 && errno == EINTR)
		;
	if (got != 1 || ok != 1)
		die(EXIT_LAUNCHER, "the relay failed to start");
	close(p->relay_ready_fd);

	/* Keep only 0-2 and the status pipe (as fd 3, closed by the exec). */
	if (status_fd != 3) {
		if (dup3(status_fd, 3, O_CLOEXEC) < 0)
			die_errno(EXIT_LAUNCHER, "dup3 status fd");
		gh_set_child("agent", 3);
	} else if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0) {
		die_errno(EXIT_LAUNCHER, "fcntl status fd");
	}
	if (syscall(__NR_close_range, 4U, ~0U, 0) < 0)
		die_errno(EXIT_LAUNCHER, "close_range");

	execvpe(p->argv[0], p->argv, env);
	die_errno(errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC, "exec %s", p->argv[0]);
}

static void noop_handler(int sig)
{
	(void)sig;
}

static _Noreturn void init_main(struct plan *p, int status_fd, int parent_pidfd)
{
	gh_set_child("init", status_fd);
	die_with_parent(parent_pidfd);
	/* Into the sandbox's own cgroup first: its namespace is rooted there. */
	cgroup_join(p);
	if (p->limits.uid_lock_fd >= 0)
		close(p->limits.uid_lock_fd); /* the launcher holds the uid's slot */
	if (unshare(CLONE_NEWNS | CLONE_NEWCGROUP) < 0)
		die_errno(EXIT_UNAVAILABLE, "unshare(CLONE_NEWNS|CLONE_NEWCGROUP)");
	mounts_setup(p);
	idmap_close(p);

	/* pid 1 only gets signals it has a handler for; they stay blocked and
	 * are taken with sigwaitinfo() below. */
	struct sigaction sa = { .sa_handler = noop_handler };
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaction(forwarded[i], &sa, NULL);

	pid_t agent = fork();
	if (agent < 0)
		die_errno(EXIT_LAUNCHER, "fork agent");
	if (agent == 0) {
		close(parent_pidfd);
		agent_main(p, status_fd);
	}
	close(p->relay_ready_fd);
	/* Init needs no privilege to wait and forward: become the command's
	 * uid with no capabilities, like it (and then it may signal it). */
	privs_drop_to_agent(p);
	die_with_parent(parent_pidfd);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die_errno(EXIT_LAUNCHER, "prctl");
	close(parent_pidfd);
	close(status_fd);
	gh_set_child("init", -1);

	sigset_t set;
	forwarded_set(&set);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(agent, sig);
			continue;
		}
		int wstatus;
		pid_t pid;
		while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0)
			if (pid == agent)
				_exit(status_of(wstatus)); /* the namespace, and all in it, goes with us */
	}
}

static int supervise(struct plan *p)
{
	sigset_t set;
	forwarded_set(&set);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		die_errno(EXIT_LAUNCHER, "sigprocmask");
	const int self = pidfd_self();

	ns_enter_outer(p);
	int lfds[2];
	int n_listen = ns_relay_listeners(p, lfds);

	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		die_errno(EXIT_LAUNCHER, "pipe2");
	pid_t relay = fork();
	if (relay < 0)
		die_errno(EXIT_LAUNCHER, "fork relay");
	if (relay == 0) {
		gh_set_child("relay", -1);
		close(ready[0]);
		die_with_parent(self);
		relay_run(p, lfds, n_listen, ready[1]);
	}
	for (int i = 0; i < n_listen; i++)
		close(lfds[i]);
	close(ready[1]);
	/* The relay confines itself while the rest is set up; the agent waits
	 * for its "ready" right before exec (agent_main), on this fd. */
	p->relay_ready_fd = ready[0];
	/* After the relay's fork: it holds neither the uid lock nor cgroup
	 * or idmap fds. The idmaps need the uid, so it comes first. */
	privs_session_uid(p);
	cgroup_setup(p);
	idmap_prepare(p);

	int status[2];
	if (pipe2(status, O_CLOEXEC) < 0)
		die_errno(EXIT_LAUNCHER, "pipe2");
	/* clone() rather than unshare(CLONE_NEWPID): the launcher itself keeps
	 * a normal pid namespace for children (and threads, e.g. LeakSanitizer's). */
	pid_t init = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
	if (init < 0)
		die_errno(errno == EPERM || errno == EINVAL ? EXIT_UNAVAILABLE : EXIT_LAUNCHER,
			  "clone(CLONE_NEWPID)");
	if (init == 0) {
		close(status[0]);
		init_main(p, status[1], self);
	}
	close(status[1]);
	close(ready[0]);
	cgroup_close_fds(p);
	idmap_close(p);

	int failure = 0;
	ssize_t n;
	while ((n = read(status[0], &failure, sizeof failure)) < 0 && errno == EINTR)
		;
	close(status[0]);
	bool setup_failed = n == (ssize_t)sizeof failure;

	int code = -1;
	bool relay_alive = true;
	while (code < 0) {
		siginfo_t si;
		int sig = setup_failed ? SIGCHLD : sigwaitinfo(&set, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(init, sig);
			continue;
		}
		int wstatus;
		pid_t pid;
		while (code < 0 && (pid = waitpid(-1, &wstatus, setup_failed ? 0 : WNOHANG)) > 0) {
			if (pid == init) {
				code = setup_failed ? failure : status_of(wstatus);
			} else if (pid == relay) {
				relay_alive = false;
				/* Before the command started, the agent said why (the relay failed to start). */
				if (!setup_failed)
					warnx_("relay exited (status %d): the command has no way out any more",
					       status_of(wstatus));
			}
		}
	}
	if (relay_alive) {
		kill(relay, SIGKILL);
		waitpid(relay, NULL, 0);
	}
	return code;
}

int main(int argc, char **argv)
{
	ensure_std_fds();
	/* Whatever the caller leaked (shells do) stops here, for every process. */
	if (syscall(__NR_close_range, 3U, ~0U, 0) < 0)
		die_errno(EXIT_LAUNCHER, "close_range");
	/* Die with whoever started us (the gateway); if it is already gone,
	 * getppid() no longer returns the parent we saw first. */
	pid_t parent = getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		die_errno(EXIT_LAUNCHER, "prctl(PR_SET_PDEATHSIG)");
	if (getppid() != parent)
		return EXIT_LAUNCHER;

	struct plan p;
	switch (plan_parse(&p, argc, argv)) {
	case MODE_PROBE:
		return doctor_run();
	case MODE_EXIT_OK:
		return 0;
	case MODE_RUN:
		break;
	}
	preflight(&p);
	int code = supervise(&p);
	protect_report_created(&p);
	cgroup_remove(&p);
	plan_free(&p);
	return code;
}
