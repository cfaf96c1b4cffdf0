"""Reading the kernel's report, the one line users see, and the keep= limits."""

from __future__ import annotations

import json

import pytest

from mlp_kernel.snapshot import SnapshotError, SnapshotReport, keep_limit, parse_report


def _wrap(report: dict) -> dict:
    return {"r": {"status": "ok", "data": {"text/plain": repr(json.dumps(report))}, "metadata": {}}}


OK = {
    "kind": "snapshot",
    "ok": True,
    "saved": ["a", "b"],
    "skipped": {"f": "open file", "gen": "generator"},
    "notes": {},
    "count": 2,
    "bytes": 340 * 2**20,
    "seconds": 2.08,
    "error": None,
}


def test_parse_report_reads_the_repr_of_the_json_string() -> None:
    report = parse_report(_wrap(OK))
    assert report.ok and report.saved == ["a", "b"] and report.bytes == 340 * 2**20
    assert report.skipped == {"f": "open file", "gen": "generator"}


def test_summary_line_names_what_was_not_saved() -> None:
    line = parse_report(_wrap(OK)).summary_line("saved")
    assert line == "Saved 2 variables (340 MiB) in 2.1 s; not saved: f (open file), gen (generator)"


def test_summary_line_for_a_restore_with_notes() -> None:
    report = SnapshotReport(
        ok=True,
        saved=["m"],
        skipped={},
        count=1,
        bytes=1024,
        seconds=0.25,
        notes={"m": "restored to CPU: no GPU in this kernel"},
        kind="restore",
    )
    assert report.summary_line("restored") == (
        "Restored 1 variable (1 KiB) in 0.2 s; m (restored to CPU: no GPU in this kernel)"
    )


def test_long_lists_of_skipped_names_are_shortened() -> None:
    report = SnapshotReport(
        ok=True, saved=[], skipped={f"v{i}": "socket" for i in range(20)}, count=0, bytes=0, seconds=0.0
    )
    assert report.summary_line().endswith("v7 (socket), and 12 more")


def test_missing_report_means_the_code_raised() -> None:
    with pytest.raises(SnapshotError, match="stopped with an error before it finished"):
        parse_report({})


def test_failed_expression_is_reported() -> None:
    with pytest.raises(SnapshotError, match="NameError: name"):
        parse_report({"r": {"status": "error", "ename": "NameError", "evalue": "name 'x' is not defined"}})


def test_no_report_in_the_namespace_is_reported() -> None:
    with pytest.raises(SnapshotError, match="no snapshot report to give"):
        parse_report({"r": {"status": "ok", "data": {"text/plain": "None"}}})


def test_garbage_report_is_reported() -> None:
    with pytest.raises(SnapshotError, match="could not be read"):
        parse_report({"r": {"status": "ok", "data": {"text/plain": repr("not json")}}})


def test_a_failed_snapshot_raises_with_the_report_attached() -> None:
    with pytest.raises(SnapshotError, match="Snapshot failed in the kernel: OSError: disk full") as failure:
        parse_report(_wrap({**OK, "ok": False, "error": "OSError: disk full"}))
    assert failure.value.report is not None and failure.value.report.error == "OSError: disk full"


@pytest.mark.parametrize(
    ("keep", "policy", "expected"),
    [
        (None, 10**9, (True, 10**9)),
        ("on", None, (True, None)),
        ("off", 10**9, (False, None)),
        ("500M", 10**9, (True, 500 * 10**6)),
        ("1Gi", None, (True, 2**30)),
    ],
)
def test_keep_setting_resolves_to_a_cap(keep: str | None, policy: int | None, expected: tuple) -> None:
    assert keep_limit(keep, policy) == expected


def test_keep_above_the_policy_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="above this deployment's snapshot limit of 1 GiB"):
        keep_limit("2Gi", 2**30)


def test_keep_nonsense_is_refused() -> None:
    with pytest.raises(ValueError, match="expected on, off or a size"):
        keep_limit("sometimes", None)
