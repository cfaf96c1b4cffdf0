"""Turn Kueue and Karmada objects (as plain dicts) into a member's placement state.

This is the one place that knows Kueue's object shapes. Live reads (``live.py``) and ``kubectl get -o yaml``
dumps (``dumps.py``) both end here, so the same objects always give the same state. Both served Kueue versions
are read: v1beta2 (``spec.cohortName``, LocalQueue ``status.flavorsUsage``) and v1beta1 (``spec.cohort``,
LocalQueue ``status.flavorUsage``).

What is derived, per flavor of the member's ClusterQueue (details in docs/placement.md):
- nominal quota of the flavor's GPU resource, and usage (the largest of ``flavorsReservation``,
  ``flavorsUsage`` and the admitted Workloads: Kueue updates the ClusterQueue's status after an admission);
- what the queue may still borrow from its cohort (peers' unused lendable quota minus what is already
  borrowed, capped by ``borrowingLimit``); Cohort objects' own quotas are not modelled;
- pending workloads ahead of a new request (visibility API summary when given, else pending Workloads whose
  pod template could land on this flavor);
- the admission rate: Workloads whose ``QuotaReserved`` turned True on this flavor within ``window_s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from ..policy import Flavor, Member, Policy
from ..state import FlavorState, MemberState
from .kueue_fields import StateError, aware, quantity
from .kueue_fields import condition as _condition
from .workloads import WorkloadCounters

KUEUE_GROUP = "kueue.x-k8s.io"
KARMADA_CLUSTER_GROUP = "cluster.karmada.io"
RATE_WINDOW_S = 3600.0

__all__ = ["StateError", "quantity"]  # re-exported: shapes.py and callers import them from here


@dataclass
class ObjectIndex:
    """One member's objects grouped by kind, with lookups by name."""

    by_kind: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, obj: Mapping[str, Any]) -> None:
        kind = str(obj.get("kind", ""))
        self.by_kind.setdefault(kind, []).append(dict(obj))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return self.by_kind.get(kind, [])

    def named(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        for obj in self.of(kind):
            meta = obj.get("metadata") or {}
            if meta.get("name") == name and (namespace is None or meta.get("namespace") in (None, namespace)):
                return obj
        return None


def index_objects(objects: Iterable[Mapping[str, Any]]) -> ObjectIndex:
    idx = ObjectIndex()
    for obj in objects:
        if isinstance(obj, Mapping):
            idx.add(obj)
    return idx


def karmada_health(
    member: Member, clusters: Mapping[str, Mapping[str, Any]], assume_missing_ready: bool
) -> tuple[bool, str]:
    """Ready and why, from the member's Karmada Cluster (``health: karmada``); static members are ready."""
    if member.health != "karmada" or not member.karmada_cluster:
        return True, ""
    cluster = clusters.get(member.karmada_cluster)
    if cluster is None:
        if assume_missing_ready:
            return True, f"Karmada Cluster {member.karmada_cluster!r} not in the given state; assumed Ready"
        return False, f"Karmada Cluster {member.karmada_cluster!r} not found"
    cond = _condition(cluster, "Ready")
    if cond is None:
        return False, f"Karmada Cluster {member.karmada_cluster!r} reports no Ready condition"
    if cond.get("status") != "True":
        why = ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x)
        return False, f"Karmada Cluster {member.karmada_cluster!r} Ready={cond.get('status')}" + (
            f" ({why})" if why else ""
        )
    return True, ""


def member_state_from_objects(
    policy: Policy,
    member: Member,
    idx: ObjectIndex,
    *,
    now: datetime,
    ready: bool = True,
    reason: str = "",
    source: str = "",
    own_workload: str | None = None,
    window_s: float = RATE_WINDOW_S,
    workloads: WorkloadCounters | None = None,
) -> MemberState:
    """The member's state from its Kueue objects. Raises ``StateError`` when its queues are not there.

    ``workloads`` are the member's Workloads as counters (a live watch keeps them, ``workloads.py``); without
    them they are counted from the Workloads in ``idx``.
    """
    lq = idx.named("LocalQueue", member.local_queue or "", member.namespace) if member.local_queue else None
    cq_name = member.cluster_queue or ((lq or {}).get("spec") or {}).get("clusterQueue")
    if not cq_name:
        raise StateError(
            f"member {member.name!r}: LocalQueue {member.namespace}/{member.local_queue} is not in the "
            f"state and the policy names no cluster_queue; include the LocalQueue or set "
            f"members.{member.name}.cluster_queue"
        )
    cq = idx.named("ClusterQueue", cq_name)
    if cq is None:
        found = ", ".join(_name(o) for o in idx.of("ClusterQueue")) or "none"
        raise StateError(
            f"member {member.name!r}: ClusterQueue {cq_name!r} is not in the state (found: {found})"
        )

    notes = [reason] if reason else []
    active, why = _queue_active(cq, "ClusterQueue")
    if active and lq is not None:
        active, why = _queue_active(lq, "LocalQueue")
    if not active:
        notes.append(why)
    mine = policy.flavors_of(member.name)
    notes += _flavor_mismatches(mine, idx)
    counters = workloads if workloads is not None else WorkloadCounters.of(idx.of("Workload"))
    wl = _summarise(cq_name, {f.gpu_resource for f in mine}, idx, counters)
    flavors = {f.name: _flavor_state(f, cq, cq_name, idx, now, own_workload, window_s, wl) for f in mine}
    return MemberState(
        ready=ready,
        reason="; ".join(n for n in notes if n),
        cluster_queue_active=active,
        flavors=MappingProxyType(flavors),
        source=source,
    )


