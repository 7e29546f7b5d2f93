/* Command line -> struct plan. Nothing is applied here; every path is
 * checked and canonicalised so that the later steps cannot be surprised. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sandbox.h"

static const char usage_text[] =
	"usage: " GH_NAME " --socket PATH --port N --workspace DIR [options] -- COMMAND [ARG]...\n"
	"       " GH_NAME " --probe | --version | --help\n"
	"\n"
	"Runs COMMAND confined: new user (when not root), mount, pid, net, ipc, uts and\n"
	"cgroup namespaces; only lo in the netns, where a relay forwards 127.0.0.1:N\n"
	"(and [::1]:N) to the unix socket PATH outside; read-only system dirs, DIR\n"
	"read-write (the default cwd), private /tmp, /proc and minimal /dev;\n"
	"no_new_privs, no capabilities, Landlock (ABI >= 6) and a seccomp filter.\n"
	"\n"
	"  --socket PATH       session unix socket the relay connects to (outside)\n"
	"  --port N            TCP port of the relay on 127.0.0.1 inside (1-65535)\n"
	"  --workspace DIR     read-write at the same absolute path; the cwd unless --cwd\n"
	"  --ro PATH           extra path, read-only (repeatable)\n"
	"  --rw PATH           extra path, read-write (repeatable)\n"
	"  --allow-write PATH  leave one protected path writable, with a warning (repeatable);\n"
	"                      protected, read-only inside the workspace and each --rw dir:\n"
	"                      .git .gitmodules .bashrc .bash_profile .bash_login .bash_logout\n"
	"                      .profile .zshrc .zshenv .zprofile .zlogin .zlogout .envrc .vscode\n"
	"                      .idea .devcontainer .claude .mcp.json .codex .cursor .gemini\n"
	"                      .husky .githooks .pre-commit-config.yaml lefthook.yml .lefthook.yml\n"
	"                      lefthook-local.yml .lefthook-local.yml .lefthook\n"
	"  --protect PATH      also protect this existing path in a writable dir (repeatable)\n"
	"  --cwd DIR           the command's cwd (a relative COMMAND is relative to it): the\n"
	"                      workspace, or a dir inside it or a --ro/--rw/--home path\n"
	"  --home DIR          the command's own home, read-write, as $HOME; its dotfiles\n"
	"                      are not protected (no process outside the sandbox may use it)\n"
	"  --env NAME=VALUE    add to the (otherwise cleared) environment (repeatable)\n"
	"  --env-keep NAME     keep NAME from the launcher's own environment (repeatable;\n"
	"                      a secret passed this way is never on a command line)\n"
	"  --allow-weaker      run with Landlock ABI 1-5, without what it lacks\n"
	"  --uid N, --gid N    ids of the command inside (root default: a uid of its own)\n"
	"  --tmp-size MIB      size of the private /tmp (default 256)\n"
	"  --max-procs N       RLIMIT_NPROC of the command (default 1024)\n"
	"  --max-files N       RLIMIT_NOFILE of the command (default 4096)\n"
	"  --pids-max N        per-sandbox cgroup pids.max (default 1024)\n"
	"  --memory-max SIZE   per-sandbox cgroup memory limit, bytes or K/M/G/T (default 4G)\n"
	"  --cpu-weight N      per-sandbox cgroup cpu.weight 1-10000 (default 100)\n"
	"                      given explicitly, a limit is required: no usable cgroup = exit 124;\n"
	"                      by default limits apply where a cgroup can be made. As root the\n"
	"                      command gets its own uid (2^31 + slot) unless --uid is given\n"
	"  --probe             print one JSON object describing kernel support\n"
	"\n"
	"Exit: the command's code, 128+N if it died of signal N; 124 confinement\n"
	"unavailable (refused), 125 launcher error, 126 cannot execute, 127 not found.\n"
	"Env " SIMULATE_ABI_ENV "=N pretends the kernel's Landlock ABI is N (tests).\n"
	"Env " SIMULATE_NO_CGROUP_ENV "=1 pretends no cgroup can be made (tests).\n";

enum {
	OPT_SOCKET = 1000, OPT_PORT, OPT_WORKSPACE, OPT_RO, OPT_RW, OPT_ENV, OPT_ENV_KEEP,
	OPT_ALLOW_WEAKER, OPT_UID, OPT_GID, OPT_TMP_SIZE, OPT_MAX_PROCS,
	OPT_MAX_FILES, OPT_PIDS_MAX, OPT_MEMORY_MAX, OPT_CPU_WEIGHT, OPT_PROBE, OPT_HELP, OPT_VERSION,
};

enum { OPT_ALLOW_WRITE = 1100, OPT_PROTECT, OPT_HOME, OPT_CWD };

static const struct option options[] = {
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "workspace", required_argument, NULL, OPT_WORKSPACE },
	{ "ro", required_argument, NULL, OPT_RO },
	{ "rw", required_argument, NULL, OPT_RW },
	{ "allow-write", required_argument, NULL, OPT_ALLOW_WRITE },
	{ "protect", required_argument, NULL, OPT_PROTECT },
	{ "home", required_argument, NULL, OPT_HOME },
	{ "cwd", required_argument, NULL, OPT_CWD },
	{ "env", required_argument, NULL, OPT_ENV },
	{ "env-keep", required_argument, NULL, OPT_ENV_KEEP },
	{ "allow-weaker", no_argument, NULL, OPT_ALLOW_WEAKER },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	{ "tmp-size", required_argument, NULL, OPT_TMP_SIZE },
	{ "max-procs", required_argument, NULL, OPT_MAX_PROCS },
	{ "max-files", required_argument, NULL, OPT_MAX_FILES },
	{ "pids-max", required_argument, NULL, OPT_PIDS_MAX },
	{ "memory-max", required_argument, NULL, OPT_MEMORY_MAX },
	{ "cpu-weight", required_argument, NULL, OPT_CPU_WEIGHT },
	{ "probe", no_argument, NULL, OPT_PROBE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static _Noreturn void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: usage error: ", GH_NAME);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see %s --help)\n", GH_NAME);
	exit(EXIT_LAUNCHER);
}

static unsigned long parse_num(const char *s, unsigned long min, unsigned long max, const char *what)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-' || *s == '+')
		usage_error("%s: not a number", what);
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		usage_error("%s: out of range or not a number", what);
	return v;
}

/* `path` is `dir` or below it, by whole components (/a/bc is not below /a/b). */
static bool path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* An absolute, existing, canonical path. Not /, and not under the mounts
 * the launcher itself owns (/proc, /dev, /sys). The caller (gatehouse run)
 * checked the path it gives against the gateway's own files: a path that
 * resolves to something else now was changed since (an agent of another
 * sandbox flipping a component between a directory and a symlink), so it is
 * refused, never replaced by what it resolves to. Trailing slashes aside. */
