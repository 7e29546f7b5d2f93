/*
 * gatehouse-sandbox: confine one command so that a single MCP endpoint is its
 * only way out.  The launcher parses its arguments into a `struct plan`, then
 * applies it in a fixed order (bubblewrap style), dying on the first failure:
 *
 *   preflight (Landlock ABI, seccomp) -> user/net/ipc/uts namespaces -> lo up
 *   + relay listener -> fork relay -> per-session uid (root), cgroup leaf,
 *   idmap user namespaces -> pid namespace -> fork init -> join the cgroup
 *   -> mount + cgroup namespace, new root -> fork agent -> setsid,
 *   credentials, rlimits, env -> no_new_privs -> Landlock -> seccomp ->
 *   close fds -> exec
 *
 * One file per concern: plan.c (flags), ns.c (namespaces, network),
 * mounts.c (new root), idmap.c (owner mapping of writable binds as root),
 * cgroup.c (per-sandbox limits), privs.c (credentials, capabilities, rlimits),
 * relay.c (TCP <-> unix socket), landlock.c, seccomp.c, doctor.c (--probe),
 * util.c (die, small I/O helpers), main.c (the process tree).
 */
#ifndef GATEHOUSE_SANDBOX_H
#define GATEHOUSE_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GH_VERSION "0.1.0"
#define GH_NAME "gatehouse-sandbox"

/* Exit codes of the launcher itself (the docker-run convention). Any other
 * code is the command's own exit code, or 128+N when it died of signal N. */
enum {
	EXIT_UNAVAILABLE = 124, /* required confinement unavailable: refused to start */
	EXIT_LAUNCHER = 125,    /* usage error, or a setup step failed */
	EXIT_CANNOT_EXEC = 126, /* command found but could not be executed */
	EXIT_NOT_FOUND = 127,   /* command not found */
};

#define LANDLOCK_ABI_REQUIRED 6
#define SIMULATE_ABI_ENV "GATEHOUSE_SANDBOX_SIMULATE_LANDLOCK_ABI"

struct bind {
	char *path; /* canonical absolute path, same inside and outside */
	bool writable;
	bool is_dir; /* set by protect_plan() */
	/* --home: the command's own home, kept between its runs and used by
	 * nothing outside the sandbox: its dotfiles are not protected. */
	bool own_home;
	/* As root, a writable bind is mounted idmapped so that the command's
	 * uid/gid is its owner on disk (idmap.c): the owner seen at launch and
	 * a user namespace fd holding "owner -> command" (-1 when unused). */
	int idmap_userns_fd;
	uid_t owner_uid;
	gid_t owner_gid;
};

/* Per-sandbox resource limits (cgroup.c). */
#define SIMULATE_NO_CGROUP_ENV "GATEHOUSE_SANDBOX_SIMULATE_NO_CGROUP"
#define SESSION_UID_BASE 2147483648UL /* 2^31: per-session uids as root ... */
#define SESSION_UID_COUNT 65536UL     /* ... up to 2^31 + 65535 */
#define SESSION_UID_LOCK_DIR "/run/gatehouse-sandbox"
enum cgroup_mode { CGROUP_NONE, CGROUP_V2, CGROUP_V1 };
enum { LIMIT_PIDS = 1, LIMIT_MEMORY = 2, LIMIT_CPU = 4 };
struct limits {
	unsigned long pids_max;        /* pids.max */
	unsigned long long memory_max; /* bytes: memory.max / memory.limit_in_bytes */
	unsigned long cpu_weight;      /* cpu.weight 1-10000 (v1: cpu.shares = weight * 1024 / 100) */
	unsigned explicit_;            /* LIMIT_* given as flags: required, else exit 124 */
	/* Derived by cgroup_setup() in the launcher. */
	enum cgroup_mode mode;
	char *leaf[3]; /* leaf directories (v2: one; v1: pids, memory, cpu) */
	int procs_fd[3]; /* their cgroup.procs, opened by the launcher, written by init */
	size_t n_leaf;
	char why[256]; /* why no cgroup is used (CGROUP_NONE) */
	int uid_lock_fd; /* flock on the per-session uid's slot, held by the launcher */
};

/* What a protected path was at launch, compared after the run (protect.c). */
struct file_id {
	bool present;
	dev_t dev;
	ino_t ino;
	mode_t type; /* S_IFMT bits; 0: there, but not openable without following a link */
	off_t size;
	long long mtime_s, mtime_ns, ctime_s, ctime_ns;
	bool hashed; /* a regular file up to 1 MiB that could be read */
	uint64_t hash;
};

/* A path inside a writable root that is mounted read-only over itself
 * (protect.c decides, mounts_protect.c mounts). */
