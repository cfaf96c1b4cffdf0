"""The exact GPU model and "this model or better" (issue 14 §3): policy fields, decide, ``mlp-kernel place``.

Silver offers V100 and A30 behind one flavor label and Gold A100 and H100, so a named model is pinned by the
GPU product label (``gpu_products``); a Silver model no public flavor offers bursts only as "V100 or better"
(``%gpu v100+`` or the policy's ``upgrade_tiers``), and the user is told so.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from mlp_kernel.placement import Action, ClusterState, GpuRequest, Policy, PolicyError, decide, parse_policy

from .conftest import KERNELSPEC, NOW, ROOT

FLEX = {"burstable": True, "budget": "flex"}

BASE = """
tiers: [bronze, silver, gold]
members:
  private: {backend: kubernetes, namespace: jupyter, local_queue: kernels}
  aws: {backend: kubernetes, public: true, namespace: jupyter, local_queue: kernels, display_name: AWS}
flavors:
  silver:
    member: private
    tier: silver
    gpu_models: [V100, A30]
    node_labels: {mlp.io/gpu-tier: silver}
    price_per_gpu_hour: 0
    capacity_gpus: 4
%(silver)s
  gold:
    member: aws
    tier: gold
    gpu_models: [A100, H100]
    node_labels: {mlp.io/gpu-tier: gold}
    gpu_products: {A100: [NVIDIA-A100-SXM4-80GB, NVIDIA-A100-SXM4-40GB], H100: NVIDIA-H100-80GB-HBM3}
    price_per_gpu_hour: 4.10
    capacity_gpus: 8
%(extra)s
"""
SILVER_PRODUCTS = "    gpu_products: {V100: Tesla-V100-SXM2-16GB, a30: NVIDIA-A30}"


def policy(silver: str = SILVER_PRODUCTS, extra: str = "") -> Policy:
    return parse_policy(BASE % {"silver": silver, "extra": extra})


def errors(silver: str = SILVER_PRODUCTS, extra: str = "") -> list[str]:
    with pytest.raises(PolicyError) as info:
        policy(silver, extra)
    return [str(e) for e in info.value.errors]


def silver_full(p: Policy) -> ClusterState:
    return ClusterState.from_policy(p).with_usage("private", "silver", used_gpus=4, pending=2)


# --- the policy ---------------------------------------------------------------------------------------------


def test_products_are_read_by_canonical_model_and_the_label_key_defaults_to_gfds() -> None:
    p = policy()
    assert dict(p.flavors["silver"].gpu_products) == {
        "V100": ("Tesla-V100-SXM2-16GB",),
        "A30": ("NVIDIA-A30",),
    }
    assert p.flavors["gold"].products("a100") == ("NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-SXM4-40GB")
    assert p.members["aws"].gpu_product_label == "nvidia.com/gpu.product"
    assert p.upgrade_tiers == () and not p.upgrades("V100", None) and p.upgrades("V100", True)


@pytest.mark.parametrize(
    ("silver", "extra", "fragment"),
    [
        ("", "", "flavors.silver.gpu_products: required for a kubernetes flavor that offers several models"),
        ("    gpu_products: {V100: Tesla-V100-SXM2-16GB}", "", "no value for A30"),
        ("    gpu_products: {V100: x, A30: y, T4: z}", "", "'T4' is not one of this flavor's gpu_models"),
        ("    gpu_products: {V100: 'bad value!', A30: y}", "", "expected a label value"),
        ("    gpu_products: {V100: [], A30: y}", "", "empty list"),
        ("    gpu_products: [V100]", "", "expected a mapping of GPU model to product label value(s)"),
        (SILVER_PRODUCTS, "upgrade_tiers: [platinum]", "upgrade_tiers[0]: unknown tier 'platinum'"),
        (SILVER_PRODUCTS, "default_request: {upgrade: true}", "default_request.upgrade: only with gpu_model"),
    ],
)
def test_the_loader_refuses_what_cannot_pin_or_upgrade(silver: str, extra: str, fragment: str) -> None:
    assert any(fragment in e for e in errors(silver, extra)), errors(silver, extra)


def test_a_bad_product_label_key_and_products_on_a_local_member_are_refused() -> None:
    text = """
members:
  here: {backend: local, gpu_product_label: "not a key!"}
