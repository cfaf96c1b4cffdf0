"""Kueue's quota arithmetic and flavor assignment, as pure functions over plain objects.

Kueue assigns, per resource group, the first flavor in ``resourceGroups[].flavors`` order that (1) the pod
may use: every key of the flavor's ``nodeLabels`` that the pod's ``nodeSelector`` also names has the same
value, and the pod tolerates the flavor's ``nodeTaints``; and (2) has room: usage + request within the
queue's nominal quota, or beyond it by borrowing unused quota of ClusterQueues in the same cohort (bounded
by ``borrowingLimit`` and the lenders' ``lendingLimit``). Cohorts never span clusters.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..quantities import fmt, quantity
from .scheduler import untolerated

Usage = dict[str, dict[str, dict[str, Decimal]]]  # cq -> flavor -> resource -> amount


@dataclass(frozen=True)
class Assignment:
    flavors: dict[str, str]  # resource -> flavor
    usage: dict[str, Decimal]  # resource -> amount
    borrowing: bool


@dataclass(frozen=True)
class NoFit:
    reason: str  # WaitingForQuota | NoMatchingFlavor | ExceedsMaxQuota | Inadmissible
    message: str


def cohort_of(cq: dict[str, Any]) -> str | None:
    spec = cq.get("spec") or {}
    return spec.get("cohortName") or spec.get("cohort") or None


def _quota(
    cq: dict[str, Any], flavor: str, resource: str
) -> tuple[Decimal, Decimal | None, Decimal | None] | None:
    for group in (cq.get("spec") or {}).get("resourceGroups") or []:
        for fq in group.get("flavors") or []:
            if fq.get("name") != flavor:
                continue
            for rq in fq.get("resources") or []:
                if rq.get("name") == resource:
                    borrow = rq.get("borrowingLimit")
                    lend = rq.get("lendingLimit")
                    return (
                        quantity(rq.get("nominalQuota")),
                        None if borrow is None else quantity(borrow),
                        None if lend is None else quantity(lend),
                    )
    return None


def _used(usage: Usage, cq: str, flavor: str, resource: str) -> Decimal:
    return usage.get(cq, {}).get(flavor, {}).get(resource, Decimal(0))


def room(
    cq: dict[str, Any], cqs: list[dict[str, Any]], usage: Usage, flavor: str, resource: str, request: Decimal
) -> tuple[bool, bool, Decimal]:
    """(fits, needs_borrowing, how much is missing) for adding ``request`` of ``resource`` in ``flavor``."""
    name = cq["metadata"]["name"]
    q = _quota(cq, flavor, resource)
    if q is None:
        return False, False, request
    nominal, borrowing_limit, _ = q
    used = _used(usage, name, flavor, resource)
    if used + request <= nominal:
        return True, False, Decimal(0)
    cohort = cohort_of(cq)
    if cohort is None:
        return False, False, used + request - nominal
    borrowed_after = used + request - nominal
    if borrowing_limit is not None and borrowed_after > borrowing_limit:
        return False, True, borrowed_after - borrowing_limit
    members = [c for c in cqs if cohort_of(c) == cohort]
    pool = Decimal(0)
    above = Decimal(0)
    for member in members:
        mq = _quota(member, flavor, resource)
        if mq is None:
            continue
        m_nominal, _, lending = mq
        lendable = m_nominal if lending is None else min(lending, m_nominal)
        guaranteed = m_nominal - lendable
        m_used = _used(usage, member["metadata"]["name"], flavor, resource)
        if member["metadata"]["name"] == name:
            m_used += request
        pool += lendable
        above += max(Decimal(0), m_used - guaranteed)
    if above <= pool:
        return True, True, Decimal(0)
    return False, True, above - pool


def max_capacity(cq: dict[str, Any], cqs: list[dict[str, Any]], flavor: str, resource: str) -> Decimal:
    q = _quota(cq, flavor, resource)
    if q is None:
        return Decimal(0)
    nominal, borrowing_limit, _ = q
    cohort = cohort_of(cq)
    if cohort is None:
        return nominal
    others = Decimal(0)
    for member in cqs:
        if cohort_of(member) != cohort or member["metadata"]["name"] == cq["metadata"]["name"]:
            continue
        mq = _quota(member, flavor, resource)
        if mq is not None:
            others += mq[0] if mq[2] is None else min(mq[2], mq[0])
    if borrowing_limit is not None:
        others = min(others, borrowing_limit)
    return nominal + others


def flavor_mismatch(flavor: dict[str, Any] | None, pod_spec: dict[str, Any], name: str) -> str | None:
    """Why the pod may not use this flavor (None when it may)."""
    if flavor is None:
        return f"flavor {name} not found"
    spec = flavor.get("spec") or {}
    selector = pod_spec.get("nodeSelector") or {}
    for key, value in (spec.get("nodeLabels") or {}).items():
        if key in selector and selector[key] != value:
            return f"flavor {name} doesn't match node affinity"
    bad = untolerated(pod_spec.get("tolerations") or [], spec.get("nodeTaints") or [])
    if bad:
        taint = bad[0]
        return (
            f"untolerated taint {{{taint.get('key')}={taint.get('value', '')}:{taint.get('effect')}}} "
            f"in flavor {name}"
        )
    return None


def assign(
    cq: dict[str, Any],
    cqs: list[dict[str, Any]],
    flavors: dict[str, dict[str, Any]],
    usage: Usage,
    pod_spec: dict[str, Any],
    requests: dict[str, Decimal],
) -> Assignment | NoFit:
    groups = (cq.get("spec") or {}).get("resourceGroups") or []
    wanted = {r: q for r, q in requests.items() if q > 0}
    by_group: dict[int, dict[str, Decimal]] = {}
    for res, qty in wanted.items():
        index = next((i for i, g in enumerate(groups) if res in (g.get("coveredResources") or [])), None)
        if index is None:
            return NoFit(
                "Inadmissible",
                f"couldn't assign flavors to pod set main: resource {res} unavailable in ClusterQueue",
            )
        by_group.setdefault(index, {})[res] = qty
    chosen: dict[str, str] = {}
    borrowing = False
    for index, res_map in sorted(by_group.items()):
        reasons: list[str] = []
        any_match = False
        any_possible = False
        picked = None
        for fq in groups[index].get("flavors") or []:
            fname = fq["name"]
            why = flavor_mismatch(flavors.get(fname), pod_spec, fname)
            if why:
                reasons.append(why)
                continue
            any_match = True
            if all(qty <= max_capacity(cq, cqs, fname, res) for res, qty in res_map.items()):
                any_possible = True
            fits_all, borrow_here = True, False
            for res, qty in res_map.items():
                fits, needs_borrow, missing = room(cq, cqs, usage, fname, res, qty)
                if not fits:
                    fits_all = False
                    reasons.append(
                        f"insufficient unused quota for {res} in flavor {fname}, "
                        f"{fmt(missing, res)} more needed"
                    )
                    break
                borrow_here = borrow_here or needs_borrow
            if fits_all:
                picked = fname
                borrowing = borrowing or borrow_here
                break
        if picked is None:
            message = "couldn't assign flavors to pod set main: " + "; ".join(reasons or ["no flavors"])
            if not any_match:
                return NoFit("NoMatchingFlavor", message)
            if not any_possible:
                return NoFit("ExceedsMaxQuota", message)
            return NoFit("WaitingForQuota", message)
        for res in res_map:
            chosen[res] = picked
    return Assignment(chosen, wanted, borrowing)


def add_usage(usage: Usage, cq: str, assignment: dict[str, str], amounts: dict[str, Decimal]) -> None:
    for res, flavor in assignment.items():
        bucket = usage.setdefault(cq, {}).setdefault(flavor, {})
        bucket[res] = bucket.get(res, Decimal(0)) + amounts.get(res, Decimal(0))
