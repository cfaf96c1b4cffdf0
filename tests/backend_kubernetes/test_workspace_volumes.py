"""The user's files on a private member's kernel pod: the workspace volume at the notebook server's path, the
notebook's directory as the working directory, and a per-user packages volume (issue 14 §2).

Rendered with the shipped template and validated as a launch validates it; the names come from the policy
with the user's name made a DNS label, and the notebook path stays a value (never template or YAML source).
"""

from __future__ import annotations

from typing import Any

import pytest

from mlp_kernel.backends.kubernetes import names
from mlp_kernel.backends.kubernetes.objects import render_kernel_objects
from mlp_kernel.placement import PolicyError, parse_policy

from .policies import KERNELSPEC, TEST_MEMBERS_POLICY

PRIVATE_HEAD = (
    "  private: {backend: kubernetes, namespace: jupyter, local_queue: kernels, cluster_queue: gpu-private,\n"
)
PRIVATE_LINE = PRIVATE_HEAD + "            kubeconfig_context: private}\n"
WORKSPACE = PRIVATE_HEAD + (
    '            kubeconfig_context: private, workspace_claim: "home-{username}",\n'
    '            workspace_path: /home/jovyan, packages_claim: "pkgs-{username}"}\n'
)


def policy_text(private: str = WORKSPACE) -> str:
    assert PRIVATE_LINE in TEST_MEMBERS_POLICY
    return TEST_MEMBERS_POLICY.replace(PRIVATE_LINE, private)


def render(member: str = "private", flavor: str = "silver", **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"user": "alice", "kernel_id": "k-1", "key": "k" * 32}
    args.update(kw)
    _secret, pod = render_kernel_objects(KERNELSPEC, parse_policy(policy_text()), member, flavor, **args)
    return pod


def mounts(pod: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """volume name -> (claim, mount path) of the kernel container's claim mounts."""
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    kernel = pod["spec"]["containers"][0]
    return {
        m["name"]: (claims[m["name"]], m["mountPath"]) for m in kernel["volumeMounts"] if m["name"] in claims
    }


def env(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}


def test_the_pod_mounts_the_users_workspace_and_starts_in_the_notebooks_directory() -> None:
    pod = render(notebook="/home/jovyan/project/analysis/train.ipynb")
    assert mounts(pod) == {
        "workspace": ("home-alice", "/home/jovyan"),
        "packages": ("pkgs-alice", "/opt/mlp-kernel/packages"),
    }
    assert pod["spec"]["containers"][0]["workingDir"] == "/home/jovyan/project/analysis"
    e = env(pod)
    assert e["PYTHONUSERBASE"] == "/opt/mlp-kernel/packages" and e["PIP_USER"] == "1"
    assert e["PIP_CACHE_DIR"] == "/opt/mlp-kernel/packages/.cache/pip"


@pytest.mark.parametrize(
    "notebook",
    ["", "/srv/elsewhere/nb.ipynb", "/home/jovyan/../../etc/nb.ipynb", "relative/nb.ipynb", "nb.ipynb"],
)
def test_a_notebook_outside_the_workspace_starts_at_its_root(notebook: str) -> None:
    assert render(notebook=notebook)["spec"]["containers"][0]["workingDir"] == "/home/jovyan"


def test_a_hostile_notebook_path_is_a_value_not_yaml() -> None:
    notebook = '/home/jovyan/x\n    image: evil\ny: {z: 1}"/nb.ipynb'
    pod = render(notebook=notebook)
    kernel = pod["spec"]["containers"][0]
    assert kernel["workingDir"] == '/home/jovyan/x\n    image: evil\ny: {z: 1}"'
    assert kernel["image"] != "evil" and "y" not in pod


def test_a_user_name_that_is_not_a_dns_label_gets_a_distinct_claim_name() -> None:
    a = mounts(render(user="Alice Smith"))["workspace"][0]
    b = mounts(render(user="alice.smith"))["workspace"][0]
    assert a.startswith("home-alice-smith-") and b.startswith("home-alice-smith-") and a != b
    assert names.is_dns_label(a.removeprefix("home-"))


def test_a_public_member_mounts_no_workspace_and_the_policy_refuses_one() -> None:
    pod = render(member="public", flavor="gold", notebook="/home/jovyan/a/nb.ipynb")
    assert mounts(pod) == {}
    assert pod["spec"]["containers"][0]["workingDir"] == "/tmp"
    public = TEST_MEMBERS_POLICY.replace("public: true,", 'public: true, workspace_claim: "home-{username}",')
    with pytest.raises(PolicyError) as err:
        parse_policy(public)
    assert "members.public.workspace_claim" in str(err.value.describe()), err.value.describe()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ('workspace_claim: "Home_{username}"', "not a PersistentVolumeClaim name"),
        ('workspace_claim: "home-{username}", workspace_path: home', "must be an absolute path"),
        (
            'packages_claim: "p-{username}", packages_path: /home/jovyan/.local',
            "inside workspace_path",
        ),
    ],
)
def test_the_loader_refuses_bad_workspace_settings(fields: str, message: str) -> None:
    private = PRIVATE_LINE.replace("kubeconfig_context: private}", f"kubeconfig_context: private, {fields}}}")
    with pytest.raises(PolicyError) as err:
        parse_policy(policy_text(private))
    assert message in err.value.describe(), err.value.describe()


def test_without_a_workspace_the_pod_is_as_before() -> None:
    _secret, pod = render_kernel_objects(
        KERNELSPEC, parse_policy(TEST_MEMBERS_POLICY), "private", "silver", user="alice", key="k" * 32
    )
    assert mounts(pod) == {} and pod["spec"]["containers"][0]["workingDir"] == "/tmp"
    assert "PIP_USER" not in env(pod)
