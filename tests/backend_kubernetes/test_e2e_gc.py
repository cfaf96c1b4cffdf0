"""Orphans: a kernel whose gateway stopped renewing its Lease is found and deleted by `mlp-kernel gc`."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from .conftest import make_backend
from .e2e import kernel_pods, launch_all, spec
from .policies import ROOT, TEST_MEMBERS_POLICY

pytestmark = pytest.mark.timeout(240)


def gc(policy_file, kubeconfig, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mlp_kernel.cli",
            "gc",
            "--policy",
            str(policy_file),
            "--kubeconfig",
            kubeconfig,
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


async def test_gc_deletes_the_kernel_whose_lease_expired_and_keeps_the_renewed_one(
    kube_members, test_policy, tmp_path
) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(TEST_MEMBERS_POLICY)
    abandoned = make_backend(kube_members, test_policy, lease_duration_s=1)
    alive = make_backend(kube_members, test_policy, lease_duration_s=60)
    orphan = (await launch_all(abandoned, spec()))[-1].remote
    kept = (await launch_all(alive, spec()))[-1].remote
    await asyncio.sleep(2)

    dry = await asyncio.to_thread(gc, policy_file, kube_members.kubeconfig_path, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would delete private/jupyter/{orphan.handle['pod']}" in dry.stdout
    assert kept.handle["pod"] not in dry.stdout
    assert len(kernel_pods(kube_members.private, orphan.kernel_id)) == 1

    done = await asyncio.to_thread(gc, policy_file, kube_members.kubeconfig_path)
    assert done.returncode == 0, done.stderr
    assert "1 orphaned kernel pod(s) deleted" in done.stdout
    private = kube_members.private
    private.wait_for(lambda: not kernel_pods(private, orphan.kernel_id) or None, 30, what="orphan deleted")
    assert private.find("v1", "Secret", orphan.handle["secret"], "jupyter") is None
    assert len(kernel_pods(private, kept.kernel_id)) == 1
    await alive.release(kept)
    abandoned.close()
    alive.close()


async def test_renew_moves_the_lease_forward(backend, kube_members) -> None:
    remote = (await launch_all(backend, spec()))[-1].remote

    def lease() -> dict:
        return kube_members.private.find("coordination.k8s.io/v1", "Lease", remote.handle["lease"], "jupyter")

    before = lease()["spec"]["renewTime"]
    await asyncio.sleep(1.1)
    await backend.renew(remote)
    assert lease()["spec"]["renewTime"] > before
    kube_members.private.delete("coordination.k8s.io/v1", "Lease", remote.handle["lease"], "jupyter")
    await backend.renew(remote)  # a lost Lease is recreated
    assert lease()["spec"]["holderIdentity"] == backend.gateway_id
    await backend.release(remote)


async def test_list_orphans_respects_an_explicit_expiry(backend, kube_members) -> None:
    remote = (await launch_all(backend, spec()))[-1].remote
    assert await backend.list_orphans() == []  # default lease: 5 min
    await asyncio.sleep(1.5)
    [orphan] = await backend.list_orphans(expire_after_s=1)
    assert orphan.pod == remote.handle["pod"] and orphan.kernel_id == remote.kernel_id
    await backend.release(remote)


def test_gc_with_a_bad_duration_is_a_usage_error(tmp_path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(TEST_MEMBERS_POLICY)
    result = gc(policy_file, str(tmp_path / "none"), "--expire-after", "soon")
    assert result.returncode == 2 and "--expire-after" in result.stderr


def test_gc_with_an_unknown_context_fails_naming_the_member(kube_members, tmp_path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        TEST_MEMBERS_POLICY.replace("kubeconfig_context: public}", "kubeconfig_context: nope}")
    )
    result = gc(policy_file, kube_members.kubeconfig_path)
    assert result.returncode == 1
    assert "member 'public'" in result.stderr and "nope" in result.stderr
