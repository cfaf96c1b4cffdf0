"""The gateway's idle timer applies the policy's release rule through the function the simulator uses.

A kernel holding many GPUs is released sooner than a 1-GPU kernel (``gpu-minutes``: idle_timeout / GPUs,
never below ``min_idle``); a user's ``%gpu idle=`` means exactly that long, whatever the size. That the
simulator releases at the same moments is tests/simulate/test_same_release.py.
"""

from __future__ import annotations

import asyncio
import time

from mlp_kernel.gateway.status import GatewayStatus
from mlp_kernel.placement.release import FLAT, ReleaseRule

from .conftest import text_of
from .test_lifecycle import wait_until

POLICY = """
version: 1
tiers: [local]
members:
  local: {backend: local, public: false, health: static}
flavors:
  local: {member: local, tier: local, gpu_models: [local], price_per_gpu_hour: 0, capacity_gpus: 8}
burst: {enabled: false}
idle_timeout: 16s
release: {rule: gpu-minutes, min_idle: 1s}
default_request: {gpu_count: 8}
"""


DEFAULT_RULE = ReleaseRule()


def running(gpus: int, rule: ReleaseRule = DEFAULT_RULE) -> GatewayStatus:
    s = GatewayStatus(kernel_id="k", state="running", gpu_count=gpus, idle_timeout_s=900.0, release_rule=rule)
    s.last_activity = 1000.0
    return s


def test_status_deadline_follows_the_rule_and_the_kernel_size():
    assert running(1).idle_limit() == 900.0
    assert running(4).idle_limit() == 225.0
    assert running(8).idle_limit() == 180.0  # 112.5 s is below the 3 min floor
    assert running(8).idle_deadline() == 1180.0
    assert running(8, FLAT).idle_limit() == 900.0
    off = running(8)
    off.idle_timeout_s = 0.0  # %gpu idle=0: never released automatically
    assert off.idle_limit() is None and off.idle_deadline() is None
    snap = running(8).snapshot()
    assert snap["idle_limit_s"] == 180.0 and snap["idle_rule"] == "15 min / GPUs, >= 3 min"


async def test_an_eight_gpu_kernel_is_released_after_its_share_of_the_timeout(start_kernel):
    k = await start_kernel(policy=POLICY)
    reply, outputs = await k.run("x = 1")
    assert reply["content"]["status"] == "ok", text_of(outputs)
    status = k.status_file()
    assert status["gpu_count"] == 8 and status["idle_limit_s"] == 2.0  # 16 s / 8 GPUs
    started = time.time()
    assert await wait_until(lambda: k.record() is None, 30), "the 8-GPU kernel was not released"
    assert time.time() - started < 12  # a flat rule would have waited 16 s
    assert k.status_file()["last_release"]["idle_s"] == 2.0


async def test_a_users_idle_setting_is_flat(start_kernel):
    k = await start_kernel(policy=POLICY)
    reply, outputs = await k.run("%gpu idle=30m\nx = 1")
    assert reply["content"]["status"] == "ok", text_of(outputs)
    status = k.status_file()
    assert status["idle_limit_s"] == 1800.0 and status["idle_rule"] == "after 30 min idle"
    reply, outputs = await k.run("%gpu")
    assert "idle limit 30 min for 8 GPU(s)" in text_of(outputs)


PREDICTIVE_POLICY = POLICY.replace("idle_timeout: 16s", "idle_timeout: 1h").replace(
    "release: {rule: gpu-minutes, min_idle: 1s}", "release: {rule: predictive, min_idle: 1s}"
)


async def test_predictive_learns_the_notebook_s_gaps_in_the_gateway(start_kernel):
    """Issue 18 §2: the session records each gap (a cell's end to the next cell) in its status and the idle
    limit reads them. 8 GPUs, a restart worth 1 h: until 3 gaps are known, gpu-minutes (3600 / 8 = 450 s);
    after three sub-second gaps, holding just past them (gap x 1.1) costs far less than a restart, so the
    kernel is kept for about a second, not 450 s, and is released soon after the last cell."""
    k = await start_kernel(policy=PREDICTIVE_POLICY)
    for i in range(3):
        reply, outputs = await k.run(f"x = {i}")
        assert reply["content"]["status"] == "ok", text_of(outputs)
        await asyncio.sleep(0.3)
    assert k.status_file()["idle_limit_s"] == 450.0  # two gaps so far
    reply, outputs = await k.run("x = 3")
    assert reply["content"]["status"] == "ok", text_of(outputs)
    started = time.time()
    learnt = await wait_until(lambda: k.status_file()["idle_limit_s"] < 5.0, 10)
    assert learnt, k.status_file()["idle_limit_s"]
    assert await wait_until(lambda: k.record() is None, 30), "the kernel was not released"
    assert time.time() - started < 15
