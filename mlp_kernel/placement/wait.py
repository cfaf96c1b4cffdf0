"""Expected wait in a Kueue queue, and how sure we are of it.

Model (documented in ``docs/placement.md``): a request at 1-based position ``p`` in a queue that admits ``r``
workloads per second waits about ``p / r`` seconds. ``p`` is the request's own position when the visibility
API reports it, else ``pending + 1`` (it joins behind everyone). ``r`` is the admission rate observed over a
recent window (from Workloads' ``QuotaReserved``/``Admitted`` transitions). Without an observed rate we assume
each GPU of the flavor turns over once per ``ASSUMED_HOLD_S`` and call the result low confidence; such a guess
is shown to users but never by itself triggers a burst (it must not spend money on a guess).

Confidence: ``high`` = observed rate and a reported position; ``medium`` = observed rate, position estimated
from the pending count; ``low`` = no observed rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .state import FlavorState

Confidence = Literal["low", "medium", "high"]

ASSUMED_HOLD_S = 3600.0
"""Assumed time one GPU stays held by a kernel when no admission rate has been observed."""


@dataclass(frozen=True)
class WaitEstimate:
    seconds: float
    position: int
    rate_per_s: float | None
    confidence: Confidence
    basis: str

    def to_inputs(self) -> dict[str, Any]:
        return {
            "expected_wait_s": round(self.seconds, 1),
            "position": self.position,
            "admission_rate_per_min": round(self.rate_per_s * 60, 3) if self.rate_per_s else None,
            "confidence": self.confidence,
            "basis": self.basis,
        }


def expected_wait(fs: FlavorState, gpu_count: int) -> WaitEstimate:
    """How long a request for ``gpu_count`` GPUs would wait on this flavor."""
    if fs.free_gpus >= gpu_count and fs.queue_position is None:
        return WaitEstimate(0.0, 0, fs.admission_rate_per_s, "high", "quota free now")
    position = fs.queue_position if fs.queue_position is not None else fs.pending + 1
    position = max(1, position)
    rate = fs.admission_rate_per_s
    if rate is not None and rate > 0:
        if fs.queue_position is not None:
            return WaitEstimate(position / rate, position, rate, "high", "reported position / observed rate")
        return WaitEstimate(position / rate, position, rate, "medium", "pending+1 / observed rate")
    assumed = max(1, fs.nominal_gpus) / (ASSUMED_HOLD_S * max(1, gpu_count))
    return WaitEstimate(
        position / assumed,
        position,
        None,
        "low",
        f"no admissions observed; assumed each GPU turns over every {int(ASSUMED_HOLD_S / 60)} min",
    )
