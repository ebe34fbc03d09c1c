// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Guest network RPCs.  Listing is served from getifaddrs(3) and
 * /proc/net/{route,ipv6_route}; changes go through netlink.c (libnl-route).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/rtnetlink.h>

#include <husk-common/cleanup.h>

#include "netlink.h"
#include "rpc.h"

#define NET_MAX_IFACES 64
#define NET_MAX_ADDRS 16
#define NET_MAX_ROUTES 256

struct net_iface {
	Types__Interface msg;
	Types__IPAddress addrs[NET_MAX_ADDRS];
	Types__IPAddress *addrp[NET_MAX_ADDRS];
	char name[IFNAMSIZ];
	char hw[18];
	char addr_text[NET_MAX_ADDRS][INET6_ADDRSTRLEN];
	char mask_text[NET_MAX_ADDRS][4];
};

static unsigned int prefix_len(const struct sockaddr *mask)
{
	const uint8_t *b;
	size_t n;
	unsigned int bits = 0;

	if (!mask)
		return 0;
	if (mask->sa_family == AF_INET) {
		b = (const uint8_t *)&((const struct sockaddr_in *)mask)->sin_addr;
		n = 4;
	} else {
		b = (const uint8_t *)&((const struct sockaddr_in6 *)mask)->sin6_addr;
		n = 16;
	}
	for (size_t i = 0; i < n; i++)
		bits += (unsigned int)__builtin_popcount(b[i]);
	return bits;
}

static struct net_iface *iface_get(struct net_iface *ifs, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(ifs[i].name, name) == 0)
			return &ifs[i];
	if (*n == NET_MAX_IFACES)
		return NULL;
	struct net_iface *it = &ifs[(*n)++];

	types__interface__init(&it->msg);
	snprintf(it->name, sizeof(it->name), "%s", name);
	it->msg.device = it->name;
	it->msg.name = it->name;
	it->msg.hwaddr = it->hw;
	it->msg.ipaddresses = it->addrp;
	return it;
}

static void iface_add(struct net_iface *it, const struct ifaddrs *ifa)
{
	int fam = ifa->ifa_addr->sa_family;

	it->msg.raw_flags = ifa->ifa_flags;
	if (fam == AF_PACKET) {
		const struct sockaddr_ll *ll = (const void *)ifa->ifa_addr;

		if (ll->sll_halen == 6)
			snprintf(it->hw, sizeof(it->hw), "%02x:%02x:%02x:%02x:%02x:%02x",
				 ll->sll_addr[0], ll->sll_addr[1], ll->sll_addr[2],
				 ll->sll_addr[3], ll->sll_addr[4], ll->sll_addr[5]);
		return;
	}
	if ((fam != AF_INET && fam != AF_INET6) || it->msg.n_ipaddresses == NET_MAX_ADDRS)
		return;
	size_t k = it->msg.n_ipaddresses;
	Types__IPAddress *a = &it->addrs[k];
	const void *src = fam == AF_INET ?
		(const void *)&((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr :
		(const void *)&((const struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;

	types__ipaddress__init(a);
	a->family = fam == AF_INET ? TYPES__IPFAMILY__v4 : TYPES__IPFAMILY__v6;
	inet_ntop(fam, src, it->addr_text[k], sizeof(it->addr_text[k]));
	snprintf(it->mask_text[k], sizeof(it->mask_text[k]), "%u", prefix_len(ifa->ifa_netmask));
	a->address = it->addr_text[k];
	a->mask = it->mask_text[k];
	it->addrp[k] = a;
	it->msg.n_ipaddresses++;
}

static void iface_mtu(struct net_iface *it, int sock)
{
	struct ifreq ifr = {};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", it->name);
	if (sock >= 0 && ioctl(sock, SIOCGIFMTU, &ifr) == 0)
		it->msg.mtu = (uint64_t)ifr.ifr_mtu;
}

RPC_HANDLER(list_interfaces)
{
	Grpc__Interfaces resp = GRPC__INTERFACES__INIT;
	_cleanup_free_ struct net_iface *ifs = calloc(NET_MAX_IFACES, sizeof(*ifs));
	Types__Interface *ptrs[NET_MAX_IFACES];
	_cleanup_close_ int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifaddrs *list = NULL;
	size_t n = 0;

	if (!ifs || getifaddrs(&list) < 0) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INTERNAL, "listing interfaces: %s",
					     strerror(errno));
		return;
	}
	for (struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
		struct net_iface *it;

		if (!ifa->ifa_addr || !(it = iface_get(ifs, &n, ifa->ifa_name)))
			continue;
		iface_add(it, ifa);
	}
	freeifaddrs(list);
	for (size_t i = 0; i < n; i++) {
		iface_mtu(&ifs[i], sock);
		ptrs[i] = &ifs[i].msg;
	}
	resp.n_interfaces = n;
	resp.interfaces = ptrs;
	husk_ttrpc_call_reply(call, &resp.base, NULL);
}

struct net_route {
	Types__Route msg;
	char dest[INET6_ADDRSTRLEN + 4];
	char gw[INET6_ADDRSTRLEN];
	char dev[IFNAMSIZ + 1];
};

static void ipv4_text(uint32_t le, char *buf, size_t len)
{
	struct in_addr a = { .s_addr = le };	/* /proc/net/route prints network order as hex */

	inet_ntop(AF_INET, &a, buf, (socklen_t)len);
}

static size_t routes_v4(struct net_route *rt, size_t cap)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/net/route", "re");
	char line[256];
	size_t n = 0;

	if (!f || !fgets(line, sizeof(line), f))	/* header */
		return 0;
	while (n < cap && fgets(line, sizeof(line), f)) {
		char dev[IFNAMSIZ + 1];
		unsigned int dst, gw, flags, mask;
		struct net_route *r = &rt[n];

		if (sscanf(line, "%16s %x %x %x %*d %*d %*d %x", dev, &dst, &gw, &flags, &mask) != 5)
			continue;
		types__route__init(&r->msg);
		snprintf(r->dev, sizeof(r->dev), "%s", dev);
		if (dst || mask) {
			char addr[INET_ADDRSTRLEN];

			ipv4_text(dst, addr, sizeof(addr));
			snprintf(r->dest, sizeof(r->dest), "%s/%d", addr, __builtin_popcount(mask));
		}
		if (gw)
			ipv4_text(gw, r->gw, sizeof(r->gw));
		r->msg.dest = r->dest;
		r->msg.gateway = r->gw;
		r->msg.device = r->dev;
		r->msg.source = (char *)"";
		r->msg.scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
		r->msg.family = TYPES__IPFAMILY__v4;
		n++;
	}
	return n;
}

static void ipv6_text(const char *hex, char *buf, size_t len)
{
	struct in6_addr a;

	for (int i = 0; i < 16; i++) {
		unsigned int byte;

		sscanf(hex + 2 * i, "%2x", &byte);
		a.s6_addr[i] = (uint8_t)byte;
	}
	inet_ntop(AF_INET6, &a, buf, (socklen_t)len);
}

static size_t routes_v6(struct net_route *rt, size_t cap)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/net/ipv6_route", "re");
	char line[256];
	size_t n = 0;

	if (!f)
		return 0;
	while (n < cap && fgets(line, sizeof(line), f)) {
		char dst[33], src[33], gw[33], dev[IFNAMSIZ + 1];
		unsigned int dlen, slen, flags;
		struct net_route *r = &rt[n];
		char addr[INET6_ADDRSTRLEN];

		if (sscanf(line, "%32s %x %32s %x %32s %*x %*x %*x %x %16s", dst, &dlen, src, &slen,
			   gw, &flags, dev) != 7)
			continue;
		/* Local and multicast table entries are the kernel's, not routes a host set. */
		if (!(flags & 0x0001) || strcmp(dev, "lo") == 0)
			continue;
		types__route__init(&r->msg);
		snprintf(r->dev, sizeof(r->dev), "%s", dev);
		if (dlen) {
			ipv6_text(dst, addr, sizeof(addr));
			snprintf(r->dest, sizeof(r->dest), "%s/%u", addr, dlen);
		}
		if (strspn(gw, "0") != 32)
			ipv6_text(gw, r->gw, sizeof(r->gw));
		r->msg.dest = r->dest;
		r->msg.gateway = r->gw;
		r->msg.device = r->dev;
		r->msg.source = (char *)"";
		r->msg.scope = r->gw[0] ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
		r->msg.family = TYPES__IPFAMILY__v6;
		n++;
	}
	return n;
}

