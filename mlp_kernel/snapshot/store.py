"""Where snapshots live on local disk, one private directory per user and one per notebook kernel.

Layout: ``<root>/<user>/<kernel_id>/`` with ``manifest.json`` and a ``data-<id>/`` directory written by
the in-kernel agent (see ``agent.py``). The root and per-user directories are 0700, so on a shared machine no
other account can list, read or plant a snapshot; the manifest also names its owner, and the restore code
refuses a snapshot whose owner differs from the requesting user. The store itself never unpickles anything:
only the kernel that restores does.

The Kubernetes backend uses the same layout under a per-user volume mounted in the pod (the gateway passes the
in-pod path to ``snapshot_code``/``restore_code``); this class is the local backend's store and the reference
for that layout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

MANIFEST = "manifest.json"
_KERNEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_USER_SAFE = re.compile(r"[A-Za-z0-9_@+=,-]")


def default_root() -> Path:
    """``<jupyter data dir>/mlp-kernel/snapshots``, e.g. ``~/.local/share/jupyter/mlp-kernel/snapshots``."""
    return Path(jupyter_data_dir()) / "mlp-kernel" / "snapshots"


def user_dirname(user: str) -> str:
    """A directory name for ``user`` that cannot escape the root: unusual characters become ``%XX``.

    ``alice@example.com`` stays readable as ``alice@example.com`` (``.`` is kept except at the start), while
    ``../bob`` becomes ``%2E.%2Fbob``. Distinct users always get distinct names.
    """
    if not isinstance(user, str) or not user:
        raise ValueError(f"snapshot user must be a non-empty string, got {user!r}")
    out = []
    for i, ch in enumerate(user):
        if _USER_SAFE.fullmatch(ch) or (ch == "." and i > 0):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


class SnapshotStore:
    """The local snapshot directories of one user.

    Create one per gateway (one notebook kernel) with the user from jupyter_server's identity, never from text
    the user typed. ``path_for`` is what the gateway passes to ``snapshot_code`` and ``restore_code``.
    """

    def __init__(self, root: Path | None = None, *, user: str) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.user = user
        self.user_dir = self.root / user_dirname(user)

    def path_for(self, kernel_id: str) -> Path:
        """The snapshot directory of ``kernel_id``; creates the root and the user's directory, both 0700."""
        _private_dir(self.root)
        _private_dir(self.user_dir)
        return self.user_dir / _check_kernel_id(kernel_id)

    def exists(self, kernel_id: str) -> bool:
        """Whether a complete snapshot owned by this user is there (a manifest exists and names the user)."""
        manifest = self.user_dir / _check_kernel_id(kernel_id) / MANIFEST
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and data.get("owner") == self.user

    def size(self, kernel_id: str) -> int:
        """Bytes on disk for ``kernel_id``'s snapshot (0 when there is none)."""
        base = self.user_dir / _check_kernel_id(kernel_id)
        if not base.is_dir():
            return 0
        return sum(p.stat().st_size for p in base.rglob("*") if p.is_file() and not p.is_symlink())

    def forget(self, kernel_id: str) -> None:
        """Drop the saved state (``%gpu forget``): the next remote kernel starts fresh."""
        base = self.user_dir / _check_kernel_id(kernel_id)
        manifest = base / MANIFEST
        # the manifest goes first: a half-deleted snapshot must never look restorable
        manifest.unlink(missing_ok=True)
        _remove(base)

    def set_aside(self, kernel_id: str) -> Path | None:
        """Make ``kernel_id``'s snapshot unrestorable and free its path at once (the manifest goes, then the
        directory is renamed ``<kernel_id>.dropped-<random>``); the renamed directory, which the caller
        deletes off the hot path (100 MB took ~15 ms to delete), or None when there was none. A directory a
        crash left there is an old kernel id to ``prune``."""
        base = self.user_dir / _check_kernel_id(kernel_id)
        (base / MANIFEST).unlink(missing_ok=True)
        if base.is_symlink() or not base.exists():
            _remove(base)
            return None
        aside = base.with_name(f"{kernel_id}.dropped-{os.urandom(4).hex()}")
        os.rename(base, aside)
        return aside

    def delete_all_for(self, kernel_id: str) -> None:
        """Remove everything kept for ``kernel_id`` (the notebook's kernel was shut down)."""
        self.forget(kernel_id)

    def kernel_ids(self) -> list[str]:
        """The kernel ids that have a snapshot directory for this user."""
        if not self.user_dir.is_dir():
            return []
        return sorted(p.name for p in self.user_dir.iterdir() if p.is_dir() and _KERNEL_ID.fullmatch(p.name))

    def prune(self, older_than_s: float, keep: frozenset[str] = frozenset()) -> list[str]:
        """Delete snapshot directories untouched for ``older_than_s`` seconds (left by a crashed gateway).

        ``keep`` names kernel ids still in use. Returns the ids removed.
        """
        cutoff = time.time() - older_than_s
        removed = []
        for kernel_id in self.kernel_ids():
            if kernel_id in keep:
                continue
            if (self.user_dir / kernel_id).stat().st_mtime < cutoff:
                self.delete_all_for(kernel_id)
                removed.append(kernel_id)
        return removed


def _check_kernel_id(kernel_id: str) -> str:
    if not isinstance(kernel_id, str) or not _KERNEL_ID.fullmatch(kernel_id):
        raise ValueError(f"invalid kernel id {kernel_id!r}: expected letters, digits, '-', '_' or '.'")
    return kernel_id


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.is_symlink():
        raise PermissionError(f"{path} is a symbolic link; refusing to keep snapshots there")
    os.chmod(path, 0o700)


def remove_tree(path: Path) -> None:
    """Delete what ``set_aside`` returned."""
    _remove(path)


def _remove(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
