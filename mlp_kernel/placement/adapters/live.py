"""Placement state read from live clusters with the official ``kubernetes`` client.

Reads the same objects a dump holds (ClusterQueues, LocalQueues, ResourceFlavors, Workloads, the visibility
API's pending workloads) from each member's API server, and Karmada ``Cluster`` objects from the Karmada API
server, then hands them to the same conversion as dumps. Kueue v1beta2 is tried first and v1beta1 when a
cluster serves only that. A member that cannot be read is reported not Ready with the API error as reason,
so placement skips it instead of failing the whole decision.

With ``watch=True`` (the gateway's backend) those objects come from a watch-fed cache shared by every decision
of the process (``watch_cache.py``) and the Workloads only as counters: a decision then costs one visibility
request per member, whatever the number of Workloads (issue 15). A cache that is not synced is not used.
When the member names a ``queue_summary``, the counters come from that one ConfigMap (``summary.py``), so a
gateway never lists Workloads, its first read included; a missing or stale summary is said in the state's
``source`` and the cache counts Workloads itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # importing kubernetes costs seconds; the CLI and the gateway only pay it when going live
    from kubernetes import client as k8s

from ..policy import Member, Policy
from ..state import ClusterState, MemberState, declared_member_state
from ..tenancy import setup_hint
from .kueue import (
    KARMADA_CLUSTER_GROUP,
    KUEUE_GROUP,
    index_objects,
    karmada_health,
    member_state_from_objects,
)
from .shapes import check_object
from .watch_cache import MemberCache, shared_cache
from .workloads import WorkloadCounters

KUEUE_VERSIONS = ("v1beta2", "v1beta1")
VISIBILITY_GROUP = "visibility.kueue.x-k8s.io"


def state_from_cluster(
    policy: Policy,
    api_clients_by_member: Mapping[str, k8s.ApiClient],
    *,
    karmada: k8s.ApiClient | None = None,
    now: datetime | None = None,
    own_workload: str | None = None,
    retry_delays_s: tuple[float, ...] = (0.5, 2.0),
    watch: bool = False,
) -> ClusterState:
    """Read every kubernetes member's Kueue state (and Karmada health when ``karmada`` is given). Blocking.

    A member whose read still fails after the retries is reported not Ready, with the reason. ``watch``: read
    the process's shared watch cache of each member instead of listing (module docstring).
    """
    import urllib3
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

    now = now or datetime.now(timezone.utc)
    clusters: dict[str, Mapping[str, Any]] = {}
    karmada_error = ""
    if karmada is not None:
        try:
            listing = k8s.CustomObjectsApi(karmada).list_cluster_custom_object(
                KARMADA_CLUSTER_GROUP, "v1alpha1", "clusters"
            )
            clusters = {str(o["metadata"]["name"]): o for o in _items(listing, "Cluster")}
        except (ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
            karmada_error = f"cannot read Karmada Clusters: {_api_error(exc)}"
    members: dict[str, MemberState] = {}
    for name, member in policy.members.items():
        if karmada is not None and not karmada_error:
            ready, reason = karmada_health(member, clusters, assume_missing_ready=False)
        else:
            ready, reason = True, karmada_error
        api = api_clients_by_member.get(name)
        if api is None or member.backend == "local":
            declared = declared_member_state(policy, name)
            members[name] = MemberState(
                ready=ready, reason=reason, flavors=declared.flavors, source=declared.source
            )
            continue
        cache = _synced_cache(api, member) if watch else None
        cached = (
            _state_from_cache(policy, member, api, cache, now, ready, reason, own_workload) if cache else None
        )
        if cached is not None:
            members[name] = cached
            continue
        try:
            objects = _read_with_retry(api, member, retry_delays_s)
        except (ApiException, OSError, urllib3.exceptions.HTTPError) as exc:
            members[name] = MemberState(
                ready=False,
                reason=f"cannot read Kueue objects: {_api_error(exc)}",
                cluster_queue_active=False,
                source="live",
            )
            continue
        members[name] = _member_state(policy, member, objects, None, now, ready, reason, own_workload)
    return ClusterState(members)


def _member_state(
    policy: Policy,
    member: Member,
    objects: list[dict[str, Any]],
    counters: WorkloadCounters | None,
    now: datetime,
    ready: bool,
    reason: str,
    own_workload: str | None,
) -> MemberState:
    """The member's state from what was read (``counters``: its Workloads, when not among ``objects``)."""
    if member.tenancy is not None and not _has_local_queue(objects, member):
        why = setup_hint(member, f"LocalQueue {member.namespace}/{member.local_queue} not found")
        return MemberState(ready=False, reason=why, cluster_queue_active=False, source="live")
    try:
        for obj in objects:  # the API server checks CRD schemas, but a stale or schemaless CRD does not
            check_object(obj)
        return member_state_from_objects(
            policy,
            member,
            index_objects(objects),
            now=now,
            ready=ready,
            reason=reason,
            source="live",
            own_workload=own_workload,
            workloads=counters,
        )
    except ValueError as exc:
        return MemberState(ready=ready, reason=str(exc), cluster_queue_active=False, source="live")


