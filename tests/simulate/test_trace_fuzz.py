"""Any rows give a replayable trace or one ``TraceError``, never another exception (hypothesis).

Traces are exported by scripts we do not write; ``parse_rows`` is their boundary. Rows are drawn with every
JSON type (NaN, infinity, 400-digit integers, nested values) in every column, and whatever is accepted must be
finite and replayable by the engine.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlp_kernel.simulate.trace_io import COLUMNS, TraceError, _jsonl_rows, parse_rows

from ..hostile_values import scalars

SCALARS = scalars(
    "open",
    "cell",
    "close",
    "meta",
    "s1",
    "s2",
    "5m",
    "flex",
    "2026-01-05T09:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01",
    text_size=12,
)
VALUES = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(st.text(max_size=4), SCALARS, max_size=2)
)
ROWS = st.lists(st.dictionaries(st.sampled_from([*COLUMNS, "epoch"]), VALUES, max_size=6), max_size=6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROWS)
def test_any_rows_are_a_trace_or_a_trace_error(rows: list[dict[str, Any]]) -> None:
    try:
        trace = parse_rows(enumerate(rows, 1), source="t.jsonl")
    except TraceError as exc:
        assert str(exc).startswith("t.jsonl") and "\n" not in str(exc)
        return
    assert trace.sessions
    for s in trace.sessions:
        assert math.isfinite(s.open_s) and math.isfinite(s.close_s)
        for c in s.cells:
            assert math.isfinite(c.start_s) and math.isfinite(c.duration_s) and 0 <= c.gpus <= 1024


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='{}[]",:0123456789.eE-+ntrufalsNI\n ', max_size=300))
def test_any_json_lines_text_is_rows_or_a_trace_error(text: str) -> None:
    try:
        rows = list(_jsonl_rows(text, "t.jsonl"))
        parse_rows(rows, source="t.jsonl")
    except TraceError:
        pass


def test_a_valid_trace_still_parses() -> None:
    rows = [
        {"event": "open", "session": "s", "t": 0},
        {"event": "cell", "session": "s", "t": 5, "duration": "1m", "gpus": 1},
    ]
    trace = parse_rows(enumerate(rows, 1), source="t.jsonl")
    assert json.dumps(len(trace.cells)) == "1"


def test_a_list_where_a_word_belongs_is_an_error() -> None:
    for field in ("burstable", "budget", "tier", "gpu_model", "data_class"):
        rows = [{"event": "open", "session": "s", "t": 0, field: [1]}]
        try:
            parse_rows(enumerate(rows, 1), source="t.jsonl")
        except TraceError as exc:
            assert f"field {field!r}" in str(exc)
        else:
            raise AssertionError(f"{field}: [1] was accepted")
