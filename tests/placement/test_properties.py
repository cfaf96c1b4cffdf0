"""Properties of ``decide`` that must hold for every state and request (hypothesis).

The policy has overlapping GPU models between private and public flavors so that bursting is a real option in
generated cases, and several members so health combinations matter.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlp_kernel.placement import (
    Action,
    ClusterState,
    FlavorState,
    GpuRequest,
    MemberState,
    decide,
    parse_policy,
)

from .conftest import NOW

POLICY = parse_policy("""
tiers: [bronze, silver, gold]
members:
  onprem: {backend: local}
  lab: {backend: local}
  aws: {backend: local, public: true, display_name: AWS}
  gcp: {backend: local, public: true}
flavors:
  bronze: {member: onprem, tier: bronze, gpu_models: [RTX, V100], price_per_gpu_hour: 0, capacity_gpus: 4}
  silver: {member: onprem, tier: silver, gpu_models: [V100, A30], price_per_gpu_hour: 0.5, capacity_gpus: 4}
  lab-silver: {member: lab, tier: silver, gpu_models: [A30], price_per_gpu_hour: 0.2, capacity_gpus: 2}
  gold: {member: aws, tier: gold, gpu_models: [A100, H100, V100], price_per_gpu_hour: 4.1, capacity_gpus: 8}
  gold-gcp: {member: gcp, tier: gold, gpu_models: [A100, RTX], price_per_gpu_hour: 3.9, capacity_gpus: 8}
burst: {threshold: 10m, deadline_horizon: 2h}
data_classes: {known: [public, internal, sensitive, pii], keep_private: [sensitive, pii]}
""")

MOSTLY_TRUE = st.sampled_from([True, True, True, True, False])
flavor_states = st.builds(
    FlavorState,
    nominal_gpus=st.integers(0, 8),
    used_gpus=st.integers(0, 10),
    borrowable_gpus=st.integers(0, 3),
    pending=st.integers(0, 30),
    admission_rate_per_s=st.one_of(st.none(), st.floats(1e-4, 0.1)),
    queue_position=st.one_of(st.none(), st.integers(1, 30)),
)


@st.composite
def states(draw: Any) -> ClusterState:
    members = {}
    for name in POLICY.members:
        flavors = {f.name: draw(flavor_states) for f in POLICY.flavors_of(name)}
        members[name] = MemberState(
            ready=draw(MOSTLY_TRUE),
            cluster_queue_active=draw(MOSTLY_TRUE),
            reason="generated",
            flavors=flavors,
            source="generated",
        )
    return ClusterState(members)


@st.composite
def busy_states(draw: Any) -> ClusterState:
    """Private flavors full, so the burst rule (not private-first) decides."""
    state = draw(states())
    for f in POLICY.flavors.values():
        if not POLICY.members[f.member].public:
            fs = state.members[f.member].flavors[f.name]
            state = state.with_usage(f.member, f.name, used_gpus=fs.nominal_gpus, borrowable_gpus=0)
    return state


@st.composite
def requests(draw: Any) -> GpuRequest:
    choice = draw(st.sampled_from(["model", "tier", "any"]))
    model = draw(st.sampled_from(POLICY.gpu_models())) if choice == "model" else None
    tier = draw(st.sampled_from(POLICY.tiers)) if choice == "tier" else None
    in_s = st.integers(-3 * 3600, 5 * 3600)
    deadline = draw(st.one_of(st.none(), in_s.map(lambda s: NOW + timedelta(seconds=s))))
    return GpuRequest(
        gpu_model=model,
        tier=tier,
        gpu_count=draw(st.integers(1, 4)),
        burstable=draw(MOSTLY_TRUE),
        budget=draw(st.sampled_from(["flex", "flex", "fixed"])),
        data_class=draw(st.sampled_from([None, "public", "internal", "sensitive", "pii", "unlisted"])),
        waited_s=draw(st.floats(0, 7200)),
        deadline=deadline,
        upgrade=draw(st.sampled_from([None, True, False])) if model else None,
    )


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.one_of(states(), busy_states()), requests())
def test_private_data_never_bursts(state: ClusterState, request: GpuRequest) -> None:
    for data_class in ("sensitive", "pii", "unlisted"):
        d = decide(POLICY, state, replace(request, data_class=data_class, burstable=True, budget="flex"), NOW)
        assert d.action is not Action.BURST and not d.public


@SETTINGS
@given(st.one_of(states(), busy_states()), requests())
def test_fixed_budget_never_bursts(state: ClusterState, request: GpuRequest) -> None:
    d = decide(POLICY, state, replace(request, budget="fixed"), NOW)
    assert d.action is not Action.BURST and not d.public


ALLOWED = st.builds(
    lambda r, waited: replace(
        r, burstable=True, budget="flex", data_class="public", waited_s=waited, gpu_count=1
    ),
    requests(),
    st.floats(0, 900),  # waits around the 10 min threshold, where the deadline matters
)
OFFSET = st.one_of(st.none(), st.integers(-3 * 3600, 6 * 3600))


@st.composite
def contested(draw: Any) -> ClusterState:
    """Every member usable, private flavors full: the cases where only the burst rule's timing decides."""
    state = draw(busy_states())
    for name in POLICY.members:
        state = state.with_health(name, ready=True, cluster_queue_active=True)
    return state


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contested(), ALLOWED, OFFSET, st.integers(0, 6 * 3600))
def test_a_nearer_deadline_never_makes_bursting_less_likely(
    state: ClusterState, request: GpuRequest, far_in_s: int | None, closer_by_s: int
) -> None:
    far_deadline = None if far_in_s is None else NOW + timedelta(seconds=far_in_s)
    far = decide(POLICY, state, replace(request, deadline=far_deadline), NOW)
    base = far_deadline or NOW + timedelta(hours=6)  # no deadline behaves like one beyond the horizon
    near = decide(POLICY, state, replace(request, deadline=base - timedelta(seconds=closer_by_s)), NOW)
    if far.action is Action.BURST:
        assert near.action is Action.BURST


