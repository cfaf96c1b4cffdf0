"""Real member clusters for tests: a ``Plane`` (real control plane + Kueue) and a ``ProcessKubelet``.

``RealMember`` offers the helpers the in-repo test API's ``Member`` offers (``list``, ``get``, ``find``,
``create``, ``apply``, ``apply_yaml``, ``delete``, ``wait_for``, ``load_kueue``, ``workload_for``,
``wait_for_pod_phase``, ``oom_kill_pod``, ``preempt_pod``, ``kubelet``, ``context``, ``kubeconfig_path``,
``api_client()``), so an end-to-end test can run on either. Everything goes through the real API server.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from tests.kubeapi.builders import python_pod
from tests.kubeapi.members import NodeSpec

from .kubelet import ApiStore, ProcessKubelet, RType
from .pki import Pki, make_pki
from .plane import Plane, kubeconfig_doc
from .provisioner import ANN_PROVISIONED_BY, PROVISIONER, LocalPathProvisioner
from .rest import ApiError, Obj

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are megabytes: C, not Python

#: namespaces whose pods and Kueue objects ``reset`` leaves alone
SYSTEM_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease", "kueue-system", "default"}
#: Kueue's kinds that ``reset`` deletes and loads again
KUEUE_KINDS = ("LocalQueue", "Workload", "ClusterQueue", "ResourceFlavor", "Cohort", "WorkloadPriorityClass")


#: how long the job that preempts a kernel (``preempt_pod``) holds its flavor's GPUs
PREEMPTOR_S = 15


class RealMember:
    def __init__(
        self, name: str, root: Path, pki: Pki, nodes: Sequence[NodeSpec], kubelet_options: dict[str, Any]
    ):
        self.name = self.context = name
        self.plane = Plane(name, root, pki)
        self.rest = self.plane.rest
        self.kubeconfig_path = ""
        self._nodes = list(nodes)
        self._kubelet_options = kubelet_options
        self.kubelet: ProcessKubelet | None = None
        #: hostPath PersistentVolumes for claims of the default StorageClass (``provisioner.py``)
        self.provisioner = LocalPathProvisioner(self.rest, self.plane.root / "volumes")

    def start(self) -> RealMember:
        self.plane.start()
        t0 = time.monotonic()
        self.provisioner.start()
        self.kubelet = ProcessKubelet(
            self.name,
            self.rest,
            self._nodes,
            self.plane.root / "kubelet",
            volumes=self.provisioner.root,
            **self._kubelet_options,
        )
        self.kubelet.start()
        self.plane.timings["kubelet"] = time.monotonic() - t0
        return self

    def stop(self) -> None:
        if self.kubelet is not None:
            self.kubelet.stop()
        self.provisioner.stop()
        self.plane.stop()

    @property
    def url(self) -> str:
        return self.plane.url

    @property
    def store(self) -> ApiStore:
        """Read-modify-write of status through the real API: ``store.mutate(rtype, ns, name, fn)``."""
        assert self.kubelet is not None
        return self.kubelet.api_store

    def rtype(self, api_version: str, kind: str) -> RType:
        base, namespaced = self.rest.resource(api_version, kind)
        group, _, version = api_version.rpartition("/")
        return RType(group, base.rsplit("/", 1)[1], namespaced, version)

    def api_client(self) -> kubernetes.client.ApiClient:
        return kubernetes.config.new_client_from_config(
            config_file=self.kubeconfig_path, context=self.context
        )

    # -- objects ---------------------------------------------------------------------------------------

    def create(self, obj: Obj) -> Obj:
        self._after_namespace_deletion(obj)
        return self.rest.create(obj)

    def apply(self, obj: Obj) -> Obj:
        self._after_namespace_deletion(obj)
        return self.rest.apply(obj)

    def apply_yaml(self, text_or_path: str | Path) -> list[Obj]:
        text = Path(text_or_path).read_text() if isinstance(text_or_path, Path) else text_or_path
        return [self.apply(doc) for doc in yaml.load_all(text, Loader=YAML_LOADER) if doc]

    def _after_namespace_deletion(self, obj: Obj, timeout: float = 90.0) -> None:
        """A Namespace still terminating (``delete_applied`` does not wait) is waited for before it is made
        again: applied now, it would stay terminating and refuse everything created in it."""
        if obj.get("kind") != "Namespace" or obj.get("apiVersion") != "v1":
            return
        name = obj["metadata"]["name"]
        current = self.find("v1", "Namespace", name)
        if current is not None and current["metadata"].get("deletionTimestamp"):
            self.wait_for(
                lambda: self.find("v1", "Namespace", name) is None, timeout, what=f"namespace {name} gone"
            )

    load_kueue = apply_yaml

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj:
        obj = self.rest.find(api_version, kind, name, namespace)
        if obj is None:
            raise KeyError(f"{kind} {namespace}/{name} not found on {self.name}")
        return obj

    def find(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        return self.rest.find(api_version, kind, name, namespace)

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[Obj]:
        return self.rest.list(api_version, kind, namespace)

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, **query: Any
    ) -> None:
        self.rest.delete(api_version, kind, name, namespace, **query)

    def delete_applied(self, docs: Sequence[Obj]) -> None:
        """Delete what ``docs`` applied, newest first (their namespaces' pods at once and first: Kueue's
        finalizer), without waiting for the namespaces to go.

        Deleting a namespace takes at least 5 s whatever it holds (the namespace controller waits a fixed
        ``namespaceDeletionGracePeriod`` before it starts), so fixtures that apply samples with namespaces do
        it once per module and this once at the module's end, not once per test; and the wait is left to
        whoever applies one of those namespaces again (``apply`` waits for a terminating one), so the next
        module's tests run meanwhile unless they need the same namespace at once."""
        namespaces = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
        for name in namespaces:
            self.rest.request("DELETE", f"/api/v1/namespaces/{name}/pods", query={"gracePeriodSeconds": "0"})
        for doc in reversed(docs):
            meta = doc["metadata"]
            if meta.get("namespace") in namespaces:
                continue  # goes with its namespace
            if self.find(doc["apiVersion"], doc["kind"], meta["name"], meta.get("namespace")):
                self.delete(doc["apiVersion"], doc["kind"], meta["name"], meta.get("namespace"))

    def wait_for(self, predicate: Any, timeout: float = 30.0, interval: float = 0.1, what: str = "") -> Any:
        end = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < end:
            try:
                value = predicate()
            except ApiError as exc:
                value, last = None, exc
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(
            f"{self.name}: timed out after {timeout} s waiting for {what or predicate} ({last})"
        )

    # -- Kueue and pods --------------------------------------------------------------------------------

    def workload_for(self, namespace: str, pod_name: str) -> Obj | None:
        """The Workload Kueue created for a plain pod (owner reference to the pod)."""
        for wl in self.list("kueue.x-k8s.io/v1beta2", "Workload", namespace):
            owners = wl["metadata"].get("ownerReferences") or []
            if any(o.get("kind") == "Pod" and o.get("name") == pod_name for o in owners):
                return wl
        return None

    def wait_for_pod_phase(
        self, namespace: str, name: str, phases: Sequence[str] | str, timeout: float = 60
    ) -> Obj:
        wanted = {phases} if isinstance(phases, str) else set(phases)

        def phase() -> Obj | None:
            pod = self.find("v1", "Pod", name, namespace)
            return pod if pod and pod.get("status", {}).get("phase") in wanted else None

        return self.wait_for(phase, timeout, what=f"pod {namespace}/{name} in {sorted(wanted)}")

    def preempt_pod(self, namespace: str, name: str, cluster_queue: str = "gpu-private") -> Obj:
        """Make real Kueue preempt the pod: allow preemption of lower priorities in its ClusterQueue, then
        submit a pod of a higher WorkloadPriorityClass that needs every GPU of the pod's flavor (returned)."""
        pod = self.get("v1", "Pod", name, namespace)
        tier = (pod["spec"].get("nodeSelector") or {}).get("mlp.io/gpu-tier")
        if not tier:
            raise ValueError(f"pod {namespace}/{name} is not pinned to a flavor (no mlp.io/gpu-tier)")
        self.rest.merge_patch(
            "kueue.x-k8s.io/v1beta2",
            "ClusterQueue",
            cluster_queue,
            {"spec": {"preemption": {"withinClusterQueue": "LowerPriority"}}},
        )
        self.apply(
            {
                "apiVersion": "kueue.x-k8s.io/v1beta2",
                "kind": "WorkloadPriorityClass",
                "metadata": {"name": "mlp-test-urgent"},
                "value": 1000,
                "description": "a job that may preempt kernels (tests)",
            }
        )
        cq = self.get("kueue.x-k8s.io/v1beta2", "ClusterQueue", cluster_queue)
        quota = next(
            r["nominalQuota"]
            for group in cq["spec"]["resourceGroups"]
            for fl in group["flavors"]
            if fl["name"] == tier
            for r in fl["resources"]
            if r["name"] == "nvidia.com/gpu"
        )
        # A job that runs a while and ends, as the urgent work that preempts a kernel does: it holds every GPU
        # of the flavor for PREEMPTOR_S, then Kueue frees the quota and the kernel's next cell is placed again
        # (a preemptor that never ended kept the next cell queued for good: no product bug, a test that
        # held the quota).
        preemptor = python_pod(
            f"preemptor-{name}"[:63],
            code=f"import time; time.sleep({PREEMPTOR_S})",
            queue=(pod["metadata"].get("labels") or {}).get("kueue.x-k8s.io/queue-name", "kernels"),
            gpus=int(quota),
            node_selector={"mlp.io/gpu-tier": tier},
            priority_class="mlp-test-urgent",
        )
        preemptor["metadata"]["namespace"] = namespace
        return self.create(preemptor)

    def oom_kill_pod(self, namespace: str, name: str) -> None:
        assert self.kubelet is not None
        self.kubelet.oom_kill(namespace, name)

    def reset(self, kueue_yaml: str | None) -> None:
        """Between tests: delete every non-system namespace's pods, claims (and so their volumes) and Kueue
        objects, then load ``kueue_yaml``."""
        namespaces = [
            ns["metadata"]["name"]
            for ns in self.list("v1", "Namespace")
            if ns["metadata"]["name"] not in SYSTEM_NAMESPACES
        ]
        for name in namespaces:
            self.rest.request("DELETE", f"/api/v1/namespaces/{name}/pods", query={"gracePeriodSeconds": "0"})
        self.wait_for(
            lambda: (
                not [p for p in self.list("v1", "Pod") if p["metadata"]["namespace"] not in SYSTEM_NAMESPACES]
            ),
            30,
            what="no test pods left",
        )
        self._reset_volumes(namespaces)
        for kind in KUEUE_KINDS:
            for obj in self.list("kueue.x-k8s.io/v1beta2", kind):
                m = obj["metadata"]
                self.delete("kueue.x-k8s.io/v1beta2", kind, m["name"], m.get("namespace"))
        # Kueue's finalizers keep a deleted queue or flavor for a moment; applying the defaults onto one still
        # terminating would update it, and then it vanishes (a ClusterQueue left without its flavor is
        # Active=False for good)
        self.wait_for(
            lambda: not any(self.list("kueue.x-k8s.io/v1beta2", kind) for kind in KUEUE_KINDS),
            30,
            what="Kueue objects deleted (Kueue's finalizers)",
        )
        if kueue_yaml:
            self.apply_yaml(kueue_yaml)
            try:
                self.wait_for(lambda: not self._inactive_queues(), 30, what="queues Active")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; not Active: {self._inactive_queues()}") from None

    def _inactive_queues(self) -> list[str]:
        """Queues Kueue has not reported Active yet: right after loading one may be ``Active=False`` (its
        flavors or ClusterQueue not seen yet), which the product rightly reads as an unavailable member."""
        inactive = []
        for kind in ("ClusterQueue", "LocalQueue"):
            for q in self.list("kueue.x-k8s.io/v1beta2", kind):
                conds = [
                    c for c in (q.get("status") or {}).get("conditions") or [] if c.get("type") == "Active"
                ]
                if not any(c.get("status") == "True" for c in conds):
                    inactive.append(f"{kind} {q['metadata']['name']} {conds}")
        return inactive

    def _reset_volumes(self, namespaces: list[str]) -> None:
        """Delete the tests' claims: the provisioner reclaims their volumes (``Delete``); other PVs go.

        No pod uses a claim any more, so the real ``kubernetes.io/pvc-protection`` finalizer lets it go."""
        for name in namespaces:
            self.rest.request("DELETE", f"/api/v1/namespaces/{name}/persistentvolumeclaims")
        self.wait_for(
            lambda: (
                not [
                    c
                    for c in self.list("v1", "PersistentVolumeClaim")
                    if c["metadata"]["namespace"] not in SYSTEM_NAMESPACES
                ]
            ),
            30,
            what="no test claims left (pvc-protection)",
        )
        for volume in self.list("v1", "PersistentVolume"):
            if (volume["metadata"].get("annotations") or {}).get(ANN_PROVISIONED_BY) != PROVISIONER:
                self.delete("v1", "PersistentVolume", volume["metadata"]["name"])  # ours are reclaimed
        self.wait_for(
            lambda: not self.list("v1", "PersistentVolume"), 30, what="no PersistentVolumes left (reclaim)"
        )


