"""The cluster's own rules for kernel pods (docs/samples/admission), enforced by the real kube-apiserver.

The ValidatingAdmissionPolicy, its binding and the params ConfigMaps are applied as shipped on both members
(private: ``params-private.yaml``, public: ``params-public.yaml``); then pods are created directly through the
API server, as an admin's kubectl or a modified gateway would, not through the product's checks: each
violation is refused with the policy's own message (too many GPUs, a flavor the namespace may not use, a GPU
model outside the namespace's list, a private-only data class on the public member, a missing cost label,
a cost label rewritten afterwards, a namespace without params). Pods the product renders
(``render_kernel_objects``, with its labels, flavor pin, model pin and data class) are admitted, real Kueue
gates them as usual. The policy is removed afterwards, and the module waits until the server no longer
applies it, so the plane's other tests see no policy.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mlp_kernel.backends.kubernetes import names
from mlp_kernel.backends.kubernetes.calls import call_json, describe
from mlp_kernel.backends.kubernetes.objects import render_kernel_objects
from tests.backend_kubernetes.policies import KERNELSPEC
from tests.kubeapi.builders import python_pod

from .members import RealMember, RealMembers
from .rest import ApiError, Obj
from .test_model_pin_real import POLICY as PIN_POLICY

pytestmark = pytest.mark.timeout(240)

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples" / "admission"
NS = "jupyter"
PARAMS = "mlp-kernel-admission"
A100 = "NVIDIA-A100-SXM4-80GB"
H100 = "NVIDIA-H100-80GB-HBM3"
ADMISSION = "admissionregistration.k8s.io/v1"

#: the members of tests/kubeapi's fixtures with a two-model Gold (A100; H100 as two SKUs, so an In term), and
#: up to 8 GPUs, so that the cluster's limit (4 on the public member) is what refuses
POLICY = replace(PIN_POLICY, max_gpus=8)


def docs(name: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all((SAMPLES / name).read_text()) if d]


def product_pod(member: str, flavor: str, **kw: Any) -> Obj:
    """The pod the product would create (labels, flavor pin, model pin, data class), not yet sent."""
    args: dict[str, Any] = {"team": "vision", "kernel_id": f"adm-{time.monotonic_ns()}", **kw}
    _secret, pod = render_kernel_objects(KERNELSPEC, POLICY, member, flavor, "alice", **args)
    return pod


def refusal(m: RealMember, pod: Obj) -> str:
    """The API server's refusal of ``pod`` (the test fails if it is admitted)."""
    with pytest.raises(ApiError) as err:
        created = m.create(pod)
        m.delete("v1", "Pod", created["metadata"]["name"], created["metadata"]["namespace"])
    assert err.value.status in (403, 422), err.value
    message = str(err.value.body.get("message"))
    assert "ValidatingAdmissionPolicy 'mlp-kernel-pods'" in message, message
    return message


def admitted(m: RealMember, pod: Obj) -> Obj:
    created = m.create(pod)
    gates = [g["name"] for g in created["spec"].get("schedulingGates") or []]
    assert "kueue.x-k8s.io/admission" in gates, "real Kueue's webhook ran as usual"
    return created


def _policy_applies(m: RealMember) -> bool:
    """Whether the server refuses a kernel pod that asks for 99 GPUs (dry run: nothing is stored)."""
    pod = product_pod(m.name, "silver" if m.name == "private" else "gold")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "99"}}
    try:
        m.rest.create(pod, dryRun="All")
    except ApiError as exc:
        return "mlp-kernel-pods" in str(exc)
    return False


@pytest.fixture(scope="module")
def enforced(real_members: RealMembers) -> Iterator[RealMembers]:
    """The samples applied on both members as shipped; removed (and no longer enforced) afterwards."""
    params = {"private": docs("params-private.yaml"), "public": docs("params-public.yaml")}
    try:
        for m in real_members:
            m.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
            for doc in docs("kernel-pods-policy.yaml") + params[m.name]:
                m.apply(doc)
            m.wait_for(lambda m=m: _policy_applies(m), 30, what="the admission policy enforced")
        yield real_members
    finally:
        for m in real_members:
            for doc in reversed(docs("kernel-pods-policy.yaml") + params[m.name]):
                meta = doc["metadata"]
                m.delete(doc["apiVersion"], doc["kind"], meta["name"], meta.get("namespace"))
            m.wait_for(lambda m=m: not _policy_applies(m), 30, what="the admission policy gone")


