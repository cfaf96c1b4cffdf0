"""Snapshots are private to their user and never follow a private data class to the public member."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from mlp_kernel.snapshot import SnapshotError, SnapshotStore, snapshot_allowed
from tests.ci import require_root

from .conftest import KernelFactory, shutdown
from .helpers import restore_into, take_snapshot

PRIVATE = frozenset({"phi", "restricted"})


async def _alice_snapshot(kernels: KernelFactory, store: SnapshotStore, kernel_id: str = "k1") -> Path:
    kernel = await kernels()
    await kernel.run("secret = 'alice-only'\n")
    path = store.path_for(kernel_id)
    await take_snapshot(kernel, path, user="alice")
    await shutdown(kernel)
    return path


async def test_another_users_snapshot_is_refused(kernels: KernelFactory, tmp_path: Path) -> None:
    path = await _alice_snapshot(kernels, SnapshotStore(tmp_path, user="alice"))
    bob = await kernels()
    with pytest.raises(SnapshotError, match="belongs to another user"):
        await restore_into(bob, path, user="bob")
    assert await bob.value("'secret' in globals()") is False


async def test_stores_of_different_users_never_share_a_directory(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    alice = SnapshotStore(tmp_path, user="alice")
    bob = SnapshotStore(tmp_path, user="bob")
    await _alice_snapshot(kernels, alice)
    assert alice.exists("k1")
    assert not bob.exists("k1")
    assert bob.path_for("k1") != alice.path_for("k1")
    assert not bob.path_for("k1").exists()


async def test_snapshot_files_are_private_to_the_owner(kernels: KernelFactory, tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "root", user="alice")
    path = await _alice_snapshot(kernels, store)
    for directory in (tmp_path / "root", store.user_dir, path, *path.glob("data-*")):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    files = [p for p in path.rglob("*") if p.is_file()]
    assert files
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert json.loads((path / "manifest.json").read_text())["owner"] == "alice"


async def test_a_snapshot_others_can_write_to_is_refused(kernels: KernelFactory, tmp_path: Path) -> None:
    path = await _alice_snapshot(kernels, SnapshotStore(tmp_path, user="alice"))
    os.chmod(path / "manifest.json", 0o666)
    kernel = await kernels()
    with pytest.raises(SnapshotError, match="can be written by other users"):
        await restore_into(kernel, path, user="alice")


async def test_a_snapshot_file_owned_by_another_uid_is_refused(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    require_root("chown to another uid needs root")
    path = await _alice_snapshot(kernels, SnapshotStore(tmp_path, user="alice"))
    os.chown(path / "manifest.json", 12345, 12345)  # mode stays 0600: the mode check alone passes it
    kernel = await kernels()
    with pytest.raises(SnapshotError, match="belongs to uid 12345"):
        await restore_into(kernel, path, user="alice")


def test_the_owner_check_compares_the_files_uid_with_the_kernels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlp_kernel.snapshot import agent

    private = tmp_path / "manifest.json"
    private.write_text("{}")
    os.chmod(private, 0o600)
    if os.geteuid() == 0:  # root-owned files are accepted (root could write any file): use another owner
        os.chown(private, 4242, 4242)
    owner = private.stat().st_uid
    monkeypatch.setattr(agent.os, "geteuid", lambda: owner)
    agent._check_private(str(private))
    monkeypatch.setattr(agent.os, "geteuid", lambda: owner + 1)
    with pytest.raises(PermissionError, match=f"belongs to uid {owner}"):
        agent._check_private(str(private))


async def test_a_manifest_pointing_outside_the_snapshot_is_refused(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    path = await _alice_snapshot(kernels, SnapshotStore(tmp_path, user="alice"))
    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["entries"]:
        entry["file"] = "../../../../etc/passwd"
    manifest_path.write_text(json.dumps(manifest))
    kernel = await kernels()
    report = await restore_into(kernel, path, user="alice")
    assert report.saved == []
    assert report.skipped["secret"].startswith(
        "could not be restored: PermissionError: manifest names an invalid"
    )


def test_private_data_class_is_never_carried_to_a_public_member() -> None:
    allowed, reason = snapshot_allowed("phi", member_public=True, private_classes=PRIVATE)
    assert not allowed
    assert "must stay on the private cluster" in reason and "starts fresh" in reason


def test_private_data_class_match_ignores_case_and_spaces() -> None:
    assert snapshot_allowed(" PHI ", member_public=True, private_classes=PRIVATE)[0] is False
    assert snapshot_allowed("phi", member_public=True, private_classes=frozenset({"PHI"}))[0] is False


def test_private_data_class_is_carried_within_the_private_member() -> None:
    assert snapshot_allowed("phi", member_public=False, private_classes=PRIVATE) == (
        True,
        "the member is private",
    )


def test_other_data_classes_may_go_public() -> None:
    assert snapshot_allowed("public", member_public=True, private_classes=PRIVATE)[0] is True
    assert snapshot_allowed(None, member_public=True, private_classes=PRIVATE)[0] is True
