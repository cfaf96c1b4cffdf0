"""A tiny kube-scheduler: binds ungated pods to a fake node that fits (selector, taints, free capacity).

Kueue only removes the scheduling gate; the scheduler still has to find a node whose labels match the
merged nodeSelector and whose taints the pod tolerates. Capacity is checked against node allocatable minus
the requests of pods already bound there, so tests can exhaust a node with ``set_node_capacity``. A pod
whose PersistentVolumeClaim is missing, being deleted or not Bound stays Pending, as with upstream's
VolumeBinding plugin (``persistentvolumeclaim "x" not found``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..conditions import set_condition
from ..events import record_event
from ..quantities import pod_requests, quantity
from ..store import Obj
from .base import Controller

TERMINAL = ("Succeeded", "Failed")


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for tol in tolerations or []:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists" and (not tol.get("key") or tol["key"] == taint.get("key")):
            return True
        if tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def untolerated(tolerations: list[dict[str, Any]], taints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        t
        for t in taints or []
        if t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, t)
    ]


class Scheduler(Controller):
    name = "scheduler"
    watches = (("", "pods"), ("", "nodes"))
    resync = 1.0

    def reconcile(self) -> None:
        pods_t = self.store.registry.get("", "pods")
        nodes_t = self.store.registry.get("", "nodes")
        nodes, _ = self.store.list(nodes_t)
        pods, _ = self.store.list(pods_t)
        used: dict[str, dict[str, Decimal]] = {}
        for pod in pods:
            node = pod["spec"].get("nodeName")
            if node and pod.get("status", {}).get("phase") not in TERMINAL:
                bucket = used.setdefault(node, {})
                for res, qty in pod_requests(pod).items():
                    bucket[res] = bucket.get(res, Decimal(0)) + qty
        for pod in sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"]):
            spec = pod["spec"]
            if (
                spec.get("nodeName")
                or spec.get("schedulingGates")
                or pod["metadata"].get("deletionTimestamp")
            ):
                continue
            if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
                continue
            unresolvable = self._claims_problem(pod)
            if unresolvable:
                self._unschedulable(pod, unresolvable, len(nodes))
                continue
            node, why = self._pick(pod, nodes, used)
            if node is None:
                self._unschedulable(pod, why, len(nodes))
                continue
            for res, qty in pod_requests(pod).items():
                used.setdefault(node["metadata"]["name"], {})[res] = (
                    used.get(node["metadata"]["name"], {}).get(res, Decimal(0)) + qty
                )
            self._bind(pod, node["metadata"]["name"])

    def _claims_problem(self, pod: Obj) -> str:
        """Upstream VolumeBinding PreFilter: why no node can take the pod because of its claims, or ""."""
        claims_t = self.store.registry.get("", "persistentvolumeclaims")
        unbound = False
        for volume in pod["spec"].get("volumes") or []:
            name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not name:
                continue
            claim = self.store.find(claims_t, pod["metadata"]["namespace"], name)
            if claim is None:
                return f'persistentvolumeclaim "{name}" not found'
            if claim["metadata"].get("deletionTimestamp"):
                return f'persistentvolumeclaim "{name}" is being deleted'
            unbound = unbound or (claim.get("status") or {}).get("phase") != "Bound"
        return "pod has unbound immediate PersistentVolumeClaims" if unbound else ""

    def _pick(
        self, pod: Obj, nodes: list[Obj], used: dict[str, dict[str, Decimal]]
    ) -> tuple[Obj | None, str]:
        reasons: dict[str, int] = {}
        selector = pod["spec"].get("nodeSelector") or {}
        requests = pod_requests(pod)
        for node in nodes:
            labels = node["metadata"].get("labels") or {}
            if node["spec"].get("unschedulable"):
                why = "node(s) were unschedulable"
            elif any(labels.get(k) != v for k, v in selector.items()):
                why = "node(s) didn't match Pod's node affinity/selector"
            elif untolerated(pod["spec"].get("tolerations") or [], node["spec"].get("taints") or []):
                taint = untolerated(pod["spec"].get("tolerations") or [], node["spec"].get("taints") or [])[0]
                why = f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
            else:
                allocatable = (node.get("status") or {}).get("allocatable") or {}
                short = [
                    res
                    for res, qty in requests.items()
                    if qty > 0
                    and quantity(allocatable.get(res, 0))
                    - used.get(node["metadata"]["name"], {}).get(res, Decimal(0))
                    < qty
                ]
                if not short:
                    return node, ""
                why = f"Insufficient {short[0]}"
            reasons[why] = reasons.get(why, 0) + 1
        return None, ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))

    def _bind(self, pod: Obj, node: str) -> None:
        pods_t = self.store.registry.get("", "pods")
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]

        def bind(p: Obj) -> bool:
            if p["spec"].get("nodeName") or p["spec"].get("schedulingGates"):
                return False
            p["spec"]["nodeName"] = node
            set_condition(p.setdefault("status", {}), "PodScheduled", "True", reason="", message="")
            return True

        with self.store.lock:  # the event lands before the kubelet can react to the binding
            bound = self.store.mutate(pods_t, ns, name, bind)
            if bound is not None and bound["spec"].get("nodeName") == node:
                record_event(
                    self.store,
                    bound,
                    "Scheduled",
                    f"Successfully assigned {ns}/{name} to {node}",
                    component="default-scheduler",
                )

    def _unschedulable(self, pod: Obj, why: str, total: int) -> None:
        message = f"0/{total} nodes are available: {why or 'no nodes registered'}."
        current = next(
            (c for c in pod.get("status", {}).get("conditions") or [] if c["type"] == "PodScheduled"), None
        )
        if current and current.get("message") == message:
            return
        pods_t = self.store.registry.get("", "pods")
        updated = self.store.mutate(
            pods_t,
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            lambda p: set_condition(
                p.setdefault("status", {}), "PodScheduled", "False", "Unschedulable", message
            ),
        )
        if updated is not None:
            record_event(
                self.store,
                updated,
                "FailedScheduling",
                message,
                type_="Warning",
                component="default-scheduler",
            )
