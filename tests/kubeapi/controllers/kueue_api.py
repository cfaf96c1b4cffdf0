"""Kueue's API surface besides the CRDs: v1beta1 <-> v1beta2 conversion and the visibility API.

Objects are stored at v1beta2 (the storage version upstream); a client reading v1beta1 sees the v1beta1
spellings (``spec.cohort``, ``status.flavorUsage``, ``priorityClassName``). The visibility API serves
``PendingWorkloadsSummary`` for a ClusterQueue or a LocalQueue, ordered as the admission loop tries them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import not_found
from ..resources import ResourceType
from ..responses import JsonResponse, Request
from ..store import Obj

if TYPE_CHECKING:
    from ..rest import Target
    from ..server import KubeApiServer
    from .kueue import Kueue

GROUP = "kueue.x-k8s.io"
VISIBILITY = "visibility.kueue.x-k8s.io"
WPC_SOURCE = "kueue.x-k8s.io/workloadpriorityclass"


def convert(obj: Obj, version: str) -> Obj:
    current = obj.get("apiVersion", "").rpartition("/")[2]
    if current == version:
        return obj
    kind = obj.get("kind")
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
    status = obj.get("status") if isinstance(obj.get("status"), dict) else None
    if version == "v1beta1":
        if kind == "ClusterQueue" and spec is not None and "cohortName" in spec:
            spec["cohort"] = spec.pop("cohortName")
        if kind == "LocalQueue" and status is not None and "flavorsUsage" in status:
            status["flavorUsage"] = status.pop("flavorsUsage")
        if kind == "Workload" and spec is not None and isinstance(spec.get("priorityClassRef"), dict):
            ref = spec.pop("priorityClassRef")
            spec["priorityClassName"] = ref.get("name")
            spec["priorityClassSource"] = (
                WPC_SOURCE
                if ref.get("kind") == "WorkloadPriorityClass"
                else "scheduling.k8s.io/priorityclass"
            )
    else:
        if kind == "ClusterQueue" and spec is not None and "cohort" in spec:
            spec["cohortName"] = spec.pop("cohort")
        if kind == "LocalQueue" and status is not None and "flavorUsage" in status:
            status["flavorsUsage"] = status.pop("flavorUsage")
        if kind == "Workload" and spec is not None and spec.get("priorityClassName"):
            source = spec.pop("priorityClassSource", WPC_SOURCE)
            spec["priorityClassRef"] = {
                "group": GROUP if source == WPC_SOURCE else "scheduling.k8s.io",
                "kind": "WorkloadPriorityClass" if source == WPC_SOURCE else "PriorityClass",
                "name": spec.pop("priorityClassName"),
            }
    obj["apiVersion"] = f"{GROUP}/{version}"
    return obj


def install(server: KubeApiServer, kueue: Kueue) -> None:
    for plural in ("clusterqueues", "localqueues", "workloads"):
        server.registry.converters[(GROUP, plural)] = convert
    for plural, kind, namespaced in (
        ("clusterqueues", "ClusterQueue", False),
        ("localqueues", "LocalQueue", True),
    ):
        server.registry.add(
            ResourceType(
                VISIBILITY,
                ("v1beta2", "v1beta1"),
                "v1beta2",
                kind,
                plural,
                plural[:-1],
                namespaced,
                (),
                ("pendingworkloads",),
                verbs=("get", "list"),
                virtual=True,
            )
        )

    def summary(req: Request, target: Target) -> JsonResponse:
        items = _pending_items(server, kueue, target)
        offset = int(req.query.get("offset") or 0)
        limit = int(req.query.get("limit") or 1000)
        return JsonResponse(
            200,
            {
                "kind": "PendingWorkloadsSummary",
                "apiVersion": f"{VISIBILITY}/{target.version}",
                "metadata": {"creationTimestamp": None},
                "items": items[offset : offset + limit],
            },
        )

    server.rest.add_route(VISIBILITY, "clusterqueues", "pendingworkloads", summary)
    server.rest.add_route(VISIBILITY, "localqueues", "pendingworkloads", summary)


def _pending_items(server: KubeApiServer, kueue: Kueue, target: Target) -> list[dict[str, Any]]:
    lq_type = server.registry.get(GROUP, "localqueues")
    if target.plural == "clusterqueues":
        if server.store.find(server.registry.get(GROUP, "clusterqueues"), None, target.name or "") is None:
            raise not_found("clusterqueues", target.name or "", GROUP)
        cq_name = target.name
    else:
        lq = server.store.find(lq_type, target.namespace, target.name or "")
        if lq is None:
            raise not_found("localqueues", target.name or "", GROUP)
        cq_name = lq["spec"].get("clusterQueue")
    queue = kueue.pending_by_cq().get(cq_name or "", [])
    items: list[dict[str, Any]] = []
    per_lq: dict[tuple[str, str], int] = {}
    for position, wl in enumerate(queue):
        key = (wl["metadata"]["namespace"], wl["spec"].get("queueName", ""))
        lq_position = per_lq.get(key, 0)
        per_lq[key] = lq_position + 1
        if target.plural == "localqueues" and key != (target.namespace, target.name):
            continue
        m = wl["metadata"]
        items.append(
            {
                "metadata": {
                    k: m[k]
                    for k in ("name", "namespace", "creationTimestamp", "ownerReferences", "labels", "uid")
                    if k in m
                },
                "priority": int(wl["spec"].get("priority") or 0),
                "localQueueName": wl["spec"].get("queueName"),
                "positionInClusterQueue": position,
                "positionInLocalQueue": lq_position,
            }
        )
    return items
