"""What placement needs from a member's Workloads, kept as counters that one Workload at a time updates.

Placement asks three things of Workloads (``kueue.py``): GPUs admitted on a flavor and not finished (to catch
Kueue's ClusterQueue status lagging an admission), pending Workloads that could land on a flavor (when the
visibility API gives no positions), and admissions per flavor within the last hour (the wait model's rate).
Recomputing those from every Workload made each decision cost O(Workloads): with 10,000 pending and hundreds
of queued notebooks re-deciding every few seconds, that was the API server's and the gateways' main load.

So each Workload is reduced once, when it is read or when a watch reports it changed, to a ``_Contribution``
(its queue, node selector, GPUs per resource, admitted flavors, reservation time); the counters add and
subtract contributions. A decision then reads counters keyed by queue and selector, whose number grows with
LocalQueues and distinct selectors, not with Workloads. Dumps build the same counters from their Workloads,
so a dump and a live read of the same objects give the same state by construction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .kueue_fields import admitted_flavors, condition, finished, quantity, reserved, timestamp

#: (namespace, queueName, nodeSelector items, resources with GPUs > 0, resources with unreadable quantities)
PendingKey = tuple[str, str | None, frozenset[tuple[str, str]], frozenset[str], frozenset[str]]


@dataclass(frozen=True)
class _Contribution:
    """One Workload's share of every counter."""

    admitted: tuple[tuple[str, str, str, int], ...] = ()  # (clusterQueue, flavor, resource, GPUs) unfinished
    admitted_errors: tuple[tuple[str, str, str, str], ...] = ()  # (clusterQueue, flavor, resource, why)
    admissions: tuple[tuple[str, str, str, datetime], ...] = ()  # (clusterQueue, resource, flavor, when)
    pending: PendingKey | None = None
    errors: tuple[tuple[str, str], ...] = ()  # (resource, why) for quantities that do not parse


def contribution(w: Mapping[str, Any]) -> _Contribution:
    """Reduce one Workload to what the counters hold. Never raises: a bad quantity is kept as its error and
    raised only by a question that needs that resource (as reading the Workload itself did)."""
    gpus, errors = _gpus_by_resource(w)
    cq = ((w.get("status") or {}).get("admission") or {}).get("clusterQueue")
    flavors = admitted_flavors(w)
    done = finished(w)
    admitted: list[tuple[str, str, str, int]] = []
    admitted_errors: list[tuple[str, str, str, str]] = []
    admissions: list[tuple[str, str, str, datetime]] = []
    cond = condition(w, "QuotaReserved") or condition(w, "Admitted")
    at = timestamp(cond.get("lastTransitionTime")) if cond and cond.get("status") == "True" else None
    for resource, flavor in flavors.items():
        if not done:
            if resource in errors:
                admitted_errors.append((str(cq), flavor, resource, errors[resource]))
            else:
                admitted.append((str(cq), flavor, resource, gpus.get(resource, 0)))
        if at is not None:
            admissions.append((str(cq), resource, flavor, at))
    meta, spec = w.get("metadata") or {}, w.get("spec") or {}
    pending: PendingKey | None = None
    if not (spec.get("active") is False or done or reserved(w)):
        selector: dict[str, str] = {}
        for ps in spec.get("podSets") or []:
            selector.update(((ps.get("template") or {}).get("spec") or {}).get("nodeSelector") or {})
        pending = (
            str(meta.get("namespace", "")),
            spec.get("queueName"),
            frozenset((str(k), str(v)) for k, v in selector.items()),
            frozenset(r for r, n in gpus.items() if n > 0),
            frozenset(errors),
        )
    return _Contribution(
        tuple(admitted), tuple(admitted_errors), tuple(admissions), pending, tuple(errors.items())
    )


