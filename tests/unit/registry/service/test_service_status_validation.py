"""ValidateServiceStatusUpdate: the load balancer status, with upstream's messages."""

from __future__ import annotations

from typing import Any

import pytest

from kubesvc.registry.service.validation import validate_service_status_update


def svc(ingress: list[dict[str, Any]], type_: str = "LoadBalancer") -> dict[str, Any]:
    return {"metadata": {"name": "s", "namespace": "default"}, "spec": {"type": type_},
            "status": {"loadBalancer": {"ingress": ingress}}}


P = "status.loadBalancer.ingress"


@pytest.mark.parametrize("ingress,type_,expected", [
    ([{"ip": "192.0.2.1", "ipMode": "VIP"}, {"hostname": "lb.example.com"}], "LoadBalancer", []),
    ([], "ClusterIP", []),
    ([{"ip": "192.0.2.1", "ipMode": "VIP"}], "NodePort", [f"{P}: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"]),
    ([{"ip": "x", "ipMode": "VIP"}], "LoadBalancer", [f'{P}[0].ip: Invalid value: "x": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)']),
    ([{"ip": "192.0.2.1"}], "LoadBalancer", [f"{P}[0].ipMode: Required value: must be specified when `ip` is set"]),
    ([{"hostname": "a.b", "ipMode": "VIP"}], "LoadBalancer", [f"{P}[0].ipMode: Forbidden: may not be specified when `ip` is not set"]),
    ([{"ip": "192.0.2.1", "ipMode": "DSR"}], "LoadBalancer", [f'{P}[0].ipMode: Unsupported value: "DSR": supported values: "Proxy", "VIP"']),
    ([{"hostname": "192.0.2.1"}], "LoadBalancer", [f'{P}[0].hostname: Invalid value: "192.0.2.1": must be a DNS name, not an IP address']),
])
def test_load_balancer_status(ingress: list[dict[str, Any]], type_: str, expected: list[str]) -> None:
    s = svc(ingress, type_)
    assert [str(e) for e in validate_service_status_update(s, s)] == expected
