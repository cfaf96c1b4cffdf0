"""Stopping a watch never blocks the caller, on a real API server's TLS connection.

On the real plane every kernel start took 20-40 s longer than on the test API: when a launch ended, the
backend stopped its watches from the gateway's event loop, and closing a TLS response that another thread
was blocked reading waited for that read, i.e. for the next event or the server-side watch timeout. The
gateway's loop was frozen meanwhile (the kernel's first reply sat unread).
"""

from __future__ import annotations

import asyncio
import time

import kubernetes

from mlp_kernel.backends.kubernetes.watching import ResumableWatch, WatchEvent


async def test_stopping_a_quiet_watch_returns_at_once_and_its_thread_ends(kube_members) -> None:
    api = kube_members.private.api_client()
    core = kubernetes.client.CoreV1Api(api)
    queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
    watch = ResumableWatch("configmaps", queue, core.list_namespaced_config_map, "kube-public", timeout_s=120)
    watch.start()
    first = await asyncio.wait_for(queue.get(), 30)
    while first.type != "SYNCED":
        first = await asyncio.wait_for(queue.get(), 30)
    deadline = time.monotonic() + 10
    while watch._resp is None and time.monotonic() < deadline:  # the watch request is open, its read blocked
        await asyncio.sleep(0.05)
    assert watch._resp is not None, "the watch never started streaming"
    await asyncio.sleep(0.5)  # nothing happens in kube-public: the thread sits in a blocking TLS read
    t0 = time.monotonic()
    watch.stop()
    stopped_in = time.monotonic() - t0
    watch._thread.join(10)
    assert stopped_in < 1.0, f"stop() blocked the caller for {stopped_in:.1f} s"
    assert not watch._thread.is_alive(), "the watch thread is still reading after stop()"
    api.close()
