"""Trace files: JSON lines and CSV read into the same Trace, round trips, errors naming line and field."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mlp_kernel.simulate import Cell, Session, Trace, TraceError, generate, read_trace, write_trace

JSONL = """\
# exported from jupyter_server logs
{"event": "open", "session": "s1", "user": "alice", "t": "2026-03-02T09:00:00Z", "burstable": true, \
"budget": "flex"}
{"event": "cell", "session": "s1", "t": "2026-03-02T09:02:00Z", "duration": "6m", "gpus": 1}
{"event": "cell", "session": "s1", "t": "2026-03-02T09:20:00Z", "duration": 90, "gpus": 0}
{"event": "close", "session": "s1", "t": "2026-03-02T18:00:00Z"}
{"event": "open", "session": "s2", "user": "bob", "t": "2026-03-02T10:00:00+00:00", "tier": "silver"}
{"event": "cell", "session": "s2", "t": "2026-03-02T10:00:30Z", "duration": "1h30m", "gpus": 8}
"""

CSV = """\
event,session,user,t,duration,gpus,burstable,budget,tier,gpu_model,data_class
open,s1,alice,0,,,true,flex,,,
cell,s1,,120,6m,1,,,,,
cell,s1,,1200,90,0,,,,,
close,s1,,32400,,,,,,,
open,s2,bob,3600,,,,,silver,,
cell,s2,,3630,5400,8,,,,,
"""


def test_jsonl_with_iso_times_is_measured_from_midnight_of_the_first_day(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(JSONL)
    trace = read_trace(path)
    assert trace.epoch == datetime(2026, 3, 2, tzinfo=timezone.utc)
    s1, s2 = trace.sessions
    assert (s1.open_s, s1.close_s, s1.burstable, s1.budget) == (9 * 3600, 18 * 3600, True, "flex")
    assert s1.cells == (Cell(9 * 3600 + 120, 360, 1), Cell(9 * 3600 + 1200, 90, 0))
    assert s2.tier == "silver"
    assert s2.close_s == 18 * 3600  # no close row: still open when exported, so it ends with the trace


def test_csv_and_jsonl_describe_the_same_sessions(tmp_path):
    (tmp_path / "t.csv").write_text(CSV)
    (tmp_path / "t.jsonl").write_text(JSONL)
    from_csv, from_jsonl = read_trace(tmp_path / "t.csv"), read_trace(tmp_path / "t.jsonl")
    shift = 9 * 3600
    for a, b in zip(from_csv.sessions, from_jsonl.sessions, strict=True):
        assert (a.session_id, a.user, a.burstable, a.budget, a.tier) == (
            b.session_id,
            b.user,
            b.burstable,
            b.budget,
            b.tier,
        )
        assert [(c.start_s + shift, c.duration_s, c.gpus) for c in a.cells] == [
            (c.start_s, c.duration_s, c.gpus) for c in b.cells
        ]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_generated_trace_round_trips(tmp_path, suffix):
    trace = generate(users=3, days=1, seed=5)
    write_trace(trace, tmp_path / f"t{suffix}")
    back = read_trace(tmp_path / f"t{suffix}")
    assert back.epoch == trace.epoch
    assert len(back.sessions) == len(trace.sessions)
    for a, b in zip(trace.sessions, back.sessions, strict=True):
        assert (a.session_id, a.user, a.burstable, a.budget, len(a.cells)) == (
            b.session_id,
            b.user,
            b.burstable,
            b.budget,
            len(b.cells),
        )
        assert a.close_s == pytest.approx(b.close_s, abs=1e-3)
        for x, y in zip(a.cells, b.cells, strict=True):
            assert (x.start_s, x.duration_s, x.gpus) == pytest.approx(
                (y.start_s, y.duration_s, y.gpus), abs=1e-3
            )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"event": "cell", "session": "s1", "t": 5, "duration": "soon", "gpus": 1}',
            "t.jsonl:2: field 'duration'",
        ),
        ('{"event": "cell", "session": "s1", "t": 5, "duration": 5, "gpus": 1.5}', "t.jsonl:2: field 'gpus'"),
        ('{"event": "launch", "session": "s1", "t": 5}', "t.jsonl:2: field 'event'"),
        ('{"event": "cell", "t": 5, "duration": 5}', "t.jsonl:2: field 'session' is missing"),
        (
            '{"event": "cell", "session": "s1", "t": "2026-01-01T00:00:00Z", "duration": 5}',
            "mixes ISO timestamps",
        ),
        ("not json", "t.jsonl:2: not valid JSON"),
        ('{"event": "open", "session": "s1", "t": 1}', "session 's1' is opened twice"),
    ],
)
def test_bad_rows_are_reported_with_line_and_field(tmp_path, line, message):
    path = tmp_path / "t.jsonl"
    path.write_text('{"event": "open", "session": "s1", "t": 0}\n' + line + "\n")
    with pytest.raises(TraceError, match=message.replace("(", r"\(").replace("'", "'")):
        read_trace(path)


def test_cell_before_its_session_opens_is_rejected(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("event,session,t,duration,gpus\nopen,s1,100,,\ncell,s1,50,10,1\n")
    with pytest.raises(TraceError, match="session 's1', cell 0: starts at 50 s, before the session opened"):
        read_trace(path)


def test_missing_file_says_so(tmp_path):
    with pytest.raises(TraceError, match="cannot read trace file"):
        read_trace(tmp_path / "nope.jsonl")


def test_sessions_are_sorted_by_open_time():
    t = Trace.of([Session("b", "u", 50, 60), Session("a", "u", 10, 20)])
    assert [s.session_id for s in t.sessions] == ["a", "b"]


def test_iso_times_count_from_midnight_of_the_earliest_day_even_when_it_comes_later(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"event": "open", "session": "late", "t": "2026-03-03T08:00:00Z"}\n'
        '{"event": "open", "session": "early", "t": "2026-03-02T23:00:00Z"}\n'
        '{"event": "close", "session": "early", "t": "2026-03-03T01:00:00Z"}\n'
        '{"event": "close", "session": "late", "t": "2026-03-03T09:00:00Z"}\n'
    )
    trace = read_trace(path)
    assert trace.epoch == datetime(2026, 3, 2, tzinfo=timezone.utc)
    assert [(s.session_id, s.open_s) for s in trace.sessions] == [("early", 23 * 3600), ("late", 32 * 3600)]


def test_the_examples_in_the_docs_parse(tmp_path):
    from .conftest import REPO

    text = (REPO / "docs/simulator.md").read_text()
    blocks = text.split("```")[1::2]
    jsonl = next(b for b in blocks if b.lstrip().startswith('{"event": "open"'))
    csv_text = next(b for b in blocks if b.lstrip().startswith("event,session"))
    (tmp_path / "doc.jsonl").write_text(jsonl.strip() + "\n")
    (tmp_path / "doc.csv").write_text(csv_text.strip() + "\n")
    from_jsonl, from_csv = read_trace(tmp_path / "doc.jsonl"), read_trace(tmp_path / "doc.csv")
    assert [c.gpus for c in from_jsonl.sessions[0].cells] == [1, 0]
    assert from_csv.sessions[0].cells[0].duration_s == 360
