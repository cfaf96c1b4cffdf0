"""The budget ledger in the cluster: a ConfigMap per team and month that every user's gateway updates.

Why a ConfigMap and not a custom resource: it needs no CRD, every platform can grant ``get``/``update`` on
ConfigMaps in one namespace (docs/samples/rbac/budget-ledger.yaml), and its ``data`` is exactly the ledger's
string-to-string document (``backends/ledger.py``). Updates are optimistic: read the object, add the
kernel's new spend, ``replace`` it with the ``resourceVersion`` that was read; when another gateway wrote in
between, the API server answers 409 Conflict and the update is redone on the fresh object. The first writer of
a month creates the object (a racing create also answers 409, and is redone as an update). No lock is held,
no write is lost, and a kernel's spend is added once (the per-kernel keys).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..ledger import LedgerDoc
from .calls import call_json
from .names import MANAGED_BY, MANAGED_BY_VALUE, TEAM, dns_label, label_value

MONTH_LABEL = "mlp.io/month"
TEAM_ANNOTATION = "mlp.io/team-name"
ATTEMPTS = 64  # conflicts to retry before giving up: 64 writers updating the same month at the same moment


def configmap_name(team: str, month: str) -> str:
    """``mlp-kernel-budget-ml-vision-2026-12`` (a DNS label of the team, hashed when it had to change)."""
    return f"mlp-kernel-budget-{dns_label(team or 'none')[:30].rstrip('-')}-{month}"


class ConfigMapLedger:
    """The ledger on one member's API server, in ``namespace``."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.conflicts = 0  # 409s met and retried (tests and the gateway's debug log read it)

    async def _get(self, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = await call_json(self.core.read_namespaced_config_map, name, self.namespace)
            return obj
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def read(self, team: str, month: str) -> LedgerDoc:
        obj = await self._get(configmap_name(team, month))
        return LedgerDoc.from_data(obj.get("data") if obj else None)

    async def record(self, team: str, month: str, user: str, kernel_id: str, total_micro: int) -> int:
        name = configmap_name(team, month)
        for attempt in range(ATTEMPTS):
            obj = await self._get(name)
            doc = LedgerDoc.from_data(obj.get("data") if obj else None)
            added = doc.record(user, kernel_id, total_micro)
            if not added:
                return 0
            try:
                if obj is None:
                    await call_json(
                        self.core.create_namespaced_config_map, self.namespace, _new(name, team, month, doc)
                    )
                else:
                    obj["data"] = doc.to_data()  # metadata.resourceVersion as read: the API server checks it
                    await call_json(self.core.replace_namespaced_config_map, name, self.namespace, obj)
                return added
            except ApiException as exc:
                if exc.status != 409:
                    raise
                self.conflicts += 1
                await asyncio.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
        raise RuntimeError(
            f"budget ledger {self.namespace}/{name}: still conflicting after {ATTEMPTS} attempts"
        )


def _new(name: str, team: str, month: str, doc: LedgerDoc) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {MANAGED_BY: MANAGED_BY_VALUE, TEAM: label_value(team), MONTH_LABEL: month},
            "annotations": {TEAM_ANNOTATION: team},
        },
        "data": doc.to_data(),
    }
