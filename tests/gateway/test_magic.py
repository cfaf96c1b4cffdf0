"""``%gpu`` parsing is an allow-list validated against the policy (pure tests, the shipped demo policy)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlp_kernel.gateway.magic import MagicError, parse_magics, split_cell
from mlp_kernel.placement import load_policy

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def policy():
    return load_policy(ROOT / "kernelspecs/gpu-auto/demo-policy.yaml")


def test_split_cell_keeps_line_numbers_of_the_code():
    magics, rest = split_cell("%gpu a100\n\n%gpu idle=5m\nx = 1\ny = 2")
    assert magics == ["%gpu a100", "%gpu idle=5m"]
    assert rest.split("\n")[3:] == ["x = 1", "y = 2"]


def test_split_cell_only_takes_magics_at_the_top():
    assert split_cell("x = 1\n%gpu a100") == ([], "x = 1\n%gpu a100")
    assert split_cell("%gpu\n") == (["%gpu"], "")
    assert split_cell("%gpuX = 1") == ([], "%gpuX = 1")


def test_bare_gpu_is_status(policy):
    assert parse_magics(["%gpu"], policy, NOW).verbs == ["status"]


def test_model_and_count_are_canonicalised(policy):
    cmd = parse_magics(["%gpu h100:2"], policy, NOW)
    assert cmd.request == {"gpu_model": "H100", "tier": None, "gpu_count": 2}


def test_tier_burst_budget_deadline(policy):
    cmd = parse_magics(["%gpu tier=SILVER burst=on budget=flex deadline=+2h"], policy, NOW)
    assert cmd.request["tier"] == "silver" and cmd.request["burstable"] is True
    assert cmd.request["budget"] == "flex" and cmd.request["deadline"] == NOW + timedelta(hours=2)


def test_iso_deadline_without_zone_is_taken_as_utc(policy):
    cmd = parse_magics(["%gpu deadline=2026-12-01T18:00"], policy, NOW)
    assert cmd.request["deadline"] == datetime(2026, 12, 1, 18, 0, tzinfo=timezone.utc)


def test_idle_and_keep(policy):
    cmd = parse_magics(["%gpu idle=20m keep=1Gi"], policy, NOW)
    assert cmd.idle_s == 1200 and cmd.keep is True and cmd.keep_max_bytes == 1024**3


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("%gpu a1000", "unknown option or GPU model 'a1000'"),
        ("%gpu h100:99", "at most"),
        ("%gpu h100:0", "whole number"),
        ("%gpu tier=platinum", "unknown tier"),
        ("%gpu burst=maybe", "expected on or off"),
        ("%gpu budget=lots", "expected flex or fixed"),
        ("%gpu deadline=tomorrow", "ISO 8601"),
        ("%gpu idle=soon", "idle=soon"),
        ("%gpu data=secret-ish", "unknown data class"),
        ("%gpu cpu=$(rm -rf /)", "expected a CPU count"),
        ("%gpu memory=16Gi\nkind: Secret", "unknown option or GPU model 'kind'"),
        ("%gpu colour=blue", "unknown option 'colour'"),
        ("%gpu a100 tier=gold", "not both"),
        ("%gpu 'unclosed", "No closing quotation"),
    ],
)
def test_bad_options_are_rejected_with_a_message_that_names_them(policy, line, fragment):
    with pytest.raises(MagicError) as err:
        parse_magics([line], policy, NOW)
    assert fragment in str(err.value)
