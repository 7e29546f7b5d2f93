/* The outer namespaces (user when unprivileged, net, ipc, uts), loopback,
 * and the relay's listening sockets. The launcher itself moves into them;
 * the pid and mount namespaces come later, for init and the command only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox.h"

static void map_ids(const struct plan *p)
{
	char buf[64];
	/* Unprivileged writers must deny setgroups before writing gid_map
	 * (user_namespaces(7)); it also keeps the command from dropping a
	 * supplementary group that a deny-ACL is keyed on. */
	write_file("/proc/self/setgroups", "deny");
	snprintf(buf, sizeof buf, "%u %u 1\n", (unsigned)p->gid, (unsigned)p->outer_gid);
	write_file("/proc/self/gid_map", buf);
	snprintf(buf, sizeof buf, "%u %u 1\n", (unsigned)p->uid, (unsigned)p->outer_uid);
	write_file("/proc/self/uid_map", buf);
}

static void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		die_errno(EXIT_LAUNCHER, "socket for SIOCSIFFLAGS");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		die_errno(EXIT_LAUNCHER, "SIOCGIFFLAGS lo");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		die_errno(EXIT_LAUNCHER, "bring lo up");
	close(s);
}

void ns_enter_outer(const struct plan *p)
{
	if (!p->as_root) {
		if (unshare(CLONE_NEWUSER) < 0)
			die_errno(EXIT_UNAVAILABLE,
				  "unshare(CLONE_NEWUSER): unprivileged user namespaces are unavailable "
				  "(check user.max_user_namespaces, kernel.unprivileged_userns_clone, "
				  "kernel.apparmor_restrict_unprivileged_userns)");
		map_ids(p);
	}
	if (unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		die_errno(EXIT_UNAVAILABLE, "unshare(CLONE_NEWNET|CLONE_NEWIPC|CLONE_NEWUTS)");
	static const char host[] = "gatehouse-sandbox";
	if (sethostname(host, sizeof host - 1) < 0)
		die_errno(EXIT_LAUNCHER, "sethostname");
	loopback_up();
}

static int listen_on(int family, const struct sockaddr *sa, socklen_t len)
{
	int s = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	int one = 1;
	if (family == AF_INET6 && setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
		die_errno(EXIT_LAUNCHER, "IPV6_V6ONLY");
	if (bind(s, sa, len) < 0 || listen(s, 128) < 0) {
		int e = errno;
		close(s);
		errno = e;
		return -1;
	}
	return s;
}

/* 127.0.0.1:port always; [::1]:port too when IPv6 is on, so that clients
 * resolving "localhost" to ::1 first reach the relay as well. */
int ns_relay_listeners(const struct plan *p, int fds[2])
{
	struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p->port) };
	v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fds[0] = listen_on(AF_INET, (struct sockaddr *)&v4, sizeof v4);
	if (fds[0] < 0)
		die_errno(EXIT_LAUNCHER, "relay listen on 127.0.0.1:%u", p->port);
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)p->port) };
	v6.sin6_addr = in6addr_loopback;
	fds[1] = listen_on(AF_INET6, (struct sockaddr *)&v6, sizeof v6);
	if (fds[1] < 0) {
		if (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL)
			die_errno(EXIT_LAUNCHER, "relay listen on [::1]:%u", p->port);
		return 1;
	}
	return 2;
}
