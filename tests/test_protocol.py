"""The status protocol is declared once (mlp_kernel/protocol.py): its generated copies are current, and what
the gateway builds (every state, with a decision, a queue and a release) validates against its schema."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest

from mlp_kernel import protocol
from mlp_kernel.gateway.status import GatewayStatus
from mlp_kernel.placement.decider import decide
from mlp_kernel.placement.policy_load import load_policy
from mlp_kernel.placement.state import ClusterState
from mlp_kernel.placement.types import GpuRequest

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = jsonschema.Draft202012Validator(protocol.json_schema())


def errors(data: object) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(data)]


@pytest.mark.parametrize("path", sorted(protocol.generated_files(ROOT)), ids=lambda p: p.name)
def test_the_generated_copies_are_current(path: Path) -> None:
    want = protocol.generated_files(ROOT)[path]
    assert path.read_text(encoding="utf-8") == want, f"{path} is stale: python -m mlp_kernel.protocol --write"


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(protocol.json_schema())


def _demo_decision():
    policy = load_policy(ROOT / "kernelspecs" / "gpu-auto" / "policy.yaml")
    request = GpuRequest(tier=None, gpu_count=1)
    return request, decide(policy, ClusterState.from_policy(policy), request, datetime.now(timezone.utc))


@pytest.mark.parametrize("state", list(protocol.KernelState))
def test_a_snapshot_in_every_state_validates(state: protocol.KernelState) -> None:
    request, decision = _demo_decision()
    s = GatewayStatus(kernel_id="k1", user="alice", state=state, request=request, decision=decision)
    s.member, s.flavor, s.gpu_model, s.gpu_count, s.since = "private", "silver", "V100", 1, 1.7e9
    s.queue = {"local_queue": "kernels", "position": 3, "eta_s": 240.0, "reason": "WaitingForQuota"}
    s.phase = protocol.Phase.QUEUED
    s.last_release = {
        "reason": protocol.ExitReason.PREEMPTED,
        "at": "2026-12-05T10:00:00+00:00",
        "idle_s": None,
        "message": "preempted",
    }
    s.choices = {"gpu_models": ["V100"], "tiers": ["silver"], "burst_allowed": True, "max_gpus": 8}
    snap = json.loads(json.dumps(s.snapshot()))  # as the comm and the status file carry it
    assert errors(snap) == []
    assert snap["state"] == state.value and snap["version"] == protocol.VERSION


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "status", "version": 1, "state": "sleeping"},
        {"type": "status", "version": 1},
        {"type": "status", "version": 1, "state": "running", "gpu_count": "one"},
        {"type": "status", "version": 1, "state": "running", "queue": {"position": "3"}},
        {"type": "event", "kind": "exploded", "message": "x"},
        {"type": "telemetry"},
    ],
    ids=["unknown-state", "no-state", "count-as-text", "position-as-text", "unknown-event", "unknown-type"],
)
def test_the_schema_refuses_what_the_protocol_does_not_allow(bad: dict) -> None:
    assert errors(bad), bad


def test_every_enum_value_is_in_the_typescript_and_the_doc() -> None:
    ts = (ROOT / "labextension" / "src" / "types.ts").read_text(encoding="utf-8")
    doc = (ROOT / "docs" / "status-comm.md").read_text(encoding="utf-8")
    for enum in protocol.ENUMS:
        for member in enum:
            assert f"'{member.value}'" in ts and f"`{member.value}`" in doc, (enum.__name__, member.value)


def test_exit_reasons_from_outside_the_protocol_are_announced_as_an_exit() -> None:
    assert protocol.ExitReason.of("node-lost") is protocol.ExitReason.NODE_LOST
    assert protocol.ExitReason.of("spontaneous-combustion") is protocol.ExitReason.EXITED
    assert str(protocol.KernelState.RUNNING) == "running" and f"{protocol.EventKind.BURST}" == "burst"
