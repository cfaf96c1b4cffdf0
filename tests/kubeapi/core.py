"""Defaults and validation for the built-in kinds (what the apiserver's registry strategies do).

Only the rules a product can trip over are here: pods need named containers with images, names must be
DNS labels/subdomains, Secret data must be base64, ``stringData`` folds into ``data``, and a running pod's
spec is immutable except for the fields Kubernetes lets Kueue change on a gated pod. A PersistentVolumeClaim
needs access modes and a storage request, and is bound at once (as by a dynamic provisioner with
``volumeBindingMode: Immediate``); its spec is immutable except for a larger storage request.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

from .errors import invalid
from .resources import ResourceType
from .store import Obj

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def apply_defaults(rtype: ResourceType, obj: Obj) -> None:
    """Create-time defaults (first admission step)."""
    if rtype.key == ("", "pods"):
        _pod_defaults(obj)
    elif rtype.key == ("", "secrets"):
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {}) if string_data or "data" in obj else None
        for key, value in string_data.items():
            assert data is not None
            data[key] = base64.b64encode(str(value).encode()).decode()
    elif rtype.key == ("", "persistentvolumeclaims"):
        _claim_defaults(obj)
    elif rtype.key == ("", "namespaces"):
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {})["phase"] = "Active"
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif rtype.key == ("", "nodes"):
        status = obj.setdefault("status", {})
        status.setdefault("capacity", {})
        status.setdefault("allocatable", dict(status["capacity"]))
        status.setdefault(
            "conditions",
            [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
        )


def _claim_defaults(claim: Obj) -> None:
    """Bound at once to a fresh volume of the requested size (tests may patch ``status.phase`` to Pending)."""
    spec = claim.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    spec.setdefault("storageClassName", "standard")
    spec.setdefault("volumeName", f"pvc-{uuid.uuid4()}")
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    claim["status"] = {
        "phase": "Bound",
        "accessModes": list(spec.get("accessModes") or []),
        **({"capacity": {"storage": storage}} if storage else {}),
    }


def _pod_defaults(pod: Obj) -> None:
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("priority", 0)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("tolerations", [])
    spec["tolerations"] += [
        {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
        if not any(t.get("key") == key for t in spec["tolerations"])
    ]
    for container in spec.get("containers") or []:
        image = str(container.get("image", ""))
        default_policy = (
            "Always" if image.endswith(":latest") or ":" not in image.split("/")[-1] else "IfNotPresent"
        )
        container.setdefault("imagePullPolicy", default_policy)
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
    gated = bool(spec.get("schedulingGates"))
    status = pod.setdefault("status", {})
    status["phase"] = "Pending"
    status["qosClass"] = _qos_class(spec)
    status["conditions"] = (
        [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
                "lastTransitionTime": None,
                "lastProbeTime": None,
            }
        ]
        if gated
        else []
    )


def _qos_class(spec: dict[str, Any]) -> str:
    containers = spec.get("containers") or []
    if not any(
        (c.get("resources") or {}).get("requests") or (c.get("resources") or {}).get("limits")
        for c in containers
    ):
        return "BestEffort"
    for c in containers:
        res = c.get("resources") or {}
        limits = res.get("limits") or {}
        requests = res.get("requests") or limits
        if not all(k in limits for k in ("cpu", "memory")) or requests != limits:
            return "Burstable"
    return "Guaranteed"


def validate(rtype: ResourceType, new: Obj, old: Obj | None) -> None:
    """Write-time validation (HTTP writes only; controllers write through ``Store.mutate``)."""
    name = new.get("metadata", {}).get("name", "")
    causes: list[tuple[str, str, str]] = []
    if name and (len(name) > 253 or not _SUBDOMAIN.match(name)) and rtype.group != "kueue.x-k8s.io":
        causes.append(
            (
                "metadata.name",
                "FieldValueInvalid",
                f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        )
    for key, value in (new.get("metadata", {}).get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                (
                    f"metadata.labels.{key}",
                    "FieldValueInvalid",
                    f"Invalid value: {value!r}: a valid label must be an empty string or consist of "
                    "alphanumeric characters, '-', '_' or '.' (at most 63)",
                )
            )
    if rtype.key == ("", "pods"):
        causes += _pod_causes(new, old)
    elif rtype.key == ("", "persistentvolumeclaims"):
        causes += _claim_causes(new, old)
    elif rtype.key == ("", "secrets"):
        for key, value in (new.get("data") or {}).items():
            try:
                base64.b64decode(value or "", validate=True)
            except (binascii.Error, TypeError, ValueError):
                causes.append((f"data[{key}]", "FieldValueInvalid", "Invalid value: illegal base64 data"))
    if causes:
        raise invalid(rtype.kind, name, causes, rtype.group)


ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")


def _claim_causes(new: Obj, old: Obj | None) -> list[tuple[str, str, str]]:
    spec = new.get("spec") or {}
    causes: list[tuple[str, str, str]] = []
    modes = spec.get("accessModes") or []
    if not modes:
        causes.append(
            ("spec.accessModes", "FieldValueRequired", "Required value: at least 1 access mode is required")
        )
    for mode in modes:
        if mode not in ACCESS_MODES:
            supported = ", ".join(f'"{m}"' for m in ACCESS_MODES)
            causes.append(
                (
                    "spec.accessModes",
                    "FieldValueNotSupported",
                    f'Unsupported value: "{mode}": supported values: {supported}',
                )
            )
    if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
        causes.append(("spec.resources[storage]", "FieldValueRequired", "Required value"))
    if old is not None and not causes:

        def fixed(s: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in s.items() if k not in ("resources", "volumeName")}

        if fixed(old.get("spec") or {}) != fixed(spec):
            causes.append(
                (
                    "spec",
                    "FieldValueForbidden",
                    "Forbidden: spec is immutable after creation except resources.requests and "
                    "volumeAttributesClassName for bound claims",
                )
            )
    return causes


def _pod_causes(new: Obj, old: Obj | None) -> list[tuple[str, str, str]]:
    spec = new.get("spec") or {}
    causes: list[tuple[str, str, str]] = []
    containers = spec.get("containers") or []
    if not containers:
        causes.append(("spec.containers", "FieldValueRequired", "Required value"))
    for i, c in enumerate(containers):
        if not c.get("name"):
            causes.append((f"spec.containers[{i}].name", "FieldValueRequired", "Required value"))
        if not c.get("image"):
            causes.append((f"spec.containers[{i}].image", "FieldValueRequired", "Required value"))
    if spec.get("restartPolicy") not in (None, "Always", "OnFailure", "Never"):
        causes.append(
            (
                "spec.restartPolicy",
                "FieldValueNotSupported",
                f'Unsupported value: "{spec.get("restartPolicy")}": supported values: "Always", '
                '"OnFailure", "Never"',
            )
        )
    if old is not None and not causes:
        causes += _pod_update_causes(old.get("spec") or {}, spec)
    return causes


def _pod_update_causes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Pod spec updates may only change images, remove scheduling gates, and (while gated) add nodeSelector
    entries and tolerations; the rest is immutable, as upstream."""
    causes: list[tuple[str, str, str]] = []
    gated = bool(old.get("schedulingGates"))
    old_gates = [g.get("name") for g in old.get("schedulingGates") or []]
    new_gates = [g.get("name") for g in new.get("schedulingGates") or []]
    if any(g not in old_gates for g in new_gates):
        causes.append(
            (
                "spec.schedulingGates",
                "FieldValueForbidden",
                "Forbidden: only deletion is allowed, but found new scheduling gate",
            )
        )
    old_sel, new_sel = old.get("nodeSelector") or {}, new.get("nodeSelector") or {}
    if new_sel != old_sel and not (gated and all(new_sel.get(k) == v for k, v in old_sel.items())):
        causes.append(
            (
                "spec.nodeSelector",
                "FieldValueInvalid",
                "Invalid value: only additions to spec.nodeSelector are allowed (no mutations or "
                "deletions), and only while the pod has scheduling gates",
            )
        )
    old_tol, new_tol = old.get("tolerations") or [], new.get("tolerations") or []
    if new_tol[: len(old_tol)] != old_tol:
        causes.append(
            (
                "spec.tolerations",
                "FieldValueForbidden",
                "Forbidden: existing toleration can not be modified except its tolerationSeconds",
            )
        )
    strip = ("schedulingGates", "nodeSelector", "tolerations", "containers", "activeDeadlineSeconds")
    rest_old = {k: v for k, v in old.items() if k not in strip}
    rest_new = {k: v for k, v in new.items() if k not in strip}
    images_only = [{k: v for k, v in c.items() if k != "image"} for c in old.get("containers") or []] == [
        {k: v for k, v in c.items() if k != "image"} for c in new.get("containers") or []
    ]
    if rest_old != rest_new or not images_only:
        changed = sorted(
            {k for k in set(rest_old) | set(rest_new) if rest_old.get(k) != rest_new.get(k)}
            | ({"containers"} if not images_only else set())
        )
        causes.append(
            (
                "spec",
                "FieldValueForbidden",
                "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
                "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing "
                f"tolerations), `spec.schedulingGates` (only removals); changed: {', '.join(changed)}",
            )
        )
    return causes