/* The current routes, as ListRoutes and UpdateRoutes answer them. */
static void reply_routes(struct husk_ttrpc_call *call)
{
	Grpc__Routes resp = GRPC__ROUTES__INIT;
	_cleanup_free_ struct net_route *rt = calloc(NET_MAX_ROUTES, sizeof(*rt));
	_cleanup_free_ Types__Route **ptrs = calloc(NET_MAX_ROUTES, sizeof(*ptrs));
	size_t n;

	if (!rt || !ptrs) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INTERNAL, "out of memory");
		return;
	}
	n = routes_v4(rt, NET_MAX_ROUTES);
	n += routes_v6(rt + n, NET_MAX_ROUTES - n);
	for (size_t i = 0; i < n; i++)
		ptrs[i] = &rt[i].msg;
	resp.n_routes = n;
	resp.routes = ptrs;
	husk_ttrpc_call_reply(call, &resp.base, NULL);
}

RPC_HANDLER(list_routes)
{
	reply_routes(call);
}

RPC_HANDLER(update_interface)
{
	const Grpc__UpdateInterfaceRequest *req = (const void *)msg;
	struct husk_error err = {};
	int r;

	if (!req->interface) {
		husk_ttrpc_call_reply_status(call, HUSK_TTRPC_INVALID_ARGUMENT, "interface: missing");
		return;
	}
	r = net_update_interface(req->interface, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	/* As Kata's agent: the interface as requested, now in place. */
	husk_ttrpc_call_reply(call, &req->interface->base, NULL);
}

RPC_HANDLER(update_routes)
{
	const Grpc__UpdateRoutesRequest *req = (const void *)msg;
	struct husk_error err = {};
	int r;

	r = req->routes ? net_update_routes(req->routes->routes, req->routes->n_routes, &err) :
		net_update_routes(NULL, 0, &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	reply_routes(call);
}

RPC_HANDLER(add_arp_neighbors)
{
	const Grpc__AddARPNeighborsRequest *req = (const void *)msg;
	struct husk_error err = {};
	int r = 0;

	if (req->neighbors)
		r = net_add_neighbors(req->neighbors->arpneighbors, req->neighbors->n_arpneighbors,
				      &err);
	if (r < 0) {
		rpc_reply_error(call, r, &err);
		return;
	}
	rpc_reply_ok(call);
}
