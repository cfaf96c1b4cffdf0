"""Every Kueue field the product reads exists, with the same type, in the pinned release and the reference.

Two Kueue APIs are in play: ``../shared/reference/crds/kueue`` (Kueue's main branch of 2026-08-22; the in-repo
test API serves it and ``tests/placement/test_samples.py`` validates the samples against it) and the CRDs of
the release the real control plane runs (``versions.KUEUE``, copied from its module by ``build.py``). The
fields placement reads are declared in ``mlp_kernel/placement/adapters/shapes.py``; ``READS`` says in which
kind and API version each lives (plus the backend's Workload reads, ``backends/kubernetes/queue.py``), and
these tests check both schemas serve them with the type the product expects. ``DIFFERENCES`` pins every field
that is in one schema and not the other, so a new release or a new reference shows up here (and in the
comparison table of docs/test-kube-api.md) instead of in a user's cluster. No control plane is started.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlp_kernel.backends.kubernetes.queue import KUEUE_VERSIONS
from mlp_kernel.placement.adapters import shapes

from . import build
from .fixtures import _unavailable

REFERENCE = Path(__file__).resolve().parents[1] / "crds" / "kueue"  # the vendored reference (tests/crds)
RELEASE = build.KUEUE.directory / "config" / "crd" / "bases"
KINDS = ("ClusterQueue", "LocalQueue", "ResourceFlavor", "Workload", "Cohort", "WorkloadPriorityClass")

_CONDITIONS = [f"status.conditions[].{f}" for f in ("type", "status", "reason", "message")]
_CONDITIONS.append("status.conditions[].lastTransitionTime")
_QUOTA = ["name", "nominalQuota", "borrowingLimit", "lendingLimit"]
_TOTALS = [
    f"status.{key}[].{f}"
    for key in ("flavorsReservation", "flavorsUsage")
    for f in ("name", "resources[].name", "resources[].total")
]
_CONTAINERS = "spec.podSets[].template.spec.containers[].resources"

#: (kind, version) -> the field paths the product reads there (``[]`` a list item, ``{}`` a map value)
READS: dict[tuple[str, str], list[str]] = {
    ("ClusterQueue", "v1beta2"): [
        "spec.resourceGroups[].flavors[].name",
        *(f"spec.resourceGroups[].flavors[].resources[].{f}" for f in _QUOTA),
        "spec.cohortName",
        "spec.stopPolicy",
        *_CONDITIONS,
        *_TOTALS,
    ],
    ("ClusterQueue", "v1beta1"): ["spec.cohort"],  # the v1beta1 name, read where only v1beta1 is served
    ("LocalQueue", "v1beta2"): ["spec.clusterQueue", "spec.stopPolicy", *_CONDITIONS],
    ("ResourceFlavor", "v1beta2"): ["spec.nodeLabels{}"],
    ("Workload", "v1beta2"): [
        "spec.queueName",
        "spec.active",
        "spec.podSets[].count",
        "spec.podSets[].template.spec.nodeSelector{}",
        f"{_CONTAINERS}.requests{{}}",
        f"{_CONTAINERS}.limits{{}}",
        *_CONDITIONS,
        "status.admission.clusterQueue",
        "status.admission.podSetAssignments[].flavors{}",
    ],
}
#: shapes.SCHEMA paths that are not CRD fields: object identity, and the visibility API's
#: PendingWorkloadsSummary (an aggregated API, no CRD; its queue-position tests run on the real plane)
NOT_CRD_FIELDS = ("kind", "apiVersion", "metadata.", "items[].")

#: every field path in one schema and not in the other, per (kind, version): (only reference, only release)
_GROUP = "spec.podSets[].template.spec"
DIFFERENCES: dict[tuple[str, str], tuple[set[str], set[str]]] = {
    ("ClusterQueue", "v1beta2"): (
        {
            "spec.concurrentAdmissionPolicy",
            "spec.concurrentAdmissionPolicy.migration",
            "spec.concurrentAdmissionPolicy.migration.constraints",
            "spec.concurrentAdmissionPolicy.migration.constraints.lastAcceptableFlavorName",
            "spec.concurrentAdmissionPolicy.migration.mode",
        },
        set(),
    ),
    **{
        # the embedded PodSpec: Kubernetes 1.35's workloadRef (gang scheduling, alpha) became schedulingGroup
        ("Workload", version): (
            {f"{_GROUP}.schedulingGroup", f"{_GROUP}.schedulingGroup.podGroupName"},
            {f"{_GROUP}.workloadRef{f}" for f in ("", ".name", ".podGroup", ".podGroupReplicaKey")},
        )
        for version in ("v1beta1", "v1beta2")
    },
}


@functools.cache
def _crd(folder: Path, kind: str) -> dict[str, Any]:
    plural = kind.lower() + ("es" if kind.endswith("s") else "s")
    names = [f"{plural}.yaml", f"kueue.x-k8s.io_{plural}.yaml"]
    for name in names:
        if (folder / name).is_file():
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the Workload CRD is 1.4 MB
            return yaml.load((folder / name).read_text(), Loader=loader)
    raise FileNotFoundError(f"no CRD for {kind} in {folder} ({' or '.join(names)})")


def _version(folder: Path, kind: str, version: str) -> dict[str, Any]:
    [v] = [v for v in _crd(folder, kind)["spec"]["versions"] if v["name"] == version]
    return v


def fields(schema: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every field path of an OpenAPI schema, to its schema (``[]`` list items, ``{}`` map values)."""
    out = {prefix: schema} if prefix else {}
    for key, sub in (schema.get("properties") or {}).items():
        out.update(fields(sub, f"{prefix}.{key}" if prefix else key))
    if isinstance(schema.get("items"), dict):
        out.update(fields(schema["items"], f"{prefix}[]"))
    if isinstance(schema.get("additionalProperties"), dict):
        out.update(fields(schema["additionalProperties"], f"{prefix}{{}}"))
    return out