def _synced_cache(api: k8s.ApiClient, member: Member) -> MemberCache | None:
    """The process's watch cache of the member, or None when it cannot list or its watches are broken (then
    the caller reads directly, and a failing read reports the member not Ready with the API's error)."""
    from kubernetes import client as k8s

    try:
        cache = shared_cache(
            api,
            member.namespace or "",
            lambda: served_version(k8s.CustomObjectsApi(api)),
            member.queue_summary,
        )
    except Exception:
        return None
    return cache if cache.synced else None


def _state_from_cache(
    policy: Policy,
    member: Member,
    api: k8s.ApiClient,
    cache: MemberCache,
    now: datetime,
    ready: bool,
    reason: str,
    own_workload: str | None,
) -> MemberState | None:
    """The member's state from the cache, or None when the API server does not answer (then the caller reads
    directly and reports why): the visibility request is also the check that the member is still there, as
    a watch notices a vanished server only when it next reconnects."""
    import urllib3
    from kubernetes.client.rest import ApiException

    source = "live"
    try:
        workloads = cache.workload_source(now)  # may list every Workload (the summary is missing or stale)
        source = f"live ({workloads.note})" if workloads.note else "live"
        with cache.reading(workloads) as (objects, _):
            cq = member.cluster_queue or _local_queue_target(objects, member)
    except ValueError as exc:
        return MemberState(ready=ready, reason=str(exc), cluster_queue_active=False, source=source)
    except (ApiException, OSError, urllib3.exceptions.HTTPError):
        return None
    try:  # outside the lock: I/O
        summary = _pending_summary(api, cache.version, cq, member, unreachable_raises=True) if cq else None
    except (ApiException, OSError, urllib3.exceptions.HTTPError):
        return None
    try:
        with cache.reading(workloads) as (objects, counters):
            if summary is not None:
                summary.setdefault("kind", "PendingWorkloadsSummary")
                objects = [*objects, summary]
            state = _member_state(policy, member, objects, counters, now, ready, reason, own_workload)
    except ValueError as exc:
        return MemberState(ready=ready, reason=str(exc), cluster_queue_active=False, source=source)
    return dataclasses.replace(state, source=source) if state.source == "live" else state


async def astate_from_cluster(
    policy: Policy,
    api_clients_by_member: Mapping[str, k8s.ApiClient],
    *,
    karmada: k8s.ApiClient | None = None,
    now: datetime | None = None,
    own_workload: str | None = None,
    watch: bool = False,
) -> ClusterState:
    """``state_from_cluster`` off the event loop (the kubernetes client is blocking)."""
    return await asyncio.to_thread(
        lambda: state_from_cluster(
            policy, api_clients_by_member, karmada=karmada, now=now, own_workload=own_workload, watch=watch
        )
    )


def _read_with_retry(api: k8s.ApiClient, member: Member, delays: tuple[float, ...]) -> list[dict[str, Any]]:
    """Read a member, retrying transient failures (5xx, 429, connection errors) after each delay.

    One flaky API answer must not mark a member unusable: that would reject or burst a cell for nothing.
    Permanent errors (403, 404) are raised at once. Blocking: called from a worker thread.
    """
    import time

    import urllib3
    from kubernetes.client.rest import ApiException

    for delay in (*delays, None):
        try:
            return _read_member(api, member)
        except ApiException as exc:
            if delay is None or not (exc.status in (429,) or (exc.status or 0) >= 500):
                raise
        except (OSError, urllib3.exceptions.HTTPError):
            if delay is None:
                raise
        time.sleep(delay)
    raise AssertionError("unreachable")


