"""kubesvc.io/v1: kubesvc's own kinds (IPAddressPool, read by the LoadBalancer controller).

Described like the built-in kinds so ``kubectl explain ipaddresspools.spec``
works and client-side apply can merge them.
"""

from __future__ import annotations

from kubesvc.apiserver.openapi.dsl import Schema, boolean, i64, kind, list_of, obj, ref, strings

K = "io.k8s.api.kubesvc.v1."

SCHEMAS: dict[str, Schema] = {
    K + "IPAddressPool": kind("A set of addresses the LoadBalancer controller hands to Services of type "
                              "LoadBalancer.", "kubesvc.io", "v1", "IPAddressPool", {
                                  "spec": ref(K + "IPAddressPoolSpec", "The addresses and how they are given."),
                                  "status": ref(K + "IPAddressPoolStatus", "How many addresses are in use."),
                              }),
    K + "IPAddressPoolList": list_of(K + "IPAddressPool", "kubesvc.io", "v1", "IPAddressPool",
                                     "IP address pools"),
    K + "IPAddressPoolSpec": obj("The addresses of a pool.", {
        "addresses": strings("CIDRs (192.168.10.0/24) or inclusive ranges (192.168.10.10-192.168.10.20). "
                             "May not overlap the node addresses, the pod CIDR or the service CIDR."),
        "autoAssign": boolean("Whether addresses are given to Services that do not ask for one. Defaults to "
                              "true; false keeps the pool for Services that name an address in it."),
        "avoidBuggyIPs": boolean("Skip addresses ending in .0 and .255, which some old equipment drops. "
                                 "Defaults to false."),
    }, required=["addresses"]),
    K + "IPAddressPoolStatus": obj("Usage of a pool, written by the LoadBalancer controller.", {
        "assignedIPv4": i64("IPv4 addresses in use by Services."),
        "assignedIPv6": i64("IPv6 addresses in use by Services."),
        "availableIPv4": i64("IPv4 addresses still free."),
        "availableIPv6": i64("IPv6 addresses still free."),
    }),
}
