"""The GitOps samples (docs/samples/gitops) agree with each other and with what the server extension writes.

Argo CD is not installed on the test control plane and its Application CRD (about 1 MB) is not vendored, so
the Application is checked here against the fields Argo CD's ``v1alpha1`` Application documents, and against
the kustomization it deploys; the ConfigMap that the kustomization generates is validated offline against the
Kubernetes schema here and dry-run on the real API server by tests/cluster/test_dry_run.py.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import yaml

from mlp_kernel.backends.kubernetes.validation import KUBERNETES_VERSION
from mlp_kernel.server.app import MlpKernelExtension
from mlp_kernel.server.files import DEFAULT_POLICY, KERNEL_JSON, POD_TEMPLATE
from mlp_kernel.server.validation import validate_kernel_json

GITOPS = Path(__file__).resolve().parents[2] / "docs" / "samples" / "gitops"
# Argo CD's Application (argoproj.io/v1alpha1): the spec fields it serves, and those of a single source
APPLICATION_SPEC = {"project", "source", "sources", "destination", "syncPolicy", "ignoreDifferences", "info",
                    "revisionHistoryLimit"}  # fmt: skip
SOURCE = {
    "repoURL",
    "targetRevision",
    "path",
    "chart",
    "helm",
    "kustomize",
    "directory",
    "plugin",
    "ref",
    "name",
}
AUTOMATED = {"prune", "selfHeal", "allowEmpty", "enabled"}


def one(name: str) -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all((GITOPS / name).read_text()) if d]
    return doc


def test_the_configmap_is_what_the_kustomization_generates() -> None:
    kustomization, configmap = one("kustomization.yaml"), one("configmap.yaml")
    kubernetes_validate.validate(configmap, KUBERNETES_VERSION, strict=True)
    (generator,) = kustomization["configMapGenerator"]
    assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True  # mounted by a fixed name
    assert configmap["metadata"]["name"] == generator["name"]
    assert configmap["metadata"]["namespace"] == kustomization["namespace"]
    assert configmap["metadata"]["labels"] == kustomization["generatorOptions"]["labels"]
    files = [PurePosixPath(f) for f in generator["files"]]
    assert (
        sorted(configmap["data"])
        == sorted(f.name for f in files)
        == sorted([KERNEL_JSON, DEFAULT_POLICY, POD_TEMPLATE])
    )


def test_the_kustomization_reads_the_files_where_the_server_commits_them() -> None:
    (generator,) = one("kustomization.yaml")["configMapGenerator"]
    where = MlpKernelExtension.git_path.default_value.format(kernelspec="gpu-auto")
    assert {str(PurePosixPath(f).parent) for f in generator["files"]} == {where}
    assert generator["name"] == "kernelspec-gpu-auto"


def test_the_configmaps_kernel_json_is_a_valid_gpu_auto_kernelspec() -> None:
    text = one("configmap.yaml")["data"][KERNEL_JSON]
    assert validate_kernel_json(text) == []
    assert json.loads(text)["metadata"]["kernel_provisioner"]["config"]["policy"] == DEFAULT_POLICY


def test_the_application_deploys_the_kustomization_from_the_branch_the_server_commits_to() -> None:
    app, kustomization = one("application.yaml"), one("kustomization.yaml")
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    spec = app["spec"]
    assert set(spec) <= APPLICATION_SPEC and {"project", "source", "destination"} <= set(spec)
    assert set(spec["source"]) <= SOURCE
    assert set(spec["syncPolicy"]["automated"]) <= AUTOMATED
    assert spec["syncPolicy"]["automated"]["selfHeal"] is True  # a hand edit of the ConfigMap is put back
    assert spec["source"]["targetRevision"] == MlpKernelExtension.git_branch.default_value
    assert spec["source"]["path"] == "."  # kustomization.yaml sits at the repository's root
    assert spec["destination"]["namespace"] == kustomization["namespace"]
    assert spec["source"]["repoURL"].startswith("https://")