static char *canonical_path(const char *given, const char *flag, bool want_dir)
{
	if (given[0] != '/')
		usage_error("%s needs an absolute path", flag);
	char *real = realpath(given, NULL);
	if (!real)
		die_errno(EXIT_LAUNCHER, "%s %s", flag, given);
	size_t len = strlen(given);
	while (len > 1 && given[len - 1] == '/')
		len--;
	if (strlen(real) != len || strncmp(real, given, len) != 0)
		die(EXIT_LAUNCHER, "%s %s is not canonical (a symlink or ./.. in it): give its real path, %s",
		    flag, given, real);
	struct stat st;
	if (stat(real, &st) < 0)
		die_errno(EXIT_LAUNCHER, "stat %s", real);
	if (want_dir && !S_ISDIR(st.st_mode))
		die(EXIT_LAUNCHER, "%s %s is not a directory", flag, real);
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		die(EXIT_LAUNCHER, "%s %s: only directories and regular files can be shared", flag, real);
	static const char *const reserved[] = { "/proc", "/dev", "/sys" };
	if (strcmp(real, "/") == 0)
		die(EXIT_LAUNCHER, "%s /: refusing to share the whole root", flag);
	for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++) {
		if (path_within(real, reserved[i]))
			die(EXIT_LAUNCHER, "%s %s: %s is set up by the launcher", flag, real, reserved[i]);
	}
	return real;
}

/* SIZE: bytes, or a number with K, M, G or T (powers of 1024). */
static unsigned long long parse_size(const char *s, const char *what)
{
	char *end;
	errno = 0;
	if (!*s || *s < '0' || *s > '9')
		usage_error("%s: not a size", what);
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;
	if (*end && !end[1]) {
		const char *units = "KMGT", *u = strchr(units, *end);
		if (!u)
			usage_error("%s: unknown unit %c (use K, M, G or T)", what, *end);
		shift = 10 * (unsigned)(u - units + 1);
		end++;
	}
	if (errno || *end || v > (1ULL << 50) >> shift)
		usage_error("%s: out of range or not a size", what);
	v <<= shift;
	if (v < (16ULL << 20))
		usage_error("%s: at least 16M", what);
	return v;
}

