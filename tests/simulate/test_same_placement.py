"""The simulator decides with the very function the live gateway and ``mlp-kernel place`` call.

If someone ever gives the simulator its own copy of the rules (or the gateway a different entry point), the
simulator's figures would stop describing the product; these tests fail first.
"""

from __future__ import annotations

from datetime import datetime, timezone

import mlp_kernel.cli.place as place_cli
import mlp_kernel.gateway.requests as gateway_requests
import mlp_kernel.placement
from mlp_kernel.gateway.config import GatewayConfig
from mlp_kernel.simulate import placer
from mlp_kernel.simulate.engine import Engine

from .conftest import HERE


def test_simulator_decides_with_the_placement_function_itself():
    assert placer.DECIDE is mlp_kernel.placement.decide


async def test_gateway_and_place_cli_call_that_same_function(monkeypatch):
    """The gateway imports ``decide`` when it first decides (start-up stays light): spy on the module."""
    assert place_cli.decide is placer.DECIDE
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        return placer.DECIDE(*args, **kwargs)

    monkeypatch.setattr(mlp_kernel.placement, "decide", spy)
    config = GatewayConfig(kernel_id="same-function", policy=str(HERE / "tiny-policy.yaml"))
    await gateway_requests.RequestState(config).decide(0.0, backend=None)
    assert len(calls) == 1


def test_engine_asks_only_through_the_placer():
    """The engine module holds no decide of its own: every decision goes through ``placer.ask``."""
    import mlp_kernel.simulate.engine as engine_module

    assert not hasattr(engine_module, "decide")
    assert "placer" in Engine._ask.__code__.co_names and "ask" in Engine._ask.__code__.co_names


async def test_same_inputs_give_the_gateway_and_the_simulator_the_same_decision(tiny_policy):
    """With nothing used, the simulator's state equals the gateway's 'declared capacity' state, so both ask
    placement the same question and must get the same answer."""
    config = GatewayConfig(kernel_id="simulator-test", policy=str(HERE / "tiny-policy.yaml"))
    gateway = gateway_requests.RequestState(config)
    live = await gateway.decide(0.0, backend=None)  # no live state reader: the policy's declared capacity
    simulated = placer.ask(tiny_policy, placer.Pools(tiny_policy), gateway.current(), 0.0,
                           datetime.now(timezone.utc))
    assert (simulated.action, simulated.member, simulated.flavor, simulated.gpu_count, simulated.summary) == (
        live.action, live.member, live.flavor, live.gpu_count, live.summary)
