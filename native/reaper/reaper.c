/*
 * gatehouse-reaper: runs one stdio MCP server so that none of its processes
 * outlives it.
 *
 *   gatehouse-reaper --parent PID [--grace-ms N] -- COMMAND [ARG]...
 *
 * The gateway spawns it in a process group of its own; it forks COMMAND with
 * the inherited stdin/stdout/stderr (stdio passes straight through: it never
 * reads or writes them) and stays its parent. As a child subreaper
 * (PR_SET_CHILD_SUBREAPER, prctl(2)) it inherits every orphan of the server's
 * tree, including those that left the process group with setsid(). When the
 * server exits, or the reaper gets SIGTERM/SIGINT/SIGHUP (the gateway stops
 * the group) or its parent dies (PR_SET_PDEATHSIG), it sends SIGTERM to every
 * descendant, waits up to --grace-ms (default 500), then SIGKILLs until it has
 * no child left. Exit status: the server's (128+N for signal N); 125 for its
 * own failures, 126/127 when COMMAND cannot be run / is not found.
 *
 * Where the kernel lets it (user namespaces enabled, root or not), the server
 * runs as pid 1 of a new pid namespace inside a new user namespace (the
 * reaper's own uid and gid mapped to themselves, so files keep their owners):
 * kill() in the server names pids of its namespace only, getppid() is 0, so
 * neither the server nor anything it starts can name the reaper (or any
 * process outside); setsid() does not leave the namespace; and when the server
 * (pid 1) exits, the kernel kills every process left in it. The server leads a
 * process group of its own (kill(0, ...) does not reach the reaper), dies with
 * the reaper (PR_SET_PDEATHSIG, SIGKILL), and the reaper is not dumpable (no
 * /proc/PID/mem or ptrace from the server's uid). Pid 1 ignores signals it has
 * no handler for: the reaper's SIGTERM may do nothing; SIGKILL after the grace
 * does. When unshare() fails (user namespaces disabled by sysctl or policy,
 * nesting limits, a chroot; or --no-pidns) it says so once on stderr and falls
 * back to the subreaper alone.
 *
 * Threat model: a server that forks, double-forks, calls setsid(), ignores
 * SIGTERM, or (in the pid namespace) kills its own parent. Not covered: a
 * process outside with the same uid (or root) that signals the namespace; a
 * server that can write its cgroup (cgroup.kill, cgroup.freeze); resource
 * exhaustion (the sandbox's cgroup limits are the boundary). In the fallback:
 * a server that kills the reaper itself (same uid) before its children
 * escape, or that forks faster than /proc can be read for longer than the
 * kill deadline.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_REAPER 125
/* How long the SIGKILL rounds may take before the reaper gives up (D-state processes). */
#define KILL_DEADLINE_MS 5000

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...);

static void die(const char *fmt, ...) {
  int saved = errno;
  va_list ap;
  va_start(ap, fmt);
  fputs("gatehouse-reaper: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, ": %s\n", strerror(saved));
  exit(EXIT_REAPER);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static long parse_num(const char *s, const char *what) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < 0) {
    errno = EINVAL;
    die("%s: not a number: %s", what, s);
  }
  return v;
}

struct proc {
  pid_t pid;
  pid_t ppid;
};

/* Every process's pid and parent, from /proc. Returns the count; *out is malloc'd. */
static size_t read_procs(struct proc **out) {
  DIR *d = opendir("/proc");
  if (d == NULL) die("opendir /proc");
  size_t n = 0, cap = 256;
  struct proc *ps = malloc(cap * sizeof *ps);
  if (ps == NULL) die("malloc");
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char *end = NULL;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0') continue;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue; /* gone meanwhile */
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0) continue;
    buf[len] = '\0';
    /* comm may hold spaces and parentheses: the fields after it start at the last ')'. */
    char *rp = strrchr(buf, ')');
    char state;
    int ppid;
    if (rp == NULL || sscanf(rp + 1, " %c %d", &state, &ppid) != 2) continue;
    if (n == cap) {
      cap *= 2;
      struct proc *grown = realloc(ps, cap * sizeof *ps);
      if (grown == NULL) die("realloc");
      ps = grown;
    }
    ps[n].pid = (pid_t)pid;
    ps[n].ppid = (pid_t)ppid;
    n++;
  }
  closedir(d);
  *out = ps;
  return n;
}