flavors:
  pool: {member: here, tier: t, gpu_models: [A, B], gpu_products: {A: a, B: b}, price_per_gpu_hour: 0,
         capacity_gpus: 1}
"""
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    found = [str(e) for e in info.value.errors]
    assert any(
        "members.here.gpu_product_label" in e and "not a valid Kubernetes label key" in e for e in found
    )
    assert any("flavors.pool.gpu_products: only for kubernetes members" in e for e in found), found


def test_a_one_model_flavor_needs_no_products_and_a_local_one_never() -> None:
    p = policy(extra="  solo: {member: private, tier: bronze, gpu_models: [T4], node_labels: "
               "{mlp.io/gpu-tier: bronze}, price_per_gpu_hour: 0}")  # fmt: skip
    d = decide(p, ClusterState.from_policy(p), GpuRequest(gpu_model="T4"), NOW)
    assert d.flavor == "solo" and d.pin_label is None and d.pinned_model is None
    assert d.explanation[-1].detail == "the flavor's only model: solo's node label pins it"


# --- pinning ------------------------------------------------------------------------------------------------


def test_a_named_model_is_pinned_and_explained() -> None:
    p = policy()
    d = decide(p, ClusterState.from_policy(p), GpuRequest(gpu_model="h100", **FLEX), NOW)
    assert d.action is Action.BURST and d.flavor == "gold" and d.pinned_model == "H100"
    assert (d.pin_label, d.pin_values) == ("nvidia.com/gpu.product", ("NVIDIA-H100-80GB-HBM3",))
    rule = d.explanation[-1]
    assert rule.rule == "gpu_model" and rule.inputs["pin_values"] == ["NVIDIA-H100-80GB-HBM3"]
    assert rule.result == "H100, pinned by nvidia.com/gpu.product in (NVIDIA-H100-80GB-HBM3)"
    assert "gpu_model: H100, pinned by nvidia.com/gpu.product" in d.explain()
    assert d.gpu_text() == "H100 x1, pinned by nvidia.com/gpu.product in (NVIDIA-H100-80GB-HBM3)"


def test_without_a_model_any_model_of_the_flavor_will_do() -> None:
    p = policy()
    d = decide(p, ClusterState.from_policy(p), GpuRequest(tier="gold", **FLEX), NOW)
    assert d.flavor == "gold" and d.pin_label is None and d.pinned_model is None
    assert d.explanation[-1].result == "any of A100, H100"


def test_a_member_with_its_own_product_label_pins_by_it() -> None:
    p = parse_policy(
        BASE.replace("display_name: AWS}", "display_name: AWS, gpu_product_label: example.com/gpu-sku}")
        % {"silver": SILVER_PRODUCTS, "extra": ""}
    )
    d = decide(p, ClusterState.from_policy(p), GpuRequest(gpu_model="A100", **FLEX), NOW)
    assert d.pin_label == "example.com/gpu-sku" and len(d.pin_values) == 2


# --- this model or better -----------------------------------------------------------------------------------


def test_a_queued_silver_request_bursts_to_gold_as_v100_or_better_with_the_price() -> None:
    p = policy()
    request = GpuRequest(gpu_model="V100", upgrade=True, waited_s=700, **FLEX)
    d = decide(p, silver_full(p), request, NOW)
    assert d.action is Action.BURST and d.member == "aws" and d.flavor == "gold"
    assert d.upgraded_from == "V100" and d.pinned_model is None and d.models == ("A100", "H100")
    assert d.summary == (
        "V100 or better: burst to aws/gold (A100 or H100 x1 instead of V100) now at $4.10/h: "
        "waited 12 min > threshold 10 min."
    )
    assert d.explanation[-1].result == "V100 or better: A100 or H100 (tier gold)"


def test_without_or_better_the_same_request_queues_and_is_told_about_v100_plus() -> None:
    p = policy()
    d = decide(p, silver_full(p), GpuRequest(gpu_model="V100", waited_s=700, **FLEX), NOW)
    assert d.action is Action.QUEUE and d.flavor == "silver" and d.pinned_model == "V100"
    assert d.summary.endswith(
        "no public flavor serves this request. Run %gpu v100+ to allow V100 or better: AWS gold "
        "(A100 or H100) at $4.10/h."
    ), d.summary
    fixed = decide(p, silver_full(p), GpuRequest(gpu_model="V100"), NOW)
    assert "Run %gpu v100+ burst=on budget=flex to allow V100 or better" in fixed.summary


def test_no_hint_when_the_data_may_not_leave_or_bursting_is_off() -> None:
    p = policy(extra="data_classes: {known: [public, sensitive], keep_private: [sensitive]}")
    d = decide(p, silver_full(p), GpuRequest(gpu_model="V100", data_class="sensitive", **FLEX), NOW)
    assert d.action is Action.QUEUE and "v100+" not in d.summary
    off = policy(extra="burst: {enabled: false}")
    assert "v100+" not in decide(off, silver_full(off), GpuRequest(gpu_model="V100", **FLEX), NOW).summary


def test_upgrade_tiers_make_or_better_the_default_and_upgrade_off_keeps_the_model() -> None:
    p = policy(extra="upgrade_tiers: [silver]")
    request = GpuRequest(gpu_model="A30", waited_s=700, **FLEX)
    d = decide(p, silver_full(p), request, NOW)
    assert d.action is Action.BURST and d.upgraded_from == "A30"
    exact = decide(p, silver_full(p), replace(request, upgrade=False), NOW)
    assert exact.action is Action.QUEUE and "a30+" in exact.summary
    # Gold's own models are never "upgraded" (no tier above), and a free Silver GPU still wins
    assert decide(p, ClusterState.from_policy(p), request, NOW).flavor == "silver"
    assert not p.upgrades("H100", None) and p.better_flavors("H100") == []


def test_an_upgrade_blocked_by_the_budget_names_the_upgrade_in_the_hint() -> None:
    p = policy()
    d = decide(p, silver_full(p), GpuRequest(gpu_model="V100", upgrade=True, waited_s=700), NOW)
    assert d.action is Action.QUEUE and d.flavor == "silver" and d.upgraded_from is None
    assert "Run %gpu burst=on budget=flex to allow AWS gold (A100 or H100 instead of V100) at $4.10/h." in (
        d.summary
    )


def test_a_private_higher_tier_with_free_quota_runs_an_upgrade_now() -> None:
    p = policy(extra="  lab-gold: {member: private, tier: gold, gpu_models: [A100], node_labels: "
               "{mlp.io/gpu-tier: lab-gold}, price_per_gpu_hour: 1.5, capacity_gpus: 2}")  # fmt: skip
    d = decide(p, silver_full(p), GpuRequest(gpu_model="V100", upgrade=True), NOW)
    assert d.action is Action.RUN and d.flavor == "lab-gold" and d.upgraded_from == "V100"
    assert d.summary == "V100 or better: run on private/lab-gold (A100 x1 instead of V100) now at $1.50/h"


# --- mlp-kernel place ---------------------------------------------------------------------------------------


def test_place_takes_v100_plus_and_shows_the_upgrade_and_the_pin() -> None:
    def place(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "mlp_kernel.cli", "place", "--now", "2026-11-28T12:00:00Z",
             "--policy", f"{KERNELSPEC}/platform-policy.yaml", *args],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    pinned = place("--gpu", "h100", "--burstable", "--budget", "flex")
    assert "GPU: H100 x1, pinned by nvidia.com/gpu.product in (NVIDIA-H100-80GB-HBM3)" in pinned
    upgraded = place("--gpu", "a30+:2", "--burstable", "--budget", "flex", "--waited", "11m")
    assert "GPU: A30 x2, pinned by nvidia.com/gpu.product in (NVIDIA-A30)" in upgraded  # Silver is free
    assert "gpu_model: A30, pinned" in upgraded


def test_a_model_too_big_for_its_own_tier_is_told_about_or_better() -> None:
    p = policy()
    d = decide(p, ClusterState.from_policy(p), GpuRequest(gpu_model="V100", gpu_count=6, **FLEX), NOW)
    assert d.action is Action.REJECT
    assert d.summary.endswith("Run %gpu v100+ to allow V100 or better: AWS gold (A100 or H100) at $24.60/h.")
    better = decide(
        p, ClusterState.from_policy(p), GpuRequest(gpu_model="V100", gpu_count=6, upgrade=True, **FLEX), NOW
    )
    assert better.action is Action.BURST and better.upgraded_from == "V100" and better.price_per_hour == 24.6
