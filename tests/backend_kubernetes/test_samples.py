"""The manifests shipped under docs/samples validate against Kubernetes, Karmada and Gatekeeper, and say
what the backend actually does (labels, ports, verbs)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from mlp_kernel.backends.kubernetes import names
from mlp_kernel.backends.kubernetes.connection import DEFAULT_PORTS
from mlp_kernel.backends.kubernetes.objects import render_kernel_objects
from mlp_kernel.backends.kubernetes.validation import KUBERNETES_VERSION
from tests.ci import require_module

from .policies import KERNELSPEC, PLATFORM_POLICY, ROOT

SAMPLES = ROOT / "docs" / "samples"
CRDS = ROOT / "tests" / "crds"  # vendored upstream schemas (tests/crds/README.md)


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize(
    "path",
    [
        "rbac/kernel-launcher.yaml",
        "rbac/karmada-proxy.yaml",
        "networkpolicy.yaml",
        "transport/networkpolicy.yaml",
        "queue-summary/deployment.yaml",
        "queue-summary/gateway-read.yaml",
    ],
)
def test_core_samples_pass_the_kubernetes_schema(path: str) -> None:
    for obj in docs(SAMPLES / path):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_role_grants_exactly_the_least_verbs_the_backend_uses() -> None:
    [role] = [d for d in docs(SAMPLES / "rbac/kernel-launcher.yaml") if d["kind"] == "Role"]
    granted = {
        (g, r): sorted(rule["verbs"])
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert granted == {
        ("", "pods"): sorted(["create", "get", "list", "watch", "delete"]),
        ("", "secrets"): sorted(["create", "get", "delete"]),
        ("", "events"): sorted(["list", "watch"]),
        ("coordination.k8s.io", "leases"): sorted(["create", "get", "list", "patch", "delete"]),
        ("kueue.x-k8s.io", "workloads"): sorted(["get", "list", "watch"]),
        ("visibility.kueue.x-k8s.io", "localqueues/pendingworkloads"): ["get"],
        # transport: ingress (backend._create_routes): the pod's Service and route, deleted with the pod
        ("", "services"): ["create"],
        ("gateway.networking.k8s.io", "httproutes"): ["create"],
        ("networking.k8s.io", "ingresses"): ["create"],
    }


def test_networkpolicy_selects_kernel_pods_and_opens_exactly_the_kernel_ports() -> None:
    [policy] = docs(SAMPLES / "networkpolicy.yaml")
    secret, pod = render_kernel_objects(KERNELSPEC, _platform(), "private", "silver", "alice")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert all(pod["metadata"]["labels"].get(k) == v for k, v in selector.items())
    [rule] = policy["spec"]["ingress"]
    [ports] = rule["ports"]
    assert (ports["port"], ports["endPort"]) == (min(DEFAULT_PORTS.values()), max(DEFAULT_PORTS.values()))
    assert sorted(DEFAULT_PORTS.values()) == list(range(ports["port"], ports["endPort"] + 1))


def _platform():
    from mlp_kernel.placement.policy_load import load_policy

    return load_policy(PLATFORM_POLICY)


def _propagation_schema() -> dict:
    path = CRDS / "karmada" / "policy.karmada.io_propagationpolicies.yaml"
    crd = yaml.safe_load(path.read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


def test_propagation_policy_validates_against_the_karmada_crd() -> None:
    schema = _propagation_schema()
    [pp] = docs(SAMPLES / "karmada/propagation.yaml")
    assert (pp["apiVersion"], pp["kind"]) == ("policy.karmada.io/v1alpha1", "PropagationPolicy")
    jsonschema.validate(pp, schema)
    selected = {(s["kind"], s["name"]) for s in pp["spec"]["resourceSelectors"]}
    shipped = {
        (d["kind"], d["metadata"]["name"])
        for p in ("rbac/kernel-launcher.yaml", "networkpolicy.yaml")
        for d in docs(SAMPLES / p)
    }
    assert shipped <= selected  # every namespaced object we ship is propagated
    assert all(s["kind"] not in ("Pod", "Secret") for s in pp["spec"]["resourceSelectors"])


def test_cluster_propagation_policies_have_valid_propagation_specs() -> None:
    schema = _propagation_schema()
    for cpp in docs(SAMPLES / "karmada/cluster-propagation.yaml"):
        assert cpp["kind"] == "ClusterPropagationPolicy"
        jsonschema.validate(cpp["spec"], schema["properties"]["spec"])


def _gatekeeper() -> tuple[dict, dict]:
    [template] = docs(SAMPLES / "gatekeeper/constrainttemplate.yaml")
    [constraint] = docs(SAMPLES / "gatekeeper/constraint.yaml")
    return template, constraint


def test_constraint_matches_its_template_and_its_parameter_schema() -> None:
    template, constraint = _gatekeeper()
    assert template["apiVersion"] == "templates.gatekeeper.sh/v1"
    assert template["metadata"]["name"] == template["spec"]["crd"]["spec"]["names"]["kind"].lower()
    assert constraint["kind"] == template["spec"]["crd"]["spec"]["names"]["kind"]
    assert constraint["apiVersion"] == "constraints.gatekeeper.sh/v1beta1"
    schema = template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"]
    jsonschema.validate(constraint["spec"]["parameters"], schema)
    assert constraint["spec"]["match"]["labelSelector"]["matchLabels"] == {
        names.MANAGED_BY: names.MANAGED_BY_VALUE
    }


def violations(pod: dict, parameters: dict) -> list[str]:
    require_module("regopy", "regopy (a Rego interpreter, in the test extra) runs the Gatekeeper policy")
    import regopy

    template, _ = _gatekeeper()
    rego = template["spec"]["targets"][0]["rego"]
    interpreter = regopy.Interpreter()
    interpreter.add_module("template", rego)
    interpreter.set_input(regopy.Input({"review": {"object": pod}, "parameters": parameters}))
    result = json.loads(str(interpreter.query("x = data.mlpkernelgpulimits.violation")))
    found = result["bindings"]["x"]
    members = found if isinstance(found, list) else [json.loads(k) for k in found]  # sets print as objects
    return sorted(v["msg"] for v in members)


def test_gatekeeper_admits_a_pod_rendered_by_mlp_kernel() -> None:
    _, constraint = _gatekeeper()
    _secret, pod = render_kernel_objects(KERNELSPEC, _platform(), "private", "silver", "alice", gpus=2)
    assert violations(pod, constraint["spec"]["parameters"]) == []


def test_gatekeeper_rejects_too_many_gpus() -> None:
    _, constraint = _gatekeeper()
    _secret, pod = render_kernel_objects(KERNELSPEC, _platform(), "private", "silver", "alice", gpus=2)
    pod["spec"]["initContainers"] = [
        {"name": "grab", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "7"}}}
    ]
    [msg] = violations(pod, constraint["spec"]["parameters"])
    assert "asks for 9 nvidia.com/gpu; at most 8" in msg


def test_gatekeeper_rejects_a_flavor_the_namespace_may_not_use() -> None:
    _, constraint = _gatekeeper()
    _secret, pod = render_kernel_objects(KERNELSPEC, _platform(), "aws", "gold", "alice")
    [msg] = violations(pod, constraint["spec"]["parameters"])
    assert "mlp.io/gpu-tier=gold" in msg
    del pod["spec"]["nodeSelector"]
    [msg] = violations(pod, constraint["spec"]["parameters"])
    assert "mlp.io/gpu-tier=(none)" in msg  # an unpinned kernel pod could land on any flavor


def test_gatekeeper_ignores_pods_that_are_not_kernels() -> None:
    _, constraint = _gatekeeper()
    pod = {
        "metadata": {"labels": {"app": "other"}},
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "64"}}}]},
    }
    assert violations(pod, constraint["spec"]["parameters"]) == []