/* Sends `sig` to every descendant of this process. Returns how many were signalled. */
static int signal_descendants(int sig) {
  struct proc *ps;
  size_t n = read_procs(&ps);
  /* One bit per possible pid (pid_max is at most 2^22): "is a descendant". */
  const size_t pid_limit = (size_t)1 << 22;
  unsigned char *mine = calloc(pid_limit / 8, 1);
  if (mine == NULL) die("calloc");
#define MINE(p) (mine[(size_t)(p) / 8] & (1u << ((size_t)(p) % 8)))
  pid_t self = getpid();
  mine[(size_t)self / 8] |= (unsigned char)(1u << ((size_t)self % 8));
  for (int grew = 1; grew;) {
    grew = 0;
    for (size_t i = 0; i < n; i++) {
      if ((size_t)ps[i].pid >= pid_limit || (size_t)ps[i].ppid >= pid_limit || MINE(ps[i].pid) || !MINE(ps[i].ppid)) continue;
      mine[(size_t)ps[i].pid / 8] |= (unsigned char)(1u << ((size_t)ps[i].pid % 8));
      grew = 1;
    }
  }
  int found = 0;
  for (size_t i = 0; i < n; i++) {
    if (ps[i].pid != self && (size_t)ps[i].pid < pid_limit && MINE(ps[i].pid) && kill(ps[i].pid, sig) == 0) found++;
  }
#undef MINE
  free(mine);
  free(ps);
  return found;
}

static pid_t server = -1;
static int server_status = -1;
/* The server is pid 1 of a pid namespace of its own (see enter_namespaces). */
static int in_pidns = 0;

/* Writes `text` to `path` (a /proc file of this process). Returns 0, or -1 with errno set. */
static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = strlen(text);
  ssize_t n = write(fd, text, len);
  int saved = errno;
  close(fd);
  if (n == (ssize_t)len) return 0;
  errno = n < 0 ? saved : EIO;
  return -1;
}

/*
 * A new user namespace (this uid and gid mapped to themselves) owning a new
 * pid namespace: the next child forked is its pid 1. Returns 1 when done, 0
 * when the kernel refuses (then nothing has changed).
 */
static int enter_namespaces(void) {
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWPID) != 0) {
    fprintf(stderr,
            "gatehouse-reaper: warning: no pid namespace for the server (unshare: %s); falling back to a subreaper: "
            "a server that kills its reaper can leave processes behind\n",
            strerror(errno));
    return 0;
  }
  char map[64];
  /* Before gid_map an unprivileged process must give up setgroups(2) (user_namespaces(7)); absent before Linux 3.19. */
  if (write_file("/proc/self/setgroups", "deny") != 0 && errno != ENOENT) die("write /proc/self/setgroups");
  snprintf(map, sizeof map, "%lu %lu 1\n", (unsigned long)uid, (unsigned long)uid);
  if (write_file("/proc/self/uid_map", map) != 0) die("write /proc/self/uid_map");
  snprintf(map, sizeof map, "%lu %lu 1\n", (unsigned long)gid, (unsigned long)gid);
  if (write_file("/proc/self/gid_map", map) != 0) die("write /proc/self/gid_map");
  return 1;
}

/* Reaps every child that has exited. Returns 0 once no child is left. */
static int reap(void) {
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p > 0) {
      if (p == server) server_status = st;
      continue;
    }
    if (p == 0) return 1;
    if (errno == EINTR) continue;
    if (errno == ECHILD) return 0;
    die("waitpid");
  }
}

/* Waits up to `ms` for a signal in `set` (SIGCHLD in practice). */
static void wait_signal(const sigset_t *set, long ms) {
  if (ms <= 0) return;
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  siginfo_t si;
  (void)sigtimedwait(set, &si, &ts);
}

/* SIGTERM to every descendant, up to `grace_ms` for them to go, then SIGKILL rounds until none is left. */
static void terminate_all(const sigset_t *set, long grace_ms) {
  long start = now_ms();
  if (signal_descendants(SIGTERM) > 0) {
    while (reap() && now_ms() - start < grace_ms) wait_signal(set, 20);
  }
  long kill_start = now_ms();
  while (reap()) {
    if (now_ms() - kill_start > KILL_DEADLINE_MS) {
      fputs("gatehouse-reaper: error: descendants still alive after SIGKILL; giving up\n", stderr);
      return;
    }
    /* Pid 1 of the namespace: its death takes every process in it (it ignores SIGTERM without a handler; not SIGKILL from here). */
    if (in_pidns && server_status < 0) (void)kill(server, SIGKILL);
    /* Killing a parent re-parents its children to us: the next round finds them. */
    signal_descendants(SIGKILL);
    wait_signal(set, 10);
  }
}

