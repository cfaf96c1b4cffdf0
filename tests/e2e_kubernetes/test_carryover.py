"""Variables survive a GPU release on the Kubernetes backend, through the per-user snapshot volume.

A real GPU (auto) kernel (provisioner, gateway process, Kubernetes backend) on the test members; the policy
puts snapshots on a ReadWriteMany claim of the private member (``snapshot.storage: {kind: volume}``). Kernel
pods are real ipykernel processes; the test kubelet gives every pod that mounts the claim the same host
directory, so what the first pod saved is what the next pod restores.
"""

from __future__ import annotations

import asyncio
import json
import stat
from typing import Any

import pytest

from tests.gateway.conftest import text_of

from .conftest import SNAPSHOT_CLAIM, create_claim, kernel_pods, snapshot_dirs, volume_policy, wait_until
from .test_queue_burst import fill_private

pytestmark = pytest.mark.timeout(240)

DEFINE = """\
import numpy as np
weights = np.arange(12.0).reshape(3, 4)
labels = {"a": 1, "b": [2, 3]}
def score(scale):
    return float(weights.sum()) * scale + labels["a"]
class Box:
    def __init__(self, v):
        self.v = v
box = Box(7)
log = open("/dev/null")
print("defined")
"""


def results(outputs: list[dict[str, Any]]) -> list[str]:
    return [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"]


def claim_mount(pod: dict[str, Any]) -> tuple[str, str] | None:
    """(claim name, mount path) of the pod's snapshot volume, or None when it mounts no claim."""
    spec = pod["spec"]
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in spec.get("volumes") or []
        if "persistentVolumeClaim" in v
    }
    for mount in spec["containers"][0].get("volumeMounts") or []:
        if mount["name"] in claims:
            return claims[mount["name"]], mount["mountPath"]
    return None


async def test_variables_and_a_function_survive_an_idle_release_through_the_snapshot_volume(
    start_kube_kernel, kube_members
) -> None:
    private = kube_members.private
    create_claim(private)
    k = await start_kube_kernel(policy=volume_policy(private))
    reply, outputs = await k.run("%gpu idle=3s\n" + DEFINE, timeout=150)
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok" and "defined" in text, text
    [first] = kernel_pods(private, k.kernel_id)
    mount_path = private.kubelet.claims.view_path("/home/jovyan/.mlp-kernel/snapshots")
    assert claim_mount(first) == (SNAPSHOT_CLAIM, mount_path)

    await wait_until(lambda: not kernel_pods(private, k.kernel_id), 90)  # idle release: snapshot, then delete
    [saved] = await wait_until(lambda: snapshot_dirs(private, k.kernel_id), 10)
    manifest = json.loads((saved / "manifest.json").read_text())
    assert {"np", "weights", "labels", "score", "Box", "box"} <= {e["name"] for e in manifest["entries"]}
    assert "log" in manifest["skipped"]
    assert stat.S_IMODE(saved.stat().st_mode) == 0o700
    assert stat.S_IMODE((saved / "manifest.json").stat().st_mode) == 0o600

    reply, outputs = await k.run("print(score(2), weights.shape, labels['b'], box.v, isinstance(box, Box))")
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok", text
    assert "133.0 (3, 4) [2, 3] 7 True" in text, text
    [second] = kernel_pods(private, k.kernel_id)
    assert second["metadata"]["name"] != first["metadata"]["name"], "a new pod, not the released one"
    assert claim_mount(second) == (SNAPSHOT_CLAIM, mount_path)
    assert "Saved 6 variables" in text and "not saved: log (open file)" in text, text
    assert "Restored 6 variables" in text, text

    # The restored function sees the live namespace, and the kernel keeps working on the new pod.
    _, outputs = await k.run("weights = weights * 0\nscore(5)")
    assert results(outputs) == ["1.0"], text_of(outputs)


async def test_shutdown_deletes_the_snapshot_on_the_volume(start_kube_kernel, kube_members) -> None:
    """No GPU kernel runs after a release: the gateway deletes through its own view of the volume."""
    private = kube_members.private
    create_claim(private)
    k = await start_kube_kernel(policy=volume_policy(private, gateway_sees_volume=True))
    reply, outputs = await k.run("x = list(range(1000))", timeout=150)
    assert reply["content"]["status"] == "ok", text_of(outputs)
    reply, outputs = await k.run("%gpu release")
    assert "Saved 1 variable" in text_of(outputs), text_of(outputs)
    assert snapshot_dirs(private, k.kernel_id)

    k.kc.stop_channels()
    await k.km.shutdown_kernel(now=False)
    await wait_until(
        lambda: not snapshot_dirs(private, k.kernel_id), 30, seen=lambda: snapshot_dirs(private, k.kernel_id)
    )


async def test_forget_after_a_release_deletes_the_snapshot_on_the_volume(
    start_kube_kernel, kube_members
) -> None:
    private = kube_members.private
    create_claim(private)
    k = await start_kube_kernel(policy=volume_policy(private, gateway_sees_volume=True))
    reply, outputs = await k.run("x = 1", timeout=150)
    assert reply["content"]["status"] == "ok", text_of(outputs)
    await k.run("%gpu release")
    [saved] = snapshot_dirs(private, k.kernel_id)
    _, outputs = await k.run("%gpu forget")
    assert "dropped" in text_of(outputs), text_of(outputs)
    assert not (saved / "manifest.json").exists(), "the user was told the saved variables were dropped"


