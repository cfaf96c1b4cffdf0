"""The resource types a test server serves: built-in kinds, CRD-defined kinds and their discovery data.

A real apiserver learns its kinds from compiled-in types and from CustomResourceDefinitions; this registry
does the same with a small table of built-ins (the kinds this project reads and writes) and CRDs loaded from
YAML (the upstream Kueue/Karmada schemas in ``../shared/reference/crds``), so discovery, routing and
validation all come from one place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Converter = Callable[[dict[str, Any], str], dict[str, Any]]


ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served resource (e.g. core/v1 pods, kueue.x-k8s.io clusterqueues), possibly in several versions."""

    group: str
    versions: tuple[str, ...]
    storage_version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False, compare=False, repr=False)
    verbs: tuple[str, ...] = ALL_VERBS
    is_crd: bool = False
    #: served only by an extension route (e.g. the Kueue visibility API), never stored
    virtual: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    def api_version(self, version: str | None = None) -> str:
        version = version or self.storage_version
        return f"{self.group}/{version}" if self.group else version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


def _core(
    kind: str, plural: str, namespaced: bool = True, short: tuple[str, ...] = (), sub: tuple[str, ...] = ()
) -> ResourceType:
    return ResourceType("", ("v1",), "v1", kind, plural, kind.lower(), namespaced, short, sub)


BUILTINS: tuple[ResourceType, ...] = (
    _core("Namespace", "namespaces", namespaced=False, short=("ns",), sub=("status", "finalize")),
    _core("Pod", "pods", short=("po",), sub=("status", "log", "binding", "eviction")),
    _core("Secret", "secrets"),
    _core("ConfigMap", "configmaps", short=("cm",)),
    _core("PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), sub=("status",)),
    _core("Service", "services", short=("svc",), sub=("status",)),
    _core("ServiceAccount", "serviceaccounts", short=("sa",)),
    _core("Event", "events", short=("ev",)),
    _core("Node", "nodes", namespaced=False, short=("no",), sub=("status",)),
    _core("ResourceQuota", "resourcequotas", short=("quota",), sub=("status",)),
    ResourceType("coordination.k8s.io", ("v1",), "v1", "Lease", "leases", "lease", True),
    ResourceType(
        "scheduling.k8s.io",
        ("v1",),
        "v1",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        False,
        ("pc",),
    ),
    ResourceType(
        "networking.k8s.io",
        ("v1",),
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        True,
        ("netpol",),
    ),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "v1", "Role", "roles", "role", True),
    ResourceType(
        "rbac.authorization.k8s.io", ("v1",), "v1", "RoleBinding", "rolebindings", "rolebinding", True
    ),
    ResourceType(
        "apiextensions.k8s.io",
        ("v1",),
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        False,
        ("crd", "crds"),
        ("status",),
    ),
)

# Karmada's Cluster is served by karmada-aggregated-apiserver, not by a CRD; we serve it as a built-in.
KARMADA_CLUSTER = ResourceType(
    "cluster.karmada.io",
    ("v1alpha1",),
    "v1alpha1",
    "Cluster",
    "clusters",
    "cluster",
    False,
    (),
    ("status", "proxy"),
)


def resource_from_crd(crd: dict[str, Any]) -> ResourceType:
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec["versions"] if v.get("served", True)]
    storage = next((v["name"] for v in spec["versions"] if v.get("storage")), served[0]["name"])
    subresources: set[str] = set()
    schemas: dict[str, dict[str, Any]] = {}
    for v in served:
        subresources.update((v.get("subresources") or {}).keys())
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if schema:
            schemas[v["name"]] = schema
    return ResourceType(
        group=spec["group"],
        versions=tuple(v["name"] for v in served),
        storage_version=storage,
        kind=names["kind"],
        plural=names["plural"],
        singular=names.get("singular", names["kind"].lower()),
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        subresources=tuple(sorted(s for s in subresources if s == "status")),
        schemas=schemas,
        is_crd=True,
    )


class Registry:
    """Resource types by (group, plural) and (group, version, plural); thread-safe for late CRDs."""

    def __init__(self, types: Iterable[ResourceType] = ()):
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str], ResourceType] = {}
        self.converters: dict[tuple[str, str], Converter] = {}
        for t in types:
            self.add(t)

    def add(self, rtype: ResourceType) -> None:
        with self._lock:
            self._types[rtype.key] = rtype

    def remove(self, group: str, plural: str) -> None:
        with self._lock:
            self._types.pop((group, plural), None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            rtype = self._types.get((group, plural))
        if rtype is None or version not in rtype.versions:
            return None
        return rtype

    def get(self, group: str, plural: str) -> ResourceType:
        with self._lock:
            return self._types[(group, plural)]

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rtype in self.all():
            if rtype.group == group and rtype.kind == kind and version in rtype.versions:
                return rtype
        return None

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def groups(self) -> dict[str, list[str]]:
        """Group name -> served versions (preferred first), excluding the core group."""
        out: dict[str, list[str]] = {}
        for rtype in self.all():
            if not rtype.group:
                continue
            versions = out.setdefault(rtype.group, [])
            for v in (rtype.storage_version, *rtype.versions):
                if v not in versions:
                    versions.append(v)
        return out

    def convert(self, rtype: ResourceType, obj: dict[str, Any], version: str) -> dict[str, Any]:
        """Return ``obj`` as served at ``version`` (objects are stored at the storage version)."""
        converter = self.converters.get(rtype.key)
        if converter is not None:
            obj = converter(obj, version)
        obj["apiVersion"] = rtype.api_version(version)
        return obj
