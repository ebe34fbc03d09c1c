// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include <husk-common/cleanup.h>

#include "netlink.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache *, nl_cache_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_addr *, nl_addr_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_link *, rtnl_link_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_addr *, rtnl_addr_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_route *, rtnl_route_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_neigh *, rtnl_neigh_put)
#define _cleanup_nl_socket_ _cleanup_(nl_socket_freep)
#define _cleanup_nl_cache_ _cleanup_(nl_cache_freep)
#define _cleanup_nl_addr_ _cleanup_(nl_addr_putp)
#define _cleanup_rtnl_link_ _cleanup_(rtnl_link_putp)
#define _cleanup_rtnl_addr_ _cleanup_(rtnl_addr_putp)
#define _cleanup_rtnl_route_ _cleanup_(rtnl_route_putp)
#define _cleanup_rtnl_neigh_ _cleanup_(rtnl_neigh_putp)

static int nl_errno(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_EXIST:
		return EEXIST;
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		return ENOENT;
	case NLE_INVAL:
	case NLE_RANGE:
	case NLE_AF_NOSUPPORT:
		return EINVAL;
	case NLE_PERM:
		return EPERM;
	case NLE_BUSY:
		return EBUSY;
	default:
		return EIO;
	}
}

static int nl_fail(struct husk_error *err, int nlerr, const char *what)
{
	return husk_error_set(err, nl_errno(nlerr), "%s: %s", what, nl_geterror(nlerr));
}

static int nl_open(struct nl_sock **out, struct husk_error *err)
{
	struct nl_sock *sk = nl_socket_alloc();
	int r;

	if (!sk)
		return husk_error_set(err, ENOMEM, "netlink: out of memory");
	r = nl_connect(sk, NETLINK_ROUTE);
	if (r < 0) {
		nl_socket_free(sk);
		return nl_fail(err, r, "netlink connect");
	}
	*out = sk;
	return 0;
}

/* "10.0.0.2" + "24" (or a bare address, full-length prefix). */
static int parse_ip(const char *addr, const char *mask, int family, struct nl_addr **out,
		    const char *field, struct husk_error *err)
{
	char text[INET6_ADDRSTRLEN + 8];
	int r;

	if (!addr[0] || strlen(addr) >= INET6_ADDRSTRLEN || strlen(mask) > 3)
		return husk_error_set(err, EINVAL, "%s: '%s' is not an IP address", field, addr);
	snprintf(text, sizeof(text), "%s%s%s", addr, mask[0] ? "/" : "", mask);
	r = nl_addr_parse(text, family, out);
	if (r < 0 || (family == AF_UNSPEC && nl_addr_get_family(*out) != AF_INET &&
		      nl_addr_get_family(*out) != AF_INET6)) {
		if (r >= 0)
			nl_addr_put(*out);
		return husk_error_set(err, EINVAL, "%s: '%s' is not an IP address", field, text);
	}
	return 0;
}

static int family_of(Types__IPFamily f)
{
	return f == TYPES__IPFAMILY__v6 ? AF_INET6 : AF_INET;
}

static int link_by_name(struct nl_cache *links, const char *name, const char *field,
			struct rtnl_link **out, struct husk_error *err)
{
	if (!name[0] || strlen(name) >= IFNAMSIZ)
		return husk_error_set(err, EINVAL, "%s: '%s' is not an interface name", field, name);
	*out = rtnl_link_get_by_name(links, name);
	if (!*out)
		return husk_error_set(err, ENOENT, "%s: no interface %s", field, name);
	return 0;
}

static int link_find(struct nl_cache *links, const Types__Interface *iface,
		     struct rtnl_link **out, struct husk_error *err)
{
	_cleanup_nl_addr_ struct nl_addr *mac = NULL;

	if (!iface->hwaddr[0])
		return link_by_name(links, iface->device, "interface.device", out, err);
	if (nl_addr_parse(iface->hwaddr, AF_LLC, &mac) < 0)
		return husk_error_set(err, EINVAL, "interface.hwAddr: '%s' is not a MAC address",
				      iface->hwaddr);
	for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		struct nl_addr *a = rtnl_link_get_addr(l);

