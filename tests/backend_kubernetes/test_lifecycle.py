"""The launch state machine and exit explanations, from recorded object states (no server needed)."""

from __future__ import annotations

import pytest

from mlp_kernel.backends.base import TAIL_CHARS, TAIL_LINES, LaunchError, Phase
from mlp_kernel.backends.kubernetes.exits import classify_exit
from mlp_kernel.backends.kubernetes.lifecycle import LaunchTracker, Timeouts
from mlp_kernel.backends.kubernetes.queue import QueuePosition, WorkloadState

GATE = [{"name": "kueue.x-k8s.io/admission"}]


def pod(
    *,
    gates=None,
    node=None,
    phase="Pending",
    waiting=None,
    running=False,
    terminated=None,
    ip=None,
    conditions=None,
    deleting=False,
) -> dict:
    state: dict = {}
    if waiting:
        state["waiting"] = {"reason": waiting, "message": f"{waiting} details"}
    if running:
        state["running"] = {"startedAt": "2026-11-28T10:00:00Z"}
    if terminated:
        state["terminated"] = terminated
    meta = {"name": "p", "uid": "u1"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-28T10:00:00Z"
    return {
        "metadata": meta,
        "spec": {
            "schedulingGates": gates or [],
            "nodeName": node,
            "containers": [{"name": "kernel", "resources": {"limits": {"memory": "16Gi"}}}],
        },
        "status": {
            "phase": phase,
            "podIP": ip,
            "conditions": conditions or [],
            "containerStatuses": [{"name": "kernel", "state": state}] if state else [],
        },
    }


def workload(
    reserved: str = "False",
    reason: str = "Pending",
    message: str = "",
    evicted: str | None = None,
    evict_message: str = "",
    flavor: str | None = None,
) -> WorkloadState:
    conditions = [{"type": "QuotaReserved", "status": reserved, "reason": reason, "message": message}]
    if evicted:
        conditions.append({"type": "Evicted", "status": "True", "reason": evicted, "message": evict_message})
    status: dict = {"conditions": conditions}
    if flavor:
        status["admission"] = {
            "clusterQueue": "gpu-private",
            "podSetAssignments": [{"name": "main", "flavors": {"nvidia.com/gpu": flavor}}],
        }
    return WorkloadState.of({"metadata": {"name": "pod-p-1"}, "status": status})


def tracker(**kw) -> LaunchTracker:
    args = dict(
        pod_name="p",
        local_queue="kernels",
        flavor="silver",
        where="silver on private",
        expected_wait_s=300.0,
        waited_before_s=0.0,
        started=0.0,
        timeouts=Timeouts(),
    )
    args.update(kw)
    return LaunchTracker(**args)


def test_gated_pod_is_queued_with_reason_position_and_eta() -> None:
    t = tracker()
    t.on_pod(pod(gates=GATE))
    t.on_workload(workload(reason="WaitingForQuota", message="insufficient unused quota for nvidia.com/gpu"))
    t.on_position(QueuePosition(3, 5))
    event = t.step(now=120.0)
    assert event.phase == Phase.QUEUED
    assert event.message.startswith(
        "Queued for silver (LocalQueue kernels), position 3, ETA ~3 min, waiting 2 min"
    )
    assert "WaitingForQuota: insufficient unused quota" in event.message
    assert event.detail["position_in_cluster_queue"] == 5 and event.detail["eta_s"] == 180.0


def test_phases_follow_admission_scheduling_pulling_and_running() -> None:
    t = tracker()
    t.on_pod(pod(gates=GATE))
    assert t.step(0).phase == Phase.QUEUED
    t.on_workload(workload(reserved="True", reason="QuotaReserved", flavor="silver"))
    t.on_pod(pod())
    assert t.step(1).phase == Phase.ADMITTED
    t.on_pod(pod(node="gpu-1"))
    assert t.step(2).phase == Phase.SCHEDULED
    container = {"involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{kernel}"}}
    t.on_event(
        {
            "reason": "Started",
            "message": "Admitted by clusterQueue gpu-private",
            "involvedObject": {"kind": "Pod", "name": "p"},
        }
    )  # Kueue's event, not the container's
    assert t.step(2.5) is None
    t.on_event({"reason": "Pulling", "message": 'Pulling image "pytorch:cuda12"', **container})
    event = t.step(3)
    assert event.phase == Phase.PULLING and "pytorch:cuda12" in event.message
    t.on_pod(pod(node="gpu-1", phase="Running", running=True, ip="10.0.0.5"))
    event = t.step(4)
    assert event.phase == Phase.STARTING and t.running()
    assert t.step(5) is None  # unchanged: no duplicate event