@pytest.fixture
def members(enforced: RealMembers, real_kube_members: RealMembers) -> RealMembers:
    return real_kube_members


def test_the_policy_type_checks_without_warnings(enforced: RealMembers) -> None:
    """The API server compiled every CEL expression against the Pod schema and the ConfigMap params: a
    misspelt field would be a typeChecking warning here (and a rule that never holds)."""
    for m in enforced:
        policy = m.wait_for(
            lambda m=m: (
                (p := m.get(ADMISSION, "ValidatingAdmissionPolicy", "mlp-kernel-pods"))
                .get("status", {})
                .get("observedGeneration")
                == p["metadata"]["generation"]
                and p
            ),
            30,
            what="the policy's status",
        )
        assert not policy["status"].get("typeChecking", {}).get("expressionWarnings"), policy["status"]
        assert not [c for c in policy["status"].get("conditions") or [] if c.get("status") == "False"]


def test_pods_the_product_renders_are_admitted(members: RealMembers) -> None:
    created = [
        admitted(members.private, product_pod("private", "silver", gpus=2, data_class="sensitive")),
        admitted(members.private, product_pod("private", "bronze", gpus=8)),
        admitted(members.public, product_pod("public", "gold", gpus=4, data_class="internal")),
        admitted(members.public, product_pod("public", "gold", pin_model="H100")),  # In term, two SKUs
        admitted(members.public, product_pod("public", "gold", pin_model="A100")),  # nodeSelector
    ]
    labels = created[0]["metadata"]["labels"]
    assert labels[names.DATA_CLASS] == "sensitive" and labels[names.USER] == "alice"


