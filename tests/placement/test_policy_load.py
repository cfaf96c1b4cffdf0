"""Loading a policy: shipped policies are valid; every mistake is reported with its field path and line."""

from __future__ import annotations

import os
import textwrap

import pytest

from mlp_kernel.placement import (
    Action,
    ClusterState,
    GpuRequest,
    PolicyError,
    decide,
    load_policy,
    parse_policy,
)

from .conftest import KERNELSPEC, NOW

MINIMAL = """\
members:
  local: {backend: local}
flavors:
  local: {member: local, tier: local, gpu_models: [local], price_per_gpu_hour: 0, capacity_gpus: 1}
"""


def issues(text: str) -> list[tuple[str, str, int | None]]:
    with pytest.raises(PolicyError) as info:
        parse_policy(textwrap.dedent(text))
    return [(i.path, i.message, i.line) for i in info.value.errors]


@pytest.mark.parametrize("name", ["policy.yaml", "demo-policy.yaml", "platform-policy.yaml"])
def test_shipped_policies_are_valid_and_the_default_request_runs(name: str) -> None:
    policy = load_policy(os.path.join(KERNELSPEC, name))
    decision = decide(policy, ClusterState.from_policy(policy), GpuRequest(), NOW)
    assert decision.action is Action.RUN, decision.explain()


def test_default_kernelspec_policy_is_one_local_pool_without_bursting() -> None:
    policy = load_policy(os.path.join(KERNELSPEC, "policy.yaml"))
    assert list(policy.members) == ["local"]
    assert policy.members["local"].backend == "local" and not policy.members["local"].public
    assert policy.flavors["local"].capacity_gpus == 64  # kernels at once on this machine (4eaa630)
    assert policy.idle_timeout_s == 900 and policy.burst.enabled is False
    assert policy.default_request.gpu_count == 1


def test_platform_policy_fields(platform_policy) -> None:  # type: ignore[no-untyped-def]
    p = platform_policy
    assert p.tiers == ("bronze", "silver", "gold")
    assert [f.name for f in p.flavors.values()] == ["bronze", "silver", "gold"]
    assert p.flavors["silver"].gpu_models == ("V100", "A30") and p.flavors["silver"].tier_rank == 1
    assert p.flavors["gold"].node_labels == {"mlp.io/gpu-tier": "gold"}
    assert p.flavors["gold"].price_per_gpu_hour == pytest.approx(4.10)
    assert p.members["aws"].public and p.members["aws"].health == "karmada"
    assert (
        p.members["private"].local_queue == "kernels" and p.members["private"].cluster_queue == "gpu-private"
    )
    assert p.burst.threshold_s == 600 and p.burst.deadline_horizon_s == 7200
    assert p.private_data_classes == {"sensitive"} and "internal" in p.data_classes
    assert p.gpu_models() == ["RTX", "V100", "A30", "A100", "H100"]
    assert [m.name for m in p.public_members()] == ["aws"]
    assert [f.name for f in p.flavors_of("private")] == ["bronze", "silver"]
    assert p.canonical_model("a100") == "A100" and p.canonical_model("b200") is None
    assert p.snapshot.max_bytes == 2 * 1024**3 and p.snapshot.storage["kind"] == "local"
    assert p.launch_timeout_s == 1800 and p.max_gpus == 8


def test_defaults_apply_to_a_minimal_policy() -> None:
    p = parse_policy(MINIMAL)
    assert p.idle_timeout_s == 900 and p.launch_timeout_s == 1800 and p.max_gpus == 8
    assert p.burst.threshold_s == 600 and p.burst.deadline_horizon_s == 7200 and p.burst.enabled
    assert p.tiers == ("local",) and p.snapshot.enabled and p.snapshot.exclude == ()
    assert p.members["local"].health == "static" and p.default_request.budget == "fixed"


def test_a_wrong_type_names_the_field_path_and_line() -> None:
    found = issues(MINIMAL.replace("price_per_gpu_hour: 0", "price_per_gpu_hour: cheap"))
    assert found == [("flavors.local.price_per_gpu_hour", "expected a number, got a string ('cheap')", 4)]


def test_str_lists_every_error_one_per_line_with_lines() -> None:
    text = """\
    members:
      private: {backend: kubernetes, namespace: jupyter}
    flavors:
      gold:
        member: nowhere
        tier: gold
        gpu_models: [A100]
        price_per_gpu_hour: "4.10"
        node_labels: {mlp.io/gpu-tier: gold}
    burst: {threshold: soon}
    idle_timeout: 0
    """
    with pytest.raises(PolicyError) as info:
        parse_policy(textwrap.dedent(text))
    lines = str(info.value).splitlines()
    assert lines == [
        "members.private.local_queue: required (the Kueue LocalQueue kernel pods are labelled with) (line 2)",
        "flavors.gold.member: unknown member 'nowhere'; members are: private (line 5)",
        "flavors.gold.price_per_gpu_hour: expected a number, got a string ('4.10') (line 8)",
        "burst.threshold: expected a duration such as 90s, 15m, 1h30m, got 'soon' (line 10)",
        "idle_timeout: must be longer than 0 (line 11)",
    ]


