"""The local store: one private directory per user and kernel, removed on forget and on shutdown."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from jupyter_core.paths import jupyter_data_dir

from mlp_kernel.snapshot import SnapshotStore, default_root
from mlp_kernel.snapshot.store import remove_tree, user_dirname


def _fake_snapshot(store: SnapshotStore, kernel_id: str, owner: str | None = None) -> Path:
    path = store.path_for(kernel_id)
    (path / "data-x").mkdir(parents=True, mode=0o700)
    (path / "data-x" / "0000.pkl").write_bytes(b"x" * 10)
    (path / "manifest.json").write_text(json.dumps({"owner": owner or store.user}))
    return path


def test_default_root_is_under_the_jupyter_data_dir() -> None:
    assert default_root() == Path(jupyter_data_dir()) / "mlp-kernel" / "snapshots"
    assert SnapshotStore(user="alice").root == default_root()


def test_path_for_creates_private_user_directory(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "root", user="alice")
    path = store.path_for("3f0e-kernel")
    assert path == tmp_path / "root" / "alice" / "3f0e-kernel"
    assert stat.S_IMODE(store.user_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "root").stat().st_mode) == 0o700


def test_path_for_tightens_an_existing_loose_directory(tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir(mode=0o755)
    os.chmod(tmp_path / "alice", 0o755)
    SnapshotStore(tmp_path, user="alice").path_for("k")
    assert stat.S_IMODE((tmp_path / "alice").stat().st_mode) == 0o700


@pytest.mark.parametrize("kernel_id", ["../other", "a/b", "", ".hidden", "x" * 200])
def test_kernel_ids_cannot_escape_the_user_directory(tmp_path: Path, kernel_id: str) -> None:
    with pytest.raises(ValueError, match="invalid kernel id"):
        SnapshotStore(tmp_path, user="alice").path_for(kernel_id)


@pytest.mark.parametrize(
    ("user", "dirname"),
    [
        ("alice", "alice"),
        ("alice@example.com", "alice@example.com"),
        ("../bob", "%2E.%2Fbob"),
        (".hidden", "%2Ehidden"),
        ("a/b", "a%2Fb"),
        ("é", "%C3%A9"),
    ],
)
def test_user_names_become_safe_directory_names(user: str, dirname: str) -> None:
    assert user_dirname(user) == dirname


def test_exists_requires_a_manifest_owned_by_the_user(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, user="alice")
    assert not store.exists("k")
    _fake_snapshot(store, "k")
    assert store.exists("k")
    _fake_snapshot(store, "k2", owner="mallory")
    assert not store.exists("k2")


def test_forget_drops_the_saved_state(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, user="alice")
    _fake_snapshot(store, "k")
    assert store.size("k") > 10
    store.forget("k")
    assert not store.exists("k") and not (store.user_dir / "k").exists()
    store.forget("k")  # forgetting twice is fine


def test_set_aside_makes_a_used_snapshot_unrestorable_at_once_and_its_files_go_later(tmp_path: Path) -> None:
    """The gateway deletes a restored snapshot's data in a thread (off the first cell's path): the path is
    free and nothing restorable is left before that; what a crash left is pruned as an old kernel id."""
    store = SnapshotStore(tmp_path, user="alice")
    _fake_snapshot(store, "k")
    aside = store.set_aside("k")
    assert aside is not None and (aside / "data-x" / "0000.pkl").exists() and aside.parent == store.user_dir
    assert (
        not store.exists("k")
        and not (store.user_dir / "k").exists()
        and not (aside / "manifest.json").exists()
    )
    _fake_snapshot(store, "k")  # the next release saves at once, whatever the deletion is doing
    assert store.exists("k") and store.set_aside("missing") is None
    past = time.time() - 10 * 86400
    os.utime(aside, (past, past))
    assert store.prune(7 * 86400, keep=frozenset({"k"})) == [aside.name] and store.kernel_ids() == ["k"]
    aside = store.set_aside("k")
    assert aside is not None
    remove_tree(aside)
    assert store.kernel_ids() == []


def test_delete_all_for_removes_only_that_kernel(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, user="alice")
    _fake_snapshot(store, "k1")
    _fake_snapshot(store, "k2")
    store.delete_all_for("k1")
    assert store.kernel_ids() == ["k2"]


def test_prune_removes_stale_snapshots_but_keeps_live_ones(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, user="alice")
    for kernel_id in ("old", "live", "new"):
        _fake_snapshot(store, kernel_id)
    past = time.time() - 10 * 86400
    for kernel_id in ("old", "live"):
        os.utime(store.user_dir / kernel_id, (past, past))
    assert store.prune(7 * 86400, keep=frozenset({"live"})) == ["old"]
    assert store.kernel_ids() == ["live", "new"]
