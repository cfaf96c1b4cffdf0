"""A remote kernel that ended unasked is announced with the event kinds of docs/status-comm.md."""

from __future__ import annotations

import pytest

from mlp_kernel.protocol import EventKind, ExitReason


def test_a_kernel_that_ended_unasked_is_reported_with_the_status_comm_event_kinds():
    assert ExitReason("preempted").event_kind() is EventKind.PREEMPTED
    assert {ExitReason(r).event_kind() for r in ("evicted", "node-lost", "deleted")} == {EventKind.EVICTED}
    assert {ExitReason(r).event_kind() for r in ("exited", "oomkilled", "killed")} == {EventKind.ERROR}
    assert {r.event_kind() for r in ExitReason} <= set(EventKind)


def test_an_exit_reason_outside_the_protocol_is_refused():
    with pytest.raises(ValueError):
        ExitReason("unknown")
