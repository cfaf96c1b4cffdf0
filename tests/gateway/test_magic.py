"""``%gpu`` parsing is an allow-list validated against the policy (pure tests, the shipped demo policy)."""

from __future__ import annotations

import re
import shlex
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlp_kernel.gateway.magic import MagicError, parse_magics, split_cell
from mlp_kernel.placement import load_policy
from mlp_kernel.placement.units import parse_size

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
    # upgrade None: a plain model goes back to the policy's default "or better" rule (after a v100+)
    assert cmd.request == {"gpu_model": "H100", "tier": None, "gpu_count": 2, "upgrade": None}


@pytest.mark.parametrize(
    ("line", "model", "count", "upgrade"),
    [
        ("%gpu v100+", "V100", None, True),
        ("%gpu V100+:2", "V100", 2, True),
        ("%gpu gpu=a30+", "A30", None, True),
        ("%gpu v100 upgrade=off", "V100", None, False),
        ("%gpu upgrade=off v100", "V100", None, False),  # typed in either order, upgrade= holds
        ("%gpu v100+ upgrade=off", "V100", None, False),  # the last word wins
        ("%gpu v100", "V100", None, None),
    ],
)
def test_this_model_or_better_is_a_plus_or_upgrade_on(policy, line, model, count, upgrade):
    cmd = parse_magics([line], policy, NOW)
    assert cmd.request["gpu_model"] == model and cmd.request["upgrade"] is upgrade
    assert cmd.request.get("gpu_count") == count


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("%gpu v100++", "unknown option or GPU model 'v100+'"),
        ("%gpu tier=silver upgrade=on", "upgrade= is for a GPU model"),
        ("%gpu v100 upgrade=maybe", "expected on or off"),
        ("%gpu +", "unknown option or GPU model ''"),
    ],
)
def test_a_wrong_or_better_request_is_refused_with_what_to_type(policy, line, fragment):
    with pytest.raises(MagicError, match=re.escape(fragment)):
        parse_magics([line], policy, NOW)


def test_a_tier_forgets_an_earlier_upgrade(policy):
    assert parse_magics(["%gpu tier=gold"], policy, NOW).request["upgrade"] is None


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


# --- ranges: every value is checked against its documented range; only MagicError ever escapes ----------

OUT_OF_RANGE = [
    "deadline=+1e308",
    "deadline=+99999999d",
    "deadline=+0",
    "deadline=+31d",
    "deadline=1900-01-01",
    "deadline=2026-11-28T11:59",  # a minute before NOW
    "deadline=9999-12-31T23:59",
    "deadline=+nan",
    "deadline=+inf",
    "idle=1e12",
    "idle=31d",
    "idle=0.5",
    "idle=nan",
    "idle=inf",
    "idle=-5",
    "keep=" + "9" * 300,
    "keep=" + "9" * 300 + "Gi",
    "keep=0",
    "keep=17Ti",
    "memory=" + "9" * 300,
    "memory=" + "9" * 20 + "Ti",
    "memory=100",
    "memory=0Gi",
    "cpu=0",
    "cpu=0m",
    "cpu=5000",
    "cpu=" + "9" * 300,
    "gpus=" + "9" * 5000,
    "gpus=²",
    "h100:" + "9" * 300,
]


@pytest.mark.parametrize(
    "option, hint",
    [
        ("memory=16GB", "use 16Gi (binary) or 16G (decimal)"),
        ("memory=512MiB", "use 512Mi"),
        ("memory=100B", "use 100"),
    ],
)
def test_a_size_with_a_b_is_refused_with_the_kubernetes_spelling(policy, option, hint):
    """The value goes into the pod spec as written: the API server would refuse 16GB at launch, much later."""
    with pytest.raises(MagicError) as err:
        parse_magics([f"%gpu {option}"], policy, NOW)
    assert "Kubernetes sizes have no B" in str(err.value) and hint in str(err.value)


@pytest.mark.parametrize("option", OUT_OF_RANGE, ids=lambda o: o[:30])
def test_out_of_range_values_are_a_short_magic_error(policy, option):
    with pytest.raises(MagicError) as err:
        parse_magics([f"%gpu {option}"], policy, NOW)
    message = str(err.value)
    assert "\n" not in message and len(message) < 300
    assert option.split("=")[0].split(":")[0] in message


@pytest.mark.parametrize(
    "option, field, value",
    [
        ("deadline=+30d", "deadline", NOW + timedelta(days=30)),
        ("deadline=2026-11-28T12:01", "deadline", NOW + timedelta(minutes=1)),
        ("idle=0", "idle_s", 0.0),
        ("idle=1s", "idle_s", 1.0),
        ("idle=30d", "idle_s", 30 * 86400.0),
        ("keep=1Mi", "keep_max_bytes", 2**20),
        ("keep=16Ti", "keep_max_bytes", 16 * 2**40),
        ("memory=16Ti", "memory", "16Ti"),
        ("cpu=1m", "cpu", "1m"),
        ("cpu=1024", "cpu", "1024"),
    ],
)
def test_the_ends_of_each_range_are_accepted(policy, option, field, value):
    cmd = parse_magics([f"%gpu {option}"], policy, NOW)
    got = cmd.request.get(field) if field in ("deadline", "memory", "cpu") else getattr(cmd, field)
    assert got == value


KEYS = ["gpus", "gpu", "tier", "burst", "budget", "deadline", "data", "cpu", "memory", "idle", "keep", "h100"]
VALUES = st.one_of(
    st.text(max_size=40),
    st.from_regex(
        r"[+-]?[0-9]{0,400}(\.[0-9]{0,20})?(e[+-]?[0-9]{1,4})?(ms|s|m|h|d|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|B)?",
        fullmatch=True,
    ),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "+nan",
            "+inf",
            "+1e308",
            "1e12",
            "0",
            "+0",
            "1900-01-01",
            "9999-12-31",
            "0001-01-01T00:00+14:00",
            "2026-11-28T12:00:00-23:59",
        ]
    ),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())).map(lambda d: d.isoformat()),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=4))
def test_any_option_values_give_a_command_in_range_or_a_magic_error(policy, options):
    line = "%gpu " + " ".join(shlex.quote(f"{k}:{v}" if k == "h100" else f"{k}={v}") for k, v in options)
    try:
        cmd = parse_magics([line], policy, NOW)
    except MagicError as exc:
        assert "\n" not in str(exc)
        return
    req = cmd.request
    assert 1 <= req.get("gpu_count", 1) <= policy.max_gpus
    if req.get("deadline") is not None:
        assert NOW < req["deadline"] <= NOW + timedelta(days=30)
    if cmd.idle_s is not None:
        assert cmd.idle_s == 0 or 1 <= cmd.idle_s <= 30 * 86400
    if cmd.keep_max_bytes is not None:
        assert 2**20 <= cmd.keep_max_bytes <= 16 * 2**40
    if req.get("memory") is not None:
        assert 2**20 <= parse_size(req["memory"]) <= 16 * 2**40
    if req.get("cpu") is not None:
        cpu = req["cpu"]
        assert 0.001 <= (float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)) <= 1024