@dataclass
class WorkloadCounters:
    """Counters over a set of Workloads; ``add``/``remove`` keep them current one Workload at a time."""

    admitted_gpus: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    admitted_errors: dict[tuple[str, str, str], Counter[str]] = field(default_factory=dict)
    admissions: dict[tuple[str, str, str], Counter[datetime]] = field(default_factory=dict)
    pending: Counter[PendingKey] = field(default_factory=Counter)
    errors: dict[str, Counter[str]] = field(default_factory=dict)
    _by_key: dict[object, _Contribution] = field(default_factory=dict)

    @classmethod
    def of(cls, workloads: Iterable[Mapping[str, Any]]) -> WorkloadCounters:
        counters = cls()
        for i, w in enumerate(workloads):
            counters.put(i, w)
        return counters

    def put(self, key: object, w: Mapping[str, Any] | None) -> None:
        """Set the Workload known as ``key`` (a watch's namespace/name) to ``w``; None removes it."""
        old = self._by_key.pop(key, None)
        if old is not None:
            self._apply(old, -1)
        if w is not None:
            new = contribution(w)
            self._by_key[key] = new
            self._apply(new, +1)

    def clear(self) -> None:
        for key in list(self._by_key):
            self.put(key, None)

    def __len__(self) -> int:
        return len(self._by_key)

    def _apply(self, c: _Contribution, sign: int) -> None:
        for cq, flavor, resource, n in c.admitted:
            self.admitted_gpus[(cq, flavor, resource)] += sign * n
        for cq, flavor, resource, why in c.admitted_errors:
            _bump(self.admitted_errors.setdefault((cq, flavor, resource), Counter()), why, sign)
        for cq, resource, flavor, at in c.admissions:
            _bump(self.admissions.setdefault((cq, resource, flavor), Counter()), at, sign)
        if c.pending is not None:
            _bump(self.pending, c.pending, sign)
        for resource, why in c.errors:
            _bump(self.errors.setdefault(resource, Counter()), why, sign)

    # --- the questions kueue.py asks -----------------------------------------------------------------------

    def admitted(self, cq: str, flavor: str, resource: str) -> int:
        """GPUs of ``resource`` in unfinished Workloads admitted on ``flavor`` of ClusterQueue ``cq``."""
        _raise_any(self.admitted_errors.get((cq, flavor, resource)))
        return self.admitted_gpus.get((cq, flavor, resource), 0)

    def admitted_since(
        self, cq: str, resources: Iterable[str], flavor: str, since: datetime, now: datetime
    ) -> int:
        """Admissions (QuotaReserved turning True) on ``flavor`` from ``since`` to ``now``, per resource."""
        return sum(
            n
            for r in resources
            for at, n in (self.admissions.get((cq, r, flavor)) or {}).items()
            if since <= at <= now
        )

    def pending_by_selector(
        self, queues: set[tuple[str, str]], resources: set[str]
    ) -> dict[tuple[frozenset[tuple[str, str]], frozenset[str]], int]:
        """Pending Workloads of ``queues`` (all if empty) wanting any of ``resources``, by node selector."""
        out: dict[tuple[frozenset[tuple[str, str]], frozenset[str]], int] = {}
        for (ns, queue, selector, nonzero, bad), n in self.pending.items():
            if queues and (ns, queue) not in queues:
                continue
            for resource in bad & resources:
                _raise_any(self.errors.get(resource))
            wants = nonzero & resources
            if wants:
                out[(selector, wants)] = out.get((selector, wants), 0) + n
        return out


def _bump(counter: Counter[Any], key: Any, sign: int) -> None:
    counter[key] += sign
    if counter[key] <= 0:
        del counter[key]


def _raise_any(errors: Counter[str] | None) -> None:
    from .kueue_fields import StateError

    if errors:
        raise StateError(next(iter(errors)))


def _gpus_by_resource(w: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, str]]:
    """Each requested resource's total over the pod sets (requests, else limits, per container)."""
    names: set[str] = set()
    pod_sets = (w.get("spec") or {}).get("podSets") or []
    for ps in pod_sets:
        for c in ((ps.get("template") or {}).get("spec") or {}).get("containers") or []:
            res = c.get("resources") or {}
            names.update((res.get("requests") or {}).keys(), (res.get("limits") or {}).keys())
    gpus: dict[str, int] = {}
    errors: dict[str, str] = {}
    for resource in names:
        try:
            gpus[resource] = _total(pod_sets, resource)
        except ValueError as exc:
            errors[resource] = str(exc)
    return gpus, errors


def _total(pod_sets: list[Any], resource: str) -> int:
    total = 0
    for ps in pod_sets:
        per_pod = 0
        for c in ((ps.get("template") or {}).get("spec") or {}).get("containers") or []:
            res = c.get("resources") or {}
            value = (res.get("requests") or {}).get(resource, (res.get("limits") or {}).get(resource, 0))
            per_pod += quantity(value)
        total += per_pod * int(ps.get("count", 1) or 1)
    return total
