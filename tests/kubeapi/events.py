"""Recording core/v1 Events the way kubelet, scheduler and Kueue do, so products can show progress."""

from __future__ import annotations

import secrets
from typing import Any

from .store import Obj, Store, now_iso, now_micro


def record_event(
    store: Store,
    involved: Obj,
    reason: str,
    message: str,
    *,
    type_: str = "Normal",
    component: str = "kubelet",
    host: str | None = None,
    field_path: str | None = None,
) -> None:
    """Create an Event about ``involved`` (ignored when its namespace is gone)."""
    meta = involved.get("metadata", {})
    namespace = meta.get("namespace") or "default"
    ref: dict[str, Any] = {
        "kind": involved.get("kind"),
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "apiVersion": involved.get("apiVersion"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if field_path:
        ref["fieldPath"] = field_path
    stamp = now_iso()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name')}.{secrets.token_hex(8)}", "namespace": namespace},
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": component, **({"host": host} if host else {})},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": now_micro() if component != "kubelet" else None,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": host or component,
    }
    try:
        store.create(store.registry.get("", "events"), event, namespace)
    except Exception:  # noqa: BLE001 - an event about an object in a vanished namespace is dropped, as upstream
        pass
