"""A namespace per user: the name rule (no two users meet), the policy field, the per-user Member.

The rule is checked as the property it promises: over many names chosen to collide (case, punctuation, the
escape character itself, names that look like another name's escaped or hashed form, very long names), every
result is a valid DNS label within its room, and distinct names give distinct results.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlp_kernel.placement import PolicyError, parse_policy
from mlp_kernel.placement.schema import DNS_LABEL
from mlp_kernel.placement.tenancy import (
    MIN_ROOM,
    TenancyError,
    escape,
    identity_part,
    resolve_policy,
    template_problem,
)
from tests.backend_kubernetes.policies import KERNELSPEC

POLICY = """
version: 1
tiers: [silver]
members:
  private:
    backend: kubernetes
    kubeconfig_context: private
    tenancy: {{namespace: "{namespace}", local_queue: "{queue}"{extra}}}
  public: {{backend: kubernetes, public: true, namespace: jupyter, local_queue: gpu, kubeconfig_context: aws}}
flavors:
  silver: {{member: private, tier: silver, gpu_models: [V100], node_labels: {{mlp.io/gpu-tier: silver}},
           price_per_gpu_hour: 0}}
  gold: {{member: public, tier: silver, gpu_models: [A100], node_labels: {{mlp.io/gpu-tier: gold}},
         price_per_gpu_hour: 4}}
"""


def policy(namespace: str = "user-{username}", queue: str = "kernels", extra: str = "") -> object:
    return parse_policy(POLICY.format(namespace=namespace, queue=queue, extra=extra))


TRICKY = [
    "alice", "Alice", "ALICE", "alice.smith", "alice_smith", "alice-smith", "alice--smith", "alice-",
    "-alice", "alice@example.org", "alice@example.com", "x--41lice", "xalice", "x", "xx", "0", "a b",
    "a\nb", "a\tb", "ålice", "алиса", "爱丽丝", "👩‍💻", "a--2eb", "a.b", "xa--2eb", "a" * 63, "a" * 64,
    "a" * 200, "a" * 200 + "b", "A" * 200, "x" + "--41" * 30, "x" + "--41" * 30 + "a", "..", "-", "--",
    "---", "alice---0123456789abcdef", "kube-system", "default", "a" * 58, "a" * 59,
]  # fmt: skip


@pytest.mark.parametrize("room", [63, 58, 40, MIN_ROOM])
def test_distinct_names_never_share_a_namespace(room: int) -> None:
    names = TRICKY + ["".join(p) for p in itertools.product("aA.-_@x", repeat=3)]
    seen: dict[str, str] = {}
    for name in names:
        part = identity_part(name, room)
        assert len(part) <= room and DNS_LABEL.match(part), (name, part)
        assert seen.setdefault(part, name) == name, f"{name!r} and {seen[part]!r} both map to {part!r}"


def test_readable_names_are_kept_and_others_escaped_recognisably() -> None:
    assert identity_part("alice") == "alice"
    assert identity_part("alice-smith") == "alice-smith"
    assert identity_part("Alice") == "x--41lice"
    assert identity_part("alice.smith@example.org") == "xalice--2esmith--40example--2eorg"
    assert identity_part("alice--smith") == "xalice--2d--2dsmith"  # '--' is the escape: never kept
    assert escape("ål") == "x--c3--a5l"  # UTF-8 bytes
    long = identity_part("a" * 100, 40)
    assert long.startswith("x" + "a" * 20) and "---" in long and len(long) == 40
    with pytest.raises(ValueError):
        identity_part("")


def test_the_policy_field_resolves_once_into_this_users_member() -> None:
    p = policy(extra=', service_account: "kernel-{username}"')
    unresolved = p.members["private"]
    assert unresolved.namespace is None and unresolved.tenancy is not None
    alice = resolve_policy(p, "alice", "vision").members["private"]
    assert (alice.namespace, alice.local_queue, alice.service_account) == (
        "user-alice",
        "kernels",
        "kernel-alice",
    )
    bob = resolve_policy(p, "Bob@example.org", "").members["private"]
    assert bob.namespace == "user-x--42ob--40example--2eorg"
    public = resolve_policy(p, "alice", "").members["public"]
    assert public == p.members["public"], "members without tenancy are left as they are"


def test_a_team_namespace_needs_the_servers_team() -> None:
    p = policy("team-{team}", "q-{team}")
    vision = resolve_policy(p, "alice", "vision").members["private"]
    assert (vision.namespace, vision.local_queue) == ("team-vision", "q-vision")
    with pytest.raises(TenancyError, match="no team: set MLP_KERNEL_TEAM"):
        resolve_policy(p, "alice", "")


@pytest.mark.parametrize(
    "namespace, message",
    [
        ("{team}-{username}", "2 placeholders"),
        ("{username}-{username}", "2 placeholders"),
        ("User-{username}", "not a DNS label"),
        ("user_{username}", "not a DNS label"),
        ("{username}-", "not a DNS label"),
        ("n" * 44 + "{username}", "leaves 19 characters"),
    ],
)
def test_templates_that_could_collide_or_never_fit_are_refused_at_load(namespace: str, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        policy(namespace)
    assert message in str(err.value) and "members.private.tenancy.namespace" in str(err.value)


def test_tenancy_replaces_the_static_namespace_but_needs_a_queue() -> None:
    with pytest.raises(PolicyError, match="local_queue"):
        parse_policy(POLICY.format(namespace="user-{username}", queue="", extra="").replace(
            ', local_queue: ""', ""))  # fmt: skip
    assert template_problem("user-{username}") == ""
    assert template_problem("kernels.{username}", DNS_LABEL) != ""


def test_render_shows_the_namespace_each_user_gets(tmp_path: Path) -> None:
    """`mlp-kernel render --user` resolves the policy as that user's gateway does: the pod, its Secret and the
    template's `kernel_namespace` are in the user's namespace; a per-team template without --team says so."""
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY.format(namespace="user-{username}", queue="kernels", extra=""))

    def render(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "mlp_kernel.cli", "render", "--kernelspec", str(KERNELSPEC)]
        cmd += ["--policy", str(policy_file), "--member", "private", "--flavor", "silver", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    result = render("--user", "Alice@example.org", "--kernel-id", "k1")
    assert result.returncode == 0, result.stderr
    secret, pod = list(yaml.safe_load_all(result.stdout))[:2]
    expected = "user-x--41lice--40example--2eorg"
    assert secret["metadata"]["namespace"] == pod["metadata"]["namespace"] == expected
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "kernels"

    policy_file.write_text(POLICY.format(namespace="team-{team}", queue="kernels", extra=""))
    result = render("--user", "alice")
    assert result.returncode == 2 and "no team: set MLP_KERNEL_TEAM" in result.stderr
    assert render("--user", "alice", "--team", "vision").returncode == 0
