"""The warm pool on Kubernetes: pre-created kernel pods per flavor that a gateway claims (issue 18 §3).

Why pods and not a spare node: what a user waits for on a cold start is the whole pod (queueing in Kueue,
scheduling, image pull, the kernel's start: tens of seconds on a busy cluster). A pool pod has done all that;
claiming it costs one API call and one silent execute (``backends/rekey.py``).

- *Pool pods* are rendered exactly as a user's kernel pod (``objects.render_kernel_objects``: the admin's
  template, the flavor pin, the GPU request, the flavor's LocalQueue, so Kueue admits and accounts them like
  any workload) for the user and team ``platform`` (the cost labels: idle pool GPU-hours are the
  platform's), with two more labels: ``mlp.io/warm-pool: <flavor>`` and ``mlp.io/pool-state: free``. Their
  connection Secret (owned by the pod, as for every kernel) holds a key of the pool's own.
- *The claim* is one PATCH of a free, ready pod carrying the ``resourceVersion`` the gateway read: the API
  server applies it only if nobody changed the pod since (optimistic concurrency, HTTP 409 otherwise). It sets
  ``pool-state: claimed`` and the kernel id, user and team labels to the claimer's (the cost moves to the
  user with the pod). Two gateways racing for one pod: one PATCH wins, the other gets 409 and tries the next
  candidate, so a pod is never handed to two gateways. The claimer then reads the pool's Secret and rekeys
  the kernel to the user's key (``rekey.py``): the relay forwards frames untouched, as for any kernel.
- *Refill* (``refill``): count the flavor's free pool pods, create the missing ones. Meant for one loop per
  cluster (an admin's ``mlp-kernel pool``, e.g. a Deployment with the pool's RBAC), not gateways: a gateway
  runs per notebook, so gateways refilling would race each other and leave the pool's size to chance, while
  the claim is what must be exact. An overshoot after a race costs one idle pod until ``warm_pool_idle``.
- *Idle*: ``refill`` deletes free pool pods older than the flavor's ``warm_pool_idle``, and creates new
  ones only while ``demand`` says someone started a kernel of the flavor recently.
- *Priority*: pool pods carry Kueue's ``kueue.x-k8s.io/priority-class: mlp-warm-pool`` (a
  WorkloadPriorityClass below users' kernels, ``docs/samples/pool/priority-class.yaml``), so on a ClusterQueue
  that preempts ``LowerPriority`` a user's kernel that needs the GPUs evicts a pool pod instead of queueing
  behind it.
- *Who may claim* (``fits``): a launch whose pod would be the pool pod's (module ``backend.py``): the pool's
  GPU count, no model pin, no data class, no CPU or memory of its own; on a member reached directly (a pool
  pod has no Service or route for an ingress) with one namespace for everyone and no per-user volumes (a
  pod's namespace and volumes are fixed when it is created; the pool pod was made for user ``platform``).
- *CurveZMQ*: pool pods get a server keypair like every kernel (``curve=True``, the backend's default); the
  claimer reads the public key from the pool's Secret, so a claimed kernel is encrypted as a fresh one is.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ...placement.policy import Policy
from . import names
from .calls import call_json
from .connection import CONNECTION_KEY, CurveKeys
from .ingress import uses_ingress
from .objects import render_kernel_objects

if TYPE_CHECKING:
    from ...placement.policy import Flavor, Member
    from ..base import LaunchSpec

POOL, POOL_STATE = names.POOL, names.POOL_STATE
FREE, CLAIMED = names.POOL_FREE, names.POOL_CLAIMED
PLATFORM = "platform"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
PRIORITY_CLASS = "mlp-warm-pool"  # docs/samples/pool/priority-class.yaml: the admin applies it with the pool
CLAIM_TIMEOUT_S = 15.0  # the rekey's reply over the pod network; a kernel that does not answer is deleted


def fits(member: Member, flavor: Flavor, spec: LaunchSpec) -> bool:
    """Whether ``spec``'s kernel pod would be one of ``flavor``'s pool pods, on a member where a pool pod can
    be handed to a user (module docstring, *Who may claim*)."""
    request, decision = spec.request, spec.decision
    per_user_volumes = "{username}" in f"{member.workspace_claim or ''}{member.packages_claim or ''}"
    return (
        flavor.warm_pool > 0
        and (decision.gpu_count or request.gpu_count) == flavor.warm_pool_gpus
        and decision.pinned_model is None
        and not (request.data_class or request.cpu or request.memory)
        and member.tenancy is None
        and not uses_ingress(member)
        and not per_user_volumes
    )


def render_pool_objects(
    kernelspec_dir: str | Path,
    policy: Policy,
    flavor: str,
    *,
    ports: Mapping[str, int] | None = None,
    image: str | None = None,
    curve: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The connection Secret and the Pod of one pool kernel of ``flavor`` (``warm_pool_gpus`` GPUs), the
    platform's: user and team ``platform``, a fresh key (and CurveZMQ keypair), the pool labels and the
    pool's Kueue priority class."""
    f = policy.flavors[flavor]
    secret, pod = render_kernel_objects(
        kernelspec_dir,
        policy,
        f.member,
        f,
        PLATFORM,
        kernel_id=f"pool-{secrets.token_hex(6)}",
        gpus=f.warm_pool_gpus,
        team=PLATFORM,
        ports=ports,
        image=image,
        curve=CurveKeys.generate() if curve else None,
    )
    for obj in (secret, pod):
        obj["metadata"]["labels"].update({POOL: names.label_value(flavor), POOL_STATE: FREE})
    pod["metadata"]["labels"][PRIORITY_LABEL] = PRIORITY_CLASS
    return secret, pod


