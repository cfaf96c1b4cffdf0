"""Durations and sizes: the spellings users type in policies, %gpu lines and CLI flags."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlp_kernel.placement import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("2h", 7200),
        ("0", 0),
        ("45", 45),
        ("1.5h", 5400),
        ("1d", 86400),
        (" 10m ", 600),
        (30, 30),
    ],
)
def test_parse_duration_accepts_human_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "1x", "-1", "ten minutes", "1h-30m", "nan", "inf"])
def test_parse_duration_rejects_with_a_message_naming_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45 s"),
        (900, "15 min"),
        (5400, "1 h 30 min"),
        (7200, "2 h"),
        (0, "0 s"),
        (89, "1 min"),
        (90000, "1 d 1 h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2Gi", 2 * 1024**3),
        ("500M", 500_000_000),
        ("100MB", 100_000_000),
        ("1024", 1024),
        ("1.5Ki", 1536),
        ("3k", 3000),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "Gi", "2 gigs", "-1", "1.2.3M"])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_format_size_is_short_and_binary() -> None:
    assert format_size(512) == "512 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(2 * 1024**3) == "2 GiB"


# --- no input takes long: the patterns match any text in one way (no catastrophic backtracking) -------------

SLOW_BEFORE = [
    "1s " * 5000 + "x",  # hung the gateway on %gpu idle="..." and the loader on idle_timeout: "..."
    "1s" + " " * 50_000 + "x",
    "1" + " " * 50_000 + "x",
    "1" + " " * 50_000 + "k" + " " * 50_000 + "x",
]


@pytest.mark.parametrize("text", SLOW_BEFORE, ids=lambda t: f"{len(t)} chars")
@pytest.mark.parametrize("parse", [parse_duration, parse_size])
def test_long_near_miss_inputs_fail_fast(parse, text: str) -> None:
    start = time.process_time()
    with pytest.raises(ValueError):
        parse(text)
    assert time.process_time() - start < 0.5


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["1", "1.5", "s", "ms", "m", "h", "d", "Gi", "k", "B", " ", "  ", "x", "."]),
        max_size=400,
    )
)
def test_any_mix_of_duration_and_size_pieces_parses_fast_or_raises_value_error(pieces: list[str]) -> None:
    text = "".join(pieces)
    for parse in (parse_duration, parse_size):
        start = time.process_time()
        try:
            value = parse(text)
        except ValueError:
            pass
        else:
            assert value >= 0 and math.isfinite(value)
        assert time.process_time() - start < 0.2, (parse.__name__, text)