def test_more_gpus_than_the_namespace_allows_is_refused(members: RealMembers) -> None:
    # the public member's params allow 4 per kernel pod, the policy's max_gpus 8: the cluster's limit holds
    message = refusal(members.public, product_pod("public", "gold", gpus=8))
    assert "asks for 8 nvidia.com/gpu; namespace jupyter allows at most 4 per kernel pod" in message
    assert "raise maxGpus in ConfigMap jupyter/mlp-kernel-admission" in message
    # GPUs in an init container count too (as Gatekeeper's sample counts them)
    pod = product_pod("private", "silver", gpus=8)
    pod["spec"]["initContainers"] = [
        {"name": "warm", "image": "python:3.11", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
    ]
    assert "asks for 9 nvidia.com/gpu" in refusal(members.private, pod)


def test_the_user_is_shown_the_policys_message_not_an_rbac_hint(members: RealMembers) -> None:
    """Through the backend's own call and error text: a 403 from the admission policy is not RBAC's 403."""
    pod = product_pod("public", "gold", gpus=8)
    name = pod["metadata"]["name"]
    with members.public.api_client() as api, pytest.raises(ApiException) as err:
        asyncio.run(call_json(client.CoreV1Api(api).create_namespaced_pod, NS, pod))
    assert err.value.status == 403
    shown = describe(err.value, f"create the kernel pod {name}", f"namespace {NS}")
    assert shown.startswith(f"The cluster refused to create the kernel pod {name} on namespace {NS}: ")
    assert "ask your admin to raise maxGpus in ConfigMap jupyter/mlp-kernel-admission." in shown, shown
    assert "RBAC" not in shown


def test_a_flavor_the_namespace_may_not_use_is_refused(members: RealMembers) -> None:
    pod = product_pod("public", "gold")
    pod["spec"]["nodeSelector"]["mlp.io/gpu-tier"] = "silver"
    assert "pins mlp.io/gpu-tier=silver; namespace jupyter may use only gold" in refusal(members.public, pod)
    # a kernel pod by hand, without any flavor pin, as a user with kubectl would write it
    bare = python_pod("by-hand", queue="kernels", gpus=1, labels=_labels())
    bare["metadata"]["namespace"] = NS
    assert "pins mlp.io/gpu-tier=(none); namespace jupyter may use only bronze, silver" in refusal(
        members.private, bare
    )


def test_a_gpu_model_outside_the_namespaces_list_is_refused(members: RealMembers) -> None:
    m = members.public
    m.rest.merge_patch("v1", "ConfigMap", PARAMS, {"data": {"allowedGpuProducts": A100}}, NS)
    try:
        m.wait_for(lambda: _refused(m, product_pod("public", "gold", pin_model="H100")), 30, what="the list")
        message = refusal(m, product_pod("public", "gold", pin_model="H100"))
        assert f"is pinned to nvidia.com/gpu.product In {H100}|NVIDIA-H100-NVL" in message, message
        assert f"may use only {A100}. Name an allowed model (%gpu a100)" in message
        unpinned = refusal(m, product_pod("public", "gold"))
        assert "is pinned to nvidia.com/gpu.product nothing (any GPU model of its flavor)" in unpinned
        # one affinity term pins an allowed product, but a second term (ORed) pins none
        sneaky = product_pod("public", "gold", pin_model="H100")
        terms = sneaky["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = [A100]
        terms["nodeSelectorTerms"].append({"matchExpressions": [{"key": "zone", "operator": "Exists"}]})
        assert "nothing" not in refusal(m, sneaky)
        admitted(m, product_pod("public", "gold", pin_model="A100"))
    finally:
        m.rest.merge_patch("v1", "ConfigMap", PARAMS, {"data": {"allowedGpuProducts": ""}}, NS)


def _refused(m: RealMember, pod: Obj) -> bool:
    try:
        m.rest.create(pod, dryRun="All")
    except ApiError:
        return True
    return False


@pytest.mark.parametrize("data_class", ["sensitive", "Top-Secret"])
def test_a_private_only_data_class_is_refused_on_the_public_member(
    members: RealMembers, data_class: str
) -> None:
    """``sensitive`` is keep_private; an unknown class stays private too (the policy's rule)."""
    message = refusal(members.public, product_pod("public", "gold", data_class=data_class))
    assert f"has data class {data_class}, which must stay on the private cluster" in message
    assert "this is a public member" in message
    # the same pod class on the private member is fine, and a public class may burst
    admitted(members.private, product_pod("private", "silver", data_class=data_class))
    admitted(members.public, product_pod("public", "gold", data_class="public"))


def test_a_kernel_pod_without_its_cost_labels_is_refused(members: RealMembers) -> None:
    message = refusal(members.private, product_pod("private", "silver", team=""))
    assert "lacks the cost-attribution label(s) mlp.io/team" in message
    assert "c.GpuAutoProvisioner.team or MLP_KERNEL_TEAM" in message
    pod = product_pod("private", "silver")
    for key in (names.USER, names.FLAVOR):
        del pod["metadata"]["labels"][key]
    assert "label(s) mlp.io/user, mlp.io/flavor (required" in refusal(members.private, pod)


def test_cost_labels_cannot_be_rewritten_or_dropped_later(members: RealMembers) -> None:
    m = members.private
    pod = admitted(m, product_pod("private", "silver", data_class="sensitive"))
    name = pod["metadata"]["name"]
    for patch, changed in [
        ({names.USER: "bob"}, names.USER),
        ({names.DATA_CLASS: None}, names.DATA_CLASS),
        ({names.MANAGED_BY: None}, names.MANAGED_BY),  # no longer a kernel pod: still checked (oldObject)
    ]:
        with pytest.raises(ApiError) as err:
            m.rest.merge_patch("v1", "Pod", name, {"metadata": {"labels": patch}}, NS)
        assert f"label(s) {changed} may not change after creation" in str(err.value), err.value
    # other labels may change (Kueue's own updates of the pod go through the same check)
    m.rest.merge_patch("v1", "Pod", name, {"metadata": {"labels": {"note": "ok"}}}, NS)


def test_a_kernel_pod_in_a_namespace_without_params_is_refused(members: RealMembers) -> None:
    m = members.private
    m.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "no-params"}})
    pod = copy.deepcopy(product_pod("private", "silver"))
    pod["metadata"]["namespace"] = "no-params"
    message = refusal(m, pod)
    assert "no params found" in message, message


def test_pods_that_are_not_kernel_pods_are_left_to_kueue(members: RealMembers) -> None:
    """The policy's scope: pods without the managed-by label are not judged by it (Kueue's quotas and a
    ResourceQuota bound them; docs/admin-guide.md section 3)."""
    pod = python_pod("batch-job", queue="kernels", gpus=8)
    pod["metadata"]["namespace"] = NS
    members.private.create(pod)


def _labels() -> dict[str, str]:
    return {
        names.MANAGED_BY: names.MANAGED_BY_VALUE,
        names.USER: "mallory",
        names.TEAM: "vision",
        names.FLAVOR: "silver",
        names.MEMBER: "private",
    }
