"""GPU (auto) end to end on one machine: lazy start, persistence, idle release, deaths and clean-up."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import psutil

from .conftest import text_of


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def wait_until(predicate, timeout: float = 30.0, step: float = 0.2) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


async def test_kernel_is_ready_without_starting_a_remote_kernel(start_kernel):
    k = await start_kernel()
    reply = await k.kc.kernel_info(reply=True, timeout=10)
    assert reply["content"]["language_info"]["name"] == "python"
    assert k.record() is None
    children = psutil.Process(k.gateway_pid).children(recursive=True)
    assert children == [], f"nothing may run besides the gateway before a cell: {children}"
    status = k.runtime / f"mlp-kernel-status-{k.kernel_id}.json"
    assert await wait_until(status.exists, 10), "the gateway writes its status file soon after start"
    assert k.status_file()["state"] == "cpu_only"


async def test_first_cell_starts_remote_kernel_and_variables_persist(start_kernel):
    k = await start_kernel()
    reply, outputs = await k.run("x = 6 * 7\nprint('pid', __import__('os').getpid())")
    assert reply["content"]["status"] == "ok"
    text = text_of(outputs)
    assert "[GPU (auto)]" in text and "Running on local/local" in text, text
    record = k.record()
    assert record and alive(record["pid"])
    assert f"pid {record['pid']}" in text
    reply, outputs = await k.run("x + 1")
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert results[0]["content"]["data"]["text/plain"] == "43"
    assert k.record()["pid"] == record["pid"], "later cells must run in the same remote kernel"
    assert k.status_file()["state"] == "running"


async def test_idle_release_then_next_cell_starts_a_new_kernel(start_kernel):
    k = await start_kernel(idle_timeout="2s")
    await k.run("x = 1")
    first = k.record()
    assert first
    assert await wait_until(lambda: k.record() is None, 20), "idle kernel was not released"
    assert await wait_until(lambda: not alive(first["pid"]), 10)
    status = k.status_file()
    assert status["state"] == "released" and status["last_release"]["reason"] == "idle"
    reply, outputs = await k.run("y = 2\ny")
    assert reply["content"]["status"] == "ok"
    assert "GPU released after" in text_of(outputs), "the next cell must say the GPU was released"
    assert k.record()["pid"] != first["pid"]


async def test_a_busy_cell_is_never_released(start_kernel):
    k = await start_kernel(idle_timeout="1s")
    await k.run("import time")
    pid = k.record()["pid"]
    reply, outputs = await k.run("time.sleep(3); print('done')")  # three idle timeouts
    assert reply["content"]["status"] == "ok"
    assert "done" in text_of(outputs)
    assert k.record() is not None and k.record()["pid"] == pid


async def test_remote_kernel_killed_mid_cell_ends_the_cell_with_an_error(start_kernel):
    k = await start_kernel()
    await k.run("import time")
    pid = k.record()["pid"]

    async def kill_soon() -> None:
        await asyncio.sleep(1.5)
        os.kill(pid, signal.SIGKILL)

    killer = asyncio.ensure_future(kill_soon())
    reply, outputs = await k.run("time.sleep(60)", timeout=60)
    await killer
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "GpuKernelLost"
    assert "killed" in text_of(outputs)
    reply, outputs = await k.run("print('recovered')")
    assert reply["content"]["status"] == "ok" and "recovered" in text_of(outputs)


async def test_remote_kernel_that_exits_mid_cell_quotes_its_last_output(start_kernel):
    """A native library's last words on stderr (then the process ends): the cell's error quotes them, the
    status line stays one line, and the next cell gets a new kernel."""
    k = await start_kernel()
    crash = "import os, time\nos.write(2, b'Fatal Python error: Segmentation fault\\n')\n"
    crash += "time.sleep(1)\nos._exit(7)"  # the pause: ipykernel's thread echoes fd 2 to the real stderr
    reply, outputs = await k.run(crash, timeout=60)
    assert reply["content"]["ename"] == "GpuKernelLost"
    evalue = reply["content"]["evalue"]
    assert evalue.startswith("The GPU kernel exited (code 7)"), evalue
    assert evalue.endswith("Its last output:\nFatal Python error: Segmentation fault"), evalue
    assert "--existing" not in evalue, "ipykernel's banner is not why it ended"
    streamed = [m["content"]["text"] for m in outputs if m["msg_type"] == "stream"]
    assert not any("exited (code 7)" in t for t in streamed), "the error says it once, no stream repeats it"
    reply, outputs = await k.run("print('recovered')")
    assert reply["content"]["status"] == "ok" and "recovered" in text_of(outputs)


async def test_shutdown_leaves_no_remote_kernel(start_kernel):
    k = await start_kernel()
    await k.run("1")
    pid = k.record()["pid"]
    k.kc.stop_channels()
    await k.km.shutdown_kernel()
    assert await wait_until(lambda: not alive(pid), 10)
    assert k.record() is None


SLOW_SHUTDOWN = """
import time
_kernel = get_ipython().kernel
_do_shutdown = _kernel.do_shutdown
async def _slow_shutdown(restart):
    time.sleep(1.0)  # a GPU kernel freeing device memory can take a while to answer
    return await _do_shutdown(restart)