async def create_pool_kernel(
    api: client.ApiClient, secret: dict[str, Any], pod: dict[str, Any]
) -> dict[str, Any]:
    """Create the pod, then its Secret owned by it (as the backend does for every kernel); the pod."""
    core = client.CoreV1Api(api)
    ns = pod["metadata"]["namespace"]
    created = await call_json(core.create_namespaced_pod, ns, pod)
    meta = created["metadata"]
    owned = {
        **secret,
        "metadata": {
            **secret["metadata"],
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}
            ],
        },
    }
    await call_json(core.create_namespaced_secret, ns, owned)
    return dict(created)


async def pool_pods(
    api: client.ApiClient, namespace: str, flavor: str, state: str = FREE
) -> list[dict[str, Any]]:
    """The flavor's pool pods in ``state`` (not being deleted), oldest first."""
    core = client.CoreV1Api(api)
    selector = f"{POOL}={names.label_value(flavor)},{POOL_STATE}={state}"
    listed = await call_json(core.list_namespaced_pod, namespace, label_selector=selector)
    pods = [p for p in listed.get("items") or [] if not p["metadata"].get("deletionTimestamp")]
    return sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Running with its Ready condition true: the kernel answers."""
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return status.get("phase") == "Running" and ready and bool(status.get("podIP"))


async def claim(
    api: client.ApiClient,
    namespace: str,
    flavor: str,
    kernel_id: str,
    user: str,
    team: str,
    gateway: str | None = None,
) -> dict[str, Any] | None:
    """Take the oldest free, ready pool pod of ``flavor`` for ``kernel_id``: a PATCH that carries the pod's
    ``resourceVersion``, so it applies only if nobody claimed it meanwhile (409: the next candidate); with
    ``gateway``, the pod's gateway annotation becomes the claimer's, as on the pods it creates. The claimed
    pod as the API server returned it, or None when no free ready pod was left."""
    core = client.CoreV1Api(api)
    for pod in await pool_pods(api, namespace, flavor):
        if not is_ready(pod):
            continue
        meta = pod["metadata"]
        labels = {
            POOL_STATE: CLAIMED,
            names.KERNEL_ID: names.label_value(kernel_id),
            names.USER: names.label_value(user) if user else None,
            names.TEAM: names.label_value(team) if team else None,
        }
        body: dict[str, Any] = {"metadata": {"resourceVersion": meta["resourceVersion"], "labels": labels}}
        if gateway:
            body["metadata"]["annotations"] = {names.GATEWAY_ANNOTATION: gateway}
        try:
            return dict(await call_json(core.patch_namespaced_pod, meta["name"], namespace, body))
        except ApiException as exc:
            if exc.status in (404, 409):  # claimed (or deleted) by someone else first: the next one
                continue
            raise
    return None


async def pool_connection(api: client.ApiClient, pod: Mapping[str, Any]) -> dict[str, Any]:
    """The connection info in a pool pod's Secret (the pool's key: ``rekey`` makes it the user's)."""
    core = client.CoreV1Api(api)
    meta = pod["metadata"]
    secret = await call_json(core.read_namespaced_secret, names.secret_name(meta["name"]), meta["namespace"])
    return dict(json.loads(base64.b64decode(secret["data"][CONNECTION_KEY])))


async def refill(
    api: client.ApiClient,
    kernelspec_dir: str | Path,
    policy: Policy,
    flavor: str,
    *,
    now: datetime | None = None,
    demand: bool = True,
    ports: Mapping[str, int] | None = None,
    image: str | None = None,
    curve: bool = True,
) -> dict[str, int]:
    """One pass of the pool loop for ``flavor``: delete free pool pods idle past ``warm_pool_idle`` (since
    they were created), then, while ``demand``, create pods up to ``warm_pool``. Counts of each."""
    f = policy.flavors[flavor]
    ns = policy.members[f.member].namespace or "default"
    core = client.CoreV1Api(api)
    now = now or datetime.now(timezone.utc)
    free = await pool_pods(api, ns, flavor)
    expired = [p for p in free if _age_s(p, now) > f.warm_pool_idle_s]
    for p in expired:
        try:
            await call_json(core.delete_namespaced_pod, p["metadata"]["name"], ns)
        except ApiException as exc:
            if exc.status != 404:
                raise
    missing = max(0, f.warm_pool - (len(free) - len(expired))) if demand else 0
    for _ in range(missing):
        secret, pod = render_pool_objects(
            kernelspec_dir, policy, flavor, ports=ports, image=image, curve=curve
        )
        await create_pool_kernel(api, secret, pod)
    return {"deleted": len(expired), "created": missing}


def _age_s(pod: Mapping[str, Any], now: datetime) -> float:
    created = pod["metadata"].get("creationTimestamp")
    if not created:
        return 0.0
    return (now - datetime.fromisoformat(str(created).replace("Z", "+00:00"))).total_seconds()


async def demand(api: client.ApiClient, namespace: str, flavor: str, within_s: float, now: datetime) -> bool:
    """Whether a kernel of ``flavor`` started (a user's pod, or a pool pod claimed) within ``within_s``: the
    pool is wanted. Free pool pods do not count: a pool that nobody uses drains."""
    core = client.CoreV1Api(api)
    selector = f"{names.MANAGED_SELECTOR},{names.FLAVOR}={names.label_value(flavor)},{POOL_STATE}!={FREE}"
    listed = await call_json(core.list_namespaced_pod, namespace, label_selector=selector)
    return any(_age_s(p, now) <= within_s for p in listed.get("items") or [])
