/*
 * gatehouse-reaper: runs one stdio MCP server so that none of its processes
 * outlives it (issue #24, "stdio children as a process group").
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
 * Threat model: a server that forks, double-forks, calls setsid() or ignores
 * SIGTERM. Not covered: a server that kills the reaper itself (same uid) before
 * its children escape, or that forks faster than /proc can be read for longer
 * than the kill deadline; the sandbox (pid namespace, cgroup) is the boundary
 * for those.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
    /* Killing a parent re-parents its children to us: the next round finds them. */
    signal_descendants(SIGKILL);
    wait_signal(set, 10);
  }
}

int main(int argc, char **argv) {
  /* Plan: parse the arguments, then become a subreaper, block signals, fork, exec. */
  long parent = -1, grace_ms = 500;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc) {
      errno = EINVAL;
      die("usage: gatehouse-reaper --parent PID [--grace-ms N] -- COMMAND [ARG]...");
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
    die("usage: gatehouse-reaper --parent PID [--grace-ms N] -- COMMAND [ARG]...");
  }

  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) die("prctl(PR_SET_CHILD_SUBREAPER)");
  if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0) die("prctl(PR_SET_PDEATHSIG)");
  /* The gateway may have died before PDEATHSIG was set: then nobody would stop us. */
  if (getppid() != (pid_t)parent) return EXIT_REAPER;

  /* An inherited SIG_IGN for SIGCHLD would make the kernel reap children for us. */
  if (signal(SIGCHLD, SIG_DFL) == SIG_ERR) die("signal(SIGCHLD)");
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &set, &old) != 0) die("sigprocmask");

  server = fork();
  if (server < 0) die("fork");
  if (server == 0) {
    /* The blocked mask survives exec: give the server the one we were started with. */
    if (sigprocmask(SIG_SETMASK, &old, NULL) != 0) die("sigprocmask");
    execvp(argv[i], &argv[i]);
    int err = errno;
    fprintf(stderr, "gatehouse-reaper: error: cannot run %s: %s\n", argv[i], strerror(err));
    _exit(err == ENOENT ? 127 : 126);
  }

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