def _flavor_mismatches(flavors: list[Flavor], idx: ObjectIndex) -> list[str]:
    """Notes for the admin when the policy and the cluster's ResourceFlavors disagree on pinning labels."""
    if not idx.of("ResourceFlavor"):
        return []  # not part of this state; nothing to compare
    notes = []
    for f in flavors:
        rf = idx.named("ResourceFlavor", f.name)
        if rf is None:
            notes.append(f"note: ResourceFlavor {f.name!r} not found on the member")
            continue
        labels = (rf.get("spec") or {}).get("nodeLabels") or {}
        if f.node_labels and dict(f.node_labels) != labels:
            notes.append(
                f"note: ResourceFlavor {f.name!r} nodeLabels {labels} differ from the policy's "
                f"{dict(f.node_labels)}; pods pinned by the policy's labels may never be admitted"
            )
    return notes


# --- per flavor ---------------------------------------------------------------------------------------------


def _flavor_state(
    f: Flavor,
    cq: dict[str, Any],
    cq_name: str,
    idx: ObjectIndex,
    now: datetime,
    own_workload: str | None,
    window_s: float,
    wl: _QueueWorkloads,
) -> FlavorState:
    nominal, borrow_limit, _ = _quota(cq, f.name, f.gpu_resource)
    used = _usage(cq, f.name, f.gpu_resource, wl.counters, cq_name)
    borrowable = _borrowable(cq, cq_name, f, idx, wl.counters, nominal, used, borrow_limit)
    pending, position = _pending(f, cq_name, idx, own_workload, wl)
    rate = _admission_rate(f, now, window_s, wl)
    return FlavorState(
        nominal_gpus=nominal,
        used_gpus=used,
        borrowable_gpus=borrowable,
        pending=pending,
        admission_rate_per_s=rate,
        queue_position=position,
    )


def _quota(cq: Mapping[str, Any], flavor: str, resource: str) -> tuple[int, int | None, int | None]:
    """(nominalQuota, borrowingLimit, lendingLimit) of ``resource`` for ``flavor``; (0, 0, 0) if not
    listed."""
    for group in (cq.get("spec") or {}).get("resourceGroups") or []:
        for fl in group.get("flavors") or []:
            if fl.get("name") != flavor:
                continue
            for r in fl.get("resources") or []:
                if r.get("name") == resource:
                    return (
                        quantity(r.get("nominalQuota", 0)),
                        quantity(r["borrowingLimit"]) if r.get("borrowingLimit") is not None else None,
                        quantity(r["lendingLimit"]) if r.get("lendingLimit") is not None else None,
                    )
    return 0, 0, 0


def _status_total(cq: Mapping[str, Any], key: str, flavor: str, resource: str) -> int | None:
    entries = (cq.get("status") or {}).get(key)
    if entries is None:
        return None
    for fl in entries:
        if fl.get("name") == flavor:
            for r in fl.get("resources") or []:
                if r.get("name") == resource:
                    return quantity(r.get("total", 0))
    return 0


def _usage(
    cq: Mapping[str, Any], flavor: str, resource: str, counters: WorkloadCounters, cq_name: str
) -> int:
    """GPUs of ``flavor`` in use: the largest of the ClusterQueue's ``flavorsReservation``, its
    ``flavorsUsage`` and the admitted, unfinished Workloads read with it.

    Real Kueue writes the ClusterQueue's status after it admits a Workload, not with it: a read between the
    two (a second after a job took the last GPUs of a flavor) sees the Workload admitted and the status still
    without it. Placing on that status sent a kernel to a full flavor, where it queued behind the job.
    """
    reserved = _status_total(cq, "flavorsReservation", flavor, resource)
    used = _status_total(cq, "flavorsUsage", flavor, resource)
    return max(reserved or 0, used or 0, counters.admitted(cq_name, flavor, resource))


