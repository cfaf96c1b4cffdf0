"""Every shipped manifest and every ``mlp-kernel render`` output, dry-run against the real API server.

``tests/backend_kubernetes/test_samples.py`` validates the same objects offline, against published schemas.
This asks the real kube-apiserver of a member, with Kueue's CRDs and webhooks installed: ``?dryRun=All`` runs
decoding, defaulting, validation, the admission plugins and Kueue's mutating and validating webhooks (they
declare no side effects) and stores nothing; ``fieldValidation=Strict`` turns an unknown or duplicated field
into an error instead of a field the server silently drops. A warning from the server (a deprecated field or
API) fails too.

Gateway API's Gateway and HTTPRoute (docs/samples/transport) are CRDs no member installs; this module installs
their standard-channel CRDs from the Go module ``sigs.k8s.io/gateway-api`` (``build.gateway_api_crds``) on the
private member, so those samples get the same dry run, with the CRDs' schemas and CEL rules. Samples of kinds
no API server here serves (Karmada's, Gatekeeper's) are only checked to be unserved,
each with its reason, from ``NOT_SERVED``; any other kind is applied, so a new sample kind that is neither
served nor listed fails. The gateway's RBAC sample is also applied for real, and the backend's Kueue reads
are made as its ServiceAccount. The last tests show that the check can fail: broken objects are refused with
the server's message.
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
import time
from base64 import b64encode
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mlp_kernel.backends.kubernetes.queue import QueuePosition, find_workload, queue_position
from mlp_kernel.placement import load_policy
from tests.kubeapi.builders import python_pod

from . import build
from .members import RealMember, RealMembers
from .rest import ApiError, Obj

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "docs" / "samples"
KERNELSPECS = ROOT / "kernelspecs"
DRY_RUN = {"dryRun": "All", "fieldValidation": "Strict"}
ADMISSION_GATE = "kueue.x-k8s.io/admission"

#: sample kinds that no API server of the real control plane serves, and why (checked only for being unserved)
NOT_SERVED = {
    ("policy.karmada.io/v1alpha1", "PropagationPolicy"): (
        "served by Karmada's API server, which does not run here; its spec is validated against Karmada's "
        "CRD schema in tests/backend_kubernetes/test_samples.py"
    ),
    ("policy.karmada.io/v1alpha1", "ClusterPropagationPolicy"): (
        "served by Karmada's API server, which does not run here; its spec is validated against Karmada's "
        "PropagationPolicy CRD schema in tests/backend_kubernetes/test_samples.py"
    ),
    ("templates.gatekeeper.sh/v1", "ConstraintTemplate"): (
        "Gatekeeper's CRD; Gatekeeper is not installed here (its Rego is run on rendered pods in "
        "tests/backend_kubernetes/test_samples.py)"
    ),
    ("constraints.gatekeeper.sh/v1beta1", "MlpKernelGpuLimits"): (
        "a CRD that Gatekeeper generates from the ConstraintTemplate; Gatekeeper is not installed here"
    ),
    ("argoproj.io/v1alpha1", "Application"): (
        "Argo CD's CRD; Argo CD is not installed here (its CRD, about 1 MB, is not vendored): the "
        "Application's fields and its agreement with the kustomization and ConfigMap are checked in "
        "tests/server/test_gitops_samples.py"
    ),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"): (
        "kustomize's own file, read by Argo CD's repo server and never sent to an API server; the ConfigMap "
        "it generates is the gitops/configmap.yaml sample, dry-run here, and "
        "tests/server/test_gitops_samples.py checks that they agree"
    ),
}
#: the member each sample file belongs on (default: private); the policy's ``aws`` is the ``public`` member
SAMPLE_MEMBER = {"kueue/aws-cluster.yaml": "public", "kueue/budget-teams.yaml": "public"}
POLICY_MEMBER = {"private": "private", "aws": "public"}
#: the namespace a real admin creates before applying the samples or launching kernels
NAMESPACE: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "jupyter"}}
#: namespaced samples are dry-run here, a namespace no other test uses: in ``jupyter`` an earlier test's
#: objects (the default LocalQueue ``kernels`` of another ClusterQueue) made a sample an update of an
#: immutable field, which the server rightly refuses; the samples describe a fresh install
SAMPLE_NS: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mlp-samples-dry-run"}}


def dry_run(member: RealMember, obj: Obj) -> Obj:
    """Create ``obj`` with server-side dry run; if it exists already, replace it (dry run) instead.

    Returns the object as the server would have stored it. Fails on any warning the server returns."""
    rest = member.rest
    meta = obj["metadata"]
    collection = rest.path(obj["apiVersion"], obj["kind"], None, meta.get("namespace"))
    status, body, warnings = _send(member, "POST", collection, obj)
    if status == 409:
        current = rest.get(f"{collection}/{meta['name']}")
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        status, body, warnings = _send(member, "PUT", f"{collection}/{meta['name']}", obj)
    if status >= 400:
        raise ApiError(status, body)
    assert not warnings, f"{obj['kind']} {meta['name']}: the server warned {warnings}"
    return body


def _send(member: RealMember, method: str, path: str, obj: Obj) -> tuple[int, Any, list[str]]:
    """One dry-run request; the raw client, because the server's ``Warning`` headers matter here."""
    rest = member.rest
    query = "&".join(f"{k}={v}" for k, v in DRY_RUN.items())
    headers = {**rest.headers, "Content-Type": "application/json"}
    for _ in range(50):  # 429 while a CRD's storage (re)initializes, as in Rest.request
        resp = rest.http.request(
            method, f"{rest.url}{path}?{query}", body=json.dumps(obj).encode(), headers=headers, retries=False
        )
        if resp.status != 429:
            break
        time.sleep(0.2)
    text = resp.data.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = {"message": text}
    return resp.status, body, resp.headers.getlist("Warning")


