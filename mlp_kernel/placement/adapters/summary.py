"""The queue summary: one member's Workload counters, published in one ConfigMap that every gateway watches.

A gateway's watch cache (``watch_cache.py``) made each re-decision independent of the number of Workloads W,
but each gateway still listed every Workload once when it started: 200 kernels starting against 10,000
pending Workloads were 200 lists of megabytes and ~1 s of CPU each (issue 15). The counters placement needs
(``workloads.py``) are the same for every gateway of a member, so one process per member
(``mlp-kernel queue-summary``, a Deployment) watches the Workloads once and writes the counters here, at most
every ``period_s``; a gateway then watches this one object instead of the Workloads: what it reads no longer
depends on W, its first read included.

The document carries when it was published and its period, so a reader can tell a live summary from one
whose publisher stopped: older than ``STALE_PERIODS`` periods (clocks are assumed NTP-synced within that
margin), the gateway counts Workloads itself again and says so in the decision's explanation. Admission
times are kept only for the wait model's window (``RATE_WINDOW_S``) and to the second, so the object's size
grows with queues, node selectors and admissions per hour, never with pending Workloads.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes import client as k8s

from .kueue import RATE_WINDOW_S
from .kueue_fields import timestamp
from .workloads import WorkloadCounters

FORMAT = 1
DATA_KEY = "summary.json"
DEFAULT_PERIOD_S = 10.0
#: a summary older than this many of its periods is stale: its publisher stopped or cannot write
STALE_PERIODS = 3
LABELS = {"app.kubernetes.io/name": "mlp-kernel-queue-summary", "app.kubernetes.io/managed-by": "mlp-kernel"}


def encode(
    counters: WorkloadCounters, bad: Mapping[Any, str], now: datetime, period_s: float
) -> dict[str, Any]:
    """The JSON document of ``counters`` (and the Workloads placement cannot read, ``bad``) at ``now``."""
    since = now - timedelta(seconds=RATE_WINDOW_S)
    return {
        "format": FORMAT,
        "publishedAt": now.astimezone(timezone.utc).isoformat(),
        "periodSeconds": period_s,
        "workloads": len(counters) + len(bad),
        "admittedGpus": sorted([*k, n] for k, n in counters.admitted_gpus.items()),
        "admittedErrors": sorted(
            [*k, why, n] for k, c in counters.admitted_errors.items() for why, n in c.items()
        ),
        "admissions": sorted(
            [*k, at.isoformat(), n]
            for k, c in counters.admissions.items()
            for at, n in c.items()
            if at >= since
        ),
        "pending": sorted(
            [ns, queue, sorted(map(list, selector)), sorted(nonzero), sorted(errs), n]
            for (ns, queue, selector, nonzero, errs), n in counters.pending.items()
        ),
        "errors": sorted([r, why, n] for r, c in counters.errors.items() for why, n in c.items()),
        "unreadable": sorted(set(bad.values()))[:10],
    }


@dataclass(frozen=True)
class Summary:
    """A decoded summary: the counters, what placement cannot read, when and how often it was published."""

    counters: WorkloadCounters
    unreadable: tuple[str, ...]
    published_at: datetime
    period_s: float
    workloads: int

    def age_s(self, now: datetime) -> float:
        return (now - self.published_at).total_seconds()

    def stale(self, now: datetime) -> bool:
        return self.age_s(now) > STALE_PERIODS * self.period_s


def decode(text: str) -> Summary:
    """Parse a summary document; ``ValueError`` says what is wrong with it."""
    try:
        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, this gateway reads format {FORMAT}")
        c = WorkloadCounters()
        for cq, flavor, resource, n in doc["admittedGpus"]:
            c.admitted_gpus[(cq, flavor, resource)] = int(n)
        for cq, flavor, resource, why, n in doc["admittedErrors"]:
            c.admitted_errors.setdefault((cq, flavor, resource), Counter())[why] = int(n)
        for cq, resource, flavor, at, n in doc["admissions"]:
            when = timestamp(at)
            if when is None:
                raise ValueError(f"admission time {at!r}")
            c.admissions.setdefault((cq, resource, flavor), Counter())[when] = int(n)
        for ns, queue, selector, nonzero, errs, n in doc["pending"]:
            key = (ns, queue, frozenset((k, v) for k, v in selector), frozenset(nonzero), frozenset(errs))
            c.pending[key] = int(n)
        for resource, why, n in doc["errors"]:
            c.errors.setdefault(resource, Counter())[why] = int(n)
        published = timestamp(doc["publishedAt"])
        if published is None:
            raise ValueError(f"publishedAt {doc['publishedAt']!r}")
        return Summary(
            c, tuple(doc["unreadable"]), published, float(doc["periodSeconds"]), int(doc["workloads"])
        )
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a queue summary ({type(exc).__name__}: {exc})") from None


def parse_ref(ref: str) -> tuple[str, str]:
    """``namespace/name`` of the summary ConfigMap (the policy's ``queue_summary``)."""
    namespace, _, name = ref.partition("/")
    return namespace, name


def publish(
    api: k8s.ApiClient, namespace: str, name: str, doc: Mapping[str, Any], resource_version: str | None
) -> str:
    """Write the summary ConfigMap (create it when missing), replacing only the version last written
    (``resource_version``; None: whatever is there). Returns the new resourceVersion. A 409 (someone else
    wrote it, e.g. a second replica) is raised: the caller writes again next period from a fresh read."""
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

    core: Any = k8s.CoreV1Api(api)  # dict bodies: the generated client serialises them as they are
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
        "data": {DATA_KEY: json.dumps(doc, separators=(",", ":"))},
    }
    if resource_version is None:
        try:
            resource_version = core.read_namespaced_config_map(name, namespace).metadata.resource_version
        except ApiException as exc:
            if exc.status != 404:
                raise
            return str(core.create_namespaced_config_map(namespace, body).metadata.resource_version)
    body["metadata"]["resourceVersion"] = resource_version
    return str(core.replace_namespaced_config_map(name, namespace, body).metadata.resource_version)
