"""Shipped Kueue samples and the test dumps are valid against the upstream CRD schemas, and agree with the
platform policy (queue names, namespaces, pinning labels, quotas)."""

from __future__ import annotations

import functools
import glob
import os
from typing import Any

import jsonschema
import pytest
import yaml

from mlp_kernel.placement import Policy
from mlp_kernel.placement.adapters import read_objects

from .conftest import DUMPS, ROOT

CRDS = os.path.join(ROOT, "tests", "crds")  # vendored upstream schemas (tests/crds/README.md)
SAMPLES = os.path.join(ROOT, "docs", "samples", "kueue")
SAMPLE_FILES = sorted(glob.glob(os.path.join(SAMPLES, "*.yaml")))
DUMP_FILES = sorted(glob.glob(os.path.join(DUMPS, "*.yaml")))


def _schemas() -> dict[tuple[str, str, str], dict[str, Any]]:
    return _load_schemas()


@functools.lru_cache(maxsize=1)
def _load_schemas() -> dict[tuple[str, str, str], dict[str, Any]]:
    out = {}
    for path in glob.glob(os.path.join(CRDS, "*", "*.yaml")):
        with open(path, encoding="utf-8") as fh:
            crd = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            out[(group, version["name"], kind)] = version["schema"]["openAPIV3Schema"]
    return out


def _validate(obj: dict[str, Any], schemas: dict[tuple[str, str, str], dict[str, Any]]) -> None:
    group, _, version = obj["apiVersion"].rpartition("/")
    schema = schemas.get((group, version, obj["kind"]))
    assert schema is not None, f"no CRD schema for {obj['apiVersion']} {obj['kind']}"
    jsonschema.validate(obj, schema, cls=jsonschema.Draft7Validator)


def test_samples_exist() -> None:
    names = [os.path.basename(p) for p in SAMPLE_FILES]
    assert names == ["aws-cluster.yaml", "budget-teams.yaml", "private-cluster.yaml"]


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=os.path.basename)
def test_kueue_samples_match_the_crd_schemas(path: str) -> None:
    schemas = _schemas()
    objects = read_objects(path)
    kinds = {"ResourceFlavor", "ClusterQueue", "LocalQueue"}
    if os.path.basename(path) == "budget-teams.yaml":  # per-team queues for aws-cluster.yaml's flavor
        kinds -= {"ResourceFlavor"}
    assert {o["kind"] for o in objects} == kinds
    for obj in objects:
        _validate(obj, schemas)


@pytest.mark.parametrize("path", DUMP_FILES, ids=os.path.basename)
def test_test_dumps_match_the_crd_schemas(path: str) -> None:
    schemas = _schemas()
    checked = 0
    for obj in read_objects(path):
        if obj["apiVersion"].startswith("kueue.x-k8s.io/"):
            _validate(obj, schemas)
            checked += 1
    assert checked or "karmada" in path  # Karmada Cluster has no CRD (served by the aggregated apiserver)


def test_a_schema_violation_is_caught() -> None:
    schemas = _schemas()
    bad = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ClusterQueue",
        "metadata": {"name": "x"},
        "spec": {"queueingStrategy": "Random"},
    }
    with pytest.raises(jsonschema.ValidationError):
        _validate(bad, schemas)


def test_samples_agree_with_the_platform_policy(platform_policy: Policy) -> None:
    by_file = {os.path.basename(p): read_objects(p) for p in SAMPLE_FILES}
    for member, filename in (("private", "private-cluster.yaml"), ("aws", "aws-cluster.yaml")):
        m = platform_policy.members[member]
        objs = by_file[filename]
        lq = next(o for o in objs if o["kind"] == "LocalQueue")
        assert (lq["metadata"]["namespace"], lq["metadata"]["name"]) == (m.namespace, m.local_queue)
        assert lq["spec"]["clusterQueue"] == m.cluster_queue
        cq = next(o for o in objs if o["kind"] == "ClusterQueue")
        assert cq["metadata"]["name"] == m.cluster_queue
        cq_flavors = {f["name"]: f for g in cq["spec"]["resourceGroups"] for f in g["flavors"]}
        for flavor in platform_policy.flavors_of(member):
            rf = next(
                o for o in objs if o["kind"] == "ResourceFlavor" and o["metadata"]["name"] == flavor.name
            )
            assert rf["spec"]["nodeLabels"] == dict(flavor.node_labels)
            gpu = next(r for r in cq_flavors[flavor.name]["resources"] if r["name"] == flavor.gpu_resource)
            assert gpu["nominalQuota"] == flavor.capacity_gpus