		if (a && nl_addr_cmp(a, mac) == 0) {
			nl_object_get(o);
			*out = l;
			return 0;
		}
	}
	return husk_error_set(err, ENOENT, "interface.hwAddr: no interface with address %s",
			      iface->hwaddr);
}

static int link_set(struct nl_sock *sk, struct rtnl_link *link, const char *name,
		    unsigned int mtu, bool up, struct husk_error *err)
{
	_cleanup_rtnl_link_ struct rtnl_link *chg = rtnl_link_alloc();
	int r;

	if (!chg)
		return husk_error_set(err, ENOMEM, "netlink: out of memory");
	if (name)
		rtnl_link_set_name(chg, name);
	if (mtu)
		rtnl_link_set_mtu(chg, mtu);
	if (up)
		rtnl_link_set_flags(chg, IFF_UP);
	else
		rtnl_link_unset_flags(chg, IFF_UP);
	r = rtnl_link_change(sk, link, chg, 0);
	if (r < 0)
		return nl_fail(err, r, rtnl_link_get_name(link));
	return 0;
}

/* Remove the link's global addresses (IPv6 link-local ones are the kernel's). */
static int link_flush_addrs(struct nl_sock *sk, int ifindex, struct husk_error *err)
{
	_cleanup_nl_cache_ struct nl_cache *addrs = NULL;
	int r = rtnl_addr_alloc_cache(sk, &addrs);

	if (r < 0)
		return nl_fail(err, r, "listing addresses");
	for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;

		if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_scope(a) == RT_SCOPE_LINK)
			continue;
		r = rtnl_addr_delete(sk, a, 0);
		if (r < 0 && r != -NLE_OBJ_NOTFOUND)
			return nl_fail(err, r, "removing an address");
	}
	return 0;
}

static int validate_interface(const Types__Interface *iface, struct husk_error *err)
{
	if (strlen(iface->name) >= IFNAMSIZ || strchr(iface->name, '/'))
		return husk_error_set(err, EINVAL, "interface.name: '%s' is not an interface name",
				      iface->name);
	if (iface->mtu && (iface->mtu < 68 || iface->mtu > 65535))
		return husk_error_set(err, EINVAL, "interface.mtu: %llu not within 68..65535",
				      (unsigned long long)iface->mtu);
	for (size_t i = 0; i < iface->n_ipaddresses; i++) {
		const Types__IPAddress *ip = iface->ipaddresses[i];
		_cleanup_nl_addr_ struct nl_addr *a = NULL;
		char field[64];

		snprintf(field, sizeof(field), "interface.IPAddresses[%zu]", i);
		if (parse_ip(ip->address, ip->mask, family_of(ip->family), &a, field, err) < 0)
			return -err->code;
	}
	return 0;
}

int net_update_interface(const Types__Interface *iface, struct husk_error *err)
{
	_cleanup_nl_socket_ struct nl_sock *sk = NULL;
	_cleanup_nl_cache_ struct nl_cache *links = NULL;
	_cleanup_rtnl_link_ struct rtnl_link *link = NULL;
	int r, ifindex;

	r = validate_interface(iface, err);
	if (r < 0)
		return r;
	r = nl_open(&sk, err);
	if (r < 0)
		return r;
	r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links);
	if (r < 0)
		return nl_fail(err, r, "listing interfaces");
	r = link_find(links, iface, &link, err);
	if (r < 0)
		return r;
	ifindex = rtnl_link_get_ifindex(link);
	/* A link is renamed only while down. */
	r = link_set(sk, link, NULL, 0, false, err);
	if (r == 0 && (iface->name[0] || iface->mtu))
		r = link_set(sk, link, iface->name[0] ? iface->name : NULL,
			     (unsigned int)iface->mtu, false, err);
	if (r == 0)
		r = link_flush_addrs(sk, ifindex, err);
	for (size_t i = 0; r == 0 && i < iface->n_ipaddresses; i++) {
		const Types__IPAddress *ip = iface->ipaddresses[i];
		_cleanup_rtnl_addr_ struct rtnl_addr *a = rtnl_addr_alloc();
		_cleanup_nl_addr_ struct nl_addr *local = NULL;

		if (!a)
			return husk_error_set(err, ENOMEM, "netlink: out of memory");
		r = parse_ip(ip->address, ip->mask, family_of(ip->family), &local,
			     "interface.IPAddresses", err);
		if (r < 0)
			break;
		rtnl_addr_set_ifindex(a, ifindex);
		rtnl_addr_set_local(a, local);
		r = rtnl_addr_add(sk, a, 0);
		if (r < 0)
			r = nl_fail(err, r, ip->address);
	}
	if (r == 0)
		r = link_set(sk, link, NULL, 0, true, err);
	return r;
}

