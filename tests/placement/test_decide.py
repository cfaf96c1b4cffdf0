"""The placement rules, one behaviour per test, on the demo policy (private bronze/silver, public AWS gold).

States are built directly from the state dataclasses (as the simulator does); scenario tests from real
Kueue/Karmada dumps are in test_scenarios.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from mlp_kernel.placement import Action, ClusterState, Decision, GpuRequest, Policy, decide

from .conftest import NOW

FLEX = {"burstable": True, "budget": "flex"}


def full(policy: Policy, *flavors: str, pending: int = 0, rate: float | None = None) -> ClusterState:
    """Declared capacity with the named private flavors fully used."""
    state = ClusterState.from_policy(policy)
    for name in flavors:
        f = policy.flavors[name]
        state = state.with_usage(
            f.member, name, used_gpus=f.capacity_gpus, pending=pending, admission_rate_per_s=rate
        )
    return state


def rule(d: Decision, name: str) -> dict:  # type: ignore[type-arg]
    found = [r for r in d.explanation if r.rule == name]
    assert found, f"rule {name} missing from {[r.rule for r in d.explanation]}"
    return {"inputs": found[0].inputs, "result": found[0].result, "detail": found[0].detail}


# --- rule 1: candidates -----------------------------------------------------------------------------------


def test_candidates_are_flavors_offering_the_model(demo_policy: Policy) -> None:
    d = decide(demo_policy, ClusterState.from_policy(demo_policy), GpuRequest(gpu_model="a30"), NOW)
    assert rule(d, "candidates")["result"] == "private/silver"
    assert d.action is Action.RUN and d.flavor == "silver" and d.gpu_model == "A30"


def test_tier_request_selects_flavors_of_that_tier(demo_policy: Policy) -> None:
    d = decide(demo_policy, ClusterState.from_policy(demo_policy), GpuRequest(tier="silver"), NOW)
    assert d.flavor == "silver" and d.gpu_model == "V100"  # first model of the flavor


def test_flavors_too_small_for_the_count_are_not_candidates(demo_policy: Policy) -> None:
    d = decide(demo_policy, ClusterState.from_policy(demo_policy), GpuRequest(gpu_count=4, **FLEX), NOW)
    assert rule(d, "candidates")["result"] == "aws/gold"
    assert "at most 2 GPUs" in rule(d, "candidates")["inputs"]["excluded"]["bronze"]


def test_unknown_model_is_rejected_with_the_models_on_offer(demo_policy: Policy) -> None:
    d = decide(demo_policy, ClusterState.from_policy(demo_policy), GpuRequest(gpu_model="B200"), NOW)
    assert d.action is Action.REJECT and "RTX, V100, A30, A100, H100" in d.summary


def test_more_gpus_than_the_policy_allows_is_rejected(demo_policy: Policy) -> None:
    d = decide(demo_policy, ClusterState.from_policy(demo_policy), GpuRequest(gpu_count=9, **FLEX), NOW)
    assert d.action is Action.REJECT and "At most 8 GPUs" in d.summary


# --- rule 2: private first ----------------------------------------------------------------------------------


def test_lowest_private_tier_with_free_quota_runs(demo_policy: Policy) -> None:
    d = decide(demo_policy, ClusterState.from_policy(demo_policy), GpuRequest(), NOW)
    assert (d.action, d.member, d.flavor, d.public, d.price_per_hour) == (
        Action.RUN,
        "private",
        "bronze",
        False,
        0,
    )
    assert d.summary == "Run on private/bronze (RTX x1) now at $0.00/h"
    assert d.expected_wait_s == 0


def test_full_lower_tier_falls_through_to_the_next_private_tier(demo_policy: Policy) -> None:
    d = decide(demo_policy, full(demo_policy, "bronze"), GpuRequest(), NOW)
    assert d.action is Action.RUN and d.flavor == "silver"


def test_cheaper_flavor_wins_within_a_tier() -> None:
    from mlp_kernel.placement import parse_policy

    p = parse_policy("""
members: {m: {backend: local}}
flavors:
  dear: {member: m, tier: t, gpu_models: [X], price_per_gpu_hour: 2, capacity_gpus: 1}
  cheap: {member: m, tier: t, gpu_models: [X], price_per_gpu_hour: 1, capacity_gpus: 1}
