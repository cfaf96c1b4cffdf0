"""The local backend honours each flavor's capacity across notebooks: queued with a position, admitted when
a GPU frees, withdrawn on interrupt, freed when a gateway dies, and burst to a public member under the rule.

Real gateways (one per notebook, separate processes sharing the runtime directory's GPU ledger), the real
local backend starting real ipykernels; the policy is the demo's shape (a private pool with one GPU, a
public one) so the same states a user sees on the platform happen on one machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlp_kernel.backends.local_queue import LEDGER_FILE

from .conftest import text_of
from .test_lifecycle import wait_until

POLICY = """
version: 1
tiers: [bronze, gold]
members:
  private: {backend: local, public: false}
  aws: {backend: local, public: true, display_name: AWS}
flavors:
  bronze: {member: private, tier: bronze, gpu_models: [RTX], price_per_gpu_hour: 0, capacity_gpus: 1}
  gold: {member: aws, tier: gold, gpu_models: [A100], price_per_gpu_hour: 4.10, capacity_gpus: 8}
burst: {enabled: %s, threshold: 2s, deadline_horizon: 2h}
idle_timeout: 10m
default_request: {gpu_count: 1, burstable: false, budget: fixed}
"""
PRIVATE_ONLY = POLICY % "false"
BURSTING = POLICY % "true"


def ledger(runtime: Path) -> dict[str, Any]:
    path = runtime / LEDGER_FILE
    return json.loads(path.read_text() or "{}") if path.exists() else {}


def state(k: Any) -> dict[str, Any]:
    try:
        return dict(k.status_file())
    except (OSError, ValueError):
        return {}


async def test_a_second_notebook_queues_with_its_position_and_starts_when_the_gpu_frees(
    start_kernel, runtime_dir
):
    a = await start_kernel(policy=PRIVATE_ONLY)
    b = await start_kernel(policy=PRIVATE_ONLY)
    reply, _ = await a.run("x = 1")
    assert reply["content"]["status"] == "ok"
    assert state(a)["flavor"] == "bronze"

    waiting = asyncio.ensure_future(b.run("print('b ran on', __import__('os').environ['MLP_FLAVOR'])"))
    assert await wait_until(lambda: state(b).get("state") == "queued", 30), state(b)
    s = state(b)
    assert s["queue"]["position"] == 1 and s["queue"]["local_queue"] == "private/bronze", s["queue"]
    assert s["queue"]["eta_s"] > 0, "placement's expected wait, as the Kubernetes backend reports it"
    assert "1 of 1 GPUs are in use by notebooks on this machine" in s["message"], s["message"]
    assert [e["flavor"] for e in ledger(runtime_dir)["waiting"]] == ["bronze"]
    assert not waiting.done(), "the cell waits for the GPU"

    await a.run("%gpu release")
    reply, outputs = await asyncio.wait_for(waiting, 60)
    assert reply["content"]["status"] == "ok"
    assert "b ran on bronze" in text_of(outputs)
    assert state(b)["state"] == "running"
    held = ledger(runtime_dir)
    assert [e["flavor"] for e in held["held"]] == ["bronze"] and held["waiting"] == []


async def test_interrupting_a_queued_cell_leaves_the_queue(start_kernel, runtime_dir):
    a = await start_kernel(policy=PRIVATE_ONLY)
    b = await start_kernel(policy=PRIVATE_ONLY)
    await a.run("x = 1")
    waiting = asyncio.ensure_future(b.run("1"))
    assert await wait_until(lambda: state(b).get("state") == "queued", 30), state(b)
    await b.km.interrupt_kernel()
    reply, _ = await asyncio.wait_for(waiting, 30)
    assert reply["content"]["status"] == "error"
    assert await wait_until(lambda: ledger(runtime_dir).get("waiting") == [], 10), ledger(runtime_dir)
    assert len(ledger(runtime_dir)["held"]) == 1, "the first notebook keeps its GPU"


async def test_the_gpu_of_a_killed_gateway_frees_for_the_queue(start_kernel, runtime_dir):
    a = await start_kernel(policy=PRIVATE_ONLY)
    b = await start_kernel(policy=PRIVATE_ONLY)
    await a.run("x = 1")
    waiting = asyncio.ensure_future(b.run("2 + 2"))
    assert await wait_until(lambda: state(b).get("state") == "queued", 30), state(b)
    os.kill(a.gateway_pid, signal.SIGKILL)  # no release: its ledger entry names a dead process
    reply, outputs = await asyncio.wait_for(waiting, 60)
    assert reply["content"]["status"] == "ok"
    assert any(m["msg_type"] == "execute_result" for m in outputs)


async def test_a_queued_burstable_request_bursts_to_the_public_member_after_the_threshold(
    start_kernel, runtime_dir
):
    a = await start_kernel(policy=BURSTING)
    b = await start_kernel(policy=BURSTING, reevaluate_s=0.5)
    await a.run("x = 1")
    reply, outputs = await b.run("%gpu burst=on budget=flex\nimport os; print(os.environ['MLP_MEMBER'])")
    assert reply["content"]["status"] == "ok", text_of(outputs)
    text = text_of(outputs)
    assert "Queued for private/bronze" in text and "Burst to aws/gold" in text, text
    assert text.rstrip().endswith("aws"), text
    s = state(b)
    assert s["public"] is True and s["price_per_hour"] == 4.10, s
    assert ledger(runtime_dir)["waiting"] == [], "the burst withdrew the private queue entry"


async def test_a_higher_priority_workload_preempts_the_kernel_and_the_next_cell_queues_behind_it(
    start_kernel, runtime_dir, tmp_path
):
    """``mlp-kernel local-load --preempt``: other people's urgent work on this machine's pool, as Kueue
    preempts for it on the platform; the kernel ends with the preemption's message, the next cell waits."""
    a = await start_kernel(policy=PRIVATE_ONLY)
    await a.run("x = 1")
    policy = tmp_path / "load-policy.yaml"
    policy.write_text(PRIVATE_ONLY)
    cli = [str(Path(sys.executable).parent / "mlp-kernel"), "local-load", "--policy", str(policy)]
    load = subprocess.Popen(
        [*cli, "--flavor", "bronze", "--gpus", "1", "--minutes", "0.25", "--preempt"],
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime_dir)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert await wait_until(lambda: state(a).get("state") == "released", 30), state(a)
        s = state(a)
        assert s["last_release"]["reason"] == "preempted", s["last_release"]
        assert "preempted to make room for higher-priority work" in s["message"], s["message"]
        waiting = asyncio.ensure_future(a.run("print('after', x if 'x' in dir() else None)"))
        assert await wait_until(lambda: state(a).get("state") == "queued", 30), state(a)
        # behind the load (position 2 while it still waits for the preempted GPU, 1 once it holds it)
        assert await wait_until(lambda: (state(a).get("queue") or {}).get("position") == 1, 30), state(a)
        reply, outputs = await asyncio.wait_for(waiting, 90)  # the load gives its GPU back after 15 s
        assert reply["content"]["status"] == "ok" and "after None" in text_of(outputs), text_of(outputs)
        out, _ = load.communicate(timeout=30)
    finally:
        if load.poll() is None:
            load.kill()
    assert "Holding 1 GPU(s) of private/bronze" in out and "Gave back 1 GPU(s)" in out, out


def test_asking_whether_a_kernel_was_preempted_reads_the_ledger_without_rewriting_it(tmp_path):
    """Every running kernel's gateway asks this twice a second while cells run: it must see a mark as soon as
    a higher-priority workload writes it, and leave the file (and every other entry's check) alone."""
    from mlp_kernel.backends.local_queue import LocalQuota

    quota = LocalQuota(tmp_path)
    assert quota.preempted("a") is False, "no ledger yet: nothing is preempted"
    assert quota.ask("a", "bronze", 1, 1).admitted
    path = tmp_path / LEDGER_FILE
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    assert quota.preempted("a") is False
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before, "a read-only question rewrote the ledger"
    assert not LocalQuota(tmp_path).ask("load", "bronze", 1, 1, preempt=True).admitted
    assert quota.preempted("a") is True, ledger(tmp_path)
    assert quota.preempted("someone-else") is False