/* The routes a previous UpdateRoutes (or anyone but the kernel) installed. */
static int routes_flush(struct nl_sock *sk, struct husk_error *err)
{
	_cleanup_nl_cache_ struct nl_cache *routes = NULL;
	int r = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &routes);

	if (r < 0)
		return nl_fail(err, r, "listing routes");
	for (struct nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *rt = (struct rtnl_route *)o;

		if (rtnl_route_get_table(rt) != RT_TABLE_MAIN ||
		    rtnl_route_get_protocol(rt) == RTPROT_KERNEL)
			continue;
		r = rtnl_route_delete(sk, rt, 0);
		if (r < 0 && r != -NLE_OBJ_NOTFOUND)
			return nl_fail(err, r, "removing a route");
	}
	return 0;
}

static int route_build(struct nl_cache *links, const Types__Route *in, size_t i,
		       struct rtnl_route **out, struct husk_error *err)
{
	_cleanup_rtnl_route_ struct rtnl_route *rt = rtnl_route_alloc();
	_cleanup_nl_addr_ struct nl_addr *dst = NULL, *gw = NULL, *src = NULL;
	struct rtnl_link *link = NULL;
	struct rtnl_nexthop *nh;
	int family = family_of(in->family);
	char field[48];
	int r;

	if (!rt)
		return husk_error_set(err, ENOMEM, "netlink: out of memory");
	snprintf(field, sizeof(field), "Routes[%zu].device", i);
	r = link_by_name(links, in->device, field, &link, err);
	if (r < 0)
		return r;
	snprintf(field, sizeof(field), "Routes[%zu].dest", i);
	r = in->dest[0] ? parse_ip(in->dest, "", family, &dst, field, err) :
		parse_ip(family == AF_INET ? "0.0.0.0" : "::", "0", family, &dst, field, err);
	if (r == 0 && in->gateway[0]) {
		snprintf(field, sizeof(field), "Routes[%zu].gateway", i);
		r = parse_ip(in->gateway, "", family, &gw, field, err);
	}
	if (r == 0 && in->source[0]) {
		snprintf(field, sizeof(field), "Routes[%zu].source", i);
		r = parse_ip(in->source, "", family, &src, field, err);
	}
	if (r < 0) {
		rtnl_link_put(link);
		return r;
	}
	nh = rtnl_route_nh_alloc();
	if (!nh) {
		rtnl_link_put(link);
		return husk_error_set(err, ENOMEM, "netlink: out of memory");
	}
	rtnl_route_nh_set_ifindex(nh, rtnl_link_get_ifindex(link));
	rtnl_link_put(link);
	if (gw)
		rtnl_route_nh_set_gateway(nh, gw);
	rtnl_route_add_nexthop(rt, nh);
	rtnl_route_set_family(rt, (uint8_t)family);
	rtnl_route_set_dst(rt, dst);
	if (src)
		rtnl_route_set_pref_src(rt, src);
	rtnl_route_set_scope(rt, (uint8_t)(in->scope ? in->scope :
					   gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK));
	rtnl_route_set_protocol(rt, RTPROT_BOOT);
	*out = rt;
	rt = NULL;
	return 0;
}

