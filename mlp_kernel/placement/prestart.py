"""Whether a released GPU kernel is started again *before* its next cell runs: one pure rule shared by the
live gateway and the simulator.

Why: every idle release makes the next GPU cell pay a cold start (the pod start plus the restore of the
variables), and holding kernels longer to avoid it costs idle GPU-hours; the release rules (``release.py``)
only slide along that trade-off. But users do not run a cell the instant they come back to a notebook: they
read, scroll and type first. When the JupyterLab extension sees the user type into (or ask to run) a cell of
a notebook whose GPU kernel is released, it sends one ``{"action": "prestart"}``; if this rule allows, the
gateway places and starts the kernel and restores the variables right away, so the cell that follows finds it
running. The cold start happens during the user's own typing time instead of after the click.

What it costs, and the limits that bound it:
- a pre-started kernel no cell uses within ``hold`` is dropped again *without* a new snapshot (nothing ran:
  its variables are exactly the saved ones); its idle time counts as held GPU time (the simulator counts it);
- one pre-start per cell that ran, plus one second chance: when that pre-start was dropped unused, the
  next *code* edit may pre-start once more (the first was often spent on a markdown note or a cell the user
  did not run, and the cell they then write paid the whole cold start: the simulator's largest cause of
  waits; docs/simulator.md). So a user typing a long markdown text costs at most one ``hold`` per release,
  and long code editing at most two;
- it never pays: no burst to a public member, no paid placement. It is a guess about the user's next cell and
  must not spend money on a guess (the same reason a low-confidence wait estimate never triggers a burst);
- by default it does not join a queue either: a pre-start that has to wait for quota would hold a queue place
  for a cell that may not come, and the simulator shows it buys little (docs/simulator.md, "Pre-start").
  ``queue: true`` lets it join a private flavor's queue.

The gateway calls ``prestart_decision`` when the action arrives (with what placement answered for the
session's request), the simulator calls it at each cell's modelled start of work; the reason it returns is
the line ``%gpu explain`` and the status event show.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import policy_field

DEFAULT_HOLD_S = 120.0
"""How long a pre-started kernel waits for a cell before it is dropped: a typical edit of a cell is well
under this, and a user who reads longer than this pays one cold start, as without pre-start."""

PRESTART_STATES = ("released",)
"""Kernel states a pre-start may start from on any activity: released after a GPU use. Any other state has a
kernel or is getting one, or (``cpu_only``) never had one: that one is pre-started only on typing into a code
cell, and only with ``release.prestart.first`` (opening or reading a notebook must not take a GPU)."""

FIRST_STATES = ("cpu_only",)
"""The state of a notebook whose GPU kernel never started: pre-started on a code edit when ``first`` is on."""


@dataclass(frozen=True)
class Prestart:
    """Starting a released GPU kernel when the user starts working on a cell (policy section
    ``release.prestart``; the module docstring says why)."""

    enabled: bool = policy_field(
        "enabled",
        "start the GPU kernel (and restore the variables) as soon as the user types into or runs a cell of a "
        "notebook whose GPU kernel is released, so the cell finds it running; never on a public member or a "
        "paid placement",
        "boolean",
        default=True,
    )
    hold_s: float = policy_field(
        "hold",
        "drop a pre-started kernel that no cell used within this long (without a new snapshot: nothing ran); "
        "then one more pre-start on a code edit, none after that until a cell has run. Its idle time counts "
        "as held GPU time",
        "duration",
        default=DEFAULT_HOLD_S,
        positive=True,
    )
    first: bool = policy_field(
        "first",
        "also pre-start a notebook's first GPU kernel, when the user types into a code cell of a notebook "
        "that never had one (opening, scrolling or writing markdown takes no GPU): the session's first code "
        "cell then finds its kernel starting or running instead of paying the whole cold start",
        "boolean",
        default=True,
    )
    queue: bool = policy_field(
        "queue",
        "let a pre-start join a private flavor's queue when no private flavor has the GPUs free now "
        "(off: it starts only what is admitted at once, and the cell queues when it runs)",
        "boolean",
        default=False,
    )


def prestart_decision(
    prestart: Prestart,
    *,
    state: str,
    ran_since_last_prestart: bool,
    member_public: bool,
    admitted_now: bool,
    paid: bool,
    code_cell: bool = False,
    second_chance: bool = False,
) -> tuple[bool, str]:
    """Whether to pre-start the session's GPU kernel now, and why, in one line.

    - ``state``: the kernel's state (``protocol.KernelState`` value); only ``released`` is pre-started
      (``cpu_only``, a notebook that never had a GPU kernel, is not: reading a notebook takes no GPU);
    - ``ran_since_last_prestart``: a cell has run since the last pre-start (``True`` when there was none);
    - ``member_public`` / ``paid``: where placement would put the session's request now: a public member, or
      a placement that costs money (either is refused: pre-start never pays);
    - ``admitted_now``: the placement runs at once (a private flavor has the GPUs free) rather than queueing;
    - ``code_cell``: the activity is a source edit of a code cell (a notebook's first kernel is pre-started
      only on that, and only with ``first``);
    - ``second_chance``: the one pre-start since the last cell ran was dropped unused, and no second one was
      made: a code edit may then pre-start once more.
    """
    if not prestart.enabled:
        return False, "pre-start is off in the policy (release.prestart.enabled: false)"
    if state in FIRST_STATES:
        if not prestart.first:
            return False, "no pre-start: no GPU kernel has run yet (release.prestart.first: false)"
        if not code_cell:
            return False, "no pre-start: no GPU kernel has run yet and the activity is not code being typed"
    elif state not in PRESTART_STATES:
        return False, f"no pre-start: the GPU kernel is {state}, not released"
    if not ran_since_last_prestart and not (second_chance and code_cell):
        if second_chance:
            return False, "no pre-start: the last one went unused; the next one waits for code being typed"
        return False, "no pre-start: already pre-started once since the last cell ran"
    if member_public or paid:
        where = "a public member" if member_public else "a paid placement"
        return False, f"no pre-start: the GPU would come from {where}, and a pre-start never pays"
    if not admitted_now and not prestart.queue:
        return (
            False,
            "no pre-start: no private flavor has the GPUs free now (the cell will queue when it runs)",
        )
    how = "starts now" if admitted_now else "joins the private queue"
    return True, (
        f"pre-start: the kernel {how} while you edit; dropped without a new snapshot if no cell runs "
        f"within {_duration(prestart.hold_s)}"
    )


def _duration(seconds: float) -> str:
    if seconds < 60 or seconds % 60:
        return f"{seconds:g} s"
    return f"{seconds / 60:g} min"
