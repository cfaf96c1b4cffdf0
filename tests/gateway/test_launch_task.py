"""The launch task always ends in ``on_launch_done``, whatever fails inside it.

A launch task that ended on an exception of its own (not one the backend raised during the start, which
``_attempt`` turns into an error for the cell) once left ``kernel.launch`` set: every later cell was queued
behind a launch that no longer ran, and the notebook hung.
"""

from __future__ import annotations

from types import SimpleNamespace

from mlp_kernel.gateway.launch import Launch, LaunchFailed


async def test_a_launch_that_fails_unexpectedly_still_ends_in_on_launch_done():
    ended: list[object] = []

    def on_launch_done(link: object, error: LaunchFailed | None) -> None:
        kernel.launch = None
        ended.append(error)

    kernel = SimpleNamespace(on_launch_done=on_launch_done, launch=None)
    launch = Launch(kernel, first=None)  # type: ignore[arg-type]
    kernel.launch = launch

    async def broken() -> None:
        raise AttributeError("'NoneType' object has no attribute 'launch_timeout_s'")

    launch._attempt = broken  # type: ignore[method-assign]
    launch.start()
    assert launch.task is not None
    await launch.task
    assert kernel.launch is None and isinstance(ended[0], LaunchFailed)
    assert "AttributeError" in str(ended[0])
