"""When the user starts working on a cell before running it: the lead that pre-start (issue 18) can use.

Why a model and not data: the published statistics the generator is calibrated on give the pooled gaps
between cells only (a cell's end to the next submit), not when within a gap the user starts typing the next
cell. Studies of fine-grained notebook logs (Titov et al., "Observing Fine-Grained Changes in Jupyter
Notebooks During Development Time", 2025: 20 developers, 2,655 cells, 9,207 executions) show that cells are
mostly edited and re-run in small iterations, but publish no edit-to-execute time we could calibrate on. So
the lead is a documented, deliberately conservative assumption, and docs/simulator.md shows the results
under it, under half of it, and with none (``scale = 0``: pre-start never fires early, today's figures):

- the lead of a cell is a fraction of the gap before it (from the previous cell's end, or the session's
  open, to its submit), drawn per cell uniformly from 0 to ``LEAD_FRACTION_MAX`` (mean a quarter of the
  gap: part of every pause is reading the last output, and a re-run without an edit has almost none);
- capped at ``LEAD_CAP_S`` (2 min): after a long absence the user types for a while, not for the whole
  absence, and the cap keeps a long gap from counting as typing time;
- ``scale`` multiplies both (0.5: an eighth of the gap on average, at most 1 min);
- activity that is *not* followed by a run costs a pre-start for nothing: in ``SPURIOUS_SHARE`` of the
  gaps (a quarter) the user also types somewhere in the notebook (a markdown note, a cell they do not run)
  at a uniformly drawn moment before the lead. That pre-start is dropped after its hold, and since there is
  no second pre-start until a cell has run, the cell that follows then pays its cold start as without
  pre-start (``spurious_at_s``; none when ``scale`` is 0).

The draw is keyed by the session id and the cell's index (like the carried-over state's size), so every
strategy and every replay of a trace, generated or imported, sees the same leads, and the generator's random
stream (and so every trace) is unchanged.
"""

from __future__ import annotations

import hashlib

LEAD_FRACTION_MAX = 0.5
"""The largest share of the gap before a cell that the user spends working on it (uniform from 0)."""
LEAD_CAP_S = 120.0
"""The longest lead: the user's typing and reading time before a run, whatever the gap."""
SPURIOUS_SHARE = 0.25
"""The share of gaps in which the user also types without running anything (a pre-start for nothing)."""


def _uniform(*key: object) -> float:
    digest = hashlib.blake2b("\0".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def lead_s(session_id: str, index: int, gap_s: float, scale: float = 1.0) -> float:
    """Seconds before its submit that the user starts working on cell ``index`` of ``session_id``, given the
    ``gap_s`` before it; never more than the gap, 0 when ``scale`` is 0."""
    if scale <= 0 or gap_s <= 0:
        return 0.0
    return min(gap_s, scale * min(LEAD_CAP_S, _uniform(session_id, index) * LEAD_FRACTION_MAX * gap_s))


def spurious_at_s(session_id: str, index: int, gap_s: float, lead: float, scale: float = 1.0) -> float | None:
    """Seconds into the gap before cell ``index`` at which the user types without running anything, or None
    (in ``1 - SPURIOUS_SHARE`` of the gaps, when ``scale`` is 0, or when the lead fills the gap)."""
    room = gap_s - lead
    if scale <= 0 or room <= 0 or _uniform(session_id, index, "spurious") >= SPURIOUS_SHARE:
        return None
    return room * _uniform(session_id, index, "when")