def _schema_fields(folder: Path, kind: str, version: str) -> dict[str, dict[str, Any]]:
    return fields(_version(folder, kind, version)["schema"]["openAPIV3Schema"])


def declared(schema: Any, prefix: str = "") -> dict[str, str]:
    """shapes.SCHEMA's leaves: field path -> the product's expected type."""
    if isinstance(schema, dict):
        out: dict[str, str] = {}
        for key, sub in schema.items():
            path = f"{prefix}{{}}" if key == "*" else f"{prefix}.{key}" if prefix else key
            out.update(declared(sub, path))
        return out
    if isinstance(schema, list):
        return declared(schema[0], f"{prefix}[]")
    return {prefix: schema}


def matches(expected: str, field: dict[str, Any]) -> bool:
    """Whether a CRD field has the type the product's shapes expect."""
    if expected == shapes.QTY:
        return bool(field.get("x-kubernetes-int-or-string"))
    if expected == shapes.TIME:
        return field.get("type") == "string" and field.get("format") == "date-time"
    wanted = {shapes.STR: "string", shapes.SCALAR: "string", shapes.INT: "integer", shapes.BOOL: "boolean"}
    return field.get("type") == wanted[expected]


@pytest.fixture(scope="module")
def folders() -> dict[str, Path]:
    release = f"Kueue {build.KUEUE.version}"
    if not RELEASE.is_dir():
        _unavailable(f"{release}'s CRDs not built at {RELEASE} (python -m tests.cluster.build)")
    return {"reference": REFERENCE, release: RELEASE}


def test_reads_are_the_fields_the_placement_shapes_declare(folders: dict[str, Path]) -> None:
    """shapes.SCHEMA merges the kinds (``resources[]`` of quotas and of totals share one entry), so a
    declared path that no Kueue kind has is no read; one that some kind has must be in READS."""
    listed = {path for paths in READS.values() for path in paths}
    types = declared(shapes.SCHEMA)
    assert listed - set(types) == set(), "READS names fields the product's shapes do not check"
    in_kueue = {
        path
        for folder in folders.values()
        for kind in KINDS
        for version in KUEUE_VERSIONS
        for path in _schema_fields(folder, kind, version)
    }
    read = {p for p in types if not p.startswith(NOT_CRD_FIELDS) and p in in_kueue}
    assert read - listed == set(), "fields placement reads whose kind and version READS does not name"


@pytest.mark.parametrize("kind", KINDS)
def test_both_serve_the_versions_the_product_asks_for(folders: dict[str, Path], kind: str) -> None:
    served = {}
    for name, folder in folders.items():
        versions = {v["name"]: v for v in _crd(folder, kind)["spec"]["versions"]}
        assert set(KUEUE_VERSIONS) <= {n for n, v in versions.items() if v["served"]}, (name, kind)
        assert versions["v1beta2"]["storage"], f"{name}: {kind} v1beta2 is not the storage version"
        served[name] = {n: (v["served"], v["storage"], v.get("deprecated")) for n, v in versions.items()}
    [ref, release] = served.values()
    assert ref == release, f"{kind}: served/storage/deprecated versions differ: {served}"


@pytest.mark.parametrize(("kind", "version"), list(READS), ids=[f"{k}-{v}" for k, v in READS])
def test_every_field_read_exists_with_the_expected_type(
    folders: dict[str, Path], kind: str, version: str
) -> None:
    types = declared(shapes.SCHEMA)
    for name, folder in folders.items():
        schema = _schema_fields(folder, kind, version)
        missing = [p for p in READS[kind, version] if p not in schema]
        assert not missing, f"{name}: {kind} {version} has no {missing}"
        wrong = [
            f"{p} is {schema[p].get('type') or schema[p]}, the product expects {types[p]}"
            for p in READS[kind, version]
            if p in types and not matches(types[p], schema[p])
        ]
        assert not wrong, f"{name}: {kind} {version}: {wrong}"


@pytest.mark.parametrize("kind", KINDS)
def test_the_schemas_differ_only_where_known(folders: dict[str, Path], kind: str) -> None:
    ref, release = folders.values()
    for version in KUEUE_VERSIONS:
        a, b = _schema_fields(ref, kind, version), _schema_fields(release, kind, version)
        found = (set(a) - set(b), set(b) - set(a))
        assert found == DIFFERENCES.get((kind, version), (set(), set())), f"{kind} {version}: {found}"
        read = set(READS.get((kind, version), []))
        assert not read & (found[0] | found[1]), f"{kind} {version}: a field the product reads differs"
