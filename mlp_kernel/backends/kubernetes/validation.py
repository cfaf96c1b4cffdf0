"""Checks every object must pass before it is sent to a member: the Kubernetes schema, then the policy.

The schema check uses ``kubernetes-validate`` (the upstream OpenAPI schemas, strict: unknown fields are
errors, so a typo in a template is caught here rather than silently dropped by the API server). The schema
does not check label syntax or object names, so those are checked here too. The policy check is the last line
of defence behind placement: whatever the template says, a pod never asks for more GPUs than the policy allows
or for a flavor of another member.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate

from ...placement.policy import Flavor, Member, Policy
from ...placement.units import parse_quantity
from . import names

KUBERNETES_VERSION = "1.30.0"


def _validate_schema(obj: dict[str, Any]) -> list[str]:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(top level)"
        return [f"{obj.get('kind', 'object')} {where}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"no Kubernetes schema for {obj.get('apiVersion')}/{obj.get('kind')}: {exc}"]
    return []


def schema_issues(obj: dict[str, Any]) -> list[str]:
    """Schema problems of one Kubernetes object, plus label and name syntax the schema does not check."""
    issues = _validate_schema(obj)
    meta = obj.get("metadata") or {}
    kind = obj.get("kind", "object")
    name = meta.get("name")
    if isinstance(name, str) and not names.is_dns_label(name):
        issues.append(f"{kind} metadata.name {name!r}: must be a DNS label (lowercase a-z, 0-9, '-', <= 63)")
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or not names.is_label_value(value):
            issues.append(f"{kind} metadata.labels.{key}: {value!r} is not a valid label value")
    return issues


def kernel_container(pod: dict[str, Any]) -> dict[str, Any]:
    """The container that runs the kernel: the one named ``kernel``, else the first."""
    containers = pod.get("spec", {}).get("containers") or []
    for c in containers:
        if c.get("name") == "kernel":
            return c
    if not containers:
        raise ValueError("Pod spec.containers is empty: the template must define the kernel container")
    return containers[0]


def _quantity_int(value: Any) -> int | None:
    """A whole GPU count in the API server's quantity grammar (``2``, ``"2"``, ``"1e1"``); None otherwise."""
    try:
        number = parse_quantity(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def gpu_count(pod: dict[str, Any], resource: str) -> int:
    """GPUs the pod asks for: the largest of requests/limits, summed over all (init) containers."""
    spec = pod.get("spec", {})
    total = 0
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = c.get("resources") or {}
        counts = [_quantity_int((res.get(part) or {}).get(resource, 0)) for part in ("requests", "limits")]
        total += max((n if n is not None else 10**6) for n in counts)
    return total


def _pinned(pod: dict[str, Any], key: str, values: tuple[str, ...]) -> bool:
    """Whether every node the pod may go to has ``key`` in ``values``: by its nodeSelector, or an ``In``
    subset of them in every required node affinity term."""
    spec = pod.get("spec", {})
    if (spec.get("nodeSelector") or {}).get(key) in values:
        return True
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = affinity.get("nodeSelectorTerms") or []
    return bool(terms) and all(
        any(
            e.get("key") == key and e.get("operator") == "In" and set(e.get("values") or ()) <= set(values)
            for e in t.get("matchExpressions") or []
        )
        for t in terms
    )


def policy_issues(
    pod: dict[str, Any],
    policy: Policy,
    member: Member,
    flavor: Flavor,
    pin: tuple[str, tuple[str, ...]] | None = None,
) -> list[str]:
    """What the policy forbids in ``pod``: too many GPUs, a flavor of another member, a missing flavor pin, a
    missing model pin (``pin``: the product label and the values the pod must be limited to)."""
    issues: list[str] = []
    if flavor.member != member.name:
        issues.append(f"flavor {flavor.name!r} belongs to member {flavor.member!r}, not {member.name!r}")
    gpus = gpu_count(pod, flavor.gpu_resource)
    if gpus > policy.max_gpus:
        issues.append(
            f"pod asks for {gpus} {flavor.gpu_resource}; the policy allows at most {policy.max_gpus}"
        )
    other = {f.gpu_resource for f in policy.flavors.values()} - {flavor.gpu_resource}
    for resource in sorted(other):
        if gpu_count(pod, resource):
            issues.append(
                f"pod asks for {resource}, but flavor {flavor.name!r} provides {flavor.gpu_resource}"
            )
    selector = pod.get("spec", {}).get("nodeSelector") or {}
    for key, value in flavor.node_labels.items():
        if selector.get(key) != value:
            issues.append(f"spec.nodeSelector.{key} must be {value!r} to pin flavor {flavor.name!r}")
    if pin is not None and not _pinned(pod, *pin):
        issues.append(f"the pod must be pinned to nodes with {pin[0]} in ({', '.join(pin[1])})")
    labels = pod.get("metadata", {}).get("labels") or {}
    if labels.get(names.QUEUE_NAME) != member.local_queue:
        issues.append(f"label {names.QUEUE_NAME} must be {member.local_queue!r} (member {member.name!r})")
    if pod.get("metadata", {}).get("namespace") != member.namespace:
        issues.append(f"metadata.namespace must be {member.namespace!r} (member {member.name!r})")
    return issues