def test_unknown_fields_are_errors_not_silently_ignored() -> None:
    found = issues(MINIMAL + "idle_timeot: 10m\n")
    assert found[0][0] == "idle_timeot" and "unknown field" in found[0][1] and found[0][2] == 5


def test_duplicate_keys_are_reported() -> None:
    found = issues(MINIMAL + "max_gpus: 4\nmax_gpus: 2\n")
    assert ("max_gpus", "duplicate key", 6) in found


def test_invalid_yaml_reports_the_line() -> None:
    found = issues("members:\n  a: [1, 2\nflavors: {}\n")
    assert found[0][0] == "" and "not valid YAML" in found[0][1] and found[0][2] is not None


def test_empty_policy_is_an_error() -> None:
    assert "empty" in issues("")[0][1]


def test_kubernetes_members_need_namespace_queue_and_pinning_labels() -> None:
    text = """\
    members:
      c: {backend: kubernetes}
    flavors:
      f: {member: c, tier: t, gpu_models: [X], price_per_gpu_hour: 1}
    """
    paths = [p for p, _, _ in issues(text)]
    assert paths == ["members.c.namespace", "members.c.local_queue", "flavors.f.node_labels"]


def test_flavors_of_a_member_must_share_a_pinning_label_key() -> None:
    text = """\
    members:
      c: {namespace: ns, local_queue: q}
    flavors:
      a: {member: c, tier: t, gpu_models: [X], price_per_gpu_hour: 0, node_labels: {tier: a}}
      b: {member: c, tier: t, gpu_models: [Y], price_per_gpu_hour: 0, node_labels: {pool: b}}
    """
    ((path, message, line),) = issues(text)
    assert path == "flavors.b.node_labels" and "share no node label key" in message and line == 5


def test_local_members_need_declared_capacity() -> None:
    found = issues(MINIMAL.replace(", capacity_gpus: 1", ""))
    assert found == [
        ("flavors.local.capacity_gpus", "required for a local member: how many GPUs this pool has", 4)
    ]


def test_tier_and_model_references_are_checked() -> None:
    text = MINIMAL + "tiers: [local]\ndefault_request: {gpu_model: H100, gpu_count: 9}\n"
    found = issues(text.replace("tier: local,", "tier: gold,"))
    paths = [p for p, _, _ in found]
    assert "flavors.local.tier" in paths and "default_request.gpu_model" in paths
    assert "default_request.gpu_count" in paths


def test_data_classes_and_default_request_are_validated() -> None:
    text = MINIMAL + textwrap.dedent("""\
    data_classes: {known: [public, internal], keep_private: [secret]}
    default_request: {data_class: topsecret, budget: cheap, cpu: lots, burstable: "yes"}
    """)
    found = {p: m for p, m, _ in issues(text)}
    assert "not in data_classes.known" in found["data_classes.keep_private[0]"]
    assert "unknown data class" in found["default_request.data_class"]
    assert found["default_request.budget"] == "expected flex or fixed, got 'cheap'"
    assert "Kubernetes quantity" in found["default_request.cpu"]
    assert found["default_request.burstable"].startswith("expected true or false")


def test_model_spelling_in_default_request_is_canonicalised() -> None:
    p = parse_policy(MINIMAL + "default_request: {gpu_model: LOCAL}\n")
    assert p.default_request.gpu_model == "local"


def test_a_mapping_can_be_validated_too_without_lines() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy({"members": {"a": {"backend": "local"}}, "flavors": {"f": {"member": "a"}}})
    assert all(i.line is None for i in info.value.errors)
    assert {i.path for i in info.value.errors} >= {
        "flavors.f.tier",
        "flavors.f.gpu_models",
        "flavors.f.price_per_gpu_hour",
    }


def test_missing_file_is_a_policy_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "nope.yaml")


def test_health_karmada_requires_a_cluster_name() -> None:
    found = issues(MINIMAL.replace("{backend: local}", "{backend: local, health: karmada}"))
    assert found[0][0] == "members.local.health"


def test_policy_values_are_immutable(demo_policy) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError):
        demo_policy.flavors["gold"] = None  # type: ignore[index]