class RealMembers:
    """``private`` and ``public`` real members sharing one kubeconfig (contexts named after them)."""

    def __init__(self, root: Path, config: dict[str, Any]):
        self.root = root
        self.pki = make_pki(root / "pki")
        options = config.get("kubelet_options", {})
        self.private = RealMember("private", root / "private", self.pki, config["private_nodes"], options)
        self.public = RealMember("public", root / "public", self.pki, config["public_nodes"], options)
        self.members = {"private": self.private, "public": self.public}
        self.config = config
        self.kubeconfig_path = str(root / "kubeconfig")

    def start(self) -> RealMembers:
        # One after the other, from this thread: the processes die with the thread that started them
        # (PR_SET_PDEATHSIG follows the thread, not the process), so a pool's threads cannot start them.
        try:
            for m in self.members.values():
                m.start()
        except BaseException:
            self.stop()
            raise
        Path(self.kubeconfig_path).write_text(
            yaml.safe_dump(kubeconfig_doc({n: m.plane for n, m in self.members.items()}))
        )
        Path(self.kubeconfig_path).chmod(0o600)
        for m in self.members.values():
            m.kubeconfig_path = self.kubeconfig_path
        return self

    def reset(self) -> None:
        self.private.reset(self.config.get("private_kueue"))
        self.public.reset(self.config.get("public_kueue"))

    def stop(self) -> None:
        """Stop both members side by side (each API server drains its watches for seconds on SIGTERM)."""
        with ThreadPoolExecutor(len(self.members)) as pool:
            for stopped in [pool.submit(m.stop) for m in self.members.values()]:
                stopped.result()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.members.values())
