"""The launch task always ends in ``launch_done``, whatever fails inside it.

A launch task that ended on an exception of its own (not one the backend raised during the start, which
``_attempt`` turns into an error for the cell) once left ``kernel.launch`` set: every later cell was queued
behind a launch that no longer ran, and the notebook hung.
"""

from __future__ import annotations

from types import SimpleNamespace

from mlp_kernel.gateway.launch import Launch, LaunchFailed


class Observer:
    """A LaunchObserver that records how the launch ended."""

    def __init__(self) -> None:
        self.ended: list[tuple[object, object]] = []

    def launch_done(self, launch: Launch, link: object, error: object) -> None:
        self.ended.append((launch, error))

    def next_execution_count(self) -> int:
        return 1

    def take_release_note(self) -> str | None:
        return None


async def test_a_launch_that_fails_unexpectedly_still_ends_in_launch_done():
    observer = Observer()
    launch = Launch(SimpleNamespace(publish=None), observer, first=None)  # type: ignore[arg-type]

    async def broken() -> None:
        raise AttributeError("'NoneType' object has no attribute 'launch_timeout_s'")

    launch._attempt = broken  # type: ignore[method-assign]
    launch.start()
    assert launch.task is not None
    await launch.task
    [(who, error)] = observer.ended
    assert who is launch and isinstance(error, LaunchFailed)
    assert "AttributeError" in str(error)