def _read_member(api: k8s.ApiClient, member: Member) -> list[dict[str, Any]]:
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

    custom = k8s.CustomObjectsApi(api)
    version = served_version(custom)
    objects: list[dict[str, Any]] = []
    for plural, kind in (("clusterqueues", "ClusterQueue"), ("resourceflavors", "ResourceFlavor")):
        objects += _items(custom.list_cluster_custom_object(KUEUE_GROUP, version, plural), kind)
    for plural, kind in (("localqueues", "LocalQueue"), ("workloads", "Workload")):
        try:
            listing = custom.list_cluster_custom_object(KUEUE_GROUP, version, plural)
        except ApiException as exc:
            if exc.status != 403 or not member.namespace:
                raise
            listing = custom.list_namespaced_custom_object(KUEUE_GROUP, version, member.namespace, plural)
        objects += _items(listing, kind)
    cq = member.cluster_queue or _local_queue_target(objects, member)
    summary = _pending_summary(api, version, cq, member) if cq else None
    if summary is not None:
        summary.setdefault("kind", "PendingWorkloadsSummary")
        objects.append(summary)
    return objects


def _local_queue_target(objects: list[dict[str, Any]], member: Member) -> str | None:
    """The ClusterQueue the member's LocalQueue (in this user's namespace) points at."""
    return next(
        (
            o.get("spec", {}).get("clusterQueue")
            for o in objects
            if o["kind"] == "LocalQueue"
            and o.get("metadata", {}).get("name") == member.local_queue
            # every user's namespace has a LocalQueue of that name: this user's
            and o.get("metadata", {}).get("namespace", member.namespace) == member.namespace
        ),
        None,
    )


def _has_local_queue(objects: list[dict[str, Any]], member: Member) -> bool:
    """Whether the member's LocalQueue is among ``objects`` in the member's (this user's) namespace."""
    return any(
        o["kind"] == "LocalQueue"
        and o.get("metadata", {}).get("name") == member.local_queue
        and o.get("metadata", {}).get("namespace", member.namespace) == member.namespace
        for o in objects
    )


def served_version(custom: k8s.CustomObjectsApi) -> str:
    from kubernetes.client.rest import ApiException

    for version in KUEUE_VERSIONS:
        try:
            custom.list_cluster_custom_object(KUEUE_GROUP, version, "resourceflavors", limit=1)
            return version
        except ApiException as exc:
            if exc.status != 404:
                raise
    raise ApiException(
        status=404, reason="Kueue (kueue.x-k8s.io v1beta2/v1beta1) is not served by this cluster"
    )


def _items(listing: object, kind: str) -> list[dict[str, Any]]:
    out = []
    items = listing.get("items") if isinstance(listing, Mapping) else None
    for item in items or []:
        obj = dict(item)
        obj.setdefault("kind", kind)
        out.append(obj)
    return out


def _pending_summary(
    api: k8s.ApiClient, version: str, cq: str, member: Member, unreachable_raises: bool = False
) -> dict[str, Any] | None:
    """Queue positions from the visibility API; None when it is off or forbidden (then Workloads count).

    ``unreachable_raises``: a connection error or a 5xx/429 from the API server itself is raised."""
    paths = [f"/apis/{VISIBILITY_GROUP}/{version}/clusterqueues/{cq}/pendingworkloads"]
    if member.namespace and member.local_queue:
        paths.append(
            f"/apis/{VISIBILITY_GROUP}/{version}/namespaces/{member.namespace}/localqueues/"
            f"{member.local_queue}/pendingworkloads"
        )
    import urllib3
    from kubernetes.client.rest import ApiException

    for path in paths:
        try:
            result = _get_json(api, path)
        except (ApiException, OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
            status = getattr(exc, "status", None)
            down = not isinstance(exc, ApiException | ValueError) or status in (429, 502, 504)
            if unreachable_raises and down:
                raise
            continue
        if isinstance(result, Mapping):
            return dict(result)
    return None


def _api_error(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    if status is not None:
        return f"{status} {getattr(exc, 'reason', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def _get_json(api: k8s.ApiClient, path: str) -> Any:
    """GET a raw API path as JSON with the client's auth; works with old and new generated clients."""
    from kubernetes.client.rest import ApiException

    if hasattr(api, "param_serialize"):  # kubernetes >= 32 (OpenAPI generator 7)
        method, url, headers, _, _ = api.param_serialize(
            "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
        )
        response = api.call_api(method, url, header_params=headers)
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(status=response.status, reason=response.reason)
        return json.loads(response.data or b"null")
    return cast(Any, api).call_api(  # older clients
        path, "GET", response_type="object", auth_settings=["BearerToken"], _return_http_data_only=True
    )
