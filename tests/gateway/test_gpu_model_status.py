"""What the gateway says and does about the GPU model (issue 14 §3): ``%gpu`` status shows the pin or the
upgrade, the request line shows ``V100+``, and a changed request moves the kernel only when its current GPU
does not serve the new one (a kernel pinned to V100 serves ``%gpu v100``; one placed by tier on Silver may be
on an A30 and does not; a Gold kernel serves ``%gpu v100+``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from mlp_kernel.gateway.config import GatewayConfig
from mlp_kernel.gateway.magic import parse_magics
from mlp_kernel.gateway.requests import RequestState
from mlp_kernel.gateway.status import GatewayStatus
from mlp_kernel.placement import ClusterState, GpuRequest, decide
from mlp_kernel.protocol import KernelState

from .conftest import ROOT

POLICY = str(ROOT / "kernelspecs" / "gpu-auto" / "platform-policy.yaml")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def running(requests: RequestState, line: str, silver_full: bool = False) -> GatewayStatus:
    """A status as the gateway keeps it once the kernel placed for ``line`` (asked 12 minutes ago) runs."""
    policy = requests.policy_view()
    request = replace(GpuRequest(), **parse_magics([line], policy, NOW).request, waited_s=720)
    state = ClusterState.from_policy(policy)
    if silver_full:
        state = state.with_usage("private", "silver", used_gpus=8)
    d = decide(policy, state, request, NOW)
    s = GatewayStatus(kernel_id="k", user="alice", state=KernelState.RUNNING, request=request, decision=d)
    s.member, s.flavor, s.gpu_model, s.gpu_count, s.public = d.member, d.flavor, d.gpu_model, 1, d.public
    return s


def ask(requests: RequestState, line: str) -> None:
    requests.reset()
    requests.update(parse_magics([line], requests.policy_view(), NOW).request)


def test_status_shows_the_pin_and_the_upgrade() -> None:
    requests = RequestState(GatewayConfig(kernel_id="k", policy=POLICY))
    pinned = running(requests, "%gpu v100").describe()
    assert "private / silver (private), GPU V100 x1, pinned by nvidia.com/gpu.product in (" in pinned
    upgraded = running(requests, "%gpu v100+ burst=on budget=flex", silver_full=True).describe()
    assert "aws / gold (public), GPU A100 or H100 x1 instead of V100" in upgraded, upgraded


def test_the_request_line_says_or_better() -> None:
    requests = RequestState(GatewayConfig(kernel_id="k", policy=POLICY))
    ask(requests, "%gpu a30")
    assert requests.describe(requests.current()).startswith("A30+ x1")  # platform: upgrade_tiers [silver]
    ask(requests, "%gpu a30 upgrade=off")
    assert requests.describe(requests.current()).startswith("A30 x1")


def test_a_changed_request_is_satisfied_only_by_a_gpu_that_serves_it() -> None:
    requests = RequestState(GatewayConfig(kernel_id="k", policy=POLICY))
    on_v100 = running(requests, "%gpu v100")
    by_tier = running(requests, "%gpu tier=silver")
    on_gold = running(requests, "%gpu v100+ burst=on budget=flex", silver_full=True)
    assert on_gold.flavor == "gold"
    ask(requests, "%gpu v100")
    assert requests.satisfied_by_current(on_v100)
    assert not requests.satisfied_by_current(by_tier)  # Silver by tier may be an A30 node
    assert requests.satisfied_by_current(on_gold)  # platform default: V100 or better
    ask(requests, "%gpu v100 upgrade=off")
    assert not requests.satisfied_by_current(on_gold)
    ask(requests, "%gpu a30")
    assert not requests.satisfied_by_current(on_v100)