static void add_bind(struct plan *p, char *path, bool writable)
{
	for (size_t i = 0; i < p->n_binds; i++)
		if (strcmp(p->binds[i].path, path) == 0)
			die(EXIT_LAUNCHER, "path %s given twice", path);
	p->binds = realloc(p->binds, (p->n_binds + 1) * sizeof *p->binds);
	if (!p->binds)
		die_errno(EXIT_LAUNCHER, "realloc");
	p->binds[p->n_binds++] = (struct bind){ .path = path, .writable = writable, .idmap_userns_fd = -1 };
}

static int bind_cmp(const void *a, const void *b)
{
	/* Parents sort before their children: shorter first, then by name. */
	const struct bind *x = a, *y = b;
	size_t lx = strlen(x->path), ly = strlen(y->path);
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* --cwd: canonical like every path flag, and a directory the new root has
 * at the same path: the workspace, or inside it or another bind (--ro, --rw,
 * --home). The system dirs are there too, but are not taken: the cwd of a
 * confined server is its own package, which its caller binds. */
static char *cwd_in_binds(const struct plan *p, const char *given)
{
	char *real = canonical_path(given, "--cwd", true);
	for (size_t i = 0; i < p->n_binds; i++)
		if (path_within(real, p->binds[i].path))
			return real;
	usage_error("--cwd %s is outside the workspace and every --ro/--rw/--home path", given);
}

/* Appends optarg to a list of --allow-write / --protect arguments. */
static void push_arg(const char ***list, size_t *n)
{
	*list = realloc(*list, (*n + 1) * sizeof **list);
	if (!*list)
		die_errno(EXIT_LAUNCHER, "realloc");
	(*list)[(*n)++] = optarg;
}

static bool valid_env_name(const char *s, size_t len)
{
	if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

enum run_mode plan_parse(struct plan *p, int argc, char **argv)
{
	memset(p, 0, sizeof *p);
	p->tmp_size_mib = 256;
	p->max_procs = 1024;
	p->max_files = 4096;
	p->limits = (struct limits){ .pids_max = 1024, .memory_max = 4ULL << 30, .cpu_weight = 100,
				     .procs_fd = { -1, -1, -1 }, .uid_lock_fd = -1 };
	p->outer_uid = geteuid();
	p->outer_gid = getegid();
	p->as_root = p->outer_uid == 0;
	bool uid_set = false, gid_set = false;
	const char *workspace = NULL, *cwd = NULL;
	const char **allow_args = NULL, **protect_args = NULL; /* checked once the roots are known */
	size_t n_allow_args = 0, n_protect_args = 0;

	if (argc < 2)
		usage_error("%s", "missing arguments");
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", options, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET:
			p->socket_path = optarg;
			break;
		case OPT_PORT:
			p->port = (unsigned)parse_num(optarg, 1, 65535, "--port");
			break;
		case OPT_WORKSPACE:
			workspace = optarg;
			break;
		case OPT_RO:
		case OPT_RW:
			add_bind(p, canonical_path(optarg, c == OPT_RO ? "--ro" : "--rw", false), c == OPT_RW);
			break;
		case OPT_ALLOW_WRITE:
			push_arg(&allow_args, &n_allow_args);
			break;
		case OPT_PROTECT:
			push_arg(&protect_args, &n_protect_args);
			break;
		case OPT_HOME:
			if (p->home)
				usage_error("%s", "--home given twice");
			p->home = canonical_path(optarg, "--home", true);
			add_bind(p, p->home, true);
			p->binds[p->n_binds - 1].own_home = true;
			break;
		case OPT_CWD:
			if (cwd)
				usage_error("%s", "--cwd given twice");
			cwd = optarg;
			break;
		case OPT_ENV: {
			const char *eq = strchr(optarg, '=');
			if (!eq || !valid_env_name(optarg, (size_t)(eq - optarg)))
				usage_error("--env %s: expected NAME=VALUE with NAME of [A-Za-z0-9_]", optarg);
			p->env = realloc(p->env, (p->n_env + 1) * sizeof *p->env);
			if (!p->env)
				die_errno(EXIT_LAUNCHER, "realloc");
			p->env[p->n_env++] = optarg;
			break;
		}
		case OPT_ENV_KEEP: {
			/* The value comes from our environment, so it is never in any argv (/proc/PID/cmdline is world-readable). */
			size_t len = strlen(optarg);
			if (!valid_env_name(optarg, len))
				usage_error("--env-keep %s: expected a NAME of [A-Za-z0-9_]", optarg);
			const char *entry = NULL;
			for (char **e = environ; *e; e++)
				if (strncmp(*e, optarg, len) == 0 && (*e)[len] == '=') {
					entry = *e;
					break;
				}
			if (!entry)
				usage_error("--env-keep %s: not in the launcher's environment", optarg);
			p->env = realloc(p->env, (p->n_env + 1) * sizeof *p->env);
			if (!p->env)
				die_errno(EXIT_LAUNCHER, "realloc");
			p->env[p->n_env++] = entry;
			break;
		}
		case OPT_ALLOW_WEAKER:
			p->allow_weaker = true;
			break;
		case OPT_UID:
			p->uid = (uid_t)parse_num(optarg, 0, 0xfffffffeUL, "--uid");
			uid_set = true;
			break;
		case OPT_GID:
			p->gid = (gid_t)parse_num(optarg, 0, 0xfffffffeUL, "--gid");
			gid_set = true;
			break;
		case OPT_TMP_SIZE:
			p->tmp_size_mib = parse_num(optarg, 1, 1UL << 20, "--tmp-size");
			break;
		case OPT_MAX_PROCS:
			p->max_procs = parse_num(optarg, 1, 1UL << 22, "--max-procs");
			break;
		case OPT_MAX_FILES:
			p->max_files = parse_num(optarg, 16, 1UL << 20, "--max-files");
			break;
		case OPT_PIDS_MAX:
			p->limits.pids_max = parse_num(optarg, 8, 1UL << 22, "--pids-max");
			p->limits.explicit_ |= LIMIT_PIDS;
			break;
		case OPT_MEMORY_MAX:
			p->limits.memory_max = parse_size(optarg, "--memory-max");
			p->limits.explicit_ |= LIMIT_MEMORY;
			break;
		case OPT_CPU_WEIGHT:
			p->limits.cpu_weight = parse_num(optarg, 1, 10000, "--cpu-weight");
			p->limits.explicit_ |= LIMIT_CPU;
			break;
		case OPT_PROBE:
			return MODE_PROBE;
		case OPT_HELP:
			fputs(usage_text, stdout);
			return MODE_EXIT_OK;
		case OPT_VERSION:
			puts(GH_NAME " " GH_VERSION);
			return MODE_EXIT_OK;
		default:
			usage_error("unknown or incomplete option %s", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		usage_error("%s", "missing COMMAND (after --)");
	p->argv = &argv[optind];

	if (!p->socket_path)
		usage_error("%s", "--socket is required");
	if (p->socket_path[0] != '/')
		usage_error("--socket %s: needs an absolute path", p->socket_path);
	if (strlen(p->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		usage_error("--socket %s: path too long for a unix socket", p->socket_path);
	if (!p->port)
		usage_error("%s", "--port is required");
	if (!workspace)
		usage_error("%s", "--workspace is required");
	p->workspace = canonical_path(workspace, "--workspace", true);
	add_bind(p, p->workspace, true);
	if (cwd)
		p->cwd = cwd_in_binds(p, cwd);
	qsort(p->binds, p->n_binds, sizeof *p->binds, bind_cmp);
	protect_plan(p, protect_args, n_protect_args, allow_args, n_allow_args);
	free(allow_args);
	free(protect_args);

	/* As root there is no user namespace: the command gets a uid of its own
	 * for this session (privs_session_uid(), later) unless told otherwise.
	 * Unprivileged, the caller's own ids are mapped 1:1 (or to --uid/--gid)
	 * in a new user namespace. */
	p->uid_set = uid_set;
	p->gid_set = gid_set;
	if (!uid_set)
		p->uid = p->as_root ? 65534 : p->outer_uid;
	if (!gid_set)
		p->gid = p->as_root ? 65534 : p->outer_gid;
	if (p->uid == 0 || (p->as_root && p->gid == 0))
		usage_error("%s", "--uid/--gid 0 would leave the command root");
	return MODE_RUN;
}

void plan_free(struct plan *p)
{
	protect_free(p);
	for (size_t i = 0; i < p->n_binds; i++)
		free(p->binds[i].path); /* the workspace is one of them */
	free(p->binds);
	free(p->cwd);
	free(p->env);
	for (size_t i = 0; i < p->n_rules; i++)
		free(p->rules[i].path);
	free(p->rules);
	memset(p, 0, sizeof *p);
}
