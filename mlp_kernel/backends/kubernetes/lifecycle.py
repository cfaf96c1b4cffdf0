"""From what the API shows about a launching kernel pod to the ``LaunchEvent``s the user sees.

``LaunchTracker`` is fed everything the watches see (the pod, its Kueue Workload, its core Events, queue
positions) and answers with the event that describes the launch now: queued (LocalQueue, position, ETA, why
from the Workload's ``QuotaReserved`` condition), admitted (flavor), scheduled (node), pulling (image, with
the kubelet's message), starting. It raises ``LaunchError`` for launches that cannot succeed (container
failed, image cannot be pulled, pod deleted) and for waits that exceed their timeout, each with a message that
says what happened, why and what to do. Pure: no I/O and no clock of its own (``now`` is passed in), so the
whole state machine is testable from recorded objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...placement.units import format_duration
from ..base import LaunchError, LaunchEvent, Phase
from . import names
from .exits import classify_exit, kernel_status, terminated
from .queue import QueuePosition, WorkloadState

# Container waiting reasons that end a launch once they persisted for ``Timeouts.stuck_s``. The kubelet
# retries them all, and some clear on their own (a Secret volume mounted a moment after the pod was
# scheduled, a registry hiccup), so they are not fatal at first sight; a typo in an image name never clears.
STUCK_WAITING = {
    "ErrImagePull": "the image cannot be pulled",
    "ImagePullBackOff": "the image cannot be pulled",
    "InvalidImageName": "the image name is invalid",
    "CreateContainerConfigError": "the container configuration is invalid",
    "CreateContainerError": "the container could not be created",
}


@dataclass(frozen=True)
class Timeouts:
    """How long each wait of a launch may take before it fails with a clear message (seconds)."""

    queued_s: float = 1800.0  # waiting for Kueue quota (default: the policy's launch_timeout)
    scheduling_s: float = 300.0  # admitted, waiting for kube-scheduler to find a node
    pulling_s: float = 900.0  # scheduled, image pull and container start
    connecting_s: float = 120.0  # container running, kernel ports not answering yet
    stuck_s: float = 60.0  # a container waiting reason in STUCK_WAITING (image pull errors, ...)


@dataclass
class LaunchTracker:
    """The state of one launch, and the event that describes it."""

    pod_name: str
    local_queue: str
    flavor: str
    where: str  # "silver on private cluster"
    expected_wait_s: float | None
    waited_before_s: float
    started: float
    timeouts: Timeouts = field(default_factory=Timeouts)
    pod: dict[str, Any] | None = None
    workload: WorkloadState | None = None
    position: QueuePosition | None = None
    pull_message: str = ""
    pulled: bool = False
    deleted: bool = False
    last: tuple[Phase, str] | None = None
    phase_since: float = 0.0
    stuck_since: float | None = None

    # --- inputs -----------------------------------------------------------------------------------------
    def on_pod(self, pod: dict[str, Any]) -> None:
        self.pod = pod

    def on_pod_deleted(self, pod: dict[str, Any] | None) -> None:
        if pod:
            self.pod = pod
        self.deleted = True

    def on_workload(self, state: WorkloadState) -> None:
        self.workload = state

    def on_position(self, position: QueuePosition | None) -> None:
        self.position = position

    def on_event(self, event: dict[str, Any]) -> None:
        reason = event.get("reason")
        message = str(event.get("message") or "")
        if not str((event.get("involvedObject") or {}).get("fieldPath") or "").startswith("spec.containers"):
            return  # not about a container (Kueue, for one, reports admission as reason "Started" on the pod)
        if reason == "Pulling":
            self.pull_message = message
        elif reason in ("Pulled", "Created", "Started"):
            self.pulled = True
            if reason == "Pulled":
                self.pull_message = message

    # --- state ------------------------------------------------------------------------------------------
    @property
    def uid(self) -> str | None:
        return (self.pod or {}).get("metadata", {}).get("uid")

    def gated(self) -> bool:
        gates = (self.pod or {}).get("spec", {}).get("schedulingGates") or []
        return any(g.get("name") == names.KUEUE_GATE for g in gates)

    def running(self) -> bool:
        """The kernel container runs and the pod has an IP: time to connect."""
        pod = self.pod or {}
        status = kernel_status(pod) or {}
        return (
            pod.get("status", {}).get("phase") == "Running"
            and bool(pod["status"].get("podIP"))
            and "running" in (status.get("state") or {})
        )

    def waited_s(self, now: float) -> float:
        return self.waited_before_s + max(0.0, now - self.started)

    def _queued(self, now: float) -> tuple[str, dict[str, Any]]:
        wl = self.workload
        waited = self.waited_s(now)
        eta = None if self.expected_wait_s is None else max(0.0, self.expected_wait_s - waited)
        parts = [f"Queued for {self.flavor} (LocalQueue {self.local_queue})"]
        if self.position and self.position.in_local_queue:
            parts.append(f"position {self.position.in_local_queue}")
        if eta is not None:
            parts.append(f"ETA ~{format_duration(eta)}")
        if waited >= 60:  # whole minutes: the message (so the event) changes once a minute, not every tick
            parts.append(f"waiting {format_duration(waited // 60 * 60)}")
        text = ", ".join(parts)
        if wl and wl.reason:
            text += f" ({wl.reason}" + (f": {wl.message}" if wl.message else "") + ")"
        detail = {
            "local_queue": self.local_queue,
            "cluster_queue": wl.cluster_queue if wl else None,
            "position": self.position.in_local_queue if self.position else None,
            "position_in_cluster_queue": self.position.in_cluster_queue if self.position else None,
            "eta_s": eta,
            "waited_s": waited,
            "reason": wl.reason if wl else "",
            "workload": wl.name if wl else None,
        }
        return text, detail

    def _fail_if_broken(self, now: float) -> None:
        pod = self.pod or {}
        if self.deleted:
            info = classify_exit(pod, self.workload, self.where)
            raise LaunchError(f"The GPU kernel pod was removed before the kernel started. {info.message}")
        phase = pod.get("status", {}).get("phase")
        term = terminated(pod)
        if phase in ("Failed", "Succeeded") or term:
            info = classify_exit(pod, self.workload, self.where)
            raise LaunchError(f"The GPU kernel failed to start. {info.message}")
        waiting = ((kernel_status(pod) or {}).get("state") or {}).get("waiting") or {}
        why = STUCK_WAITING.get(str(waiting.get("reason")))
        if not why:
            self.stuck_since = None
            return
        self.stuck_since = now if self.stuck_since is None else self.stuck_since
        if now - self.stuck_since > self.timeouts.stuck_s:
            raise LaunchError(
                f"The GPU kernel cannot start on {self.where}: {why} ({waiting.get('reason')}: "
                f"{waiting.get('message') or 'no detail'}). Ask your admin to check the image in the "
                "kernelspec's pod template (mlp-kernel render shows it)."
            )

    def current(self, now: float) -> LaunchEvent | None:
        """The event that describes the launch now; raises ``LaunchError`` when it cannot succeed."""
        if self.pod is None:
            return None
        self._fail_if_broken(now)
        pod = self.pod
        node = pod.get("spec", {}).get("nodeName")
        flavor = (self.workload.flavor if self.workload else None) or self.flavor
        if self.running():
            return LaunchEvent(
                Phase.STARTING,
                f"Kernel container running on {node} ({self.where}); connecting",
                {"node": node, "pod_ip": pod["status"]["podIP"]},
            )
        if node:
            waiting = ((kernel_status(pod) or {}).get("state") or {}).get("waiting") or {}
            reason = str(waiting.get("reason") or "")
            quiet = ("", "ContainerCreating", "PodInitializing")
            note = "" if reason in quiet else f" (waiting: {reason})"
            detail = {"node": node, "message": self.pull_message, "waiting": reason or None}
            if self.pull_message and not self.pulled:
                return LaunchEvent(Phase.PULLING, f"On node {node}: {self.pull_message}{note}", detail)
            if self.pulled:
                text = f"On node {node}: image ready, starting the kernel{note}"
                return LaunchEvent(Phase.STARTING, text, detail)
            return LaunchEvent(Phase.SCHEDULED, f"Scheduled on node {node} ({flavor}){note}", detail)
        if self.gated() and not (self.workload and self.workload.quota_reserved):
            text, detail = self._queued(now)
            return LaunchEvent(Phase.QUEUED, text, detail)
        unschedulable = ""
        for c in pod.get("status", {}).get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("message"):
                unschedulable = f"; scheduler: {c['message']}"
        return LaunchEvent(
            Phase.ADMITTED, f"Admitted to {flavor}; waiting for a node{unschedulable}", {"flavor": flavor}
        )

    def step(self, now: float) -> LaunchEvent | None:
        """The current event if it differs from the last one returned (phase or message), else None;
        raises ``LaunchError`` when the current phase has waited longer than its timeout."""
        event = self.current(now)
        if event is None:
            return None
        key = (event.phase, event.message)
        if self.last is None or self.last[0] != event.phase:
            self.phase_since = now
        changed = key != self.last
        self.last = key
        self._check_timeout(event.phase, now)
        return event if changed else None

    def _check_timeout(self, phase: Phase, now: float) -> None:
        spent = now - self.phase_since
        if phase == Phase.QUEUED and self.waited_s(now) > self.timeouts.queued_s:
            raise LaunchError(
                f"No GPU became free on {self.where} within {format_duration(self.timeouts.queued_s)} "
                f"(still queued in {self.local_queue}). The request was withdrawn; run the cell again later, "
                "or allow other pools with %gpu burst=on budget=flex."
            )
        if phase == Phase.ADMITTED and spent > self.timeouts.scheduling_s:
            raise LaunchError(
                f"Kueue admitted the GPU kernel on {self.where}, but no node took it within "
                f"{format_duration(self.timeouts.scheduling_s)}. "
                "The node pool may be short of nodes; try again, or ask your admin to check the pool."
            )
        if phase in (Phase.SCHEDULED, Phase.PULLING) and spent > self.timeouts.pulling_s:
            raise LaunchError(
                f"The GPU kernel's image did not start on {self.where} within "
                f"{format_duration(self.timeouts.pulling_s)} ({self.pull_message or 'no pull progress'}). "
                "Large images take long on a cold node; try again, or ask your admin to pre-pull the image."
            )
        if phase == Phase.STARTING and spent > self.timeouts.connecting_s:
            raise LaunchError(
                f"The GPU kernel container on {self.where} is running but its kernel did not answer within "
                f"{format_duration(self.timeouts.connecting_s)}. The image may lack ipykernel, or a "
                "NetworkPolicy blocks the kernel ports (docs/samples/networkpolicy.yaml)."
            )
