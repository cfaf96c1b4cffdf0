"""The simulator releases idle kernels with the very rule the gateway is to call: ``release.idle_limit_s``.

If the engine ever grew its own copy of the release arithmetic, its held/busy figures would stop describing
the product's behaviour; these tests fail first. The gateway half (its idle timer asks the same function) is
tests/gateway/test_release_rule.py.
"""

from __future__ import annotations

import mlp_kernel.placement.release as release
from mlp_kernel.simulate import Cell, Session, SimConfig, Trace, gpu_auto, simulate
from mlp_kernel.simulate.engine import Engine


def test_engine_imports_the_release_module_and_holds_no_rule_of_its_own():
    import mlp_kernel.simulate.engine as engine_module

    assert engine_module.release is release
    assert not hasattr(engine_module, "idle_limit_s")
    code = Engine._arm_idle_check.__code__
    assert "release" in code.co_names and "idle_limit_s" in code.co_names


def test_every_idle_release_is_timed_by_the_shared_function(tiny_policy, monkeypatch):
    """Spy on the module attribute the engine calls: one call per time the kernel goes idle, with the
    strategy's timeout, the kernel's GPU count and the policy's rule, and its answer is what the engine uses
    (answer 1234 s: the kernel idle from 630 is released at 1864)."""
    calls = []

    def spy(idle_timeout_s, gpus, rule):
        calls.append((idle_timeout_s, gpus, rule))
        return 1234.0

    monkeypatch.setattr(release, "idle_limit_s", spy)
    trace = Trace.of([Session("s", "alice", 0.0, 7200.0, (Cell(0, 600, 2),))])
    run = simulate(tiny_policy, trace, gpu_auto(900), SimConfig(cold_start_private_s=30.0))
    assert calls == [(900, 2, tiny_policy.release)]
    assert [a.end_s for a in run.allocations] == [630 + 1234]
