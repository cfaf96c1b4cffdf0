"""The first cell after a release on a claimed warm-pool kernel, through the real gateway (issue 18 §3).

For a claimed kernel the gateway sends its bootstrap (the execution count, ``%connect_info``) and queues the
restore right behind it without waiting for the bootstrap's reply (``Launch._bootstrap``): the kernel still
runs both, in that order, and the variables come back. Real gateway, real pool ipykernels, the shipped policy
with ``warm_pool: 1``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import yaml

from mlp_kernel.backends.local_queue import LocalQuota

from .conftest import ROOT, text_of
from .test_carryover import result
from .test_lifecycle import wait_until


def pool_policy() -> str:
    policy = yaml.safe_load((ROOT / "kernelspecs" / "gpu-auto" / "policy.yaml").read_text())
    for flavor in policy["flavors"].values():
        flavor.update(warm_pool=1, warm_pool_idle="10m")
    return yaml.safe_dump(policy)


def ready_pool_kernel(runtime: Path) -> bool:
    return any(e.get("ready") for e in LocalQuota(runtime).pool_kernels("local"))


def end_pool_kernels(runtime: Path) -> None:
    """Pool kernels are detached and outlive the gateway until ``warm_pool_idle``: end every pool kernel of
    this test (ready, claimed or starting). Their connection files sit beside the gateway's (a temporary
    directory), so they are known by the Jupyter runtime directory they run with: this test's, whose ledger
    they are in."""
    import psutil

    for proc in psutil.process_iter(["pid", "cmdline"]):
        if not any("mlp-pool-" in str(arg) for arg in proc.info["cmdline"] or []):
            continue
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("JUPYTER_RUNTIME_DIR") == str(runtime):
                proc.kill()


async def test_the_claimed_kernel_runs_the_bootstrap_then_restores_the_variables(start_kernel, runtime_dir):
    k = await start_kernel(pool_policy(), backend="local", idle_timeout="60m")
    try:
        reply, outputs = await k.run("x = 41\nname = 'kept'")
        assert reply["content"]["status"] == "ok", text_of(outputs)
        assert await wait_until(lambda: ready_pool_kernel(runtime_dir), 60), "the pool did not refill"
        first_kernel = k.record()["pid"]
        reply, outputs = await k.run("%gpu release")
        assert "Saved" in text_of(outputs), text_of(outputs)

        reply, outputs = await k.run("x + 1, name")
        text = text_of(outputs)
        assert reply["content"]["status"] == "ok", text
        assert "warm pool" in text and "Restored 2 variables" in text, text
        assert result(outputs) == ["(42, 'kept')"]
        assert k.record()["pid"] != first_kernel
        _, outputs = await k.run(
            "%connect_info"
        )  # the bootstrap ran: the gateway's connection, not the kernel's
        assert f'"shell_port": {k.km.shell_port}' in text_of(outputs), text_of(outputs)
        assert await wait_until(lambda: ready_pool_kernel(runtime_dir), 60), "the pool did not refill"
    finally:
        end_pool_kernels(runtime_dir)
