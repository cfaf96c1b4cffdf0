"""The idle release rule (``mlp_kernel.placement.release``) and its ``release:`` section in the policy file.

The rule is one pure function the gateway and the simulator both call, so its answers are pinned here by
hand: ``gpu-minutes`` gives a kernel of ``g`` GPUs ``idle_timeout / g``, never under ``min_idle`` and never
over ``idle_timeout``; ``flat`` gives every kernel ``idle_timeout``; ``predictive`` picks the hold that
would have cost least over the session's own gaps (each gap: ``g x min(gap, hold)`` GPU-seconds, plus a
restart worth ``idle_timeout`` 1-GPU seconds when the gap outlasts the hold).
"""

from __future__ import annotations

import os
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlp_kernel.placement import PolicyError, load_policy, parse_policy
from mlp_kernel.placement.release import FLAT, ReleaseRule, describe, idle_limit_s

from .conftest import KERNELSPEC

DEFAULT = ReleaseRule()

MINIMAL = """\
members:
  local: {backend: local}
flavors:
  local: {member: local, tier: local, gpu_models: [local], price_per_gpu_hour: 0, capacity_gpus: 1}
"""


@pytest.mark.parametrize(("gpus", "limit"), [(1, 900), (2, 450), (3, 300), (4, 225), (8, 180), (16, 180)])
def test_gpu_minutes_divides_the_idle_timeout_by_the_gpu_count_down_to_the_floor(gpus: int, limit: float):
    assert idle_limit_s(900, gpus, DEFAULT) == limit


def test_a_kernel_without_gpus_counts_as_one():
    assert idle_limit_s(900, 0, DEFAULT) == 900


@pytest.mark.parametrize("gpus", [1, 2, 8])
def test_flat_ignores_the_gpu_count(gpus: int):
    assert idle_limit_s(1200, gpus, FLAT) == 1200


def test_the_floor_never_makes_the_limit_longer_than_the_idle_timeout():
    assert idle_limit_s(120, 8, DEFAULT) == 120  # idle timeout 2 min < floor 3 min: 2 min for everyone


def test_a_custom_floor_applies_and_zero_means_none():
    assert idle_limit_s(900, 8, ReleaseRule(min_idle_s=300)) == 300
    assert idle_limit_s(900, 8, ReleaseRule(min_idle_s=0)) == 112.5


def test_none_means_never_and_zero_means_at_once():
    assert idle_limit_s(None, 8, DEFAULT) is None and idle_limit_s(None, 1, FLAT) is None
    assert idle_limit_s(0, 8, DEFAULT) == 0 and idle_limit_s(0, 1, FLAT) == 0


@given(base=st.floats(0, 86400), floor=st.floats(0, 3600), gpus=st.integers(0, 64))
def test_limits_stay_between_the_floor_and_the_timeout_and_shrink_with_size(
    base: float, floor: float, gpus: int
):
    rule = ReleaseRule(min_idle_s=floor)
    limit = idle_limit_s(base, gpus, rule)
    assert limit is not None and min(floor, base) <= limit <= base
    assert idle_limit_s(base, gpus + 1, rule) <= limit  # type: ignore[operator]


def test_describe_says_the_rule_in_a_few_words():
    assert describe(900, DEFAULT) == "15 min / GPUs, >= 3 min"
    assert describe(900, FLAT) == "after 15 min idle"
    assert describe(120, DEFAULT) == "after 2 min idle"  # the floor makes every size equal
    assert describe(None, DEFAULT) == "never while open"


def test_a_policy_without_release_gets_gpu_minutes_with_a_3_minute_floor():
    assert parse_policy(MINIMAL).release == ReleaseRule("gpu-minutes", 180.0)


def test_release_section_is_read():
    p = parse_policy(MINIMAL + "release:\n  rule: flat\n  min_idle: 5m\n")
    assert p.release == ReleaseRule("flat", 300.0)


@pytest.mark.parametrize("name", ["policy.yaml", "demo-policy.yaml", "platform-policy.yaml"])
def test_shipped_policies_use_gpu_minutes_with_a_15_minute_timeout(name: str):
    policy = load_policy(os.path.join(KERNELSPEC, name))
    assert policy.idle_timeout_s == 900 and policy.release == ReleaseRule("gpu-minutes", 180.0)


def issues(text: str) -> list[tuple[str, str, int | None]]:
    with pytest.raises(PolicyError) as info:
        parse_policy(textwrap.dedent(text))
    return [(i.path, i.message, i.line) for i in info.value.errors]