def test_image_that_cannot_be_pulled_fails_after_the_stuck_timeout() -> None:
    t = tracker(timeouts=Timeouts(stuck_s=60))
    t.on_pod(pod(node="gpu-1", waiting="ImagePullBackOff"))
    t.step(0)
    t.step(30)
    with pytest.raises(LaunchError, match="image cannot be pulled.*ImagePullBackOff"):
        t.step(61)


def test_a_mount_error_that_clears_does_not_fail() -> None:
    t = tracker(timeouts=Timeouts(stuck_s=60))
    t.on_pod(pod(node="gpu-1", waiting="CreateContainerConfigError"))
    t.step(0)
    t.on_pod(pod(node="gpu-1", waiting="ContainerCreating"))
    t.step(50)
    t.on_pod(pod(node="gpu-1", waiting="CreateContainerConfigError"))
    assert t.step(100) is not None  # the clock restarted when it cleared


def test_admitted_but_never_scheduled_times_out_with_advice() -> None:
    t = tracker(timeouts=Timeouts(scheduling_s=300))
    t.on_pod(
        pod(
            conditions=[
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                }
            ]
        )
    )
    event = t.step(0)
    assert event.phase == Phase.ADMITTED and "Insufficient nvidia.com/gpu" in event.message
    with pytest.raises(LaunchError, match="no node took it within 5 min"):
        t.step(301)


def test_container_that_exits_during_start_fails_the_launch() -> None:
    t = tracker()
    t.on_pod(pod(node="n", phase="Failed", terminated={"exitCode": 1, "reason": "Error"}))
    with pytest.raises(LaunchError, match="failed to start.*exited with code 1"):
        t.step(0)


def test_a_failed_start_quotes_the_end_of_the_kernel_output() -> None:
    t = tracker()
    tb = "Traceback (most recent call last):\n" + "  frame\n" * 40
    tb += "ModuleNotFoundError: No module named 'ipykernel'"
    t.on_pod(pod(node="n", phase="Failed", terminated={"exitCode": 1, "reason": "Error", "message": tb}))
    with pytest.raises(LaunchError) as failed:
        t.step(0)
    shown = str(failed.value)
    assert "exited with code 1" in shown and shown.endswith("No module named 'ipykernel'"), shown
    assert shown.count("frame") == TAIL_LINES - 1 and "Traceback" not in shown
    long = classify_exit(pod(terminated={"exitCode": 1, "reason": "Error", "message": "x" * 5000}), None, "w")
    assert long.message.endswith("x" * TAIL_CHARS) and "..." + "x" * TAIL_CHARS in long.message


def test_pod_deleted_while_queued_fails_the_launch() -> None:
    t = tracker()
    t.on_pod(pod(gates=GATE))
    t.step(0)
    t.on_pod_deleted(None)
    with pytest.raises(LaunchError, match="removed before the kernel started"):
        t.step(1)


def test_exit_reasons() -> None:
    preempted = workload(
        evicted="Preempted", evict_message="Preempted to accommodate a higher priority Workload"
    )
    assert classify_exit(pod(), preempted, "w").reason == "preempted"
    lost = workload(evicted="NodeFailures", evict_message="node gone")
    assert classify_exit(pod(), lost, "w").reason == "node-lost"
    oom = classify_exit(pod(terminated={"exitCode": 137, "reason": "OOMKilled"}), None, "w")
    assert oom.reason == "oomkilled" and "16Gi" in oom.message
    assert classify_exit(pod(terminated={"exitCode": 3, "reason": "Error"}), None, "w").reason == "exited"
    deleted = pod(terminated={"exitCode": 143, "reason": "Error"}, deleting=True)
    assert classify_exit(deleted, None, "w").reason == "deleted"
    evicted = pod(phase="Failed")
    evicted["status"].update(reason="Evicted", message="The node was low on resource: memory.")
    assert "low on resource" in classify_exit(evicted, None, "w").message
    stopped = pod(
        conditions=[
            {
                "type": "TerminationTarget",
                "status": "True",
                "reason": "StoppedByKueue",
                "message": "Preempted to accommodate a workload",
            }
        ]
    )
    assert classify_exit(stopped, None, "w").reason == "preempted"
