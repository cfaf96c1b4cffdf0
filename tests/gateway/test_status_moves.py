"""The gateway's states change in one place (``StatusChannel.move``), checked against one table."""

from __future__ import annotations

import json
import logging

import pytest

from mlp_kernel.gateway.status import GatewayStatus
from mlp_kernel.gateway.status_comm import TRANSITIONS, StatusChannel
from mlp_kernel.protocol import KernelState, Phase

S = KernelState


def channel(tmp_path, state: KernelState = S.CPU_ONLY) -> tuple[StatusChannel, list[dict]]:
    sent: list[dict] = []
    status = GatewayStatus(kernel_id="k", state=state)
    ch = StatusChannel(status, lambda t, c, p: sent.append(c), tmp_path / "s")
    ch.comms.add("c1")
    return ch, sent


def test_every_state_has_its_moves_and_every_state_is_reachable() -> None:
    assert set(TRANSITIONS) == set(KernelState)
    reachable = {S.CPU_ONLY} | {b for moves in TRANSITIONS.values() for b in moves}
    assert reachable == set(KernelState)


def test_a_move_sets_the_fields_given_keeps_the_others_and_publishes(tmp_path) -> None:
    ch, sent = channel(tmp_path, S.PLACING)
    ch.status.phase = Phase.PLACING
    ch.move(S.QUEUED, "Queued on silver", queue={"position": 2}, phase=Phase.QUEUED)
    assert (ch.status.state, ch.status.message) == (S.QUEUED, "Queued on silver")
    assert ch.status.queue == {"position": 2}
    ch.move(S.STARTING, "Pulling", phase=Phase.PULLING)
    assert ch.status.queue == {"position": 2}, "a field not given is kept"
    assert [m["data"]["state"] for m in sent] == ["queued", "starting"]
    assert json.loads((tmp_path / "s").read_text())["state"] == "starting"


def test_a_move_without_publish_changes_the_state_only(tmp_path) -> None:
    ch, sent = channel(tmp_path, S.RUNNING)
    ch.move(S.RELEASED, publish=False)
    assert ch.status.state == S.RELEASED and sent == []


@pytest.mark.parametrize("start", list(KernelState))
def test_any_state_may_end_in_cpu_only(tmp_path, start, caplog) -> None:
    ch, _ = channel(tmp_path, start)
    with caplog.at_level(logging.ERROR, logger="mlp_kernel.gateway"):
        ch.move(S.CPU_ONLY, "Shut down")
    assert not caplog.records


def test_a_move_outside_the_table_is_logged_as_a_bug_and_made_anyway(tmp_path, caplog) -> None:
    ch, _ = channel(tmp_path, S.CPU_ONLY)
    with caplog.at_level(logging.ERROR, logger="mlp_kernel.gateway"):
        ch.move(S.RUNNING, "teleported")
    assert ch.status.state == S.RUNNING
    assert [r.getMessage() for r in caplog.records] == ["unexpected status move cpu_only -> running"]