@pytest.mark.parametrize(
    ("section", "path", "message"),
    [
        (
            "release: {rule: linear}",
            "release.rule",
            "expected flat or gpu-minutes or predictive, got 'linear' (flat releases every kernel after "
            "idle_timeout; gpu-minutes divides it by the kernel's GPU count; predictive learns from the "
            "notebook's own gaps)",
        ),
        ("release: {rule: 3}", "release.rule", "expected a non-empty string, got a number (3)"),
        (
            "release: {min_idle: soon}",
            "release.min_idle",
            "expected a duration such as 90s, 15m, 1h30m, got 'soon'",
        ),
        (
            "release: {min_idle: 3m, floor: 2m}",
            "release.floor",
            "unknown field; expected one of: rule, min_idle, history, prestart",
        ),
        (
            "release: flat",
            "release",
            "expected a mapping with rule, min_idle, history and prestart, got a string ('flat')",
        ),
    ],
)
def test_release_mistakes_name_the_field_path_and_line(section: str, path: str, message: str):
    assert issues(MINIMAL + section + "\n") == [(path, message, 5)]


PREDICTIVE = ReleaseRule(kind="predictive")


def test_predictive_is_gpu_minutes_until_it_has_seen_three_gaps():
    for gaps in ([], [60.0], [60.0, 60.0]):
        assert idle_limit_s(900, 8, PREDICTIVE, gaps) == idle_limit_s(900, 8, DEFAULT) == 180


def test_predictive_keeps_a_kernel_just_past_short_gaps():
    """1 GPU, gaps of 5-10 min: holding 11 min (10 x 1.1) costs 5 + 7 + 10 = 22 GPU-min, releasing at
    once 3 x 15 = 45: kept 660 s, longer than gpu-minutes' fixed floor for big kernels would be."""
    assert idle_limit_s(900, 1, PREDICTIVE, [300.0, 420.0, 600.0]) == pytest.approx(660.0)


def test_predictive_releases_at_once_when_the_gaps_cost_more_than_a_restart():
    """8 GPUs, gaps of 2.5 min: holding costs 8 x 2.5 = 20 GPU-min a gap, a restart 15: released at once,
    where gpu-minutes would hold 3 min (its floor) and still restart."""
    assert idle_limit_s(900, 8, PREDICTIVE, [150.0, 150.0, 150.0]) == 0.0
    assert idle_limit_s(900, 1, PREDICTIVE, [1800.0, 2400.0, 3000.0]) == 0.0


def test_predictive_weighs_short_and_long_gaps_and_learns_from_the_last_history_gaps():
    """2 GPUs, two 1-min gaps and a 2 h one: holding 66 s costs 2 + 2 + (2.2 + 15) = 21.2 GPU-min, at once
    45: 66 s. With ``history: 1`` only the 2 h gap counts, and two more short gaps change it back."""
    assert idle_limit_s(900, 2, PREDICTIVE, [60.0, 7200.0, 60.0]) == pytest.approx(66.0)
    last_one = ReleaseRule(kind="predictive", history=3)
    gaps = [60.0] * 5 + [7200.0] * 3
    assert idle_limit_s(900, 2, last_one, gaps) == 0.0
    assert idle_limit_s(900, 2, last_one, [*gaps, 60.0, 60.0]) == pytest.approx(66.0)


def test_predictive_never_holds_longer_than_the_idle_timeout_and_never_without_one():
    assert idle_limit_s(600, 1, PREDICTIVE, [590.0] * 3) == 600
    assert idle_limit_s(None, 1, PREDICTIVE, [60.0] * 5) is None


@given(
    gaps=st.lists(st.floats(0, 86400), max_size=30),
    gpus=st.integers(0, 16),
    base=st.floats(0, 7200),
)
def test_predictive_stays_within_zero_and_the_timeout(gaps: list[float], gpus: int, base: float):
    limit = idle_limit_s(base, gpus, PREDICTIVE, gaps)
    assert limit is not None and 0.0 <= limit <= base


def test_predictive_and_history_are_read_from_the_policy():
    policy = parse_policy(MINIMAL + "release: {rule: predictive, history: 8}\n")
    assert policy.release == ReleaseRule(kind="predictive", history=8)
    assert describe(900, policy.release) == "predictive, restart = 15 min x 1 GPU"
