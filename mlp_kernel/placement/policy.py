"""The placement policy as immutable values: members, flavors, tiers, the burst rule's knobs, data classes.

An admin writes the policy as YAML (see ``docs/policy.md``); ``policy_load`` turns it into these values after
validating every field. Everything downstream (``decide``, the gateway's ``%gpu`` validation, the backends,
the simulator) reads these frozen dataclasses and never the raw YAML, so a field's meaning is fixed in one
place. Each field the file may hold is declared here once with ``policy_field`` (``schema.py``): its YAML key,
meaning, kind, range and default. The loader reads the file by walking those declarations and the tables of
``docs/policy.md`` are generated from them (``python -m mlp_kernel.placement.policy_doc --write``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from .release import ReleaseRule
from .schema import DNS_LABEL, DNS_SUBDOMAIN, policy_field
from .types import GpuRequest

Backend = Literal["local", "kubernetes"]
HealthSource = Literal["karmada", "static"]
BACKENDS: tuple[Backend, ...] = ("local", "kubernetes")
HEALTH_SOURCES: tuple[HealthSource, ...] = ("karmada", "static")
LocalWorkdir = Literal["notebook", "empty"]
Transport = Literal["direct", "ingress"]
TRANSPORTS: tuple[Transport, ...] = ("direct", "ingress")
IngressKind = Literal["httproute", "ingress"]
INGRESS_KINDS: tuple[IngressKind, ...] = ("httproute", "ingress")
QUEUE_SUMMARY_REF = re.compile(DNS_LABEL.pattern[:-1] + "/" + DNS_SUBDOMAIN.pattern[1:])  # namespace/name
INGRESS_URL = re.compile(r"^wss?://[^/\s?#]+(/[^\s?#]*)?$")
LOCAL_WORKDIRS: tuple[LocalWorkdir, ...] = ("notebook", "empty")

MAX_GPUS = 1024  # per kernel
MAX_CAPACITY = 1_000_000  # GPUs in one flavor
MAX_PRICE = 100_000.0  # dollars per GPU-hour: a typo guard; NaN and infinity are refused too
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # set on each GPU node by NVIDIA GPU feature discovery (GFD)


def _frozen_map(value: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Tenancy:
    """A member's namespace per user (or per team): templates filled from the server's identity once per
    gateway (``tenancy.resolve_policy``), so the backend and placement read ``Member.namespace`` as before.
    docs/design.md, "Tenancy"; the name rule is ``tenancy.identity_part``."""

    namespace: str = policy_field(
        "namespace",
        "the namespace kernel pods, their Secrets and Leases are created in, as a template: `{username}` "
        "(or `{team}`) is the server's identity as a DNS label, without collisions (`user-{username}`)",
        "string",
        default="",
        required=True,
        hint="a template such as user-{username}",
        rule="a DNS label once the placeholder is filled in; at most one placeholder, once, and room for "
        "20 characters of it (43 characters of fixed text at most)",
    )
    local_queue: str | None = policy_field(
        "local_queue",
        "the Kueue LocalQueue in that namespace, a template like `namespace`",
        "string",
        default=None,
        default_doc="the member's `local_queue`",
        rule="a DNS subdomain once filled in; required when the member has no `local_queue`",
    )
    service_account: str | None = policy_field(
        "service_account",
        "the ServiceAccount kernel pods run as in that namespace (the pod template's "
        "`kernel_service_account_name`), a template like `namespace`",
        "string",
        default=None,
        default_doc="the kernelspec's `service_account`",
        rule="a DNS subdomain once filled in",
    )


@dataclass(frozen=True)
class Member:
    """A cluster (or, for the ``local`` backend, this machine) that can run GPU kernels; ``name`` is its key
    under ``members`` (a DNS label). ``label`` is how messages name it."""

    name: str
    public: bool = policy_field(
        "public", "a public-cloud member (AWS): used only under the burst rule", "boolean", default=False
    )
    backend: Backend = policy_field(
        "backend",
        "`kubernetes` (kernel pods on the cluster) or `local` (ipykernel subprocesses on this machine)",
        "choice",
        default="kubernetes",
        choices=BACKENDS,
    )
    namespace: str | None = policy_field(
        "namespace",
        "namespace kernel pods are created in",
        "string",
        default=None,
        required_if=("backend", "kubernetes"),
        pattern=DNS_LABEL,
        hint="the namespace kernel pods are created in",
        rule="not needed when `tenancy` is given",
    )
    local_queue: str | None = policy_field(
        "local_queue",
        "Kueue LocalQueue the pods are labelled with (`kueue.x-k8s.io/queue-name`)",
        "string",
        default=None,
        required_if=("backend", "kubernetes"),
        pattern=DNS_SUBDOMAIN,
        hint="the Kueue LocalQueue kernel pods are labelled with",
        rule="not needed when `tenancy.local_queue` is given",
    )
    cluster_queue: str | None = policy_field(
        "cluster_queue",
        "the ClusterQueue behind `local_queue`, read for quota and usage",
        "string",
        default=None,
        pattern=DNS_SUBDOMAIN,
        default_doc="followed from `LocalQueue.spec.clusterQueue`",
    )
    queue_summary: str | None = policy_field(
        "queue_summary",
        "`namespace/name` of the ConfigMap that `mlp-kernel queue-summary` publishes the member's Workload "
        "counters in: gateways watch that one object instead of every Workload (admin guide, many users)",
        "string",
        default=None,
        pattern=QUEUE_SUMMARY_REF,
        default_doc="none (each gateway watches the Workloads itself)",
    )
    kubeconfig_context: str | None = policy_field(
        "kubeconfig_context",
        "kubeconfig context used to reach the member",
        "string",
        default=None,
        default_doc="none (current context)",
    )
    karmada_cluster: str | None = policy_field(
        "karmada_cluster",
        "name of the member's Karmada `Cluster` (health, and the proxy path "
        "`/apis/cluster.karmada.io/v1alpha1/clusters/<name>/proxy`)",
        "string",
        default=None,
    )
    in_cluster: bool = policy_field(
        "in_cluster", "use the pod's service account instead of a kubeconfig", "boolean", default=False
    )
    health: HealthSource = policy_field(
        "health",
        "how health is known: `karmada` (the Cluster's `Ready` condition) or `static` (assumed healthy; "
        "a stopped ClusterQueue still takes it out)",
        "choice",
        default="static",
        choices=HEALTH_SOURCES,
        default_doc="`karmada` when `karmada_cluster` is set, else `static`",
        rule="`karmada` needs `karmada_cluster`",
    )
    display_name: str = policy_field(
        "display_name",
        'how messages name the member ("AWS gold at $4.10/h")',
        "string",
        default="",
        default_doc="the member name",
    )
    gpu_product_label: str = policy_field(
        "gpu_product_label",
        "the node label that names a node's GPU model: what a request that names a model is pinned by "
        "(values per model in the flavor's `gpu_products`); NVIDIA GPU feature discovery sets "
        "`nvidia.com/gpu.product`",
        "string",
        default=GPU_PRODUCT_LABEL,
        rule="a valid label key",
    )
    workspace_claim: str | None = policy_field(
        "workspace_claim",
        "the user's workspace volume (the PersistentVolumeClaim the notebook server mounts, ReadWriteMany), "
        "mounted in kernel pods at `workspace_path`, so the kernel sees the notebook's files and starts in "
        "its directory; `{username}` is replaced by the user's name as a DNS label (`home-{username}`)",
        "string",
        default=None,
        default_doc="none (pods start in the template's `workingDir`, with nothing of the user's)",
        rule="a DNS subdomain once `{username}` is filled in; not on a public member (sync files there with "
        "`workspace_sync`)",
    )
    workspace_path: str = policy_field(
        "workspace_path",
        "where the notebook server mounts the workspace (its root directory): the same path in the pod, so "
        "a notebook at `<workspace_path>/a/b.ipynb` runs in `<workspace_path>/a`",
        "string",
        default="/home/jovyan",
        rule="an absolute path",
    )
    packages_claim: str | None = policy_field(
        "packages_claim",
        "a per-user volume for installed packages and the wheel cache, mounted at `packages_path`: "
        "`%pip install` in a kernel goes there (`PIP_USER=1`, `PYTHONUSERBASE`, `PIP_CACHE_DIR`) and the "
        "next kernel pod still has it; `{username}` as in `workspace_claim`",
        "string",
        default=None,
        default_doc="none (packages installed in a kernel are gone with its pod)",
        rule="as `workspace_claim`",
    )
    packages_path: str = policy_field(
        "packages_path",
        "where `packages_claim` is mounted in the pod",
        "string",
        default="/opt/mlp-kernel/packages",
        rule="an absolute path, not inside `workspace_path`",
    )
    tenancy: Tenancy | None = policy_field(
        "tenancy",
        "a namespace per user or per team instead of the static `namespace` (section "
        "`members.<name>.tenancy` below); the static `namespace` is then not used and not required",
        default=None,
        default_doc="none (every user's kernels in `namespace`)",
        rule="see below; only for `kubernetes` members",
    )
    service_account: str | None = None  # the resolved tenancy.service_account (None: the kernelspec's)
    local_workdir: LocalWorkdir = policy_field(
        "local_workdir",
        "`backend: local` only: where its kernels start; `notebook` (the notebook's directory, as the "
        "private member's shared volume shows it) or `empty` (a new empty directory, removed at release: "
        "what a pod on a public member sees, so only `workspace_sync` brings the user's files)",
        "choice",
        default="notebook",
        choices=LOCAL_WORKDIRS,
    )

    transport: Transport = policy_field(
        "transport",
        "how the gateway reaches a kernel pod: `direct` (the pod IP and five ZeroMQ ports, a flat "
        "network) or `ingress` (one TLS port: the member's ingress, a WebSocket per ZeroMQ connection to "
        "the pod's bridge; docs/admin-guide.md, 5b)",
        "choice",
        default="direct",
        choices=TRANSPORTS,
    )
    ingress_url: str | None = policy_field(
        "ingress_url",
        "`transport: ingress`: the member's kernel listener (`wss://kernels.gpu.example.com`); a kernel is "
        "reached at `<ingress_url>/kernels/<pod>/<channel>`",
        "string",
        default=None,
        required_if=("transport", "ingress"),
        pattern=INGRESS_URL,
        hint="wss://<host>[:port][/path] of the member's ingress for kernels",
    )
    ingress_kind: IngressKind = policy_field(
        "ingress_kind",
        "`transport: ingress`: the route object made per kernel, `httproute` (Gateway API: Istio, Cilium, "
        "Envoy Gateway, AWS) or `ingress` (networking.k8s.io Ingress: ingress-nginx)",
        "choice",
        default="httproute",
        choices=INGRESS_KINDS,
    )
    ingress_parent: str | None = policy_field(
        "ingress_parent",
        "`transport: ingress`: the Gateway the HTTPRoutes attach to (`<namespace>/<name>`, or `<name>` in "
        "the kernels' namespace), or the IngressClass of the Ingresses",
        "string",
        default=None,
        required_if=("transport", "ingress"),
        hint="the Gateway (namespace/name) or IngressClass kernel routes attach to",
    )

    @property
    def label(self) -> str:
        return self.display_name or self.name


@dataclass(frozen=True)
class Flavor:
    """A Kueue ResourceFlavor on one member: a GPU pool of one tier. ``name`` is its key under ``flavors``
    (the ResourceFlavor's name); ``tier_rank`` is the tier's index in ``Policy.tiers`` (0 = lowest/cheapest,
    preferred)."""

    name: str
    member: str = policy_field(
        "member", "the member that has this pool", "string", default="", required=True,
        hint="the member that has this pool", rule="must name a member",
    )  # fmt: skip
    tier: str = policy_field(
        "tier", "the pool's tier", "string", default="", required=True, hint="one of the names in tiers",
        rule="must be in `tiers` when `tiers` is given",
    )  # fmt: skip
    tier_rank: int = 0
    gpu_models: tuple[str, ...] = policy_field(
        "gpu_models",
        "GPU models the pool offers, canonical spelling (`%gpu a100` matches `A100`)",
        "strings",
        default=(),
        required=True,
        rule="non-empty, unique case-insensitively",
    )
    node_labels: Mapping[str, str] = policy_field(
        "node_labels",
        "the label(s) that pin a pod to this flavor; equal to the ResourceFlavor's `spec.nodeLabels`",
        default_factory=_frozen_map,
        rule="required for `kubernetes` members; valid label keys/values; all flavors of one member must "
        "share a key (Kueue only compares keys a flavor defines, so without a common key a `nodeSelector` "
        "cannot pin)",
    )
    tolerations: tuple[Mapping[str, Any], ...] = policy_field(
        "tolerations",
        "tolerations a pod needs for a tainted (opt-in) pool",
        default=(),
        rule="list of `{key, operator: Equal\\|Exists, value, effect: "
        "NoSchedule\\|PreferNoSchedule\\|NoExecute, tolerationSeconds}`",
    )
    price_per_gpu_hour: float = policy_field(
        "price_per_gpu_hour",
        "what one GPU-hour costs, shown to users (`price_per_hour` = this x GPU count)",
        "number",
        default=0.0,
        required=True,
        minimum=0.0,
        maximum=MAX_PRICE,
    )
    capacity_gpus: int | None = policy_field(
        "capacity_gpus",
        "declared number of GPUs; used when there is no live state (local backend, simulator, "
        "`mlp-kernel place` without `--state`)",
        "integer",
        default=None,
        minimum=0,
        maximum=MAX_CAPACITY,
        default_doc="none (then `max_gpus` is assumed free)",
        rule="required for `local` members",
    )
    warm_pool: int = policy_field(
        "warm_pool",
        "kernels of `warm_pool_gpus` GPUs kept started on this flavor for any user's cold start to claim "
        "(the claimed kernel gets the user's key, directory and variables; the pool refills in the "
        "background). They hold GPUs while nobody uses them, accounted to the platform (team `platform`), "
        "so keep it at 0 on public members, where every held GPU-hour is paid",
        "integer",
        default=0,
        minimum=0,
        maximum=1000,
    )
    warm_pool_gpus: int = policy_field(
        "warm_pool_gpus",
        "GPUs of each warm-pool kernel; a cold start claims one only when it asks for exactly this many",
        "integer",
        default=1,
        minimum=1,
        maximum=1024,
    )
    warm_pool_idle_s: float = policy_field(
        "warm_pool_idle",
        "a warm-pool kernel nobody claims for this long is given back, and the pool refills only on the "
        "next cold start on this flavor (claimed or missed): the pool follows demand, so nights and "
        "weekends do not hold GPUs for nobody",
        "duration",
        default=900.0,
    )
    gpu_resource: str = policy_field(
        "gpu_resource", "the extended resource name", "string", default="nvidia.com/gpu"
    )
    gpu_products: Mapping[str, tuple[str, ...]] = policy_field(
        "gpu_products",
        "for each of `gpu_models`, the value(s) of the member's `gpu_product_label` its nodes carry (GFD's "
        "product strings, one or a list: `A100: [NVIDIA-A100-SXM4-80GB, NVIDIA-A100-SXM4-40GB]`); a "
        "request that names a model is pinned to those nodes, so `%gpu h100` never lands on an A100 node",
        default_factory=_frozen_map,
        default_doc="none (the flavor's label pins; no model pin)",
        rule="keys are models of `gpu_models`; values valid label values; required for every model of a "
        "`kubernetes` flavor that offers several models (without it a named model cannot be pinned)",
    )

    def offers(self, model: str) -> bool:
        """Whether the pool has ``model`` (case-insensitive)."""
        m = model.casefold()
        return any(g.casefold() == m for g in self.gpu_models)

    def products(self, model: str) -> tuple[str, ...]:
        """The product label values that pin ``model`` on this flavor's nodes; empty when there is no pin."""
        m = model.casefold()
        return next((v for g, v in self.gpu_products.items() if g.casefold() == m), ())

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
    """The burst rule's knobs (policy section ``burst``)."""

    enabled: bool = policy_field(
        "enabled",
        "bursting to public members at all; `false`: requests only a public flavor serves are rejected",
        "boolean",
        default=True,
    )
    threshold_s: float = policy_field(
        "threshold",
        "X: how long a request waits for a private GPU before it may burst",
        "duration",
        default=600.0,
    )
    deadline_horizon_s: float = policy_field(
        "deadline_horizon",
        "H: a deadline closer than H shrinks X linearly: `X_eff = X * clamp(time_to_deadline / H, 0, 1)`",
        "duration",
        default=7200.0,
        positive=True,
    )


@dataclass(frozen=True)
class BudgetSettings:
    """Public GPU spend limits per calendar month (UTC), in US dollars (policy section ``budgets``).

    Spend is what public kernels actually ran (GPU-seconds x the flavor's ``price_per_gpu_hour``), summed
    from the budget ledger (docs/design.md, "Budgets"). ``*_soft``: past it, a burst still happens but says
    so; ``*_monthly`` (hard): past it, no new bursts (private pools still serve). Unset: no limit."""

    team_monthly: float | None = policy_field(
        "team_monthly", "hard limit on a team's public GPU spend per month (USD): no new bursts past it",
        "number", default=None, default_doc="none (unlimited)", maximum=1e9,
    )  # fmt: skip
    team_soft: float | None = policy_field(
        "team_soft", "soft limit on a team's public GPU spend per month (USD): bursts warn past it",
        "number", default=None, default_doc="none", maximum=1e9, rule="at most `team_monthly`",
    )  # fmt: skip
    user_monthly: float | None = policy_field(
        "user_monthly", "hard limit on one user's public GPU spend per month (USD)",
        "number", default=None, default_doc="none (unlimited)", maximum=1e9,
    )  # fmt: skip
    user_soft: float | None = policy_field(
        "user_soft", "soft limit on one user's public GPU spend per month (USD)",
        "number", default=None, default_doc="none", maximum=1e9, rule="at most `user_monthly`",
    )  # fmt: skip
    ledger_member: str | None = policy_field(
        "ledger_member",
        "the kubernetes member whose API server keeps the ledger (a ConfigMap per team and month, shared "
        "by every user's gateway)",
        "string", default=None, default_doc="none: a file under the user's Jupyter data dir (one user)",
        rule="a `kubernetes` member",
    )  # fmt: skip
    ledger_namespace: str = policy_field(
        "ledger_namespace", "namespace of the ledger ConfigMaps on `ledger_member`", "string",
        default="mlp-kernel", pattern=DNS_LABEL,
    )  # fmt: skip
    record_every_s: float = policy_field(
        "record_every", "how often a running public kernel's spend is written to the ledger (and at release)",
        "duration", default=300.0, positive=True,
    )  # fmt: skip

    @property
    def limited(self) -> bool:
        limits = (self.team_monthly, self.team_soft, self.user_monthly, self.user_soft)
        return any(v is not None for v in limits)


@dataclass(frozen=True)
class DataClassDefault:
    """One of ``data_classes.defaults``: the class the admin sets for the notebooks it matches. Exactly one
    of ``team``, ``namespace`` and ``path`` is set (``tenancy.admin_data_class`` applies them)."""

    data_class: str
    team: str | None = None
    namespace: str | None = None  # the notebook server's own namespace (a Kubeflow profile)
    path: str | None = None  # a glob on the notebook's path, from the server's root


@dataclass(frozen=True)
class DataClassSettings:
    """The ``data_classes`` section as written; ``Policy.data_classes`` and ``private_data_classes`` are what
    placement reads."""

    known: tuple[str, ...] = policy_field(
        "known",
        "every data class users may declare (`%gpu data=C`)",
        "strings",
        default=(),
        default_doc="none (then any class is accepted)",
    )
    keep_private: tuple[str, ...] = policy_field(
        "keep_private",
        "classes that never leave private members",
        "strings",
        default=(),
        rule="each must be in `known` when `known` is given",
    )
    defaults: tuple[DataClassDefault, ...] = policy_field(
        "defaults",
        "the class the admin sets for a team's, a namespace's or a path's notebooks: a list of "
        "`{team: T, class: C}`, `{namespace: N, class: C}` (the notebook server's own namespace) or "
        "`{path: GLOB, class: C}` (the notebook's path from the server's root); where several match, a "
        "class that must stay private wins. Users may only make it stricter: `%gpu data=` naming a class "
        "that may leave private members is refused on a notebook whose admin class may not",
        default=(),
        default_doc="none (the notebook has the class the user declares)",
        rule="each entry has `class` and exactly one of `team`, `namespace`, `path`; `class` must be "
        "declared in `known` or `keep_private`",
    )


@dataclass(frozen=True)
class SnapshotSettings:
    """Variable snapshots across a GPU release (used by the gateway, not by placement)."""

    enabled: bool = policy_field(
        "enabled",
        "snapshot the kernel's variables before an idle release, restore them on the next GPU kernel",
        "boolean",
        default=True,
    )
    max_bytes: int = policy_field(
        "max_size",
        "cap on the bytes a snapshot writes: the smallest variables are saved first, the rest are named "
        '"over the size cap" (users may lower it with `%gpu keep=SIZE`)',
        "size",
        default=2 * 1024**3,
    )
    exclude: tuple[str, ...] = policy_field(
        "exclude", "variable names (globs) never snapshotted", "strings", default=()
    )
    storage: Mapping[str, Any] = policy_field(
        "storage",
        "where snapshots go: `{kind: local, path: DIR}` (the gateway's disk; default path "
        "`<jupyter data dir>/mlp-kernel/snapshots`) or `{kind: volume, claim: PVC, path: "
        "/home/jovyan/.mlp-kernel/snapshots, gateway_path: DIR}` (a per-user RWX volume mounted at `path` in "
        "kernel pods on the private member, never on a public one; `gateway_path`, optional: where the "
        "gateway itself sees that volume, so it can delete snapshots when no kernel runs) or "
        "`{kind: s3, ...}` (a bucket, docs/snapshots.md). `kind: local` with a Kubernetes member saves "
        "nothing (the pod cannot reach the gateway's disk) and says so",
        default_factory=lambda: _frozen_map({"kind": "local"}),
        default_doc="`{kind: local}`",
        rule="checked by `mlp_kernel.snapshot.storage`: `kind` one of local, volume, s3; a volume needs "
        "`claim`; paths absolute; s3 settings as in docs/snapshots.md, and never a secret",
    )


@dataclass(frozen=True)
class WorkspaceSyncSettings:
    """The notebook's directory copied through a bucket to kernels on public members, and results back
    (used by the gateway, ``mlp_kernel.snapshot.sync*``; docs/admin-guide.md, "Files on a burst kernel")."""

    enabled: bool = policy_field(
        "enabled",
        "copy the notebook's directory to a GPU kernel on a public member before its first cell, and the "
        "files it created or changed back at release",
        "boolean",
        default=False,
    )
    max_bytes: int = policy_field(
        "max_size", "most bytes taken in all (smaller files first; the rest are named as over the cap)",
        "size", default=1024**3,
    )  # fmt: skip
    max_file_bytes: int = policy_field(
        "max_file_size", "a larger file is never taken (named, with its size)", "size", default=256 * 1024**2
    )
    max_files: int = policy_field(
        "max_files", "most files taken each way", "integer", default=1000, minimum=1, maximum=100_000
    )
    include: tuple[str, ...] = policy_field(
        "include",
        "the allow-list: only files matching one of these globs are taken (a glob without `/` matches a "
        "file name at any depth, one with `/` the path from the notebook's directory)",
        "strings",
        default=(),
        default_doc="every file",
    )
    exclude: tuple[str, ...] = policy_field(
        "exclude",
        "globs never taken, added to the built-in ones (`.git`, `.ipynb_checkpoints`, `__pycache__`, "
        "virtualenvs, `node_modules`, `.ssh`, `.aws`, `.env`, `*.pem`, `*.key`, `id_rsa*`, `.netrc`)",
        "strings",
        default=(),
    )
    private_only: tuple[str, ...] = policy_field(
        "private_only",
        "globs of files that never leave the private side, whatever the notebook's data class (when "
        "the data class itself must stay private, nothing is taken)",
        "strings",
        default=(),
    )
    storage: Mapping[str, Any] = policy_field(
        "storage",
        "the bucket: the fields of `snapshot.storage` with `kind: s3` (docs/snapshots.md); keys are "
        "`<prefix>/<user>/<kernel id>~workspace/...`, deleted after the files came back",
        default_factory=_frozen_map,
        default_doc="`snapshot.storage` when it is a bucket",
        rule="`kind: s3`, checked as `snapshot.storage`; required when enabled and `snapshot.storage` is "
        "not a bucket",
    )


@dataclass(frozen=True)
class Policy:
    """A validated placement policy. Build with ``load_policy`` / ``parse_policy``, not by hand.

    ``data_classes`` holds every declared class (``known`` and ``keep_private``); ``private_data_classes``
    those that stay private; ``source`` is the file it came from.
    """

    version: int = policy_field("version", "policy format version", default=1, rule="must be `1`")
    tiers: tuple[str, ...] = policy_field(
        "tiers",
        "tier names, **lowest/cheapest first**; placement prefers earlier tiers",
        default=(),
        default_doc="order of first appearance in `flavors`",
        rule="list of unique strings; every flavor's `tier` must be listed",
    )
    members: Mapping[str, Member] = policy_field(
        "members",
        "clusters (or this machine) that run GPU kernels",
        default_factory=_frozen_map,
        required=True,
        rule="mapping name -> member, at least one; names are DNS labels",
    )
    flavors: Mapping[str, Flavor] = policy_field(
        "flavors",
        "GPU pools (Kueue ResourceFlavors), **in preference order within a tier**",
        default_factory=_frozen_map,
        required=True,
        rule="mapping name -> flavor, at least one",
    )
    burst: BurstSettings = policy_field(
        "burst",
        "the burst rule's knobs",
        default_factory=BurstSettings,
        default_doc="see below",
        rule="see below",
    )
    data_classes: frozenset[str] = policy_field(
        "data_classes",
        "data classes, and which must stay on private members",
        default=frozenset(),
        default_doc="none",
        rule="see below",
    )
    private_data_classes: frozenset[str] = frozenset()
    data_class_defaults: tuple[DataClassDefault, ...] = ()  # data_classes.defaults, in file order
    idle_timeout_s: float = policy_field(
        "idle_timeout",
        "release an idle 1-GPU kernel after this long; `release` says how it applies to bigger kernels "
        "(users may change it with `%gpu idle=`, which then applies flat to every size)",
        "duration",
        default=900.0,
        positive=True,
    )
    release: ReleaseRule = policy_field(
        "release",
        "how `idle_timeout` scales with a kernel's GPU count",
        default_factory=ReleaseRule,
        default_doc="`gpu-minutes`, floor `3m`",
        rule="see below",
    )
    launch_timeout_s: float = policy_field(
        "launch_timeout",
        "give up starting a kernel (queue wait included) after this long",
        "duration",
        default=1800.0,
        positive=True,
    )
    upgrade_tiers: tuple[str, ...] = policy_field(
        "upgrade_tiers",
        'tiers whose models are asked for "or better" by default: a request that names a model of one '
        "of these tiers may also be served by a flavor of a higher tier, as `%gpu MODEL+` asks (so a "
        "queued Silver request may burst to Gold); `%gpu MODEL upgrade=off` keeps the exact model",
        "strings",
        default=(),
        default_doc="none (a named model is exact unless the user types `MODEL+`)",
        rule="each must be in `tiers`",
    )
    max_gpus: int = policy_field(
        "max_gpus", "most GPUs one kernel may ask for", "integer", default=8, minimum=1, maximum=MAX_GPUS
    )
    default_request: GpuRequest = policy_field(
        "default_request",
        "what a plain `%gpu` (or the first cell) asks for",
        default_factory=GpuRequest,
        default_doc="1 GPU, any model",
        rule="see below",
    )
    snapshot: SnapshotSettings = policy_field(
        "snapshot",
        "variable snapshots across a release",
        default_factory=SnapshotSettings,
        default_doc="enabled, 2 GiB",
        rule="see below",
    )
    workspace_sync: WorkspaceSyncSettings = policy_field(
        "workspace_sync",
        "the notebook's files on GPU kernels of public members, through a bucket",
        default_factory=WorkspaceSyncSettings,
        default_doc="off",
        rule="see below",
    )
    budgets: BudgetSettings = policy_field(
        "budgets",
        "public GPU spend limits per team and per user and month",
        default_factory=BudgetSettings,
        default_doc="none (unlimited)",
        rule="see below",
    )
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

    def model_rank(self, model: str) -> int | None:
        """The tier rank of ``model``: the lowest tier of a flavor offering it (None if none does)."""
        ranks = [f.tier_rank for f in self.flavors.values() if f.offers(model)]
        return min(ranks) if ranks else None

    def better_flavors(self, model: str) -> list[Flavor]:
        """Flavors that serve "``model`` or better" with another model: those of a higher tier than the
        model's (``model_rank``) that do not offer it. Tier order is the policy's order of value."""
        rank = self.model_rank(model)
        if rank is None:
            return []
        return [f for f in self.flavors.values() if f.tier_rank > rank and not f.offers(model)]

    def upgrades(self, model: str | None, upgrade: bool | None) -> bool:
        """Whether a request for ``model`` may be upgraded: its own ``upgrade`` when given, else whether
        the model's tier is in ``upgrade_tiers``. A request without a model has nothing to upgrade."""
        if model is None:
            return False
        if upgrade is not None:
            return upgrade
        rank = self.model_rank(model)
        return rank is not None and rank < len(self.tiers) and self.tiers[rank] in self.upgrade_tiers

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