@pytest.fixture(scope="module")
def members(real_members: RealMembers) -> RealMembers:
    for m in real_members:
        m.apply(NAMESPACE)
        m.apply(SAMPLE_NS)
    install_gateway_api(real_members.members["private"])
    return real_members


def install_gateway_api(member: RealMember, timeout: float = 60) -> None:
    """Gateway API's CRDs on ``member``, served (discovery lists the kinds) before this returns."""
    for path in build.gateway_api_crds():
        member.apply_yaml(path)
    deadline = time.monotonic() + timeout
    while True:
        try:
            member.rest.resource("gateway.networking.k8s.io/v1", "HTTPRoute")
            member.rest.resource("gateway.networking.k8s.io/v1", "Gateway")
            return
        except ApiError:
            assert time.monotonic() < deadline, "Gateway API's CRDs were not served in time"
            time.sleep(0.5)


# -- docs/samples ----------------------------------------------------------------------------------------


def _sample_docs() -> list[Any]:
    out = []
    for path in sorted(SAMPLES.rglob("*.y*ml")):
        rel = path.relative_to(SAMPLES).as_posix()
        for i, doc in enumerate(d for d in yaml.safe_load_all(path.read_text()) if d):
            out.append(pytest.param(rel, doc, id=f"{rel}#{i}-{doc.get('kind')}"))
    return out


def test_samples_are_yaml_or_readme() -> None:
    """A sample in another format would escape the dry run below."""
    files = [p for p in SAMPLES.rglob("*") if p.is_file()]
    assert len(files) > 5
    # The hub's configurations are Python; tests/hub starts JupyterHub with them as shipped (the KubeSpawner
    # one through tests/hub/hub_config_kube.py, in tests/cluster/test_hub_kubespawner_real.py).
    loaded_elsewhere = {SAMPLES / "jupyterhub" / n for n in ("jupyterhub_config.py", "kubespawner_config.py")}
    odd = [str(p) for p in files if p.suffix not in (".yaml", ".yml", ".md") and p not in loaded_elsewhere]
    assert not odd, f"samples this test does not read: {odd}"