""")
    assert decide(p, ClusterState.from_policy(p), GpuRequest(), NOW).flavor == "cheap"


def test_cohort_borrowing_counts_as_free_quota(demo_policy: Policy) -> None:
    state = full(demo_policy, "bronze").with_usage("private", "bronze", borrowable_gpus=1)
    d = decide(demo_policy, state, GpuRequest(gpu_model="rtx"), NOW)
    assert d.action is Action.RUN and d.flavor == "bronze"
    assert rule(d, "private_first")["inputs"]["private_candidates"][0]["free_gpus"] == 1


def test_namespace_queue_and_price_come_from_the_member_and_flavor(platform_policy: Policy) -> None:
    d = decide(platform_policy, ClusterState.from_policy(platform_policy), GpuRequest(gpu_model="V100"), NOW)
    assert (d.namespace, d.local_queue) == ("jupyter", "kernels")
    state = ClusterState.from_policy(platform_policy)
    d = decide(platform_policy, state, GpuRequest(gpu_model="a100", gpu_count=2, **FLEX), NOW)
    assert d.action is Action.BURST and d.price_per_hour == pytest.approx(8.20) and d.public


# --- rule 3: burst rule -------------------------------------------------------------------------------------


def test_queues_while_the_wait_is_under_the_threshold(demo_policy: Policy) -> None:
    state = full(demo_policy, "bronze", "silver", pending=1, rate=1 / 60)
    d = decide(demo_policy, state, GpuRequest(waited_s=120, **FLEX), NOW)
    assert d.action is Action.QUEUE and d.member == "private"
    assert "will burst to AWS gold" in d.summary


def test_bursts_once_the_wait_passes_the_threshold(demo_policy: Policy) -> None:
    state = full(demo_policy, "bronze", "silver", pending=1, rate=1 / 60)
    d = decide(demo_policy, state, GpuRequest(waited_s=601, **FLEX), NOW)
    assert (d.action, d.member, d.flavor, d.public) == (Action.BURST, "aws", "gold", True)
    assert d.price_per_hour == pytest.approx(4.10) and d.gpu_model == "A100"
    assert "waited 10 min > threshold 10 min" in d.summary


def test_bursts_at_once_when_the_expected_private_wait_exceeds_the_threshold(demo_policy: Policy) -> None:
    state = full(demo_policy, "bronze", "silver", pending=9, rate=1 / 120)  # position 10 -> 20 min
    d = decide(demo_policy, state, GpuRequest(**FLEX), NOW)
    assert d.action is Action.BURST
    assert rule(d, "expected_wait")["inputs"]["confidence"] == "medium"


def test_a_low_confidence_wait_guess_never_triggers_a_burst(demo_policy: Policy) -> None:
    state = full(demo_policy, "bronze", "silver", pending=50)  # no observed rate: a guess
    d = decide(demo_policy, state, GpuRequest(**FLEX), NOW)
    assert d.action is Action.QUEUE and rule(d, "expected_wait")["inputs"]["confidence"] == "low"


@pytest.mark.parametrize(
    ("deadline_in", "x_eff"),
    [
        (None, 600.0),
        (timedelta(hours=4), 600.0),
        (timedelta(hours=1), 300.0),
        (timedelta(0), 0.0),
        (timedelta(hours=-1), 0.0),
    ],
)
def test_deadline_shrinks_the_threshold(
    demo_policy: Policy, deadline_in: timedelta | None, x_eff: float
) -> None:
    state = full(demo_policy, "bronze", "silver", pending=0, rate=1 / 30)
    req = GpuRequest(deadline=NOW + deadline_in if deadline_in is not None else None, waited_s=1, **FLEX)
    d = decide(demo_policy, state, req, NOW)
    assert rule(d, "burst")["inputs"]["threshold_eff_s"] == x_eff


def test_a_passed_deadline_bursts_at_once(demo_policy: Policy) -> None:
    state = full(demo_policy, "bronze", "silver")
    d = decide(demo_policy, state, GpuRequest(deadline=NOW - timedelta(minutes=1), **FLEX), NOW)
    assert d.action is Action.BURST


def test_near_deadline_bursts_where_no_deadline_would_queue(demo_policy: Policy) -> None:
    state = full(demo_policy, "bronze", "silver", pending=0, rate=1 / 30)
    req = GpuRequest(waited_s=400, **FLEX)
    assert decide(demo_policy, state, req, NOW).action is Action.QUEUE
    near = replace(req, deadline=NOW + timedelta(minutes=30))  # X_eff = 600 * 0.25 = 150 s < 400 s
    assert decide(demo_policy, state, near, NOW).action is Action.BURST


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"burstable": False}, "burstable=false"),
        ({"budget": "fixed"}, "budget=fixed"),
        ({"data_class": "sensitive"}, "data class 'sensitive' must stay private"),
        ({"data_class": "made-up"}, "unknown data class 'made-up' stays private"),
    ],
)
def test_each_burst_condition_blocks_and_is_named(demo_policy: Policy, change: dict, reason: str) -> None:  # type: ignore[type-arg]
    state = full(demo_policy, "bronze", "silver", pending=0, rate=1 / 60)
    d = decide(demo_policy, state, GpuRequest(waited_s=3600, **{**FLEX, **change}), NOW)
    assert d.action is Action.QUEUE and d.member == "private"
    assert reason in d.summary and reason in rule(d, "burst")["detail"]


def test_queue_summary_says_position_eta_and_how_to_allow_burst(demo_policy: Policy) -> None:
    state = full(demo_policy, "bronze", "silver", pending=3, rate=1 / 90)
    d = decide(demo_policy, state, GpuRequest(tier="silver", budget="fixed", burstable=True), NOW)
    assert d.action is Action.QUEUE and d.flavor == "silver" and d.expected_wait_s == 360
    # silver cannot burst (gold is another tier), so no hint is offered
    assert d.summary.startswith("Queued on private/silver, position 4, ETA ~6 min (confidence medium)")
    d = decide(demo_policy, state, GpuRequest(budget="fixed", burstable=True), NOW)
    assert d.summary.endswith(
        "burst not allowed: budget=fixed. Run %gpu budget=flex to allow AWS gold at $4.10/h."
    )


def test_queue_picks_the_private_candidate_with_the_shortest_wait(demo_policy: Policy) -> None:
    state = full(demo_policy, "bronze", pending=10, rate=1 / 60)
    state = state.with_usage("private", "silver", used_gpus=2, pending=1, admission_rate_per_s=1 / 60)
    d = decide(demo_policy, state, GpuRequest(), NOW)
    assert d.action is Action.QUEUE and d.flavor == "silver" and d.expected_wait_s == 120


def test_burst_disabled_by_policy_never_bursts(demo_policy: Policy) -> None:
    policy = replace(demo_policy, burst=replace(demo_policy.burst, enabled=False))
    state = full(policy, "bronze", "silver", rate=1 / 60)
    d = decide(policy, state, GpuRequest(waited_s=9999, **FLEX), NOW)
    assert d.action is Action.QUEUE and "bursting is disabled by the platform policy" in d.summary
    assert "%gpu" not in d.summary  # nothing the user can change


# --- rule 4: only a public flavor can serve ---


def test_public_only_model_bursts_at_once_when_allowed(demo_policy: Policy) -> None:
    d = decide(demo_policy, ClusterState.from_policy(demo_policy), GpuRequest(gpu_model="h100", **FLEX), NOW)
    assert (d.action, d.member, d.gpu_model, d.expected_wait_s) == (Action.BURST, "aws", "H100", 0)
    assert rule(d, "public_only")["result"] == "burst"


def test_public_only_model_is_rejected_with_what_to_change(demo_policy: Policy) -> None:
    d = decide(demo_policy, ClusterState.from_policy(demo_policy), GpuRequest(gpu_model="h100"), NOW)
    assert d.action is Action.REJECT and d.member is None
    assert "burstable=false; budget=fixed" in d.summary
    assert d.summary.endswith("Run %gpu burst=on budget=flex to allow AWS gold at $4.10/h.")


def test_public_only_model_with_sensitive_data_is_rejected_without_a_false_hint(demo_policy: Policy) -> None:
    req = GpuRequest(gpu_model="h100", data_class="sensitive", **FLEX)
    d = decide(demo_policy, ClusterState.from_policy(demo_policy), req, NOW)
    assert d.action is Action.REJECT and "must stay private" in d.summary and "%gpu" not in d.summary


# --- rule 5: health ----------------------------------------------------------------------------------------


def test_member_not_ready_is_never_chosen(demo_policy: Policy) -> None:
    state = ClusterState.from_policy(demo_policy).with_health(
        "private", ready=False, reason="ClusterNotReachable"
    )
    d = decide(demo_policy, state, GpuRequest(**FLEX), NOW)
    assert d.member != "private"
    assert "private: not Ready (ClusterNotReachable)" in rule(d, "member_health")["detail"]
    assert d.action is Action.BURST  # only the public member is left and burst is allowed


def test_stopped_cluster_queue_is_never_chosen(demo_policy: Policy) -> None:
    state = ClusterState.from_policy(demo_policy).with_health(
        "aws", cluster_queue_active=False, reason="Hold"
    )
    d = decide(demo_policy, state, GpuRequest(gpu_model="a100", **FLEX), NOW)
    assert d.action is Action.REJECT and "public member AWS is unavailable" in d.summary


def test_all_members_down_rejects_and_says_try_later(demo_policy: Policy) -> None:
    state = ClusterState.from_policy(demo_policy).with_health("private", ready=False)
    d = decide(demo_policy, state, GpuRequest(gpu_model="v100", **FLEX), NOW)
    assert d.action is Action.REJECT and "unavailable now" in d.summary


def test_unhealthy_public_member_blocks_burst_and_queues_privately(demo_policy: Policy) -> None:
    state = full(demo_policy, "bronze", "silver", rate=1 / 60).with_health("aws", ready=False)
    d = decide(demo_policy, state, GpuRequest(waited_s=3600, **FLEX), NOW)
    assert d.action is Action.QUEUE and "public member AWS is unavailable" in d.summary


# --- explanation --------------------------------------------------------------------------------------------


def test_explanation_lists_rules_in_order_and_is_json(demo_policy: Policy) -> None:
    state = full(demo_policy, "bronze", "silver", rate=1 / 60)
    d = decide(demo_policy, state, GpuRequest(waited_s=30, deadline=NOW + timedelta(hours=1), **FLEX), NOW)
    assert [r.rule for r in d.explanation] == [
        "candidates",
        "member_health",
        "private_first",
        "expected_wait",
        "burst",
        "gpu_model",
    ]
    out = json.loads(json.dumps(d.to_json()))
    assert {
        "action",
        "member",
        "flavor",
        "local_queue",
        "expected_wait_s",
        "price_per_hour",
        "explanation",
    } <= set(out)
    assert set(out["explanation"][0]) == {"rule", "inputs", "result", "detail"}


def test_declared_state_is_named_in_the_explanation(demo_policy: Policy) -> None:
    d = decide(demo_policy, ClusterState(), GpuRequest(), NOW)
    assert "declared capacity" in rule(d, "member_health")["inputs"]["members"]["private"]["source"]


def test_decide_is_deterministic(demo_policy: Policy) -> None:
    state = full(demo_policy, "bronze", "silver", pending=3, rate=1 / 60)
    req = GpuRequest(waited_s=30, **FLEX)
    assert decide(demo_policy, state, req, NOW) == decide(demo_policy, state, req, NOW)


def test_model_and_tier_together_are_rejected(demo_policy: Policy) -> None:
    d = decide(
        demo_policy, ClusterState.from_policy(demo_policy), GpuRequest(gpu_model="V100", tier="silver"), NOW
    )
    assert d.action is Action.REJECT and d.summary == "Give a GPU model or a tier, not both."


def test_private_down_and_no_burst_says_the_private_member_is_unavailable(demo_policy: Policy) -> None:
    state = ClusterState.from_policy(demo_policy).with_health("private", ready=False, reason="NotReachable")
    d = decide(demo_policy, state, GpuRequest(), NOW)
    assert d.action is Action.REJECT
    assert d.summary.startswith(
        "Cannot place a GPU x1: the private member(s) private that could serve it are "
    )
    assert d.summary.endswith("Run %gpu burst=on budget=flex to allow AWS gold at $4.10/h.")
