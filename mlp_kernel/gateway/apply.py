"""Carrying out a parsed ``%gpu`` command: change the request, the idle rule or carry-over, run its verbs.

One job: ``magic.py`` turns the user's lines into a ``GpuCommand`` (and refuses typos); this applies one to
the notebook's request state and remote session, and returns the text shown in the cell. The same function
serves a cell's ``%gpu`` lines and the GPU panel's "request" action, so both behave alike.
"""

from __future__ import annotations

from ..placement.release import FLAT
from ..placement.units import format_duration
from ..protocol import ReleaseReason
from .magic import USAGE, GpuCommand
from .session import RemoteSession


async def apply_command(cmd: GpuCommand, session: RemoteSession) -> str:
    """Carry out the ``%gpu`` lines of a cell; return the text to show in it."""
    requests, status = session.requests, session.status
    out: list[str] = []
    if cmd.idle_s is not None:
        requests.idle_timeout_s = status.idle_timeout_s = cmd.idle_s
        requests.release_rule = status.release_rule = FLAT  # the user's number, as stated
        session.touch()
        out.append(f"Idle timeout: {format_duration(cmd.idle_s) if cmd.idle_s else 'off (never released)'}")
    if cmd.keep is not None:
        requests.set_keep(cmd.keep, cmd.keep_max_bytes)
        out.append(
            "Variables are kept across releases" if cmd.keep else "Variables are not kept across releases"
        )
    if cmd.changes_request:
        before = requests.current()
        if "reset" in cmd.verbs:
            requests.reset()
        requests.update(cmd.request)
        after = requests.current()
        status.request = after
        out.append(f"GPU request: {requests.describe(after)}")
        if session.link is not None and after != before and not requests.satisfied_by_current(status):
            out.append(await session.release(ReleaseReason.MOVE, "to apply the new GPU request"))
    for verb in cmd.verbs:
        if verb == "status":
            policy = None if requests.policy_error else requests.policy
            unknown = await requests.budget.show(policy, status, session.clock.time())
            out.append(status.describe())
            if unknown:  # the ledger cannot be read: no budget applies until it can
                out.append(unknown)
            if status.files:  # what the GPU kernel sees of the notebook's files, on every member
                last = "" if session.link is not None else " (the last GPU kernel)"
                out.append(f"Files{last}: {status.files['message']}")
        elif verb == "explain":
            d = status.decision
            out.append(d.explain() if d else "No placement decision yet: no cell has asked for a GPU.")
            if status.prestart_note:  # the last pre-start (release.prestart): started, dropped or why not
                out.append(f"Pre-start: {status.prestart_note}")
        elif verb == "help":
            out.append(USAGE)
        elif verb == "release":
            if not session.active:
                out.append("No GPU kernel is running; nothing to release.")
            else:
                out.append(await session.release(ReleaseReason.USER, "with %gpu release"))
        elif verb == "forget":
            out.append(await requests.forget(session.link))
    session.statusch.publish()
    return "\n".join(out)
