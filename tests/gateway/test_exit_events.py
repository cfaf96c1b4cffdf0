"""A remote kernel that ended unasked is announced with the event kinds of docs/status-comm.md."""

from __future__ import annotations

from mlp_kernel.gateway.kernel import exit_event_kind


def test_a_kernel_that_ended_unasked_is_reported_with_the_status_comm_event_kinds():
    assert exit_event_kind("preempted") == "preempted"
    assert {exit_event_kind(r) for r in ("evicted", "node-lost", "deleted")} == {"evicted"}
    assert {exit_event_kind(r) for r in ("exited", "oomkilled", "unknown")} == {"error"}
