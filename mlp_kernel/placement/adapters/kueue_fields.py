"""Small readers of Kueue object fields, shared by the state conversion (``kueue.py``) and the Workload
counters (``workloads.py``) so both read a condition, a time or a quantity the same way."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..units import parse_quantity


class StateError(ValueError):
    """The given objects cannot describe a member (e.g. its ClusterQueue is missing from a dump)."""


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def admitted_flavors(w: Mapping[str, Any]) -> dict[str, str]:
    """Resource -> flavor of the Workload's admission (the first pod set that names one); {} if none."""
    admission = (w.get("status") or {}).get("admission") or {}
    if not admission.get("clusterQueue"):
        return {}
    out: dict[str, str] = {}
    for psa in admission.get("podSetAssignments") or []:
        for resource, flavor in (psa.get("flavors") or {}).items():
            if flavor and resource not in out:
                out[str(resource)] = str(flavor)
    return out


def reserved(w: Mapping[str, Any]) -> bool:
    cond = condition(w, "QuotaReserved")
    return bool((cond and cond.get("status") == "True") or (w.get("status") or {}).get("admission"))


def finished(w: Mapping[str, Any]) -> bool:
    cond = condition(w, "Finished")
    return bool(cond and cond.get("status") == "True")


def aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return aware(value)
    if not isinstance(value, str):
        return None
    try:
        return aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def quantity(value: Any) -> int:
    """A Kubernetes quantity as a whole number (GPU counts: ``8``, ``"8"``; ``"500m"`` rounds down to 0).

    Anything else (``"lots"``, ``true``, NaN, a negative or absurdly large number) raises ``StateError``:
    reading it as 0 GPUs would silently change where kernels go. ``units.parse_quantity`` is the parser.
    """
    if value is None:
        return 0
    try:
        return int(parse_quantity(value))
    except ValueError as exc:
        raise StateError(str(exc)) from None