def _cohort(cq: Mapping[str, Any]) -> str | None:
    spec = cq.get("spec") or {}
    return spec.get("cohortName") or spec.get("cohort")


def _borrowable(
    cq: Mapping[str, Any],
    cq_name: str,
    f: Flavor,
    idx: ObjectIndex,
    counters: WorkloadCounters,
    nominal: int,
    used: int,
    borrow_limit: int | None,
) -> int:
    cohort = _cohort(cq)
    if not cohort:
        return 0
    pool = 0
    borrowed_by_others = 0
    for peer in idx.of("ClusterQueue"):
        if _name(peer) == cq_name or _cohort(peer) != cohort:
            continue
        p_nominal, _, p_lend = _quota(peer, f.name, f.gpu_resource)
        p_used = _usage(peer, f.name, f.gpu_resource, counters, _name(peer))
        lendable = p_nominal if p_lend is None else min(p_lend, p_nominal)
        pool += max(0, min(lendable, p_nominal - p_used))
        borrowed_by_others += max(0, p_used - p_nominal)
    own_borrowed = max(0, used - nominal)
    available = max(0, pool - borrowed_by_others - own_borrowed)
    if borrow_limit is not None:
        available = min(available, max(0, borrow_limit - own_borrowed))
    return available


def _queue_names_of(cq_name: str, idx: ObjectIndex) -> set[tuple[str, str]]:
    return {
        ((lq.get("metadata") or {}).get("namespace", ""), _name(lq))
        for lq in idx.of("LocalQueue")
        if (lq.get("spec") or {}).get("clusterQueue") == cq_name
    }


@dataclass
class _QueueWorkloads:
    """The ClusterQueue's workloads, summarised once so per-flavor questions cost O(distinct selectors)."""

    pending_by_selector: dict[tuple[frozenset[tuple[str, str]], frozenset[str]], int]
    counters: WorkloadCounters
    cq_name: str
    resources: frozenset[str]


def _summarise(
    cq_name: str, resources: set[str], idx: ObjectIndex, counters: WorkloadCounters
) -> _QueueWorkloads:
    pending = counters.pending_by_selector(_queue_names_of(cq_name, idx), resources)
    return _QueueWorkloads(pending, counters, cq_name, frozenset(resources))


def _pending(
    f: Flavor, cq_name: str, idx: ObjectIndex, own_workload: str | None, wl: _QueueWorkloads
) -> tuple[int, int | None]:
    summaries = idx.of("PendingWorkloadsSummary")
    if summaries:
        queues = _queue_names_of(cq_name, idx)
        items = [
            it
            for s in summaries
            for it in (s.get("items") or [])
            if not queues
            or ((it.get("metadata") or {}).get("namespace", ""), it.get("localQueueName")) in queues
        ]
        position = None
        for it in items:
            if own_workload and (it.get("metadata") or {}).get("name") == own_workload:
                position = int(it.get("positionInClusterQueue", 0)) + 1
        ahead = len(items) if position is None else position - 1
        return ahead, position
    count = 0
    for (selector, wants), n in wl.pending_by_selector.items():
        if f.gpu_resource in wants and _selector_allows(dict(selector), f):
            count += n
    return count, None


def _admission_rate(f: Flavor, now: datetime, window_s: float, wl: _QueueWorkloads) -> float | None:
    now = aware(now)
    n = wl.counters.admitted_since(wl.cq_name, wl.resources, f.name, now - timedelta(seconds=window_s), now)
    return n / window_s if n else None


def _selector_allows(selector: Mapping[str, str], f: Flavor) -> bool:
    """Kueue skips a flavor whose nodeLabels contradict the pod's nodeSelector (only keys the flavor
    defines)."""
    return all(selector.get(key, value) == value for key, value in f.node_labels.items())


# --- generic helpers ----------------------------------------------------------------------------------------


def _queue_active(obj: Mapping[str, Any], kind: str) -> tuple[bool, str]:
    stop = (obj.get("spec") or {}).get("stopPolicy")
    if stop and stop != "None":
        return False, f"{kind} {_name(obj)!r} has stopPolicy {stop}"
    cond = _condition(obj, "Active")
    if cond is not None and cond.get("status") != "True":
        why = ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x)
        return False, f"{kind} {_name(obj)!r} is not Active" + (f" ({why})" if why else "")
    return True, ""


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
