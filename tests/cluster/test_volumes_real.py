"""Claims on the real control plane: our provisioner makes the volume, the real components do the rest.

What the carry-over tests rely on, pinned without product code in the way: a claim that names no StorageClass
is given the default one by the real API server, our local-path provisioner creates a ``hostPath``
PersistentVolume for it and the real controller-manager binds the two; pods mounting the claim share that
directory; a pod whose claim is missing is held back by the real scheduler, which says why, and runs once the
claim exists; a claim in use is kept by the real ``pvc-protection`` finalizer until its pod is gone, and then
its volume is reclaimed (``Delete``). The test API binds claims at once and has no finalizer (see
docs/test-kube-api.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.kubeapi.builders import python_pod

from .members import RealMember, RealMembers
from .provisioner import STORAGE_CLASS

NS = "jupyter"


def claim(m: RealMember, name: str) -> dict[str, Any]:
    return m.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
        }
    )


def pod_with_claim(m: RealMember, name: str, claim_name: str, code: str) -> dict[str, Any]:
    pod = python_pod(
        name,
        code,
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}],
        volume_mounts=[{"name": "data", "mountPath": "/data"}],
    )
    pod["metadata"]["namespace"] = NS
    return m.create(pod)


def bound(m: RealMember, name: str) -> dict[str, Any]:
    def is_bound() -> dict[str, Any] | None:
        c = m.find("v1", "PersistentVolumeClaim", name, NS)
        return c if c and (c.get("status") or {}).get("phase") == "Bound" else None

    return m.wait_for(is_bound, 30, what=f"claim {name} Bound")


def test_a_claim_is_bound_by_the_real_binder_to_a_provisioned_volume_that_pods_share(
    real_kube_members: RealMembers,
) -> None:
    m = real_kube_members.private
    created = claim(m, "home")
    assert created["spec"]["storageClassName"] == STORAGE_CLASS, "DefaultStorageClass admission"
    c = bound(m, "home")
    uid = c["metadata"]["uid"]
    assert c["spec"]["volumeName"] == f"pvc-{uid}"
    pv = m.get("v1", "PersistentVolume", f"pvc-{uid}")
    assert pv["status"]["phase"] == "Bound" and pv["spec"]["claimRef"]["uid"] == uid
    host = Path(pv["spec"]["hostPath"]["path"])
    assert host.is_dir() and m.kubelet is not None and m.kubelet.claims.directory(NS, "home") == host

    pod_with_claim(m, "writer", "home", "open('/data/note.txt', 'w').write('from the writer')")
    assert m.wait_for_pod_phase(NS, "writer", ["Succeeded", "Failed"])["status"]["phase"] == "Succeeded"
    assert (host / "note.txt").read_text() == "from the writer"
    started = [
        e
        for e in m.list("v1", "Event", NS)
        if e["reason"] == "Started" and e["involvedObject"]["name"] == "writer"
    ]
    assert [e["involvedObject"]["kind"] for e in started] == ["Pod"], "the kubelet's events name their kind"
    pod_with_claim(m, "reader", "home", "assert open('/data/note.txt').read() == 'from the writer'")
    assert m.wait_for_pod_phase(NS, "reader", ["Succeeded", "Failed"])["status"]["phase"] == "Succeeded"


def test_a_pod_whose_claim_is_missing_waits_with_the_schedulers_reason_and_runs_once_it_exists(
    real_kube_members: RealMembers,
) -> None:
    m = real_kube_members.private
    pod_with_claim(m, "early", "later", "open('/data/ok', 'w').write('ok')")

    def unschedulable() -> str:
        pod = m.get("v1", "Pod", "early", NS)
        for c in pod.get("status", {}).get("conditions") or []:
            if c["type"] == "PodScheduled" and c["status"] == "False":
                return str(c.get("message"))
        return ""

    message = m.wait_for(unschedulable, 30, what="PodScheduled=False from the real scheduler")
    assert 'persistentvolumeclaim "later" not found' in message, message
    assert not m.get("v1", "Pod", "early", NS)["spec"].get("nodeName")
    claim(m, "later")
    assert m.wait_for_pod_phase(NS, "early", ["Succeeded", "Failed"], 60)["status"]["phase"] == "Succeeded"
    assert m.kubelet is not None and (m.kubelet.claims.directory(NS, "later") / "ok").read_text() == "ok"


def test_a_claim_in_use_is_kept_until_its_pod_is_gone_then_its_volume_is_reclaimed(
    real_kube_members: RealMembers,
) -> None:
    m = real_kube_members.private
    claim(m, "scratch")
    volume = bound(m, "scratch")["spec"]["volumeName"]
    assert m.kubelet is not None
    host = m.kubelet.claims.directory(NS, "scratch")
    pod_with_claim(m, "user", "scratch", "import time; open('/data/f', 'w').write('x'); time.sleep(300)")
    m.wait_for_pod_phase(NS, "user", "Running")

    m.delete("v1", "PersistentVolumeClaim", "scratch", NS)
    kept = m.get("v1", "PersistentVolumeClaim", "scratch", NS)
    assert kept["metadata"].get("deletionTimestamp"), kept["metadata"]
    assert "kubernetes.io/pvc-protection" in kept["metadata"]["finalizers"]
    # Running is when the pod's process started: its write may come a moment later (seen in CI under load)
    m.wait_for(lambda: (host / "f").exists(), 30, what="the pod's file on its volume")

    m.delete("v1", "Pod", "user", NS, gracePeriodSeconds="0")
    m.wait_for(lambda: m.find("v1", "PersistentVolumeClaim", "scratch", NS) is None, 30, what="claim gone")
    m.wait_for(lambda: m.find("v1", "PersistentVolume", volume) is None, 30, what="volume reclaimed")
    assert not host.exists(), "reclaim policy Delete removes the volume's data"
