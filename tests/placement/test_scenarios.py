"""Scenarios from real-shaped ``kubectl get -o yaml`` dumps (see dumps/generate.py for the scene).

Each test edits the dumps the way a cluster would change (a queue stopped, a Cluster not Ready, quota freed)
and checks the decision and its explanation. Both Kueue API versions are read the same way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mlp_kernel.placement import Action, GpuRequest, Policy, decide
from mlp_kernel.placement.adapters import StateError, read_objects, state_from_dumps

from .conftest import NOW, dump

FLEX = {"burstable": True, "budget": "flex"}
BASE = {"aws": [dump("aws.yaml"), dump("karmada-clusters.yaml")]}


def state(policy: Policy, private: str = "private-v1beta2.yaml", **extra: list[str]) -> Any:
    dumps = {**BASE, "private": [private if private.startswith("/") else dump(private)]}
    for member, paths in extra.items():
        dumps[member] = dumps.get(member, []) + paths
    return state_from_dumps(policy, dumps, now=NOW)


@pytest.mark.parametrize("version", ["private-v1beta2.yaml", "private-v1beta1.yaml"])
def test_both_kueue_versions_give_the_same_state(platform_policy: Policy, version: str) -> None:
    s = state(platform_policy, version)
    bronze, silver = s.members["private"].flavors["bronze"], s.members["private"].flavors["silver"]
    assert (bronze.nominal_gpus, bronze.used_gpus, bronze.borrowable_gpus) == (8, 8, 0)
    assert (silver.nominal_gpus, silver.used_gpus, silver.free_gpus) == (8, 6, 2)
    assert bronze.pending == 4  # three pinned to bronze and one unpinned
    assert silver.pending == 1  # only the unpinned one could take silver
    assert bronze.admission_rate_per_s == pytest.approx(6 / 3600)
    gold = s.members["aws"].flavors["gold"]
    assert (gold.nominal_gpus, gold.used_gpus) == (16, 4)
    assert s.members["private"].source == f"dump {version}"


def test_any_gpu_runs_on_silver_when_bronze_is_full(platform_policy: Policy) -> None:
    d = decide(platform_policy, state(platform_policy), GpuRequest(), NOW)
    assert (d.action, d.member, d.flavor, d.gpu_model) == (Action.RUN, "private", "silver", "V100")


def test_rtx_queues_behind_four_with_the_observed_rate(platform_policy: Policy) -> None:
    d = decide(platform_policy, state(platform_policy), GpuRequest(gpu_model="RTX", **FLEX), NOW)
    assert d.action is Action.QUEUE and d.flavor == "bronze"
    assert d.expected_wait_s == pytest.approx(3000)  # position 5 at one admission per 10 min
    assert "position 5, ETA ~50 min (confidence medium)" in d.summary


def test_three_gpus_queue_on_a_low_confidence_guess_then_burst_after_the_threshold(
    platform_policy: Policy,
) -> None:
    s = state(platform_policy)
    d = decide(platform_policy, s, GpuRequest(gpu_count=3, **FLEX), NOW)
    assert (d.action, d.flavor) == (Action.QUEUE, "silver")  # no silver admissions in the last hour
    assert "confidence low" in d.summary
    d = decide(platform_policy, s, GpuRequest(gpu_count=3, waited_s=660, **FLEX), NOW)
    assert (d.action, d.member, d.flavor, d.price_per_hour) == (
        Action.BURST,
        "aws",
        "gold",
        pytest.approx(12.3),
    )


def test_three_gpus_with_fixed_budget_queue_and_say_how_to_burst(platform_policy: Policy) -> None:
    d = decide(platform_policy, state(platform_policy), GpuRequest(gpu_count=3, burstable=True), NOW)
    assert d.action is Action.QUEUE and d.member == "private"
    assert d.summary.endswith("Run %gpu budget=flex to allow AWS gold at $12.30/h.")


def test_cohort_peer_with_idle_quota_lets_bronze_run(platform_policy: Policy, edited_dump: Any) -> None:
    def free_training_bronze(obj: dict[str, Any]) -> None:
        if obj["kind"] == "ClusterQueue" and obj["metadata"]["name"] == "training":
            for key in ("flavorsUsage", "flavorsReservation"):
                for fl in obj["status"][key]:
                    if fl["name"] == "bronze":
                        next(r for r in fl["resources"] if r["name"] == "nvidia.com/gpu")["total"] = 1

    s = state(platform_policy, edited_dump("private-v1beta2.yaml", free_training_bronze))
    assert s.members["private"].flavors["bronze"].borrowable_gpus == 3
    d = decide(platform_policy, s, GpuRequest(gpu_model="rtx"), NOW)
    assert d.action is Action.RUN and d.flavor == "bronze"


def test_borrowing_limit_caps_what_the_cohort_lends(platform_policy: Policy, edited_dump: Any) -> None:
    def edit(obj: dict[str, Any]) -> None:
        if obj["kind"] == "ClusterQueue" and obj["metadata"]["name"] == "training":
            for fl in obj["status"]["flavorsUsage"] + obj["status"]["flavorsReservation"]:
                for r in fl["resources"]:
                    r["total"] = 0
        if obj["kind"] == "ClusterQueue" and obj["metadata"]["name"] == "gpu-private":
            for r in obj["spec"]["resourceGroups"][0]["flavors"][0]["resources"]:
                if r["name"] == "nvidia.com/gpu":
                    r["borrowingLimit"] = 2

    s = state(platform_policy, edited_dump("private-v1beta1.yaml", edit))
    assert s.members["private"].flavors["bronze"].borrowable_gpus == 2


@pytest.mark.parametrize("stop", ["Hold", "HoldAndDrain"])
def test_stopped_private_cluster_queue_is_never_chosen(
    platform_policy: Policy, edited_dump: Any, stop: str
) -> None:
    def edit(obj: dict[str, Any]) -> None:
        if obj["kind"] == "ClusterQueue" and obj["metadata"]["name"] == "gpu-private":
            obj["spec"]["stopPolicy"] = stop

    d = decide(
        platform_policy,
        state(platform_policy, edited_dump("private-v1beta2.yaml", edit)),
        GpuRequest(**FLEX),
        NOW,
    )
    assert d.member == "aws" and d.action is Action.BURST
    assert f"stopPolicy {stop}" in next(r for r in d.explanation if r.rule == "member_health").detail


def test_inactive_cluster_queue_condition_is_never_chosen(platform_policy: Policy, edited_dump: Any) -> None:
    def edit(obj: dict[str, Any]) -> None:
        if obj["kind"] == "ClusterQueue" and obj["metadata"]["name"] == "gpu-private":
            obj["status"]["conditions"][0].update(status="False", reason="FlavorNotFound", message="missing")

    d = decide(
        platform_policy,
        state(platform_policy, edited_dump("private-v1beta2.yaml", edit)),
        GpuRequest(gpu_model="v100"),
        NOW,
    )
    assert d.action is Action.REJECT and "unavailable" in d.summary


def test_karmada_cluster_not_ready_takes_the_member_out(platform_policy: Policy, edited_dump: Any) -> None:
    def edit(obj: dict[str, Any]) -> None:
        if obj["kind"] == "Cluster" and obj["metadata"]["name"] == "aws":
            obj["status"]["conditions"][0].update(status="False", reason="ClusterNotReachable")

    s = state_from_dumps(
        platform_policy,
        {
            "private": [dump("private-v1beta2.yaml")],
            "aws": [dump("aws.yaml"), edited_dump("karmada-clusters.yaml", edit)],
        },
        now=NOW,
    )
    assert not s.members["aws"].ready and "ClusterNotReachable" in s.members["aws"].reason
    d = decide(platform_policy, s, GpuRequest(gpu_model="h100", **FLEX), NOW)
    assert d.action is Action.REJECT and "public member AWS is unavailable" in d.summary


def test_member_without_a_dump_is_declared_capacity_and_says_so(platform_policy: Policy) -> None:
    s = state_from_dumps(platform_policy, {"private": [dump("private-v1beta2.yaml")]}, now=NOW)
    assert s.members["aws"].source.startswith("declared capacity")
    assert s.members["aws"].flavors["gold"].free_gpus == 16
    assert "assumed Ready" in s.members["private"].reason  # no Karmada Cluster objects were given


def test_visibility_summary_gives_the_reported_position(platform_policy: Policy) -> None:
    dumps = {**BASE, "private": [dump("private-v1beta2.yaml"), dump("private-pending.json")]}
    s = state_from_dumps(platform_policy, dumps, now=NOW, own_workload="kernel-mine")
    assert s.members["private"].flavors["bronze"].queue_position == 5
    d = decide(platform_policy, s, GpuRequest(gpu_model="rtx", waited_s=60), NOW)
    wait = next(r for r in d.explanation if r.rule == "expected_wait")
    assert wait.inputs["confidence"] == "high" and wait.inputs["position"] == 5


def test_reasking_with_a_near_deadline_bursts_sooner(platform_policy: Policy) -> None:
    s = state(platform_policy)
    req = GpuRequest(gpu_count=3, waited_s=240, deadline=NOW + timedelta(hours=3), **FLEX)
    assert decide(platform_policy, s, req, NOW).action is Action.QUEUE  # 4 min < X_eff 10 min
    later = NOW + timedelta(hours=2, minutes=30)  # 30 min left: X_eff = 10 min * 30/120 = 2.5 min
    assert decide(platform_policy, s, req, later).action is Action.BURST


def test_dump_missing_the_cluster_queue_is_a_clear_error(platform_policy: Policy) -> None:
    with pytest.raises(StateError, match="ClusterQueue 'gpu-private' is not in the state"):
        state_from_dumps(platform_policy, {"private": [dump("aws.yaml")]}, now=NOW)


def test_unknown_member_in_state_is_an_error(platform_policy: Policy) -> None:
    with pytest.raises(StateError, match="unknown member"):
        state_from_dumps(platform_policy, {"gcp": [dump("aws.yaml")]}, now=NOW)


def test_read_objects_flattens_lists_and_multi_document_files(tmp_path: Any) -> None:
    path = tmp_path / "multi.yaml"
    path.write_text(open(dump("aws.yaml")).read() + "---\n" + open(dump("karmada-clusters.yaml")).read())
    kinds = [o["kind"] for o in read_objects(path)]
    assert kinds.count("Cluster") == 2 and kinds.count("ClusterQueue") == 1 and "List" not in kinds


def test_typed_lists_give_their_items_a_kind(tmp_path: Any) -> None:
    path = tmp_path / "cqs.yaml"
    path.write_text(
        "apiVersion: kueue.x-k8s.io/v1beta2\nkind: ClusterQueueList\nitems:\n- metadata: {name: a}\n"
    )
    assert read_objects(path)[0]["kind"] == "ClusterQueue"


@pytest.mark.parametrize(
    ("content", "match"),
    [("a: [1", "bad.yaml: line 2: not valid YAML"), ("- 1\n- 2\n", "expected Kubernetes")],
)
def test_bad_dump_files_name_the_file(tmp_path: Any, content: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(StateError, match=match) as info:
        read_objects(path)
    assert "bad.yaml" in str(info.value)


def test_resource_flavor_labels_that_disagree_with_the_policy_are_noted(
    platform_policy: Policy, edited_dump: Any
) -> None:
    def edit(obj: dict[str, Any]) -> None:
        if obj["kind"] == "ResourceFlavor" and obj["metadata"]["name"] == "silver":
            obj["spec"]["nodeLabels"] = {"mlp.io/gpu-tier": "silver-v2"}

    s = state(platform_policy, edited_dump("private-v1beta2.yaml", edit))
    assert (
        "ResourceFlavor 'silver' nodeLabels {'mlp.io/gpu-tier': 'silver-v2'} differ"
        in s.members["private"].reason
    )
    assert s.members["private"].usable  # a note for the admin, not a health verdict


def test_admitted_workloads_count_when_the_cluster_queue_status_lags(
    platform_policy: Policy, edited_dump: Any
) -> None:
    """Real Kueue writes the ClusterQueue's status after it admits a Workload: a read in between sees the
    Workload admitted and the status without it. The flavor is still full (found on the real control
    plane)."""

    def status_lags(obj: dict[str, Any]) -> None:
        if obj["kind"] == "ClusterQueue" and obj["metadata"]["name"] == "gpu-private":
            for key in ("flavorsUsage", "flavorsReservation"):
                for fl in obj["status"][key]:
                    for r in fl["resources"]:
                        r["total"] = 0

    s = state(platform_policy, edited_dump("private-v1beta2.yaml", status_lags))
    bronze, silver = s.members["private"].flavors["bronze"], s.members["private"].flavors["silver"]
    assert (bronze.used_gpus, silver.used_gpus) == (8, 6)
    d = decide(platform_policy, s, GpuRequest(), NOW)
    assert (d.action, d.flavor) == (Action.RUN, "silver")
