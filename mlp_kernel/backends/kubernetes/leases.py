"""Orphan detection: each live kernel pod has a Lease its gateway renews; an expired Lease marks an orphan.

A gateway that crashes (or a notebook server that is killed) cannot release its kernel. Labels alone cannot
tell a busy kernel from an abandoned one, so every kernel pod gets a ``coordination.k8s.io`` Lease of the same
name, owned by the pod (deleted with it), whose ``renewTime`` the gateway refreshes (``renew``) well within
``leaseDurationSeconds``. ``find_orphans`` lists kernel pods (label
``app.kubernetes.io/managed-by=mlp-kernel``) whose Lease is older than its duration (or than an explicit
``expire_after_s``), or missing on a pod older than that; ``mlp-kernel gc`` deletes them. Pure decisions
(``is_orphan``) are separate from the two list calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kubernetes import client

from . import names
from .calls import call_json

DEFAULT_LEASE_S = 300


def micro_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def lease_body(pod: dict[str, Any], holder: str, duration_s: int, now: datetime) -> dict[str, Any]:
    meta = pod["metadata"]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": names.lease_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {
                names.MANAGED_BY: names.MANAGED_BY_VALUE,
                names.KERNEL_ID: meta.get("labels", {}).get(names.KERNEL_ID, ""),
            },
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}
            ],
        },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration_s,
            "acquireTime": micro_time(now),
            "renewTime": micro_time(now),
        },
    }


@dataclass(frozen=True)
class Orphan:
    """A kernel pod nobody renews any more."""

    member: str
    namespace: str
    pod: str
    uid: str
    kernel_id: str
    idle_s: float  # seconds since the last renewal (or since creation when there is no Lease)
    reason: str

    def record(self) -> dict[str, Any]:
        """In the form of ``KubernetesBackend.handle_record``, so ``release_record`` can delete it."""
        return {
            "backend": "kubernetes",
            "member": self.member,
            "namespace": self.namespace,
            "pod": self.pod,
            "secret": names.secret_name(self.pod),
            "lease": names.lease_name(self.pod),
            "uid": self.uid,
            "kernel_id": self.kernel_id,
        }


def is_orphan(
    pod: dict[str, Any], lease: dict[str, Any] | None, now: datetime, expire_after_s: float | None
) -> tuple[bool, float, str]:
    """Whether ``pod`` is orphaned, the seconds it has gone unrenewed, and why (pure)."""
    if lease is None:
        created = parse_time(pod.get("metadata", {}).get("creationTimestamp")) or now
        idle = (now - created).total_seconds()
        limit = expire_after_s if expire_after_s is not None else DEFAULT_LEASE_S
        return idle > limit, idle, f"no lease, created {idle:.0f} s ago"
    spec = lease.get("spec") or {}
    renewed = (
        parse_time(spec.get("renewTime"))
        or parse_time(spec.get("acquireTime"))
        or parse_time(lease.get("metadata", {}).get("creationTimestamp"))
        or now
    )
    idle = (now - renewed).total_seconds()
    limit = (
        expire_after_s
        if expire_after_s is not None
        else float(spec.get("leaseDurationSeconds") or DEFAULT_LEASE_S)
    )
    holder = spec.get("holderIdentity") or "unknown gateway"
    return idle > limit, idle, f"lease held by {holder} not renewed for {idle:.0f} s (limit {limit:.0f} s)"


async def find_orphans(
    api: client.ApiClient,
    member: str,
    namespace: str | None,
    now: datetime,
    expire_after_s: float | None = None,
) -> list[Orphan]:
    """Orphaned kernel pods in ``namespace``, or in every namespace when it is None (a member with a
    namespace per user: no gateway sees the others' namespaces, the admin's ``mlp-kernel gc`` lists them all
    by label, which needs the cluster-wide ``list`` of docs/samples/rbac/gc-admin.yaml)."""
    core = client.CoreV1Api(api)
    coordination = client.CoordinationV1Api(api)
    selector = names.MANAGED_SELECTOR
    if namespace is None:
        pods = await call_json(core.list_pod_for_all_namespaces, label_selector=selector)
        leases = await call_json(coordination.list_lease_for_all_namespaces, label_selector=selector)
    else:
        pods = await call_json(core.list_namespaced_pod, namespace, label_selector=selector)
        leases = await call_json(coordination.list_namespaced_lease, namespace, label_selector=selector)
    by_name = {
        (lease["metadata"].get("namespace") or namespace, lease["metadata"]["name"]): lease
        for lease in leases.get("items") or []
    }
    orphans = []
    for pod in pods.get("items") or []:
        meta = pod["metadata"]
        if (meta.get("labels") or {}).get(names.POOL_STATE) == names.POOL_FREE:
            continue  # an unclaimed warm-pool pod has no gateway by design: the pool loop ends it (pool.py)
        ns = meta.get("namespace") or namespace or ""
        lease = by_name.get((ns, names.lease_name(meta["name"])))
        orphan, idle, why = is_orphan(pod, lease, now, expire_after_s)
        if orphan:
            orphans.append(
                Orphan(
                    member,
                    ns,
                    meta["name"],
                    meta.get("uid", ""),
                    meta.get("labels", {}).get(names.KERNEL_ID, ""),
                    idle,
                    why,
                )
            )
    return orphans