struct protected_path {
	char *path;       /* absolute, strictly inside `root` */
	const char *root; /* the innermost writable directory root holding it */
	bool required;    /* --protect: must exist */
	bool allowed;     /* --allow-write named it: left writable */
	bool absent;      /* did not exist at launch: not protected (reported if it appears) */
	struct file_id id; /* at launch: reported if it is replaced or changed */
};

/* What Landlock allows under one path inside the new root. */
enum fs_kind { FS_ROOT, FS_RO, FS_RW, FS_DEV, FS_PROC };
struct fs_rule {
	char *path;
	enum fs_kind kind;
};

struct plan {
	const char *socket_path; /* session unix socket, outside */
	unsigned port;           /* relay port on 127.0.0.1 inside */
	char *workspace;         /* canonical, read-write, the command's cwd unless --cwd */
	char *cwd;               /* --cwd: canonical, the workspace or in a bind (NULL: the workspace) */
	char *home;              /* --home: canonical, read-write, $HOME (NULL: a private /tmp/home) */
	struct bind *binds;      /* --ro / --rw, sorted parents first */
	size_t n_binds;
	const char **env; /* --env NAME=VALUE, in order */
	size_t n_env;
	bool allow_weaker;
	uid_t uid; /* the command's uid and gid inside */
	gid_t gid;
	unsigned long tmp_size_mib;
	unsigned long max_procs;
	unsigned long max_files;
	struct limits limits;
	bool uid_set, gid_set; /* --uid/--gid given: no per-session id */
	char **argv; /* the command */
	struct protected_path *protected_paths; /* protect.c */
	size_t n_protected;
	char **write_holes; /* --allow-write paths inside a protected folder */
	size_t n_write_holes;

	/* Derived during preflight and setup. */
	bool as_root;     /* launched with euid 0: no user namespace */
	uid_t outer_uid;
	gid_t outer_gid;
	int landlock_abi; /* effective: kernel's, lowered by the simulation switch */
	struct fs_rule *rules;
	size_t n_rules;
	/* Read end of the relay's "confined and serving" pipe: the agent reads
	 * its one byte right before exec (the rest of the set-up runs meanwhile). */
	int relay_ready_fd;
};

/* util.c */
extern const char *gh_role;
void gh_set_child(const char *role, int status_fd);
_Noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void die_errno(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void write_file(const char *path, const char *content);
int pidfd_self(void);
void die_with_parent(int parent_pidfd);
void ensure_std_fds(void);
const char *errno_name(int e);

/* plan.c */
enum run_mode { MODE_RUN, MODE_PROBE, MODE_EXIT_OK };
enum run_mode plan_parse(struct plan *p, int argc, char **argv);
void plan_free(struct plan *p);

/* ns.c */
void ns_enter_outer(const struct plan *p);
int ns_relay_listeners(const struct plan *p, int fds[2]);

/* cgroup.c */
void cgroup_setup(struct plan *p);
void cgroup_join(const struct plan *p);
void cgroup_close_fds(struct plan *p);
void cgroup_remove(struct plan *p);
const char *cgroup_describe(char *buf, size_t len, enum cgroup_mode *mode);

/* idmap.c */
void idmap_prepare(struct plan *p);
int idmap_userns(uid_t owner_uid, gid_t owner_gid, uid_t uid, gid_t gid);
void idmap_close(struct plan *p);

/* mounts.c */
void mounts_setup(struct plan *p);

/* protect.c, mounts_protect.c */
void protect_plan(struct plan *p, const char *const *extra, size_t n_extra, const char *const *allow,
		  size_t n_allow);
void protect_report_created(const struct plan *p); /* and those replaced or changed */
void protect_free(struct plan *p);
void mounts_protect(const struct plan *p, const char *newroot);

/* privs.c */
void privs_drop_to_agent(const struct plan *p);
void privs_drop_caps_keep_uid(void);
void privs_set_rlimits(const struct plan *p);
void privs_check_clean(void);
void privs_session_uid(struct plan *p);

/* relay.c */
_Noreturn void relay_run(const struct plan *p, const int *listen_fds, int n_listen, int ready_fd);

/* landlock.c */
int landlock_kernel_abi(void);
int landlock_effective_abi(void);
void landlock_describe_missing(int abi, int required, char *buf, size_t len);
void landlock_apply_agent(const struct plan *p);
void landlock_apply_relay(const struct plan *p);

/* seccomp.c */
enum seccomp_profile { SECCOMP_AGENT, SECCOMP_RELAY };
void seccomp_apply(enum seccomp_profile profile);
bool seccomp_available(void);

/* doctor.c */
int doctor_run(void);

#endif