int net_update_routes(Types__Route *const *routes, size_t n, struct husk_error *err)
{
	_cleanup_nl_socket_ struct nl_sock *sk = NULL;
	_cleanup_nl_cache_ struct nl_cache *links = NULL;
	int r;

	r = nl_open(&sk, err);
	if (r < 0)
		return r;
	r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links);
	if (r < 0)
		return nl_fail(err, r, "listing interfaces");
	/* Validate every entry before the table is touched. */
	for (size_t i = 0; i < n; i++) {
		_cleanup_rtnl_route_ struct rtnl_route *rt = NULL;

		r = route_build(links, routes[i], i, &rt, err);
		if (r < 0)
			return r;
	}
	r = routes_flush(sk, err);
	if (r < 0)
		return r;
	/* Link routes first: a gateway must be reachable when its route is added. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			_cleanup_rtnl_route_ struct rtnl_route *rt = NULL;

			if ((routes[i]->gateway[0] != '\0') != (pass == 1))
				continue;
			char what[48];

			r = route_build(links, routes[i], i, &rt, err);
			if (r < 0)
				return r;
			r = rtnl_route_add(sk, rt, NLM_F_CREATE | NLM_F_REPLACE);
			if (r < 0) {
				snprintf(what, sizeof(what), "Routes[%zu]", i);
				return nl_fail(err, r, what);
			}
		}
	}
	return 0;
}

int net_add_neighbors(Types__ARPNeighbor *const *neigh, size_t n, struct husk_error *err)
{
	_cleanup_nl_socket_ struct nl_sock *sk = NULL;
	_cleanup_nl_cache_ struct nl_cache *links = NULL;
	int r;

	r = nl_open(&sk, err);
	if (r < 0)
		return r;
	r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links);
	if (r < 0)
		return nl_fail(err, r, "listing interfaces");
	for (size_t i = 0; i < n; i++) {
		const Types__ARPNeighbor *in = neigh[i];
		_cleanup_rtnl_neigh_ struct rtnl_neigh *ne = rtnl_neigh_alloc();
		_cleanup_nl_addr_ struct nl_addr *dst = NULL, *ll = NULL;
		struct rtnl_link *link = NULL;
		char field[64];

		if (!ne)
			return husk_error_set(err, ENOMEM, "netlink: out of memory");
		snprintf(field, sizeof(field), "ARPNeighbors[%zu].device", i);
		r = link_by_name(links, in->device, field, &link, err);
		if (r < 0)
			return r;
		rtnl_neigh_set_ifindex(ne, rtnl_link_get_ifindex(link));
		rtnl_link_put(link);
		snprintf(field, sizeof(field), "ARPNeighbors[%zu].toIPAddress", i);
		if (!in->toipaddress)
			return husk_error_set(err, EINVAL, "%s: missing", field);
		r = parse_ip(in->toipaddress->address, "", family_of(in->toipaddress->family), &dst,
			     field, err);
		if (r < 0)
			return r;
		if (nl_addr_parse(in->lladdr, AF_LLC, &ll) < 0)
			return husk_error_set(err, EINVAL,
					      "ARPNeighbors[%zu].lladdr: '%s' is not a MAC address",
					      i, in->lladdr);
		rtnl_neigh_set_dst(ne, dst);
		rtnl_neigh_set_lladdr(ne, ll);
		rtnl_neigh_set_state(ne, in->state ? in->state : NUD_PERMANENT);
		if (in->flags)
			rtnl_neigh_set_flags(ne, (unsigned int)in->flags);
		r = rtnl_neigh_add(sk, ne, NLM_F_CREATE | NLM_F_REPLACE);
		if (r < 0) {
			snprintf(field, sizeof(field), "ARPNeighbors[%zu]", i);
			return nl_fail(err, r, field);
		}
	}
	return 0;
}
