"""The shape of every Kueue/Karmada field placement reads, checked once where objects enter from a file.

``kueue.py`` reads objects the way the API server hands them over: schema-checked, so ``spec`` is a mapping
and ``count`` a number. A dump file is whatever the admin (or an editor, or a half-finished ``sed``) left in
it: ``metadata: 5`` or ``conditions: Ready`` made the adapter raise ``AttributeError`` deep inside, and
``nominalQuota: lots`` silently became 0 GPUs. So ``check_object`` walks the fields the adapter reads (the
same names in every kind; there are no clashes) and raises one ``StateError`` naming the object and the field
path. Fields placement does not read are not looked at, so a dump of any Kueue version still loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .kueue import StateError, quantity

STR, SCALAR, BOOL, INT, QTY, TIME = "a string", "a name", "true or false", "a whole number", "qty", "time"
_EXPECTED = {QTY: "a Kubernetes quantity such as 8 or 500m", TIME: "an RFC 3339 time (2026-11-28T12:00:00Z)"}

_CONDITIONS = [{"type": STR, "status": STR, "reason": STR, "message": STR, "lastTransitionTime": TIME}]
_RESOURCES = [{"name": STR, "nominalQuota": QTY, "borrowingLimit": QTY, "lendingLimit": QTY, "total": QTY}]
_FLAVOR_TOTALS = [{"name": STR, "resources": _RESOURCES}]
_QUANTITIES = {"*": QTY}
_CONTAINERS = [{"resources": {"requests": _QUANTITIES, "limits": _QUANTITIES}}]
_POD_SETS = [{"count": INT, "template": {"spec": {"nodeSelector": {"*": SCALAR}, "containers": _CONTAINERS}}}]

SCHEMA: dict[str, Any] = {
    "kind": STR,
    "apiVersion": STR,
    "metadata": {"name": SCALAR, "namespace": SCALAR},
    "spec": {
        "resourceGroups": [{"flavors": [{"name": STR, "resources": _RESOURCES}]}],  # ClusterQueue
        "cohort": STR,
        "cohortName": STR,
        "stopPolicy": STR,
        "clusterQueue": STR,  # LocalQueue
        "queueName": STR,  # Workload
        "active": BOOL,
        "podSets": _POD_SETS,
        "nodeLabels": {"*": SCALAR},  # ResourceFlavor
    },
    "status": {
        "conditions": _CONDITIONS,
        "flavorsReservation": _FLAVOR_TOTALS,
        "flavorsUsage": _FLAVOR_TOTALS,
        "admission": {"clusterQueue": STR, "podSetAssignments": [{"flavors": {"*": STR}}]},
    },
    "items": [  # PendingWorkloadsSummary
        {
            "metadata": {"name": SCALAR, "namespace": SCALAR},
            "localQueueName": STR,
            "positionInClusterQueue": INT,
        }
    ],
}


def check_object(obj: Mapping[str, Any]) -> None:
    """Raise ``StateError`` ("Workload team-a/job-1: spec.podSets[0].count: expected ...") if a field
    placement reads has the wrong type or an unusable value."""
    _check(obj, SCHEMA, "", obj)


def _check(value: Any, schema: Any, path: str, obj: Mapping[str, Any], optional: bool = True) -> None:
    if value is None and optional:
        return  # an absent field and a null one are the same to the adapter; a null list item is not
    if isinstance(schema, dict):
        if not isinstance(value, Mapping):
            _fail(obj, path, "a mapping", value)
        for key, sub in value.items():
            inner = schema.get(key, schema.get("*"))
            if inner is not None:
                _check(sub, inner, f"{path}.{key}" if path else str(key), obj)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            _fail(obj, path, "a list", value)
        for i, item in enumerate(value):
            _check(item, schema[0], f"{path}[{i}]", obj, optional=False)
    elif not _leaf_ok(value, schema):
        _fail(obj, path, _EXPECTED.get(schema, schema), value)


def _leaf_ok(value: Any, kind: str) -> bool:
    if kind == STR:
        return isinstance(value, str)
    if kind == SCALAR:
        return isinstance(value, (str, int)) and not isinstance(value, bool)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31
    if kind == TIME:
        return isinstance(value, datetime) or (isinstance(value, str) and _is_time(value))
    try:  # QTY
        quantity(value)
    except StateError:
        return False
    return True


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _fail(obj: Mapping[str, Any], path: str, expected: str, value: Any) -> None:
    metadata = obj.get("metadata")
    meta: Mapping[str, Any] = metadata if isinstance(metadata, Mapping) else {}
    name = "/".join(str(meta[k]) for k in ("namespace", "name") if meta.get(k) is not None) or "(unnamed)"
    got = repr(value) if isinstance(value, (str, int, float)) else type(value).__name__
    got = got if len(got) <= 40 else got[:37] + "..."
    raise StateError(f"{obj.get('kind', 'object')} {name}: {path}: expected {expected}, got {got}")
