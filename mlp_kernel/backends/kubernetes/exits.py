"""Why a kernel pod went away, told so that the user knows what happened and what to do next.

The evidence is scattered: Kueue records preemption on the Workload (``Evicted``/``Preempted`` conditions)
and on the pod (a ``TerminationTarget``/``DisruptionTarget`` condition) before deleting it; the kubelet
records ``OOMKilled`` in the container status and node-pressure evictions in ``status.reason``; the node
lifecycle controller marks pods of lost nodes. ``classify_exit`` reads all of it, in that order of
specificity, from the last state of the pod the watch saw and the Workload if it still exists. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from ..base import ExitInfo, ExitReason, with_output
from .queue import WorkloadState

NEXT = "Your variables on the GPU are lost; run the cell again to get a new GPU kernel."


def kernel_status(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The kernel container's status: the one named ``kernel``, else the first."""
    statuses = pod.get("status", {}).get("containerStatuses") or []
    for s in statuses:
        if s.get("name") == "kernel":
            return dict(s)
    return dict(statuses[0]) if statuses else None


def terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    status = kernel_status(pod) or {}
    state = status.get("state") or {}
    last = status.get("lastState") or {}
    return state.get("terminated") or last.get("terminated")


def _disruption(pod: dict[str, Any]) -> dict[str, Any] | None:
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") in ("TerminationTarget", "DisruptionTarget") and c.get("status") == "True":
            return dict(c)
    return None


def _memory_limit(pod: dict[str, Any]) -> str:
    for c in pod.get("spec", {}).get("containers") or []:
        if c.get("name") == "kernel" or len(pod["spec"]["containers"]) == 1:
            return str((c.get("resources") or {}).get("limits", {}).get("memory", "its memory limit"))
    return "its memory limit"


def classify_exit(pod: dict[str, Any] | None, workload: WorkloadState | None, where: str) -> ExitInfo:
    """The ``ExitInfo`` for a kernel pod that ended (``pod`` is its last seen state; ``where`` e.g.
    ``"silver on private"``)."""
    pod = pod or {}
    disruption = _disruption(pod) or {}
    d_reason = str(disruption.get("reason") or "")
    d_message = str(disruption.get("message") or "")
    if (workload and workload.evicted_reason == "Preempted") or "preempt" in (d_reason + d_message).lower():
        detail = (workload.evicted_message if workload and workload.evicted_message else d_message) or ""
        return ExitInfo(
            ExitReason.PREEMPTED,
            (
                f"Your GPU kernel on {where} was preempted by Kueue to make room for higher-priority work"
                + (f" ({detail.rstrip('.')})" if detail else "")
                + f". {NEXT} It may wait in the queue; "
                "%gpu burst=on budget=flex allows a public GPU if the private pools stay full."
            ),
        )
    if (
        workload
        and workload.evicted_reason == "NodeFailures"
        or d_reason in ("DeletionByTaintManager",)
        or pod.get("status", {}).get("reason") == "NodeLost"
    ):
        return ExitInfo(
            ExitReason.NODE_LOST,
            f"The node running your GPU kernel on {where} failed or became "
            f"unreachable, so the kernel is gone. {NEXT}",
        )
    if workload and workload.evicted_reason:
        return ExitInfo(
            ExitReason.EVICTED,
            f"Kueue evicted your GPU kernel on {where} ({workload.evicted_reason}: "
            f"{workload.evicted_message or 'no detail'}). {NEXT}",
        )
    term = terminated(pod)
    if term and term.get("reason") == "OOMKilled":
        return ExitInfo(
            ExitReason.OOMKILLED,
            (
                f"Your GPU kernel on {where} ran out of memory ({_memory_limit(pod)}) and was killed "
                f"(OOMKilled). {NEXT} Use less memory, or ask for more with %gpu memory=<size> "
                "(for example %gpu memory=32Gi)."
            ),
        )
    if pod.get("status", {}).get("reason") == "Evicted":
        return ExitInfo(
            ExitReason.EVICTED,
            f"The node evicted your GPU kernel on {where}: "
            f"{pod['status'].get('message') or 'node under resource pressure'}. {NEXT}",
        )
    if disruption:
        return ExitInfo(
            ExitReason.EVICTED, f"Your GPU kernel on {where} was stopped ({d_reason}: {d_message}). {NEXT}"
        )
    if term and not pod.get("metadata", {}).get("deletionTimestamp"):  # else: it ended because it was deleted
        code = term.get("exitCode")
        why = term.get("reason") or "Error"
        if code == 0:
            return ExitInfo(ExitReason.EXITED, f"The GPU kernel on {where} shut down (exit code 0). {NEXT}")
        # ``terminated.message``: the end of the log, when the pod says FallbackToLogsOnError
        return ExitInfo(
            ExitReason.EXITED,
            with_output(
                f"The GPU kernel process on {where} exited with code {code} ({why}). {NEXT}",
                str(term.get("message") or ""),
            ),
        )
    return ExitInfo(
        ExitReason.DELETED,
        f"The GPU kernel pod on {where} was deleted by someone other than this notebook "
        f"(an admin or a cleanup job). {NEXT}",
    )