async def test_forget_without_a_view_of_the_volume_deletes_through_the_next_kernel(
    start_kube_kernel, kube_members
) -> None:
    """The gateway cannot reach the volume and no kernel runs: the user is told, and the next kernel deletes
    the files before anything else (and restores nothing)."""
    private = kube_members.private
    create_claim(private)
    k = await start_kube_kernel(policy=volume_policy(private))
    reply, outputs = await k.run("x = 1", timeout=150)
    assert reply["content"]["status"] == "ok", text_of(outputs)
    await k.run("%gpu release")
    [saved] = snapshot_dirs(private, k.kernel_id)
    _, outputs = await k.run("%gpu forget")
    assert "deletes their files on the volume first" in text_of(outputs), text_of(outputs)
    reply, outputs = await k.run("print('x' in globals())", timeout=150)
    assert reply["content"]["status"] == "ok" and "False" in text_of(outputs), text_of(outputs)
    assert "Restored" not in text_of(outputs)
    assert not (saved / "manifest.json").exists()


async def test_a_kernel_that_bursts_starts_fresh_and_sensitive_variables_are_never_saved_on_public(
    start_kube_kernel, kube_members
) -> None:
    private, public = kube_members.private, kube_members.public
    create_claim(private)
    k = await start_kube_kernel(policy=volume_policy(private), defaults={"burst": "on", "budget": "flex"})
    reply, outputs = await k.run("secret_rows = [1, 2, 3]", timeout=150)
    assert reply["content"]["status"] == "ok", text_of(outputs)
    _, outputs = await k.run("%gpu release")
    assert "Saved 1 variable" in text_of(outputs), text_of(outputs)
    assert snapshot_dirs(private, k.kernel_id)

    # Private is full: the next cell bursts to the public member, which never mounts the private volume.
    fill_private(private)
    reply, outputs = await k.run("'secret_rows' in globals()", timeout=150)
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok" and "Burst to public/gold" in text, text
    assert results(outputs) == ["False"], text
    assert "Saved variables were not restored" in text and "private member" in text, text
    [pod] = kernel_pods(public, k.kernel_id)
    assert claim_mount(pod) is None, pod["spec"]["volumes"]
    assert not any("persistentVolumeClaim" in v for v in pod["spec"]["volumes"]), pod["spec"]["volumes"]

    # On public, the notebook is marked sensitive: the kernel moves back to private, nothing is saved on the
    # way, and the user is told the kernel starts fresh.
    _, outputs = await k.run("token = 'do-not-carry'", timeout=60)
    for name in ("blocker-bronze", "blocker-silver"):
        private.delete("v1", "Pod", name, "jupyter")
    reply, outputs = await k.run("%gpu data=sensitive", timeout=60)
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok", text
    assert "must stay on the private cluster" in text and "starts fresh" in text, text
    assert not kernel_pods(public, k.kernel_id)
    reply, outputs = await k.run("'token' in globals()", timeout=150)
    text = text_of(outputs)
    assert results(outputs) == ["False"], text
    assert "Running on private" in text, text
    on_volume = [
        e["name"]
        for d in snapshot_dirs(private, k.kernel_id)
        if (d / "manifest.json").exists()
        for e in json.loads((d / "manifest.json").read_text())["entries"]
    ]
    assert "token" not in on_volume, "the public kernel's variables never reached the volume"


async def test_a_missing_snapshot_claim_is_named_in_the_cell_and_the_kernel_starts_once_it_exists(
    start_kube_kernel, kube_members
) -> None:
    """The configured claim does not exist: the pod cannot be scheduled, and the user reads why."""
    private = kube_members.private
    k = await start_kube_kernel(policy=volume_policy(private))
    outputs: list[dict[str, Any]] = []
    cell = asyncio.ensure_future(
        k.kc.execute_interactive("print('ran', 6 * 7)", output_hook=outputs.append, timeout=200)
    )
    await wait_until(
        lambda: f'persistentvolumeclaim "{SNAPSHOT_CLAIM}" not found' in text_of(outputs),
        90,
        seen=lambda: text_of(outputs),
    )
    assert not cell.done()
    create_claim(private)
    reply = await asyncio.wait_for(cell, 120)
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok" and "ran 42" in text, text


async def test_interrupt_while_the_pod_waits_for_its_claim_withdraws_the_pod(
    start_kube_kernel, kube_members
) -> None:
    private = kube_members.private
    k = await start_kube_kernel(policy=volume_policy(private))
    outputs: list[dict[str, Any]] = []
    cell = asyncio.ensure_future(
        k.kc.execute_interactive("print('ran')", output_hook=outputs.append, timeout=200)
    )
    await wait_until(
        lambda: f'persistentvolumeclaim "{SNAPSHOT_CLAIM}" not found' in text_of(outputs),
        90,
        seen=lambda: text_of(outputs),
    )
    await k.km.interrupt_kernel()
    reply = await asyncio.wait_for(cell, 60)
    assert reply["content"]["status"] == "error" and "ran" not in text_of(outputs), text_of(outputs)
    await wait_until(lambda: not kernel_pods(private, k.kernel_id), 30)  # its Kueue quota is freed with it