int main(int argc, char **argv) {
  /* Plan: parse the arguments, then become a subreaper, block signals, fork, exec. */
  long parent = -1, grace_ms = 500;
  int use_pidns = 1;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (strcmp(argv[i], "--no-pidns") == 0) {
      use_pidns = 0;
      continue;
    }
    if (i + 1 >= argc) {
      errno = EINVAL;
      die("usage: gatehouse-reaper --parent PID [--grace-ms N] [--no-pidns] -- COMMAND [ARG]...");
    }
    if (strcmp(argv[i], "--parent") == 0) parent = parse_num(argv[++i], "--parent");
    else if (strcmp(argv[i], "--grace-ms") == 0) grace_ms = parse_num(argv[++i], "--grace-ms");
    else {
      errno = EINVAL;
      die("unknown option %s", argv[i]);
    }
  }
  if (i >= argc || parent < 0) {
    errno = EINVAL;
    die("usage: gatehouse-reaper --parent PID [--grace-ms N] [--no-pidns] -- COMMAND [ARG]...");
  }

  if (use_pidns) in_pidns = enter_namespaces();
  else fputs("gatehouse-reaper: warning: --no-pidns: the server runs under a subreaper only\n", stderr);

  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) die("prctl(PR_SET_CHILD_SUBREAPER)");
  if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0) die("prctl(PR_SET_PDEATHSIG)");
  /* The gateway may have died before PDEATHSIG was set: then nobody would stop us. */
  if (getppid() != (pid_t)parent) return EXIT_REAPER;
  /* Not dumpable: no /proc/PID/mem, ptrace or process_vm_writev into the reaper for the server's uid (after the id maps: they need /proc/self writable). */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) die("prctl(PR_SET_DUMPABLE)");

  /* An inherited SIG_IGN for SIGCHLD would make the kernel reap children for us. */
  if (signal(SIGCHLD, SIG_DFL) == SIG_ERR) die("signal(SIGCHLD)");
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &set, &old) != 0) die("sigprocmask");

  /* The server learns the reaper is gone if it died before the server's PR_SET_PDEATHSIG: the pipe's last writer closes. */
  int alive[2];
  if (in_pidns && pipe2(alive, O_CLOEXEC) != 0) die("pipe2");
  server = fork();
  if (server < 0) die("fork");
  if (server == 0) {
    if (in_pidns) {
      /* Pid 1: dies with the reaper (SIGKILL from the parent namespace is forced, even for pid 1) ... */
      close(alive[1]);
      if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die("prctl(PR_SET_PDEATHSIG)");
      struct pollfd pfd = {.fd = alive[0], .events = POLLIN};
      if (poll(&pfd, 1, 0) != 0) _exit(EXIT_REAPER);
      close(alive[0]);
      /* ... and leads a group of its own: kill(0, sig) in the server must not reach the reaper's group. */
      if (setpgid(0, 0) != 0) die("setpgid");
    }
    /* The blocked mask survives exec: give the server the one we were started with. */
    if (sigprocmask(SIG_SETMASK, &old, NULL) != 0) die("sigprocmask");
    execvp(argv[i], &argv[i]);
    int err = errno;
    fprintf(stderr, "gatehouse-reaper: error: cannot run %s: %s\n", argv[i], strerror(err));
    _exit(err == ENOENT ? 127 : 126);
  }

  if (in_pidns) close(alive[0]); /* alive[1] stays open as long as the reaper lives */

  /* Only the server holds the gateway's stdin/stdout pipes: its exit (and its children's) closes them. */
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) die("open /dev/null");
  if (dup2(devnull, STDIN_FILENO) < 0 || dup2(devnull, STDOUT_FILENO) < 0) die("dup2");
  close(devnull);

  int stop_sig = 0;
  while (server_status < 0 && stop_sig == 0) {
    siginfo_t si;
    int sig = sigwaitinfo(&set, &si);
    if (sig < 0) {
      if (errno == EINTR) continue;
      die("sigwaitinfo");
    }
    if (sig == SIGCHLD) (void)reap();
    else stop_sig = sig;
  }
  terminate_all(&set, grace_ms);
  if (server_status < 0) return 128 + stop_sig;
  if (WIFEXITED(server_status)) return WEXITSTATUS(server_status);
  if (WIFSIGNALED(server_status)) return 128 + WTERMSIG(server_status);
  return EXIT_REAPER;
}