def test_every_not_served_kind_is_still_shipped() -> None:
    shipped = {(d.values[1]["apiVersion"], d.values[1]["kind"]) for d in _sample_docs()}
    assert set(NOT_SERVED) <= shipped, f"stale NOT_SERVED entries: {set(NOT_SERVED) - shipped}"


@pytest.mark.parametrize(("rel", "doc"), _sample_docs())
def test_sample_is_accepted_by_the_real_api_server(members: RealMembers, rel: str, doc: Obj) -> None:
    member = members.members[SAMPLE_MEMBER.get(rel, "private")]
    key = (doc["apiVersion"], doc["kind"])
    if key in NOT_SERVED:
        # Listed as not served (and why): prove the server really does not serve it, so the list cannot
        # hide a kind it could check. That is this sample's whole check here (not a skip: CI must not pass by
        # skipping; its schema is checked where NOT_SERVED says).
        with pytest.raises(ApiError) as err:
            member.rest.resource(*key)
        assert err.value.status == 404, NOT_SERVED[key]
        return
    if doc.get("metadata", {}).get("namespace"):
        doc = copy.deepcopy(doc)
        doc["metadata"]["namespace"] = SAMPLE_NS["metadata"]["name"]
    try:
        stored = dry_run(member, doc)
    except ApiError as exc:
        if exc.status == 404 and "no kind" in str(exc):
            pytest.fail(f"{rel}: {exc}; a new sample kind must be applied here or listed in NOT_SERVED")
        raise
    assert not dropped(doc, stored), f"{rel}: the server would not keep {dropped(doc, stored)}"


def test_a_route_that_gateway_api_refuses_is_refused(members: RealMembers) -> None:
    """The Gateway API samples are really checked: the CRD's own rules refuse a path without its leading /."""
    docs = yaml.safe_load_all((SAMPLES / "transport" / "kernel-route.yaml").read_text())
    route = copy.deepcopy(next(d for d in docs if d["kind"] == "HTTPRoute"))
    route["metadata"]["namespace"] = SAMPLE_NS["metadata"]["name"]
    dry_run(members.members["private"], route)  # as shipped: accepted
    route["spec"]["rules"][0]["matches"][0]["path"]["value"] = "kernels/mlpk-k-0123456789ab-1/"
    with pytest.raises(ApiError) as refused:
        dry_run(members.members["private"], route)
    assert refused.value.status == 422 and "path" in str(refused.value)


