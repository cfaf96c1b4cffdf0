"""What Kueue says about a kernel pod: its Workload's conditions, admission, eviction and queue position.

Kueue wraps a plain Pod in a Workload named ``pod-<pod>-<hash>`` and labelled ``kueue.x-k8s.io/job-uid=<pod
uid>``; its conditions say why the pod waits (``QuotaReserved=False`` with ``WaitingForQuota``, ...), which
flavor admitted it, and why it was evicted (``Evicted``/``Preempted``). The queue position comes from the
visibility API (``pendingworkloads`` of the LocalQueue). ``WorkloadState.of`` is pure so the lifecycle and
exit logic can be read and tested without a server; ``find_workload`` and ``queue_position`` are the two
reads. API version: v1beta2 (storage since Kueue v0.16), falling back to v1beta1 where only that is served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import names
from .calls import call, call_json

KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_VERSIONS = ("v1beta2", "v1beta1")
VISIBILITY_PATH = (
    "/apis/visibility.kueue.x-k8s.io/{version}/namespaces/{ns}/localqueues/{lq}/pendingworkloads"
)


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


@dataclass(frozen=True)
class WorkloadState:
    """The parts of a Workload the backend acts on."""

    name: str
    quota_reserved: bool
    admitted: bool
    reason: str  # QuotaReserved's reason while waiting (WaitingForQuota, NoMatchingFlavor, ...)
    message: str
    flavor: str | None  # the flavor of the GPU resource (or any resource) in the admission
    cluster_queue: str | None
    evicted_reason: str | None
    evicted_message: str | None
    created: str | None

    @classmethod
    def of(cls, workload: dict[str, Any], gpu_resource: str = "nvidia.com/gpu") -> WorkloadState:
        status = workload.get("status") or {}
        reserved = _condition(workload, "QuotaReserved") or {}
        admitted = _condition(workload, "Admitted") or {}
        evicted = _condition(workload, "Evicted")
        preempted = _condition(workload, "Preempted")
        flavor = None
        admission = status.get("admission") or {}
        for assignment in admission.get("podSetAssignments") or []:
            flavors = assignment.get("flavors") or {}
            flavor = flavors.get(gpu_resource) or next(iter(flavors.values()), None) or flavor
        gone = None
        for cond in (preempted, evicted):
            if cond and cond.get("status") == "True":
                gone = cond
                break
        return cls(
            name=str(workload.get("metadata", {}).get("name", "")),
            quota_reserved=reserved.get("status") == "True",
            admitted=admitted.get("status") == "True",
            reason=str(reserved.get("reason") or ""),
            message=str(reserved.get("message") or ""),
            flavor=flavor,
            cluster_queue=admission.get("clusterQueue"),
            evicted_reason=str(gone.get("reason")) if gone else None,
            evicted_message=str(gone.get("message") or "") if gone else None,
            created=workload.get("metadata", {}).get("creationTimestamp"),
        )


@dataclass(frozen=True)
class QueuePosition:
    in_local_queue: int | None
    in_cluster_queue: int | None


async def find_workload(api: client.ApiClient, namespace: str, pod_uid: str) -> dict[str, Any] | None:
    """The Workload Kueue made for the pod with ``pod_uid``, or None (not made yet, or not under Kueue)."""
    custom = client.CustomObjectsApi(api)
    for version in KUEUE_VERSIONS:
        try:
            body = await call_json(
                custom.list_namespaced_custom_object,
                KUEUE_GROUP,
                version,
                namespace,
                "workloads",
                label_selector=f"{names.KUEUE_JOB_UID}={pod_uid}",
            )
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        items = body.get("items") or []
        return dict(items[0]) if items else None
    return None


def _get_json(api: client.ApiClient, path: str, _request_timeout: float | None = 15) -> Any:
    method, url, headers, _body, _post = api.param_serialize(
        "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
    )
    resp = api.call_api(method, url, header_params=headers, _request_timeout=_request_timeout)
    resp.read()
    if not 200 <= resp.status <= 299:
        raise ApiException(status=resp.status, reason=resp.reason)
    return json.loads(resp.data or b"{}")


async def queue_position(
    api: client.ApiClient, namespace: str, local_queue: str, workload: str
) -> QueuePosition | None:
    """The Workload's position in its LocalQueue and ClusterQueue (1-based), None when not pending."""
    for version in KUEUE_VERSIONS:
        path = VISIBILITY_PATH.format(version=version, ns=namespace, lq=local_queue)
        try:
            body = await call(_get_json, api, path, attempts=3, _request_timeout=15)
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        for item in body.get("items") or []:
            if item.get("metadata", {}).get("name") == workload:
                lq, cq = item.get("positionInLocalQueue"), item.get("positionInClusterQueue")
                return QueuePosition(
                    None if lq is None else int(lq) + 1,
                    None if cq is None else int(cq) + 1,
                )
        return None
    return None
