"""Resource arithmetic on Kubernetes quantities (``500m``, ``16Gi``, ``2``) for scheduling and Kueue quota."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity


def quantity(value: Any) -> Decimal:
    return Decimal(parse_quantity(value)) if value not in (None, "") else Decimal(0)


def pod_requests(pod: dict[str, Any]) -> dict[str, Decimal]:
    """Sum of container requests (limits where a request is absent), as the scheduler and Kueue count them."""
    total: dict[str, Decimal] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        res = container.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for name, value in merged.items():
            total[name] = total.get(name, Decimal(0)) + quantity(value)
    return total


def fmt(value: Decimal, resource: str) -> str:
    """Format like the apiserver would for our purposes: integers plain, CPU fractions in millicores."""
    if value == value.to_integral_value():
        whole = int(value)
        if resource in ("memory", "ephemeral-storage") and whole:
            for suffix, factor in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
                if whole % factor == 0:
                    return f"{whole // factor}{suffix}"
        return str(whole)
    if resource == "cpu":
        return f"{int(value * 1000)}m"
    return str(value)