_kernel.do_shutdown = _slow_shutdown
"""


async def test_a_second_way_out_waits_for_the_release_under_way(start_kernel):
    """jupyter console sends shutdown_request and exits at once: while the gateway is still releasing the
    remote kernel, its parent watch (or a SIGTERM) asks it to stop as well. That must not cut the release
    short: no remote kernel, no record and no status file may be left."""
    k = await start_kernel()
    reply, _ = await k.run(SLOW_SHUTDOWN)
    assert reply["content"]["status"] == "ok"
    pid, gateway = k.record()["pid"], k.gateway_pid
    assert (k.runtime / f"mlp-kernel-status-{k.kernel_id}.json").exists()
    k.kc.shutdown()  # like the console: send and do not wait
    await asyncio.sleep(0.4)  # the gateway is now waiting for the remote kernel's shutdown_reply
    assert alive(gateway) and k.record() is not None
    os.kill(gateway, signal.SIGTERM)
    assert await wait_until(lambda: not alive(gateway), 15), "gateway did not end"
    assert not alive(pid)
    assert k.record() is None, "the remote kernel's record was left behind"
    assert not (k.runtime / f"mlp-kernel-status-{k.kernel_id}.json").exists()


async def test_restart_leaves_no_remote_kernel_and_starts_fresh(start_kernel):
    k = await start_kernel()
    await k.run("x = 1")
    pid = k.record()["pid"]
    await k.km.restart_kernel()
    await k.kc.wait_for_ready(timeout=60)
    assert await wait_until(lambda: not alive(pid), 10)
    reply, outputs = await k.run("'x' in dir()")
    assert [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"] == [
        "False"
    ]


async def test_killed_gateway_leaves_no_remote_kernel(start_kernel):
    k = await start_kernel()
    await k.run("1")
    pid = k.record()["pid"]
    os.kill(k.gateway_pid, signal.SIGKILL)
    # ipykernel's parent poller ends the remote kernel; the provisioner's clean-up also releases the record.
    await k.km.shutdown_kernel(now=True)
    assert await wait_until(lambda: not alive(pid), 10)


async def test_remote_kernel_gone_when_parent_of_gateway_dies(tmp_path, runtime_dir):
    """A crashed notebook server: the gateway notices its parent is gone and releases the GPU kernel."""
    import json
    import subprocess
    import sys
    import textwrap

    from .conftest import make_kernelspec

    make_kernelspec(tmp_path, "gpu-auto-test")
    kernels = str(tmp_path / "kernels")
    script = textwrap.dedent(f"""
        import asyncio, json, sys, time
        from jupyter_client import AsyncKernelManager
        from jupyter_client.kernelspec import KernelSpecManager
        async def main():
            km = AsyncKernelManager(kernel_name="gpu-auto-test",
                                    kernel_spec_manager=KernelSpecManager(kernel_dirs=[{kernels!r}]))
            await km.start_kernel()
            kc = km.client(); kc.start_channels(); await kc.wait_for_ready(timeout=60)
            await kc.execute_interactive("1", timeout=60, output_hook=lambda m: None)
            print(json.dumps({{"id": km.kernel_id, "gw": km.provisioner.process.pid}}), flush=True)
            time.sleep(600)
        asyncio.run(main())
    """)
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(server.stdout.readline())
        record = json.loads((runtime_dir / f"mlp-kernel-remote-{info['id']}.json").read_text())
        server.kill()  # the "notebook server" crashes without any clean-up
        server.wait()
        assert await wait_until(lambda: not alive(info["gw"]), 15), "gateway outlived its parent"
        assert await wait_until(lambda: not alive(record["pid"]), 10), "remote kernel outlived the gateway"
        assert not (runtime_dir / f"mlp-kernel-remote-{info['id']}.json").exists(), "record left behind"
        assert not (runtime_dir / f"mlp-kernel-status-{info['id']}.json").exists(), "status file left behind"
    finally:
        server.kill()
