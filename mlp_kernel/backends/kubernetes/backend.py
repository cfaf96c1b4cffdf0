"""``KubernetesBackend``: a GPU kernel as a Pod plus connection Secret on a Kueue-managed member.

How a launch goes (see ``base.py`` for the contract):
1. Render and validate the Secret and Pod (``objects``); nothing is sent if anything is wrong.
2. Create the Pod (name ``mlpk-<kernel>-<generation>``; a 409 for our own earlier attempt is adopted, a
   leftover of another gateway makes us take the next generation), then the Secret owned by the Pod, then the
   Lease that marks the kernel as alive (owned by the Pod too).
3. Watch the Pod, its core Events and its Kueue Workload (resumable watches), ask the visibility API for the
   queue position while queued, and translate it all into ``LaunchEvent``s (``lifecycle.LaunchTracker``).
4. When the kernel container runs, check that the heartbeat port accepts connections, then yield
   ``connected`` with the pod IP and ports. On a member with ``transport: ingress`` (``ingress.py``) the pod
   also gets a Service and an HTTPRoute (or Ingress) owned by it, and the kernel is reached through a
   ``Tunnel`` to the member's ingress: connected once the kernel's heartbeat socket answers through it, with
   the tunnel's loopback ports in the ``RemoteKernel``; ``release`` closes the tunnel.
A launch whose pod would be a warm-pool pod of the flavor (``pool.fits``) first claims a free, ready one
(``pool.claim``: a resourceVersion-guarded PATCH), creates its Lease, rekeys it to the user's key
(``rekey``) and yields ``connected`` at once, with the same handle as a fresh pod's; no free pod (or a claim
that fails): the steps above.
If the gateway stops iterating (cancel, ``aclose``) or anything fails, the ``finally`` deletes the Pod (which
frees the Kueue quota at once), the Secret and the Lease. To move a queued kernel elsewhere, the gateway
cancels the launch (queued events repeat as the wait grows, with ``waited_s`` and the position in ``detail``,
so it can re-run placement) and launches again on the other member. Iterate the launch inside
``contextlib.aclosing(backend.launch(spec))``: then the clean-up runs when the iteration stops, not whenever
the event loop finalises an abandoned generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ...placement import ClusterState
from ...placement.adapters.live import astate_from_cluster
from ...placement.policy import Flavor, Member, Policy
from ...placement.tenancy import setup_hint
from ...transport.tunnel import IngressTarget, Tunnel, zmtp_answers
from ..base import ExitInfo, ExitReason, LaunchError, LaunchEvent, LaunchSpec, Phase, RemoteKernel
from ..rekey import rekey
from . import ingress, names, pool
from .calls import call_json, describe, status_of
from .connection import CHANNELS, DEFAULT_PORTS, CurveKeys
from .exits import classify_exit, terminated
from .files import pod_files
from .leases import DEFAULT_LEASE_S, Orphan, find_orphans, lease_body, micro_time
from .lifecycle import LaunchTracker, Timeouts
from .members import Connection, MemberClients, MemberUnreachable
from .objects import KernelObjectsError, render_kernel_objects, working_dir
from .queue import KUEUE_GROUP, KUEUE_VERSIONS, WorkloadState, find_workload, queue_position
from .watching import ResumableWatch, WatchEvent

MAX_GENERATION_SKIPS = 5
log = logging.getLogger(__name__)


class KubernetesBackend:
    """The ``Backend`` protocol on Kubernetes members (see the module docstring for the lifecycle)."""

    name = "kubernetes"

    def __init__(
        self,
        policy: Policy,
        kernelspec_dir: str | Path,
        *,
        kubeconfig: str | None = None,
        karmada_context: str | None = None,
        api_clients: dict[str, client.ApiClient] | None = None,
        timeouts: Timeouts | Mapping[str, float] | None = None,
        ports: dict[str, int] | None = None,
        image: str | None = None,
        service_account: str | None = None,
        curve: bool = True,  # CurveZMQ on the kernel's five ports (docs/admin-guide.md, "Transport security")
        ingress_ca: str = "",  # behind an ingress: the CA of its certificate ("" = the system's trust store)
        ingress_client_cert: str = "",  # the notebook server's client certificate for an mTLS ingress (file)
        ingress_client_key: str = "",
        gateway_id: str | None = None,
        lease_duration_s: int = DEFAULT_LEASE_S,
        queue_refresh_s: float = 10.0,
        tick_s: float = 1.0,
    ) -> None:
        self.policy = policy
        self.kernelspec_dir = Path(kernelspec_dir)
        self.clients = MemberClients(Connection(kubeconfig, karmada_context), api_clients)
        if isinstance(timeouts, Mapping):  # from kernel.json: {"pulling_s": 1800, ...}
            timeouts = Timeouts(**{"queued_s": policy.launch_timeout_s, **timeouts})
        self.timeouts = timeouts or Timeouts(queued_s=policy.launch_timeout_s)
        self.ports = dict(ports or DEFAULT_PORTS)
        self.image = image
        self.service_account = service_account
        self.curve = curve
        self.ingress_tls = {
            "ca_file": ingress_ca,
            "cert_file": ingress_client_cert,
            "key_file": ingress_client_key,
        }
        self._tunnels: dict[str, Tunnel] = {}  # pod name -> the tunnel of a kernel behind an ingress
        self.gateway_id = gateway_id or f"gateway-{uuid.uuid4().hex[:12]}"
        self.lease_duration_s = lease_duration_s
        self.queue_refresh_s = queue_refresh_s
        self.tick_s = tick_s
        self._generations: dict[str, int] = {}
        self._released: set[tuple[str, str]] = set()
        self._kueue_versions: dict[str, str | None] = {}

    # --- helpers ----------------------------------------------------------------------------------------
    def _member_flavor(self, member: str | None, flavor: str | None) -> tuple[Member, Flavor]:
        m = self.policy.members.get(member or "")
        f = self.policy.flavors.get(flavor or "")
        if m is None or f is None:
            raise LaunchError(
                f"Placement chose member {member!r} / flavor {flavor!r}, which the policy does not "
                "define. Ask your admin to check the placement policy."
            )
        return m, f

    def _api(self, member: Member) -> client.ApiClient:
        try:
            return self.clients.get(member)
        except MemberUnreachable as exc:
            raise LaunchError(str(exc)) from None
        except Exception as exc:  # bad kubeconfig, missing context, no service account
            raise LaunchError(
                f"Cannot configure access to member {member.name!r}: {exc}. Check the kubeconfig "
                "context / in-cluster settings in the policy."
            ) from None

    @staticmethod
    def _where(member: Member, flavor: Flavor | str) -> str:
        return f"{flavor if isinstance(flavor, str) else flavor.name} on {member.label}"

    async def _kueue_version(self, member: Member, api: client.ApiClient) -> str | None:
        """The Kueue API version the member serves (v1beta2 preferred), None without Kueue."""
        if member.name not in self._kueue_versions:
            found = None
            custom = client.CustomObjectsApi(api)
            for version in KUEUE_VERSIONS:
                try:
                    await call_json(
                        custom.list_namespaced_custom_object,
                        KUEUE_GROUP,
                        version,
                        member.namespace,
                        "workloads",
                        limit=1,
                    )
                except ApiException as exc:
                    if exc.status == 404:
                        continue
                    raise
                found = version
                break
            self._kueue_versions[member.name] = found
        return self._kueue_versions[member.name]

    # --- launch -----------------------------------------------------------------------------------------
    def launch(self, spec: LaunchSpec) -> AsyncGenerator[LaunchEvent, None]:
        return self._launch(spec)

    async def _launch(self, spec: LaunchSpec) -> AsyncGenerator[LaunchEvent, None]:
        member, flavor = self._member_flavor(spec.decision.member, spec.decision.flavor)
        api = self._api(member)
        if pool.fits(member, flavor, spec):
            warm = await self._claim_pool(api, spec, member, flavor)
            if warm is not None:
                yield warm
                return
        core = client.CoreV1Api(api)
        ns = str(member.namespace)
        curve = CurveKeys.generate() if self.curve else None
        token = (
            secrets.token_urlsafe(32) if ingress.uses_ingress(member) else None
        )  # the bridge's, per kernel
        where = self._where(member, flavor)
        created: dict[str, Any] | None = None
        attempted: list[str] = []  # pod names this launch tried to create (some may exist, some be leftovers)
        connected = False
        create_task: asyncio.Future[Any] | None = None
        try:
            for _ in range(MAX_GENERATION_SKIPS):
                generation = self._generations.get(spec.kernel_id, 0) + 1
                self._generations[spec.kernel_id] = generation
                secret, pod = self._render(spec, member, flavor, generation, curve, token)
                attempted.append(pod["metadata"]["name"])
                create_task = asyncio.ensure_future(self._create_or_adopt(core, member, pod))
                created = await asyncio.shield(create_task)
                create_task = None
                if created is not None:
                    break
            if created is None:
                raise LaunchError(
                    f"Kernel pods of earlier launches of this kernel still exist on {member.label}; "
                    "wait for `mlp-kernel gc` to remove them or ask your admin."
                )
            await self._create_owned(
                core.create_namespaced_secret,
                ns,
                secret,
                created,
                "create the Secret",
                where,
                echo_body=False,
            )
            await self._create_lease(api, ns, created, where)
            if token is not None:
                await self._create_routes(api, member, ns, created, where)
            async for event in self._follow(api, spec, member, flavor, created, curve, token):
                connected = event.phase == Phase.CONNECTED
                yield event
                if connected:
                    return
            raise LaunchError(f"Lost track of the GPU kernel pod {attempted[-1]} on {where}.")
        finally:
            if not connected and attempted:
                self._close_tunnel(attempted[-1])
                if create_task is not None:  # cancelled mid-create: let it land so the delete catches it
                    with contextlib.suppress(BaseException):
                        await asyncio.wait_for(asyncio.shield(create_task), 40)
                # Only the last name can be ours (earlier ones were leftovers of other gateways); a create
                # that failed after retries may still have landed, so check the owner before deleting.
                with contextlib.suppress(BaseException):
                    await asyncio.shield(self._delete_if_ours(api, ns, attempted[-1]))

    async def _claim_pool(
        self, api: client.ApiClient, spec: LaunchSpec, member: Member, flavor: Flavor
    ) -> LaunchEvent | None:
        """A free, ready pool pod of ``flavor`` made this kernel's: claimed, its Lease created (gc then treats
        it as any kernel), rekeyed to the user's key and environment; the ``connected`` event. None (the
        caller creates a pod) when none is free or the claim fails; a claimed pod that fails is deleted."""
        ns = str(member.namespace)
        try:
            pod = await pool.claim(
                api, ns, flavor.name, spec.kernel_id, spec.user, spec.team, gateway=self.gateway_id
            )
        except ApiException as exc:  # e.g. 403: the gateway may not patch pods; a fresh pod still may work
            log.warning("warm pool of %s not usable: %s", flavor.name, describe(exc, "claim a pool pod", ns))
            return None
        if pod is None:
            return None
        name, where = pod["metadata"]["name"], self._where(member, flavor)
        claimed = False
        try:
            # the Lease and the pool's Secret are independent requests: both in flight at once
            _, pooled = await asyncio.gather(
                self._create_lease(api, ns, pod, where), pool.pool_connection(api, pod)
            )
            conn = {**pooled, "ip": pod["status"]["podIP"]}
            if conn.get("signature_scheme") != spec.signature_scheme:
                return None
            args: dict[str, Any] = {"key": spec.key, "env": {"MLP_KERNEL_ID": spec.kernel_id, **spec.env}}
            args["cwd"] = working_dir(member, spec.user, spec.notebook)  # the notebook's folder, as a new pod
            await asyncio.to_thread(rekey, conn, args, pool.CLAIM_TIMEOUT_S)
            claimed = True
        except Exception as exc:  # a pool kernel that died or hangs: gone, the launch creates a pod instead
            log.warning("warm-pool pod %s could not be claimed: %s", name, exc)
            return None
        finally:
            if not claimed:  # failed or cancelled: nobody else may claim it now (its state says claimed)
                with contextlib.suppress(BaseException):
                    await asyncio.shield(self._delete(api, ns, name))
        ports = {ch: int(conn[f"{ch}_port"]) for ch in CHANNELS}
        return self._connected(spec, member, flavor, pod, conn.get("curve_publickey"), ports, warm=True)

    async def _create_lease(self, api: client.ApiClient, ns: str, pod: dict[str, Any], where: str) -> None:
        """The kernel's Lease (owned by its pod): alive while this gateway renews it (``leases.py``)."""
        body = lease_body(pod, self.gateway_id, self.lease_duration_s, _now())
        await self._create_owned(
            client.CoordinationV1Api(api).create_namespaced_lease, ns, body, None, "create the Lease", where
        )

    async def _delete_if_ours(self, api: client.ApiClient, ns: str, name: str) -> None:
        try:
            pod = await call_json(client.CoreV1Api(api).read_namespaced_pod, name, ns)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        if pod.get("metadata", {}).get("annotations", {}).get(names.GATEWAY_ANNOTATION) == self.gateway_id:
            await self._delete(api, ns, name)

    def _render(
        self,
        spec: LaunchSpec,
        member: Member,
        flavor: Flavor,
        generation: int,
        curve: CurveKeys | None,
        bridge_token: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        request = spec.request
        try:
            return render_kernel_objects(
                self.kernelspec_dir,
                self.policy,
                member,
                flavor,
                spec.user,
                kernel_id=spec.kernel_id,
                generation=generation,
                gpus=spec.decision.gpu_count or request.gpu_count,
                gpu_model=spec.decision.gpu_model,
                pin_model=spec.decision.pinned_model,  # %gpu h100: only H100 nodes of the flavor
                cpu=request.cpu,
                memory=request.memory,
                notebook=spec.notebook,
                team=spec.team,
                data_class=request.data_class,  # a label the cluster's admission checks on public members
                key=spec.key,
                signature_scheme=spec.signature_scheme,
                image=self.image,
                ports=self.ports,
                curve=curve,
                service_account=self.service_account,
                gateway=self.gateway_id,
                bridge_token=bridge_token,
            )
        except KernelObjectsError as exc:
            raise LaunchError(
                f"The GPU kernel pod for {self._where(member, flavor)} was not created: "
                f"{'; '.join(exc.issues)}. Ask your admin to fix the kernelspec's pod template "
                "(`mlp-kernel render` shows the problem)."
            ) from None

    async def _create_or_adopt(
        self, core: client.CoreV1Api, member: Member, pod: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Create the pod; on 409 adopt it if this gateway made it (a retried create), else None."""
        name, ns = pod["metadata"]["name"], str(member.namespace)
        try:
            return dict(await call_json(core.create_namespaced_pod, ns, pod))
        except ApiException as exc:
            if exc.status != 409:
                why = describe(exc, f"create the kernel pod {name}", f"namespace {ns}")
                if member.tenancy is not None and exc.status in (403, 404):  # namespace not set up
                    why = setup_hint(member, why.rstrip("."))
                raise LaunchError(why) from None
        existing = await call_json(core.read_namespaced_pod, name, ns)
        ours = (
            existing.get("metadata", {}).get("annotations", {}).get(names.GATEWAY_ANNOTATION)
            == self.gateway_id
        )
        return dict(existing) if ours and not existing["metadata"].get("deletionTimestamp") else None

    async def _create_owned(
        self,
        create: Any,
        ns: str,
        body: dict[str, Any],
        owner: dict[str, Any] | None,
        action: str,
        where: str,
        echo_body: bool = True,
    ) -> None:
        if owner is not None:
            meta = owner["metadata"]
            body = {
                **body,
                "metadata": {
                    **body["metadata"],
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}
                    ],
                },
            }
        try:
            await call_json(create, ns, body)
        except ApiException as exc:
            if exc.status != 409:
                raise LaunchError(describe(exc, action, where, echo_body=echo_body)) from None

    async def _follow(
        self,
        api: client.ApiClient,
        spec: LaunchSpec,
        member: Member,
        flavor: Flavor,
        pod: dict[str, Any],
        curve: CurveKeys | None,
        token: str | None = None,
    ) -> AsyncIterator[LaunchEvent]:
        ns = str(member.namespace)
        name = pod["metadata"]["name"]
        tracker = LaunchTracker(
            pod_name=name,
            local_queue=str(member.local_queue),
            flavor=flavor.name,
            where=self._where(member, flavor),
            expected_wait_s=spec.decision.expected_wait_s,
            waited_before_s=spec.request.waited_s,
            started=time.monotonic(),
            timeouts=self.timeouts,
        )
        tracker.on_pod(pod)
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
        watches = await self._watches(api, member, queue, pod, with_events=True)
        next_position = 0.0
        renew_every = max(1.0, self.lease_duration_s / 3)
        next_renew = time.monotonic() + renew_every
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), self.tick_s)
                    self._feed(tracker, event, name, flavor)
                    while not queue.empty():
                        self._feed(tracker, queue.get_nowait(), name, flavor)
                except asyncio.TimeoutError:
                    pass
                now = time.monotonic()
                if (
                    tracker.last
                    and tracker.last[0] == Phase.QUEUED
                    and tracker.workload
                    and now >= next_position
                ):
                    next_position = now + self.queue_refresh_s
                    with contextlib.suppress(Exception):
                        tracker.on_position(
                            await queue_position(api, ns, str(member.local_queue), tracker.workload.name)
                        )
                if now >= next_renew:
                    # Queue waits outlast a lease: keep ours fresh so gc never takes a kernel still waiting.
                    next_renew = now + renew_every
                    with contextlib.suppress(Exception):
                        await self._touch_lease(api, ns, names.lease_name(name))
                try:
                    step = tracker.step(now)
                except LaunchError as exc:  # a connect timeout says what the ingress answered
                    raise self._with_tunnel_error(exc, name) from None
                if step is not None:
                    yield step
                running = tracker.pod if tracker.running() else None
                if running is not None and await self._answers(member, running, token, tracker.where):
                    yield self._connected(spec, member, flavor, running, curve.public if curve else None)
                    return
        finally:
            for w in watches:
                w.stop()

    async def _watches(
        self,
        api: client.ApiClient,
        member: Member,
        queue: asyncio.Queue[WatchEvent],
        pod: dict[str, Any],
        with_events: bool,
    ) -> list[ResumableWatch]:
        ns = str(member.namespace)
        name = pod["metadata"]["name"]
        core = client.CoreV1Api(api)
        watches = [
            ResumableWatch("pod", queue, core.list_namespaced_pod, ns, field_selector=f"metadata.name={name}")
        ]
        if with_events:
            watches.append(
                ResumableWatch(
                    "event",
                    queue,
                    core.list_namespaced_event,
                    ns,
                    field_selector=f"involvedObject.name={name}",
                )
            )
        with contextlib.suppress(Exception):
            version = await self._kueue_version(member, api)
            if version:
                watches.append(
                    ResumableWatch(
                        "workload",
                        queue,
                        client.CustomObjectsApi(api).list_namespaced_custom_object,
                        KUEUE_GROUP,
                        version,
                        ns,
                        "workloads",
                        label_selector=f"{names.KUEUE_JOB_UID}={pod['metadata']['uid']}",
                    )
                )
        for w in watches:
            w.start()
        return watches

    @staticmethod
    def _feed(tracker: LaunchTracker, event: WatchEvent, name: str, flavor: Flavor) -> None:
        if event.source == "pod":
            if event.type == "ERROR" and event.error is not None:  # e.g. 403: no watch on pods (RBAC)
                raise LaunchError(describe(event.error, f"watch the kernel pod {name}", tracker.where))
            if event.type == "DELETED":
                tracker.on_pod_deleted(event.obj)
            elif event.type == "SYNCED" and name not in event.names:
                tracker.on_pod_deleted(None)
            elif (
                event.type in ("ADDED", "MODIFIED")
                and event.obj.get("metadata", {}).get("uid") == tracker.uid
            ):
                tracker.on_pod(event.obj)
        elif event.source == "workload" and event.type in ("ADDED", "MODIFIED"):
            tracker.on_workload(WorkloadState.of(event.obj, flavor.gpu_resource))
        elif event.source == "event" and event.type in ("ADDED", "MODIFIED"):
            involved = event.obj.get("involvedObject") or {}
            if involved.get("name") == name and involved.get("uid") in (None, "", tracker.uid):
                tracker.on_event(event.obj)

    def _connected(
        self,
        spec: LaunchSpec,
        member: Member,
        flavor: Flavor,
        pod: dict[str, Any],
        curve_public: str | None,
        ports: dict[str, int] | None = None,
        warm: bool = False,
    ) -> LaunchEvent:
        """The ``connected`` event; ``ports`` and ``curve_public`` of the kernel (a pool pod's are its own),
        ``warm``: a claimed warm-pool pod (the start-up line says so)."""
        meta = pod["metadata"]
        node = pod["spec"].get("nodeName") or ""
        handle = {
            "backend": self.name,
            "member": member.name,
            "namespace": member.namespace,
            "pod": meta["name"],
            "secret": names.secret_name(meta["name"]),
            "lease": names.lease_name(meta["name"]),
            "uid": meta["uid"],
            "kernel_id": spec.kernel_id,
            "flavor": flavor.name,
        }
        if curve_public:
            handle["curve_publickey"] = curve_public
        if warm:
            handle["warm_pool"] = True  # the gateway's start-up line says so
        ip, ports = pod["status"]["podIP"], ports or self.ports
        tunnel = self._tunnels.get(meta["name"])
        if tunnel is not None:  # behind an ingress: the tunnel's loopback listeners (never the token)
            ip, ports = "127.0.0.1", tunnel.ports
            handle["transport"] = "ingress"
        remote = RemoteKernel(
            kernel_id=spec.kernel_id,
            ip=ip,
            shell_port=ports["shell"],
            iopub_port=ports["iopub"],
            stdin_port=ports["stdin"],
            control_port=ports["control"],
            hb_port=ports["hb"],
            member=member.name,
            flavor=flavor.name,
            node=node,
            handle=handle,
            files=pod_files(member, pod),
        )
        where = f"warm pool, {self._where(member, flavor)}" if warm else self._where(member, flavor)
        return LaunchEvent(
            Phase.CONNECTED,
            f"Running on {node} ({where})",
            {"node": node, "pod": meta["name"], "pod_ip": remote.ip, "warm_pool": warm},
            remote=remote,
        )

    # --- after launch -----------------------------------------------------------------------------------
    async def wait_exit(self, remote: RemoteKernel) -> ExitInfo:
        """Wait until the pod ends or disappears, and say why (preempted, OOMKilled, node lost, ...)."""
        h = remote.handle
        member, flavor = self._member_flavor(h["member"], h.get("flavor") or remote.flavor)
        api = self._api(member)
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
        pod = {"metadata": {"name": h["pod"], "uid": h["uid"], "namespace": h["namespace"]}}
        watches = await self._watches(api, member, queue, pod, with_events=False)
        last: dict[str, Any] | None = None
        workload: WorkloadState | None = None
        try:
            while True:
                event = await queue.get()
                if event.source == "workload" and event.obj:
                    workload = WorkloadState.of(event.obj, flavor.gpu_resource)
                    continue
                if event.source != "pod":
                    continue
                if (
                    event.type in ("ADDED", "MODIFIED")
                    and event.obj.get("metadata", {}).get("uid") == h["uid"]
                ):
                    last = event.obj
                    if last.get("status", {}).get("phase") in ("Failed", "Succeeded") or terminated(last):
                        break
                elif event.type == "DELETED" or (event.type == "SYNCED" and h["pod"] not in event.names):
                    last = event.obj or last
                    break
        finally:
            for w in watches:
                w.stop()
        if (member.name, h["pod"]) in self._released:
            return ExitInfo(ExitReason.RELEASED, "The GPU kernel was released by this notebook.")
        if workload is None or not workload.evicted_reason:
            with contextlib.suppress(Exception):
                found = await find_workload(api, str(member.namespace), h["uid"])
                workload = WorkloadState.of(found, flavor.gpu_resource) if found else workload
        return classify_exit(last, workload, self._where(member, flavor))

    async def release(self, remote: RemoteKernel) -> None:
        await self.release_record(self.handle_record(remote))

    def handle_record(self, remote: RemoteKernel) -> dict[str, Any]:
        return dict(remote.handle)

    async def release_record(self, record: dict[str, Any]) -> bool:
        """Delete the pod (quota is freed at once), its Secret and Lease; True if the pod still existed."""
        member = self.policy.members.get(record.get("member", ""))
        if member is None:
            return False
        self._released.add((member.name, record["pod"]))
        self._close_tunnel(record["pod"])
        return await self._delete(self._api(member), record["namespace"], record["pod"])

    async def _delete(self, api: client.ApiClient, ns: str, pod: str) -> bool:
        core = client.CoreV1Api(api)
        existed = True
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "propagationPolicy": "Background",
        }
        for fn, name in (
            (core.delete_namespaced_pod, pod),
            (core.delete_namespaced_secret, names.secret_name(pod)),
            (client.CoordinationV1Api(api).delete_namespaced_lease, names.lease_name(pod)),
        ):
            try:
                await call_json(fn, name, ns, body=body)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                if fn == core.delete_namespaced_pod:
                    existed = False
        return existed

    async def _touch_lease(self, api: client.ApiClient, ns: str, lease: str) -> None:
        coordination = client.CoordinationV1Api(api)
        patch = {"spec": {"renewTime": micro_time(_now()), "holderIdentity": self.gateway_id}}
        merge = "application/merge-patch+json"
        await call_json(coordination.patch_namespaced_lease, lease, ns, patch, _content_type=merge)

    async def renew(self, remote: RemoteKernel) -> None:
        """Refresh the kernel's Lease so `mlp-kernel gc` knows its gateway is alive (every ~1/3 of it)."""
        h = remote.handle
        member = self.policy.members[h["member"]]
        api = self._api(member)
        coordination = client.CoordinationV1Api(api)
        try:
            await self._touch_lease(api, h["namespace"], h["lease"])
        except ApiException as exc:
            if status_of(exc) != 404:
                raise
            pod = {
                "metadata": {
                    "name": h["pod"],
                    "namespace": h["namespace"],
                    "uid": h["uid"],
                    "labels": {names.KERNEL_ID: names.label_value(remote.kernel_id)},
                }
            }
            await self._create_owned(
                coordination.create_namespaced_lease,
                h["namespace"],
                lease_body(pod, self.gateway_id, self.lease_duration_s, _now()),
                None,
                "renew the Lease",
                h["member"],
            )

    async def cluster_state(self, policy: Policy, members: Sequence[Member]) -> ClusterState:
        """Kueue's live state of ``members`` through this backend's clients (``StateReading``)."""
        clients = {m.name: self.clients.get(m) for m in members}
        return await astate_from_cluster(policy, clients, watch=True)  # one watch cache per process

    async def list_orphans(self, expire_after_s: float | None = None) -> list[Orphan]:
        """Kernel pods on every Kubernetes member whose Lease expired (their gateway is gone); on a member
        with a namespace per user (a policy not resolved for one user: ``mlp-kernel gc``), in every
        namespace."""
        orphans: list[Orphan] = []
        for member in self.policy.members.values():
            if member.backend != "kubernetes" or not (member.namespace or member.tenancy):
                continue
            orphans += await find_orphans(
                self._api(member), member.name, member.namespace or None, _now(), expire_after_s
            )
        return orphans

    def close(self) -> None:
        for pod in list(self._tunnels):
            self._close_tunnel(pod)
        self.clients.close()

    # --- behind an ingress (ingress.py, transport/) --------------------------------------------------------
    async def _create_routes(
        self, api: client.ApiClient, member: Member, ns: str, pod: dict[str, Any], where: str
    ) -> None:
        """The pod's Service and HTTPRoute (or Ingress), owned by the pod: deleted with it."""
        custom = client.CustomObjectsApi(api)
        networking = client.NetworkingV1Api(api)
        creates = {
            "Service": client.CoreV1Api(api).create_namespaced_service,
            "Ingress": networking.create_namespaced_ingress,
            "HTTPRoute": lambda ns, body, **kw: custom.create_namespaced_custom_object(
                "gateway.networking.k8s.io", "v1", ns, "httproutes", body, **kw
            ),
        }
        for body in ingress.route_objects(member, pod):
            action = f"create the {body['kind']} that reaches the kernel through the member's ingress"
            await self._create_owned(creates[body["kind"]], ns, body, pod, action, where)

    async def _answers(self, member: Member, pod: dict[str, Any], token: str | None, where: str) -> bool:
        """Whether the kernel's heartbeat socket answers: on the pod IP, or through the member's ingress."""
        name = pod["metadata"]["name"]
        if token is None:
            return await _port_open(pod["status"]["podIP"], self.ports["hb"])
        tunnel = self._tunnels.get(name)
        if tunnel is None:
            target = IngressTarget(url=ingress.kernel_url(member, name), token=token, **self.ingress_tls)
            try:
                tunnel = Tunnel(target)
            except (OSError, ValueError) as exc:  # ssl: a certificate or key file missing or unreadable
                raise LaunchError(
                    f"Cannot reach GPU kernels on {member.label} through its ingress: {exc}. Ask your "
                    "admin to check the kernelspec's kubernetes ingress_ca / ingress_client_cert / "
                    "ingress_client_key."
                ) from None
            tunnel.start()
            self._tunnels[name] = tunnel
        if await zmtp_answers("127.0.0.1", tunnel.ports["hb"]):
            return True
        if tunnel.last_status in (400, 401, 403, 495, 496):
            raise LaunchError(self._refused(member, where, tunnel))
        return False

    @staticmethod
    def _refused(member: Member, where: str, tunnel: Tunnel) -> str:
        if tunnel.last_status == 401:
            return (
                f"The GPU kernel on {where} refused this notebook server ({tunnel.last_error}: the kernel's "
                "bridge token did not match). Something between the ingress and the pod may rewrite the "
                "Authorization header; ask your admin to check the member's ingress."
            )
        return (
            f"The ingress of {member.label} refused this notebook server ({tunnel.last_error}): its client "
            "certificate is missing, expired or not signed by a CA the ingress trusts. Ask your admin to "
            "check the kernelspec's kubernetes ingress_client_cert / ingress_client_key."
        )

    def _with_tunnel_error(self, exc: LaunchError, pod: str) -> LaunchError:
        tunnel = self._tunnels.get(pod)
        if tunnel is None or not tunnel.last_error:
            return exc
        return LaunchError(f"{exc} Through the member's ingress: {tunnel.last_error}.")

    def _close_tunnel(self, pod: str) -> None:
        tunnel = self._tunnels.pop(pod, None)
        if tunnel is not None:
            tunnel.close()


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _port_open(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether ``host:port`` accepts TCP connections (the kernel has bound its sockets)."""
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True
