"""Karmada on the control-plane server: ``Cluster`` objects for the members and the cluster proxy.

Each member gets a cluster-scoped ``cluster.karmada.io/v1alpha1`` Cluster whose ``status.conditions`` Ready
follows the member's health (tests flip it with ``set_ready``; a stopped member server is not ready) and
whose ``status.resourceSummary`` {allocatable, allocating, allocated} is summed from the member's nodes and
pods. ``/apis/cluster.karmada.io/v1alpha1/clusters/{name}/proxy/<member path>`` forwards any request,
watch streams included, to the member's HTTP server, like karmada-aggregated-apiserver does.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ..conditions import set_condition
from ..errors import ApiError, not_found
from ..quantities import fmt, pod_requests, quantity
from ..responses import RawResponse, Request
from ..store import Obj
from .base import Controller

if TYPE_CHECKING:
    from ..rest import Target
    from ..server import KubeApiServer

GROUP = "cluster.karmada.io"
NOT_READY_TAINT = "cluster.karmada.io/not-ready"


class Karmada(Controller):
    name = "karmada"
    resync = 1.0
    watches = ((GROUP, "clusters"),)

    def __init__(
        self,
        server: KubeApiServer,
        members: dict[str, KubeApiServer],
        cluster_specs: dict[str, dict[str, Any]] | None = None,
        cluster_labels: dict[str, dict[str, str]] | None = None,
    ):
        super().__init__(server)
        self.members = dict(members)
        self.specs = cluster_specs or {}
        self.labels = cluster_labels or {}
        self.ready: dict[str, bool] = {name: True for name in members}
        server.rest.add_route(GROUP, "clusters", "proxy", self._proxy)
        for name in members:
            spec = {"syncMode": "Push", **self.specs.get(name, {})}
            server.store.create(
                server.registry.get(GROUP, "clusters"),
                {
                    "apiVersion": f"{GROUP}/v1alpha1",
                    "kind": "Cluster",
                    "metadata": {"name": name, "labels": dict(self.labels.get(name, {}))},
                    "spec": spec,
                },
            )

    def set_ready(self, member: str, ready: bool) -> None:
        """Mark a member (un)healthy: Ready condition, not-ready taint, the proxy's dial fails (500)."""
        self.ready[member] = ready
        self.reconcile()

    def _member_up(self, name: str) -> bool:
        member = self.members.get(name)
        return (
            bool(self.ready.get(name))
            and member is not None
            and member._http is not None
            and not member.rest.stopping.is_set()
        )

    def reconcile(self) -> None:
        ctype = self.server.registry.get(GROUP, "clusters")
        for name, member in self.members.items():
            up = self._member_up(name)
            summary = _summary(member) if up else None

            def apply(
                c: Obj,
                up: bool = up,
                summary: dict[str, Any] | None = summary,
                member: KubeApiServer = member,
            ) -> None:
                st = c.setdefault("status", {})
                if up:
                    set_condition(
                        st,
                        "Ready",
                        "True",
                        "ClusterReady",
                        "cluster is healthy and ready to accept workloads",
                    )
                    st["kubernetesVersion"] = member.rest.version_info["gitVersion"]
                    if member._http is not None:
                        c["spec"]["apiEndpoint"] = member.url
                    if summary is not None:
                        st["resourceSummary"] = summary["resources"]
                        st["nodeSummary"] = summary["nodes"]
                else:
                    set_condition(st, "Ready", "False", "ClusterNotReachable", "cluster is not reachable")
                taints = [t for t in c["spec"].get("taints") or [] if t.get("key") != NOT_READY_TAINT]
                if not up:
                    taints.append({"key": NOT_READY_TAINT, "effect": "NoSchedule"})
                if taints:
                    c["spec"]["taints"] = taints
                else:
                    c["spec"].pop("taints", None)

            self.store.mutate(ctype, None, name, apply)

    # -- proxy ---------------------------------------------------------------------------------------

    def _proxy(self, req: Request, target: Target) -> RawResponse:
        name = target.name or ""
        if self.store.find(self.server.registry.get(GROUP, "clusters"), None, name) is None:
            raise not_found("clusters", name, GROUP)
        member = self.members[name]
        if not self._member_up(name):
            # as karmada-aggregated-apiserver v1.16 answers when the member's API server refuses the dial
            # (tests/cluster/test_karmada_real.py): 500, the dial error as message, no reason
            raise ApiError(500, "", f"dial tcp 127.0.0.1:{member.port}: connect: connection refused")
        path = target.subpath or "/"
        if req.query:
            path += "?" + urlencode(req.query)
        conn = http.client.HTTPConnection("127.0.0.1", member.port, timeout=None)
        headers = {k: v for k, v in req.headers.items() if k in ("content-type", "accept", "authorization")}
        conn.request(req.method, path, body=req.body or None, headers=headers)
        resp = conn.getresponse()
        out_headers = {"Content-Type": resp.getheader("Content-Type", "application/json")}
        if resp.getheader("Transfer-Encoding", "").lower() == "chunked":
            return RawResponse(resp.status, out_headers, chunks=_relay(conn, resp))
        body = resp.read()
        conn.close()
        return RawResponse(resp.status, out_headers, body=body)


def _relay(conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> Iterator[bytes]:
    try:
        while True:
            line = resp.readline()
            if not line:
                return
            yield line
    except (http.client.IncompleteRead, OSError):
        from ..responses import DropConnection

        raise DropConnection() from None
    finally:
        conn.close()


def _summary(member: KubeApiServer) -> dict[str, Any]:
    nodes = member.list("v1", "Node")
    pods = member.list("v1", "Pod")
    allocatable: dict[str, Decimal] = {}
    for node in nodes:
        for res, qty in ((node.get("status") or {}).get("allocatable") or {}).items():
            allocatable[res] = allocatable.get(res, Decimal(0)) + quantity(qty)
    allocated: dict[str, Decimal] = {}
    allocating: dict[str, Decimal] = {}
    for pod in pods:
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        bucket = allocated if pod["spec"].get("nodeName") else allocating
        for res, qty in pod_requests(pod).items():
            bucket[res] = bucket.get(res, Decimal(0)) + qty
    ready = sum(
        1
        for n in nodes
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (n.get("status") or {}).get("conditions") or []
        )
    )
    return {
        "resources": {
            "allocatable": {r: fmt(q, r) for r, q in sorted(allocatable.items())},
            "allocating": {r: fmt(q, r) for r, q in sorted(allocating.items())},
            "allocated": {r: fmt(q, r) for r, q in sorted(allocated.items())},
        },
        "nodes": {"totalNum": len(nodes), "readyNum": ready},
    }