def test_the_bridge_configmap_is_accepted(members: RealMembers) -> None:
    """``mlp-kernel bridge`` (the ingress transport's pod-side script, docs/admin-guide.md 5b) as printed."""
    namespace = SAMPLE_NS["metadata"]["name"]
    cli = [sys.executable, "-m", "mlp_kernel.cli", "bridge", "--namespace", namespace]
    result = subprocess.run(cli, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    configmap = yaml.safe_load(result.stdout)
    stored = dry_run(members.members["private"], configmap)
    assert not dropped(configmap, stored), dropped(configmap, stored)


def dropped(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Paths of values in ``sent`` that ``stored`` lacks or changed. What the server adds is fine
    (defaults, tolerations appended by an admission plugin); a quantity may come back as a string (``64`` as
    ``"64"``)."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [path]
        return [p for k, v in sent.items() for p in dropped(v, stored.get(k), f"{path}.{k}")]
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(stored) < len(sent):
            return [path]
        pairs = enumerate(zip(sent, stored, strict=False))
        return [p for i, (a, b) in pairs for p in dropped(a, b, f"{path}[{i}]")]
    return [] if sent == stored or str(sent) == str(stored) else [f"{path}: {sent!r} -> {stored!r}"]


# -- mlp-kernel render ---------------------------------------------------------------------------------

#: every option of ``mlp-kernel render`` that reaches the pod, with values a real user might give
EVERY_OPTION = [
    "--gpus", "2", "--gpu-model", "V100", "--cpu", "3500m", "--memory", "24Gi",
    "--team", "ML Research / Vision", "--notebook", "projects/Übung 1 (copy).ipynb",
    "--image", "registry.example.com/ml/kernel:1.2@sha256:" + "a" * 64,
]  # fmt: skip


def _render_cases() -> list[Any]:
    """Every (kernelspec, policy, member, flavor) that has a Kubernetes member, shipped in kernelspecs/."""
    out = []
    for policy_path in sorted(KERNELSPECS.glob("*/*policy*.yaml")):
        policy = load_policy(policy_path)
        for flavor in policy.flavors.values():
            if policy.members[flavor.member].backend != "kubernetes":
                continue
            name = f"{policy_path.parent.name}/{policy_path.name}:{flavor.member}/{flavor.name}"
            base = [str(policy_path.parent), str(policy_path), flavor.member, flavor.name]
            out.append(pytest.param(*base, [], id=name))
            out.append(pytest.param(*base, EVERY_OPTION, id=name + "+options"))
    return out


def render(kernelspec: str, policy: str, member: str, flavor: str, *extra: str) -> tuple[Obj, Obj]:
    args = ["--kernelspec", kernelspec, "--policy", policy, "--member", member, "--flavor", flavor]
    result = subprocess.run(
        [sys.executable, "-m", "mlp_kernel.cli", "render", *args, "--user", "alice@example.com", *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    secret, pod = yaml.safe_load_all(result.stdout)
    return secret, pod


def test_some_shipped_policy_renders_kubernetes_objects() -> None:
    assert len(_render_cases()) >= 2, "no shipped policy has a kubernetes member: nothing is dry-run"


@pytest.mark.parametrize(("kernelspec", "policy", "member", "flavor", "extra"), _render_cases())
def test_rendered_objects_are_accepted_with_kueues_webhooks(
    members: RealMembers, kernelspec: str, policy: str, member: str, flavor: str, extra: list[str]
) -> None:
    secret, pod = render(kernelspec, policy, member, flavor, *extra)
    real = members.members[POLICY_MEMBER[member]]
    check_accepted(real, secret, pod)


def test_rendered_pod_with_a_snapshot_volume_is_accepted(members: RealMembers, tmp_path: Path) -> None:
    """The template's other branch: a private member's pod mounts the per-user snapshot claim."""
    spec = KERNELSPECS / "gpu-auto"
    policy = yaml.safe_load((spec / "platform-policy.yaml").read_text())
    storage = {"kind": "volume", "claim": "home-alice", "path": "/home/jovyan/.snapshots"}
    policy["snapshot"]["storage"] = storage
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    secret, pod = render(str(spec), str(path), "private", "silver")
    [claim] = [v for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert claim["persistentVolumeClaim"]["claimName"] == "home-alice"
    check_accepted(members.private, secret, pod)


def check_accepted(member: RealMember, secret: Obj, pod: Obj) -> None:
    stored_secret = dry_run(member, secret)
    stored = dry_run(member, pod)
    spec = stored["spec"]
    # Kueue's pod webhook ran: the pod is gated until Kueue admits it, and keeps the queue and the pinning
    assert ADMISSION_GATE in [g["name"] for g in spec.get("schedulingGates") or []], spec
    # ... and the server keeps every label, the flavor's nodeSelector and tolerations, resources and ports
    assert not dropped(pod, stored), f"the server would not keep {dropped(pod, stored)}"
    # the server stores ``stringData`` (render's redacted form) as base64 ``data``
    sent_secret = {k: v for k, v in secret.items() if k != "stringData"}
    sent_secret["data"] = {k: b64encode(v.encode()).decode() for k, v in secret["stringData"].items()}
    assert not dropped(sent_secret, stored_secret), f"the Secret loses {dropped(sent_secret, stored_secret)}"


# -- the RBAC sample, applied for real ------------------------------------------------------------------


def test_the_sample_role_lets_the_gateway_read_kueue_as_the_backend_does(
    real_kube_members: RealMembers,
) -> None:
    """The gateway's Role, bound to its ServiceAccount, authorizes the backend's own Kueue calls on the real
    RBAC authorizer, the visibility API's included (an aggregated server that asks kube-apiserver whether
    ``localqueues/pendingworkloads`` may be read); and what the Role does not grant is refused."""
    m = real_kube_members.private
    launcher = [d for d in yaml.safe_load_all((SAMPLES / "rbac/kernel-launcher.yaml").read_text()) if d]
    for doc in launcher:
        m.apply(doc)
    try:
        api = _service_account_client(m, "jupyter", "mlp-kernel-gateway")
        pod = python_pod("too-big", queue="kernels", gpus=5)  # more GPUs than any flavor: stays pending
        pod["metadata"]["namespace"] = "jupyter"
        uid = m.create(pod)["metadata"]["uid"]
        workload = m.wait_for(
            lambda: asyncio.run(find_workload(api, "jupyter", uid)),
            30,
            what="the pod's Workload, as the gateway",
        )
        position = m.wait_for(
            lambda: asyncio.run(queue_position(api, "jupyter", "kernels", workload["metadata"]["name"])),
            30,
            what="the queue position from the visibility API, as the gateway",
        )
        assert position == QueuePosition(1, 1)
        with pytest.raises(ApiException) as err:  # the Role grants no list on Secrets
            client.CoreV1Api(api).list_namespaced_secret("jupyter")
        assert err.value.status == 403
    finally:
        for doc in reversed(launcher):
            m.delete(
                doc["apiVersion"], doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace")
            )


def _service_account_client(m: RealMember, namespace: str, name: str) -> client.ApiClient:
    """A client that authenticates as the ServiceAccount (a bound token from the TokenRequest API)."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
    token = m.rest.request("POST", path, request)["status"]["token"]
    config = client.Configuration(host=m.url, api_key={"authorization": f"Bearer {token}"})
    config.ssl_ca_cert = str(m.plane.pki.ca)
    return client.ApiClient(config)


# -- the check can fail --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered_pod() -> Obj:
    spec = KERNELSPECS / "gpu-auto"
    _secret, pod = render(str(spec), str(spec / "platform-policy.yaml"), "private", "bronze")
    return pod


def _set(obj: Obj, path: list[str | int], value: Any) -> Obj:
    """A copy of ``obj`` with ``value`` at ``path`` (keys and list indexes)."""
    obj = copy.deepcopy(obj)
    node: Any = obj
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return obj


KERNEL = ["spec", "containers", 0]
GROUP = ["metadata", "labels", "kueue.x-k8s.io/pod-group-name"]
BAD_QUANTITY = "quantities must match the regular expression"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ([*KERNEL, "gpuCount"], 1, 'unknown field "spec.containers[0].gpuCount"'),
        ([*KERNEL, "resources", "limits", "memory"], "8 gigs", BAD_QUANTITY),
        # a pod group without its size: only Kueue's validating pod webhook knows this rule
        (GROUP, "g1", 'admission webhook "vpod.kb.io" denied'),
    ],
    ids=["unknown-field", "bad-quantity", "kueue-webhook"],
)
def test_a_broken_pod_is_refused_with_the_servers_message(
    members: RealMembers, rendered_pod: Obj, path: list[str | int], value: Any, message: str
) -> None:
    dry_run(members.private, rendered_pod)  # the unbroken pod passes
    with pytest.raises(ApiError) as err:
        dry_run(members.private, _set(rendered_pod, path, value))
    assert message in str(err.value), err.value


def test_a_broken_kueue_object_is_refused_with_the_servers_message(members: RealMembers) -> None:
    [cq] = [
        d
        for d in yaml.safe_load_all((SAMPLES / "kueue/private-cluster.yaml").read_text())
        if d["kind"] == "ClusterQueue"
    ]
    quota = ["spec", "resourceGroups", 0, "flavors", 0, "resources", 2, "nominalQuota"]
    cases = [
        (_set(cq, ["spec", "cohort"], "gpu"), 'unknown field "spec.cohort"'),  # Kueue v1beta1's name
        (_set(cq, quota, "eight"), BAD_QUANTITY),
    ]
    for bad, message in cases:
        with pytest.raises(ApiError) as err:
            dry_run(members.private, bad)
        assert message in str(err.value), err.value
