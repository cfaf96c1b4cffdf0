"""Assembling test clusters: a member (apiserver + scheduler + kubelet + Kueue) and a Karmada control plane.

``Member`` adds the operations tests need on top of ``KubeApiServer``: nodes (add, change capacity, taint),
Kueue objects from YAML, preempting a pod, OOM-killing its process. ``KubeMembers`` is what the
``kube_members`` fixture returns: private + public members and the Karmada plane sharing one kubeconfig.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .controllers.karmada import Karmada
from .controllers.kubelet import Kubelet
from .controllers.kueue import Kueue
from .controllers.scheduler import Scheduler
from .kubeconfig import write_kubeconfig
from .server import KubeApiServer
from .store import Obj


@dataclass(frozen=True)
class NodeSpec:
    """A fake node: its labels, taints and capacity (``allocatable`` equals capacity)."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    capacity: dict[str, str] = field(default_factory=lambda: {"cpu": "32", "memory": "256Gi", "pods": "110"})

    def manifest(self) -> Obj:
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", **self.labels}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels},
            "spec": {"taints": [dict(t) for t in self.taints]} if self.taints else {},
            "status": {"capacity": dict(self.capacity), "allocatable": dict(self.capacity)},
        }


class Member(KubeApiServer):
    """A member cluster: the API plus scheduler, kubelet and Kueue controllers."""

    def __init__(
        self,
        name: str,
        *,
        nodes: Sequence[NodeSpec] = (),
        kueue: bool = True,  # type: ignore[assignment]
        kubelet_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(name, **kwargs)
        for node in nodes:
            self.add_node(node)
        self.scheduler = self.add_controller(Scheduler(self))
        self.kubelet: Kubelet = self.add_controller(Kubelet(self, **(kubelet_options or {})))  # type: ignore[assignment]
        # Kueue kinds come from the upstream CRDs; without them this member runs without Kueue.
        has_kueue = self.registry.lookup("kueue.x-k8s.io", "v1beta2", "workloads") is not None
        self.kueue: Kueue | None = (
            self.add_controller(Kueue(self)) if kueue and has_kueue else None  # type: ignore[assignment]
        )

    # -- nodes ---------------------------------------------------------------------------------------

    def add_node(self, node: NodeSpec) -> Obj:
        return self.create(node.manifest())

    def set_node_capacity(self, node: str, **resources: str | int) -> Obj:
        """Set capacity and allocatable of ``node``; keyword ``nvidia_com_gpu`` means ``nvidia.com/gpu``."""
        values = {k.replace("nvidia_com_", "nvidia.com/"): str(v) for k, v in resources.items()}

        def apply(n: Obj) -> None:
            st = n.setdefault("status", {})
            st.setdefault("capacity", {}).update(values)
            st.setdefault("allocatable", {}).update(values)

        updated = self.store.mutate(self.registry.get("", "nodes"), None, node, apply)
        if updated is None:
            raise KeyError(f"no node {node!r} on member {self.name!r}")
        return updated

    def set_node_taints(self, node: str, taints: list[dict[str, str]]) -> Obj | None:
        return self.store.mutate(
            self.registry.get("", "nodes"),
            None,
            node,
            lambda n: n["spec"].__setitem__("taints", copy.deepcopy(taints)),
        )

    # -- Kueue and pods ------------------------------------------------------------------------------

    def load_kueue(self, yaml_text_or_path: str | Path) -> list[Obj]:
        """Apply ResourceFlavor / ClusterQueue / LocalQueue / WorkloadPriorityClass (and Namespace) YAML."""
        return self.apply_yaml(yaml_text_or_path)

    def preempt_pod(
        self, namespace: str, name: str, message: str = "Preempted to accommodate a higher priority Workload"
    ) -> Obj:
        """Do what Kueue does to a preempted plain Pod: evict its Workload and delete the Pod."""
        if self.kueue is None:
            raise RuntimeError(f"member {self.name!r} runs without Kueue")
        return self.kueue.preempt(namespace, name, message=message)

    def oom_kill_pod(self, namespace: str, name: str) -> None:
        """Kill the pod's process; its container terminates with reason OOMKilled, exit code 137."""
        self.kubelet.oom_kill(namespace, name)

    def workload_for(self, namespace: str, pod_name: str) -> Obj | None:
        pod = self.find("v1", "Pod", pod_name, namespace)
        if pod is None:
            return None
        return next(
            (
                w
                for w in self.list("kueue.x-k8s.io/v1beta2", "Workload", namespace)
                if (w["metadata"].get("labels") or {}).get("kueue.x-k8s.io/job-uid") == pod["metadata"]["uid"]
            ),
            None,
        )

    def wait_for_pod_phase(
        self, namespace: str, name: str, phases: str | tuple[str, ...], timeout: float = 60.0
    ) -> Obj:
        wanted = (phases,) if isinstance(phases, str) else phases

        def check() -> Obj | None:
            pod = self.find("v1", "Pod", name, namespace)
            return pod if pod is not None and pod.get("status", {}).get("phase") in wanted else None

        return self.wait_for(check, timeout, what=f"pod {namespace}/{name} phase in {wanted}")


class KarmadaPlane(KubeApiServer):
    """The Karmada control plane: Cluster objects for the members and the cluster proxy."""

    def __init__(
        self,
        name: str,
        members: dict[str, KubeApiServer],
        *,
        cluster_specs: dict[str, dict[str, Any]] | None = None,
        cluster_labels: dict[str, dict[str, str]] | None = None,
        **kwargs: Any,
    ):
        super().__init__(name, **kwargs)
        self.karmada: Karmada = self.add_controller(  # type: ignore[assignment]
            Karmada(self, members, cluster_specs, cluster_labels)
        )

    def set_member_ready(self, member: str, ready: bool) -> None:
        self.karmada.set_ready(member, ready)

    def proxy_url(self, member: str) -> str:
        return f"{self.url}/apis/cluster.karmada.io/v1alpha1/clusters/{member}/proxy"


@dataclass
class KubeMembers:
    """What ``kube_members`` yields: ``private``, ``public``, ``karmada`` and their shared kubeconfig."""

    private: Member
    public: Member
    karmada: KarmadaPlane
    kubeconfig_path: str

    @property
    def members(self) -> dict[str, Member]:
        return {"private": self.private, "public": self.public}

    def __iter__(self) -> Any:
        return iter((self.private, self.public, self.karmada))

    def stop(self) -> None:
        for server in (self.karmada, self.public, self.private):
            server.stop()


def start_members(
    tmp_dir: str | Path,
    *,
    crd_dir: str | Path | None,
    private_nodes: list[NodeSpec],
    public_nodes: list[NodeSpec],
    private_kueue: str | None = None,
    public_kueue: str | None = None,
    kubelet_options: dict[str, Any] | None = None,
    karmada_labels: dict[str, dict[str, str]] | None = None,
    karmada_specs: dict[str, dict[str, Any]] | None = None,
) -> KubeMembers:
    """Start private + public members and a Karmada plane; write one kubeconfig with three contexts."""
    tmp = Path(tmp_dir)
    started: list[KubeApiServer] = []
    try:
        private = Member(
            "private",
            nodes=private_nodes,
            crd_dir=crd_dir,
            kubelet_options={"root_dir": tmp / "kubelet-private", **(kubelet_options or {})},
        )
        private.start()
        started.append(private)
        public = Member(
            "public",
            nodes=public_nodes,
            crd_dir=crd_dir,
            kubelet_options={"root_dir": tmp / "kubelet-public", **(kubelet_options or {})},
        )
        public.start()
        started.append(public)
        karmada = KarmadaPlane(
            "karmada",
            {"private": private, "public": public},
            crd_dir=crd_dir,
            cluster_labels=karmada_labels,
            cluster_specs=karmada_specs,
        )
        karmada.start()
        started.append(karmada)
        if private_kueue:
            private.load_kueue(private_kueue)
        if public_kueue:
            public.load_kueue(public_kueue)
        path = write_kubeconfig(tmp / "kubeconfig.yaml", {s.name: s.url for s in started}, current="private")
        for server in started:
            server.kubeconfig_path = str(path)
            server.context = server.name
        return KubeMembers(private, public, karmada, str(path))
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
