"""A process kubelet for the real control plane: the only imitation left in the path.

It registers Nodes (labels, taints and ``nvidia.com/gpu`` capacity of each ResourceFlavor's pool), keeps them
Ready with node Leases like a kubelet, and runs every pod the real scheduler binds to them as a local process.
How a pod runs (env, Secret/ConfigMap/emptyDir/claim volumes laid out as directories, phases, conditions,
container statuses, events, termination messages, grace periods) is the in-repo test API's kubelet
(``tests/kubeapi/controllers/kubelet.py``), unchanged: here it reads and writes through the real API server by
way of ``ApiStore``, a small adapter with the methods that kubelet calls on its store. What a real
kubelet does that the test API did for it, this one does itself: the final ``DELETE`` (grace 0, uid
precondition) once a deleted pod's process is gone, stopping processes of pods force-deleted from the API,
and node heartbeats. A claim volume is the directory of the PersistentVolume the claim is bound to
(``BoundVolumes``; ``provisioner.py`` makes them), not a directory of the test API's own.

In-cluster credentials, as a real kubelet gives every container: ``KUBERNETES_SERVICE_HOST`` / ``_PORT`` name
the API server (its own address: there is no kube-proxy for the ``kubernetes`` Service's ClusterIP), and
``projected`` volumes are written (``ProjectedVolumes``), above all the ``kube-api-access-*`` volume the API
server's ServiceAccount admission adds to each pod: a token from the TokenRequest API bound to the pod (so it
stops working when the pod is deleted), ``ca.crt`` from the namespace's ``kube-root-ca.crt`` ConfigMap (the
controller-manager publishes it; a FailedMount, retried, until then) and ``namespace``. Without mount
namespaces the files cannot sit at /var/run/secrets/kubernetes.io/serviceaccount, so a container mounting
that path gets ``MLP_SERVICE_ACCOUNT_DIR`` naming its copy, which the product reads
(``mlp_kernel.identity.service_account_dir``); the kubernetes client's ``load_incluster_config`` would not.
Tokens are not refreshed (they live an hour; no test runs that long). A container with ``args`` but no
``command`` runs its args (an image whose entrypoint just executes them), as KubeSpawner's pods need.

Test hooks: ``oom_kill(namespace, name)`` (exit 137, reason OOMKilled), ``set_node_ready(node, False)`` and
``service_account_token(namespace, name)`` (the token a running pod was given).
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlp_kernel.identity import SERVICE_ACCOUNT_DIR, SERVICE_ACCOUNT_DIR_ENV
from tests.kubeapi.controllers.claims import ClaimVolumes
from tests.kubeapi.controllers.container_setup import ContainerConfigError, decoded, value_from
from tests.kubeapi.controllers.kubelet import TERMINAL, Kubelet
from tests.kubeapi.members import NodeSpec
from tests.kubeapi.store import Event, now_iso

from .rest import ApiError, Obj, Rest

LEASE_S = 40
RENEW_S = 10


@dataclass(frozen=True)
class RType:
    group: str
    plural: str
    namespaced: bool = True
    version: str = "v1"

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def base(self) -> str:
        return "/api/v1" if not self.group else f"/apis/{self.group}/{self.version}"


CLUSTER_SCOPED = {"nodes", "namespaces", "persistentvolumes", "storageclasses"}


class _Registry:
    def get(self, group: str, plural: str) -> RType:
        return RType(group, plural, plural not in CLUSTER_SCOPED)


class ApiStore:
    """The store methods the test API's kubelet (and ``member.store.mutate``) use, over the real API."""

    def __init__(self, rest: Rest):
        self.rest = rest
        self.registry = _Registry()
        self._listeners: list[Callable[[Event], None]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _path(self, rtype: RType, namespace: str | None, name: str | None = None) -> str:
        base = (
            f"{rtype.base}/namespaces/{namespace}/{rtype.plural}"
            if namespace
            else f"{rtype.base}/{rtype.plural}"
        )
        return f"{base}/{name}" if name else base

    def find(self, rtype: RType, namespace: str | None, name: str) -> Obj | None:
        try:
            return self.rest.get(self._path(rtype, namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def get(self, rtype: RType, namespace: str | None, name: str) -> Obj:
        return self.rest.get(self._path(rtype, namespace, name))

    def list(self, rtype: RType, *args: Any, **kwargs: Any) -> tuple[list[Obj], int]:
        doc = self.rest.get(self._path(rtype, None))
        for item in doc["items"]:  # list items carry no kind: events about them would name none
            item.setdefault("apiVersion", doc.get("apiVersion"))
            item.setdefault("kind", str(doc.get("kind", "")).removesuffix("List"))
        return doc["items"], int(doc["metadata"].get("resourceVersion") or 0)

    def create(self, rtype: RType, obj: Obj, namespace: str | None = None, dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(obj)
        for key in ("eventTime",):
            if obj.get(key) is None:
                obj.pop(key, None)
        return self.rest.request(
            "POST", self._path(rtype, namespace or obj["metadata"].get("namespace")), obj
        )

    def mutate(self, rtype: RType, namespace: str | None, name: str, fn: Callable[[Obj], Any]) -> Obj | None:
        """Read-modify-write of the object's status (the only part a kubelet writes), retried on conflicts."""
        for _ in range(20):
            obj = self.find(rtype, namespace, name)
            if obj is None:
                return None
            if fn(obj) is False:
                return obj
            try:
                return self.rest.request("PUT", self._path(rtype, namespace, name) + "/status", obj)
            except ApiError as exc:
                if exc.status == 404:
                    return None
                if exc.status != 409:
                    raise
        raise RuntimeError(f"{rtype.plural} {namespace}/{name}: status update kept conflicting")

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)
        if not self._threads:
            t = threading.Thread(target=self._watch_pods, daemon=True, name="kubelet-watch-pods")
            self._threads.append(t)
            t.start()

    def _watch_pods(self) -> None:
        rtype = self.registry.get("", "pods")
        rv = ""
        while not self._stop.is_set():
            try:
                if not rv:
                    _, version = self.list(rtype)
                    rv = str(version)
                for ev in self.rest.watch("/api/v1/pods", rv, self._stop):
                    obj = ev.get("object") or {}
                    if ev.get("type") == "ERROR":
                        rv = ""  # 410 Gone: list again
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion") or rv
                    if ev.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        for listener in self._listeners:
                            listener(Event(ev["type"], rtype, None, obj))
            except Exception:  # noqa: BLE001 - a dropped watch is resumed, as a kubelet's informer does
                if self._stop.wait(0.5):
                    return

    def close(self) -> None:
        self._stop.set()


class BoundVolumes(ClaimVolumes):
    """Claim volumes as a kubelet mounts them: claim -> its bound PersistentVolume -> that volume's directory.

    The test API's ``ClaimVolumes`` keeps one directory per claim of its own; here the directory is the
    ``hostPath`` (or ``local``) of the PersistentVolume the real PV binder bound the claim to (see
    ``provisioner.py``), read through the API at mount time. A claim that is missing, being deleted or not
    bound yet is a ``FailedMount`` the kubelet retries, as upstream's volume manager does. The kubelet never
    deletes a volume's data: that is the reclaim policy's business (the provisioner's), so ``prune`` does
    nothing.
    """

    def __init__(self, store: ApiStore, root: Path, volumes: Path):
        super().__init__(store, root)  # type: ignore[arg-type]
        self.root = volumes  # the provisioner's directories: a workingDir there is inside a mount

    def directory(self, namespace: str, name: str, timeout: float = 30.0) -> Path:
        """The host directory of claim ``namespace/name``, once bound (waits up to ``timeout`` s for that)."""
        end = time.monotonic() + timeout
        while True:
            claim = self.store.find(self._claims_type(), namespace, name)
            if claim is None:
                raise KeyError(f"persistentvolumeclaim {namespace}/{name} does not exist")
            try:
                return self._directory(claim)
            except ContainerConfigError:
                if time.monotonic() > end:
                    raise
            time.sleep(0.2)

    def prune(self) -> None:
        pass

    def _directory(self, claim: Obj) -> Path:
        m = claim["metadata"]
        volume_name = claim["spec"].get("volumeName") or ""
        volume = (
            self.store.find(self.store.registry.get("", "persistentvolumes"), None, volume_name)
            if volume_name
            else None
        )
        problem = (
            "PVC is not bound"
            if (claim.get("status") or {}).get("phase") != "Bound"
            else "PVC has empty pvc.Spec.VolumeName"
            if not volume_name
            else f'persistentvolumes "{volume_name}" not found'
            if volume is None
            else f"pv.Spec.ClaimRef.UID does not match the PVC's UID {m['uid']}"
            if ((volume["spec"].get("claimRef") or {}).get("uid")) != m["uid"]
            else ""
        )
        spec = volume["spec"] if volume else {}
        path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
        if not problem and not path:
            problem = f"test kubelet: PersistentVolume {volume_name} is neither hostPath nor local"
        if problem:
            raise ContainerConfigError(
                "FailedMount",
                f"Unable to attach or mount volumes: error processing PVC {m['namespace']}/{m['name']}: "
                + problem,
                waiting="ContainerCreating",
            )
        return Path(str(path))


class ProjectedVolumes:
    """A container's ``projected`` volumes as files: serviceAccountToken, configMap, secret, downwardAPI."""

    def __init__(self, store: ApiStore):
        self.store = store

    def write(self, pod: Obj, container: dict[str, Any], fs: Path) -> dict[str, Path]:
        """Write every projected volume ``container`` mounts under ``fs``; ``{mountPath: directory}``."""
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        written: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount["name"]) or {}
            if "projected" not in volume:
                continue
            target = fs / mount["mountPath"].lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            mode = volume["projected"].get("defaultMode", 0o644)
            for source in volume["projected"].get("sources") or []:
                for path, data in self._files(pod, volume["name"], source).items():
                    file = target / path
                    file.parent.mkdir(parents=True, exist_ok=True)
                    file.write_bytes(data)
                    os.chmod(file, mode | 0o600)
            written[mount["mountPath"].rstrip("/")] = target
        return written

    def _files(self, pod: Obj, volume: str, source: dict[str, Any]) -> dict[str, bytes]:
        if "serviceAccountToken" in source:
            return {
                source["serviceAccountToken"]["path"]: self._token(pod, volume, source["serviceAccountToken"])
            }
        if "downwardAPI" in source:
            return {
                item["path"]: (value_from(self.store, pod, item) or "").encode()  # type: ignore[arg-type]
                for item in source["downwardAPI"].get("items") or []
            }
        for kind, plural in (("configMap", "configmaps"), ("secret", "secrets")):
            if kind not in source:
                continue
            ref = source[kind]
            obj = self.store.find(
                self.store.registry.get("", plural), pod["metadata"]["namespace"], ref["name"]
            )
            if obj is None:
                if ref.get("optional"):
                    return {}
                raise ContainerConfigError(
                    "FailedMount",
                    f'MountVolume.SetUp failed for volume "{volume}" : '
                    f'{plural[:-1]} "{ref["name"]}" not found',
                    waiting="ContainerCreating",
                )
            data = decoded(obj, kind)
            items = ref.get("items") or [{"key": k, "path": k} for k in data]
            return {item["path"]: data[item["key"]] for item in items if item["key"] in data}
        return {}

    def _token(self, pod: Obj, volume: str, source: dict[str, Any]) -> bytes:
        """A token of the pod's ServiceAccount bound to the pod (TokenRequest), as the kubelet asks for it."""
        m = pod["metadata"]
        account = pod["spec"].get("serviceAccountName") or "default"
        spec: dict[str, Any] = {
            "expirationSeconds": source.get("expirationSeconds", 3607),
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": m["name"], "uid": m["uid"]},
        }
        if source.get("audience"):
            spec["audiences"] = [source["audience"]]
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = f"/api/v1/namespaces/{m['namespace']}/serviceaccounts/{account}/token"
        try:
            return str(self.store.rest.request("POST", path, request)["status"]["token"]).encode()
        except ApiError as exc:
            raise ContainerConfigError(
                "FailedMount",
                f'MountVolume.SetUp failed for volume "{volume}" : failed to fetch token: {exc}',
                waiting="ContainerCreating",
            ) from exc


class _Routes:
    stopping = threading.Event()

    def add_route(self, *args: Any) -> None:  # pod logs are served by the API server from files, not here
        pass


class _ServerShim:
    def __init__(self, name: str, store: ApiStore):
        self.name = name
        self.store = store
        self.rest = _Routes()


class ProcessKubelet(Kubelet):
    """The test API's kubelet over the real API, plus node registration, heartbeats and final deletes."""

    def __init__(
        self,
        member: str,
        rest: Rest,
        nodes: list[NodeSpec],
        root: Path | None = None,
        volumes: Path | None = None,
        **options: Any,
    ):
        self.api = rest
        self.api_store = ApiStore(rest)
        super().__init__(_ServerShim(member, self.api_store), root_dir=root, **options)
        #: a claim mounts its bound PersistentVolume's directory (the provisioner makes them in ``volumes``)
        self.claims = BoundVolumes(self.api_store, self.root, volumes or self.root / "volumes")
        self.projected = ProjectedVolumes(self.api_store)
        self.nodes = {n.name: n for n in nodes}
        self._not_ready: set[str] = set()
        self._heartbeat = threading.Thread(
            target=self._heartbeats, daemon=True, name=f"kubelet-{member}-nodes"
        )

    def start(self) -> None:
        for node in self.nodes.values():
            self.register(node)
        self._heartbeat.start()
        super().start()

    def stop(self) -> None:
        self.api_store.close()
        super().stop()

    # -- nodes ---------------------------------------------------------------------------------------

    def register(self, node: NodeSpec) -> None:
        self.nodes[node.name] = node
        manifest = node.manifest()
        status = manifest.pop("status")
        try:
            self.api.create(manifest)
        except ApiError as exc:
            if exc.status != 409:
                raise
        self._post_status(node.name, status)

    def _post_status(self, name: str, extra: Obj | None = None) -> None:
        ready = name not in self._not_ready
        stamp = now_iso()

        def apply(n: Obj) -> None:
            st = n.setdefault("status", {})
            if extra:
                st.update(copy.deepcopy(extra))
            st["addresses"] = [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ]
            st["daemonEndpoints"] = {"kubeletEndpoint": {"Port": 10250}}
            st["nodeInfo"] = {
                **st.get("nodeInfo", {}),
                "kubeletVersion": "mlp-test-kubelet",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "process://local",
                "kernelVersion": "",
                "osImage": "",
                "kubeProxyVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            }
            st["conditions"] = [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                    "message": "kubelet is posting ready status"
                    if ready
                    else "node marked NotReady by the test",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ]

        self.api_store.mutate(self.api_store.registry.get("", "nodes"), None, name, apply)

    def set_node_ready(self, name: str, ready: bool) -> None:
        (self._not_ready.discard if ready else self._not_ready.add)(name)
        self._post_status(name)

    def _heartbeats(self) -> None:
        while True:
            for name in list(self.nodes):
                if name in self._not_ready:
                    continue
                try:
                    self._renew_lease(name)
                except Exception as exc:  # noqa: BLE001 - the next beat tries again
                    self.errors.append(f"lease renewal of {name}: {exc!r}")
            if self._stopped.wait(RENEW_S):
                return

    def _renew_lease(self, name: str) -> None:
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": LEASE_S,
                "renewTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
            },
        }
        self.api.apply(lease, manager="mlp-test-kubelet")

    # -- pods ----------------------------------------------------------------------------------------

    def _prepare(
        self, run: Any, pod: Obj, container: dict[str, Any]
    ) -> tuple[list[str], dict[str, str], str]:
        """The test API kubelet's process, plus what a kubelet gives every container for in-cluster access.

        A container with ``args`` and no ``command`` runs its args, as an image whose entrypoint only executes
        its arguments does (tini in the Jupyter images): KubeSpawner sets ``args`` alone."""
        if not container.get("command") and container.get("args"):
            args = list(container["args"])
            container = {**container, "command": args[:1], "args": args[1:]}
        argv, env, cwd = super()._prepare(run, pod, container)
        written = self.projected.write(pod, container, run.root / "fs")
        api = urlsplit(self.api.url)
        service = {
            "KUBERNETES_SERVICE_HOST": str(api.hostname),
            "KUBERNETES_SERVICE_PORT": str(api.port or 443),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(api.port or 443),
        }
        if SERVICE_ACCOUNT_DIR in written:
            service[SERVICE_ACCOUNT_DIR_ENV] = str(written[SERVICE_ACCOUNT_DIR])
        for name, value in service.items():  # the container's own env wins, as over a kubelet's service vars
            env.setdefault(name, value)
        return argv, env, cwd

    def reconcile(self) -> None:
        super().reconcile()
        pods, _ = self.store.list(self.store.registry.get("", "pods"))
        live = {p["metadata"]["uid"] for p in pods}
        for uid, run in list(
            self.runs.items()
        ):  # removed from the API (force delete): stop, as a kubelet's sync
            if uid not in live:
                self._request_stop(run, grace=0)
        for pod in pods:
            m = pod["metadata"]
            if not m.get("deletionTimestamp") or pod["spec"].get("nodeName") not in self.nodes:
                continue
            run = self.runs.get(m["uid"])
            if run is None or pod.get("status", {}).get("phase") in TERMINAL and run.done.is_set():
                self._final_delete(pod)

    def service_account_token(self, namespace: str, name: str) -> str:
        """The ServiceAccount token mounted into running pod ``namespace/name`` (what its containers use)."""
        run = self._run_for(namespace, name)
        return (run.root / "fs" / SERVICE_ACCOUNT_DIR.lstrip("/") / "token").read_text()

    def _final_delete(self, pod: Obj) -> None:
        m = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": m["uid"]},
        }
        try:
            self.api.request("DELETE", f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}", body)
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    def oom_kill_pod(self, namespace: str, name: str) -> None:
        self.oom_kill(namespace, name)
