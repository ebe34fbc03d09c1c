/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Changing the guest's network with libnl-route: one interface's name,
 * MTU and addresses; the route table; ARP/NDP neighbours.  Requests are
 * validated by the caller's parsing here before anything is changed where
 * possible; errors name the request field.
 */
#ifndef HUSK_AGENT_NETLINK_H
#define HUSK_AGENT_NETLINK_H

#include <husk-common/error.h>

#include "agent.pb-c.h"

/* Find the link by hwAddr (or device when hwAddr is empty); set it down,
 * rename, set MTU, replace its addresses, set it up. */
int net_update_interface(const Types__Interface *iface, struct husk_error *err);

/* Replace every non-kernel route of the main table by routes[]. */
int net_update_routes(Types__Route *const *routes, size_t n, struct husk_error *err);

/* Add (or replace) each neighbour entry. */
int net_add_neighbors(Types__ARPNeighbor *const *neigh, size_t n, struct husk_error *err);

#endif