@SETTINGS
@given(states(), requests())
def test_a_free_private_flavor_always_wins_over_public(state: ClusterState, request: GpuRequest) -> None:
    d = decide(POLICY, state, request, NOW)
    model = request.gpu_model
    upgrades = POLICY.better_flavors(model) if model and POLICY.upgrades(model, request.upgrade) else []
    free_private = [
        f
        for f in POLICY.flavors.values()
        if not POLICY.members[f.member].public
        and state.members[f.member].usable
        and (request.gpu_model is None or f.offers(request.gpu_model) or f in upgrades)
        and (request.tier is None or f.tier == request.tier)
        and state.members[f.member].flavors[f.name].free_gpus >= request.gpu_count
    ]
    if free_private:
        assert d.action is Action.RUN and not d.public and d.flavor in {f.name for f in free_private}
    else:
        assert d.action is not Action.RUN  # run means a private flavor had free quota now


@SETTINGS
@given(states(), requests())
def test_unusable_members_are_never_chosen_and_explanations_are_complete(
    state: ClusterState, request: GpuRequest
) -> None:
    d = decide(POLICY, state, request, NOW)
    if d.member is not None:
        assert state.members[d.member].usable
        price = POLICY.flavors[d.flavor or ""].price_per_gpu_hour
        assert d.price_per_hour == pytest.approx(price * d.gpu_count)
    assert d.summary and d.explanation[0].rule == "candidates"
    assert json.loads(json.dumps(d.to_json()))["action"] == d.action.value  # inputs stay plain JSON
    if d.member is None:
        assert d.explanation[-1].rule in {"burst", "public_only", "candidates"}
    else:  # a placed kernel's last rule says which GPU model it gets
        assert [r.rule for r in d.explanation[-2:]] in (["burst", "gpu_model"], ["public_only", "gpu_model"])


# --- this model or better (issue 14) ----------------------------------------------------------------------


@SETTINGS
@given(st.one_of(states(), busy_states()), requests())
def test_a_flavor_without_the_model_serves_it_only_as_an_upgrade_to_a_higher_tier(
    state: ClusterState, request: GpuRequest
) -> None:
    d = decide(POLICY, state, request, NOW)
    if d.member is None or request.gpu_model is None:
        return
    f = POLICY.flavors[d.flavor or ""]
    if f.offers(request.gpu_model):
        assert d.upgraded_from is None and d.gpu_model == request.gpu_model
        assert d.models == (request.gpu_model,)
    else:
        assert POLICY.upgrades(request.gpu_model, request.upgrade)
        assert f.tier_rank > (POLICY.model_rank(request.gpu_model) or 0)
        assert d.upgraded_from == request.gpu_model and d.models == f.gpu_models
        assert d.summary.startswith(f"{request.gpu_model} or better: ")
        assert d.explanation[-1].result.startswith(f"{request.gpu_model} or better")


@SETTINGS
@given(st.one_of(states(), busy_states()), requests())
def test_allowing_an_upgrade_never_makes_a_free_private_gpu_worse(
    state: ClusterState, request: GpuRequest
) -> None:
    """``MODEL+`` only adds candidates: when the exact request runs now, the upgraded one runs now too, on a
    flavor at least as preferred (lower tier, then cheaper)."""
    if request.gpu_model is None:
        return
    exact = decide(POLICY, state, replace(request, upgrade=False), NOW)
    better = decide(POLICY, state, replace(request, upgrade=True), NOW)
    if exact.action is Action.RUN:
        assert better.action is Action.RUN
        key = [
            (POLICY.flavors[d.flavor or ""].tier_rank, POLICY.flavors[d.flavor or ""].price_per_gpu_hour)
            for d in (better, exact)
        ]
        assert key[0] <= key[1]
