"""The placement policy as immutable values: members, flavors, tiers, the burst rule's knobs, data classes.

An admin writes the policy as YAML (see ``docs/policy.md``); ``policy_load`` turns it into these values after
validating every field. Everything downstream (``decide``, the gateway's ``%gpu`` validation, the backends,
the simulator) reads these frozen dataclasses and never the raw YAML, so a field's meaning is fixed in one
place. Field semantics, defaults and validation are documented here, where each field is declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from .release import ReleaseRule
from .types import GpuRequest

Backend = Literal["local", "kubernetes"]
HealthSource = Literal["karmada", "static"]


def _frozen_map(value: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Member:
    """A cluster (or, for the ``local`` backend, this machine) that can run GPU kernels.

    - ``public``: True for a public-cloud member (AWS); placement prefers private members and only bursts to a
      public one under the burst rule. Default False.
    - ``backend``: ``kubernetes`` (pods on a cluster, default) or ``local`` (subprocess kernels on this
      machine).
    - ``namespace`` / ``local_queue``: where kernel pods go and the Kueue LocalQueue they are labelled with;
      required for ``kubernetes``, optional (None) for ``local``.
    - ``cluster_queue``: the ClusterQueue behind ``local_queue``; used to read quota and usage. When None, the
      state adapters follow ``LocalQueue.spec.clusterQueue``.
    - ``kubeconfig_context`` / ``karmada_cluster`` / ``in_cluster``: how to reach the member's API server
      (a kubeconfig context, the Karmada proxy path of that Cluster, or the pod's service account).
    - ``health``: ``karmada`` (the Karmada Cluster's Ready condition decides) or ``static`` (assumed healthy;
      only a stopped ClusterQueue takes it out). Default ``karmada`` when ``karmada_cluster`` is set.
    - ``display_name``: how messages name the member ("AWS"); defaults to ``name``.
    """

    name: str
    public: bool = False
    backend: Backend = "kubernetes"
    namespace: str | None = None
    local_queue: str | None = None
    cluster_queue: str | None = None
    kubeconfig_context: str | None = None
    karmada_cluster: str | None = None
    in_cluster: bool = False
    health: HealthSource = "static"
    display_name: str = ""

    @property
    def label(self) -> str:
        return self.display_name or self.name


@dataclass(frozen=True)
class Flavor:
    """A Kueue ResourceFlavor on one member: a GPU pool of one tier.

    - ``member``: name of the member that has this flavor.
    - ``tier`` / ``tier_rank``: the tier name and its index in ``Policy.tiers`` (0 = lowest/cheapest,
      preferred).
    - ``gpu_models``: GPU models the pool offers, canonical spelling (user input matches case-insensitively).
    - ``node_labels``: the label(s) that pin a pod to this flavor (``nodeSelector``), e.g.
      ``{"mlp.io/gpu-tier": "silver"}``; equal to the ResourceFlavor's ``spec.nodeLabels``.
    - ``tolerations``: tolerations a pod needs to land on the pool (opt-in pools with taints).
    - ``price_per_gpu_hour``: what one GPU-hour costs (0 for owned hardware); shown to users.
    - ``capacity_gpus``: declared number of GPUs; used when there is no live state (local backend, simulator,
      ``mlp-kernel place`` without ``--state``). None = unknown (no limit assumed).
    - ``gpu_resource``: the extended resource name, default ``nvidia.com/gpu``.
    """

    name: str
    member: str
    tier: str
    tier_rank: int
    gpu_models: tuple[str, ...]
    node_labels: Mapping[str, str] = field(default_factory=_frozen_map)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    price_per_gpu_hour: float = 0.0
    capacity_gpus: int | None = None
    gpu_resource: str = "nvidia.com/gpu"

    def offers(self, model: str) -> bool:
        """Whether the pool has ``model`` (case-insensitive)."""
        m = model.casefold()
        return any(g.casefold() == m for g in self.gpu_models)

    def model_for(self, model: str | None) -> str:
        """The canonical model name this flavor would give for ``model`` (its first model when None)."""
        if model is not None:
            m = model.casefold()
            for g in self.gpu_models:
                if g.casefold() == m:
                    return g
        return self.gpu_models[0]


@dataclass(frozen=True)
class BurstSettings:
    """The burst rule's knobs.

    - ``threshold_s`` (X): how long a request may wait for a private GPU before it may burst. Default 600 s.
    - ``deadline_horizon_s`` (H): a deadline closer than H shrinks X linearly (X_eff = X * ttd / H).
      Default 2 h.
    - ``enabled``: False turns bursting off for everyone (requests only a public flavor serves are rejected).
    """

    threshold_s: float = 600.0
    deadline_horizon_s: float = 7200.0
    enabled: bool = True


@dataclass(frozen=True)
class SnapshotSettings:
    """Variable snapshots across a GPU release (used by the gateway, not by placement).

    - ``enabled``: snapshot the namespace before releasing an idle kernel. Default True.
    - ``max_bytes``: cap on bytes written; the smallest variables are saved first and the rest are named
      "over the size cap". Default 2 GiB.
    - ``exclude``: variable names (globs) never snapshotted.
    - ``storage``: where snapshots go; ``{"kind": "local"}`` by default.
    """

    enabled: bool = True
    max_bytes: int = 2 * 1024**3
    exclude: tuple[str, ...] = ()
    storage: Mapping[str, Any] = field(default_factory=lambda: _frozen_map({"kind": "local"}))


@dataclass(frozen=True)
class Policy:
    """A validated placement policy. Build with ``load_policy`` / ``parse_policy``, not by hand.

    ``idle_timeout_s`` is how long a 1-GPU kernel may sit idle; ``release`` says how that applies to bigger
    kernels (``release.idle_limit_s`` computes it; default ``gpu-minutes`` with a 3 min floor).
    """

    members: Mapping[str, Member]
    flavors: Mapping[str, Flavor]
    tiers: tuple[str, ...]
    burst: BurstSettings = field(default_factory=BurstSettings)
    private_data_classes: frozenset[str] = frozenset()
    data_classes: frozenset[str] = frozenset()
    idle_timeout_s: float = 900.0
    release: ReleaseRule = field(default_factory=ReleaseRule)
    default_request: GpuRequest = field(default_factory=GpuRequest)
    snapshot: SnapshotSettings = field(default_factory=SnapshotSettings)
    launch_timeout_s: float = 1800.0
    max_gpus: int = 8
    source: str = "<string>"

    def gpu_models(self) -> list[str]:
        """All GPU models offered, in file order, without duplicates (canonical spelling)."""
        seen: dict[str, str] = {}
        for f in self.flavors.values():
            for g in f.gpu_models:
                seen.setdefault(g.casefold(), g)
        return list(seen.values())

    def canonical_model(self, text: str) -> str | None:
        """The policy's spelling of a model typed by a user (``"a100"`` -> ``"A100"``), or None if unknown."""
        key = text.strip().casefold()
        for g in self.gpu_models():
            if g.casefold() == key:
                return g
        return None

    def flavors_of(self, member: str) -> list[Flavor]:
        return [f for f in self.flavors.values() if f.member == member]

    def public_members(self) -> list[Member]:
        return [m for m in self.members.values() if m.public]

    def private_members(self) -> list[Member]:
        return [m for m in self.members.values() if not m.public]

    def may_leave_private(self, data_class: str | None) -> bool:
        """Whether data of this class may be processed on a public member.

        Unknown classes (not declared in ``data_classes``) stay private: a typo must not send data out.
        """
        if data_class is None:
            return True
        if data_class in self.private_data_classes:
            return False
        return not self.data_classes or data_class in self.data_classes
