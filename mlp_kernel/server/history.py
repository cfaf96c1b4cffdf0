"""Previous versions of every kernelspec file saved through the admin page, so an edit can be rolled back.

Layout: ``{history_dir}/{kernelspec}/{file}/{version}.txt`` with ``{version}.json`` beside it (who, when,
what action, sha256, size). A version id is ``YYYYmmddTHHMMSSffffffZ-{sha256[:12]}``: it sorts by time and is
checked against that shape before it is used as a file name, so it cannot traverse. Directories are 0700 and
files 0600: a policy or template may describe internal infrastructure, and only the server's user should
read the history. The store keeps the newest ``limit`` versions of each file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .files import sha256

VERSION_ID = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Version:
    version: str
    at: str
    user: str
    action: str  # "original" (what was on disk before the first save), "save" or "rollback"
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class HistoryStore:
    """Append-only (bounded) store of file versions under one root directory."""

    def __init__(self, root: Path, limit: int = 50) -> None:
        self.root = Path(root)
        self.limit = limit

    def _dir(self, kernelspec: str, name: str, create: bool = False) -> Path:
        d = self.root / kernelspec / name
        if create:
            _mkdir_private(d, self.root)
        return d

    def list(self, kernelspec: str, name: str) -> list[Version]:
        """Versions, newest first."""
        d = self._dir(kernelspec, name)
        if not d.is_dir():
            return []
        out = []
        for meta in sorted(d.glob("*.json"), reverse=True):
            try:
                out.append(Version(**json.loads(meta.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError):
                continue
        return out

    def read(self, kernelspec: str, name: str, version: str) -> str:
        if not VERSION_ID.match(version or ""):
            raise KeyError(f"invalid version id {version!r}")
        path = self._dir(kernelspec, name) / f"{version}.txt"
        if not path.is_file():
            raise KeyError(f"no version {version!r} of {kernelspec}/{name}")
        return path.read_text(encoding="utf-8")

    def add(self, kernelspec: str, name: str, text: str, user: str, action: str) -> Version:
        d = self._dir(kernelspec, name, create=True)
        now = datetime.now(timezone.utc)
        digest = sha256(text)
        version = f"{now.strftime('%Y%m%dT%H%M%S%f')}Z-{digest[:12]}"
        v = Version(version, now.isoformat(), user, action, digest, len(text.encode("utf-8")))
        _write_private(d / f"{version}.txt", text)
        _write_private(d / f"{version}.json", json.dumps(v.to_json(), indent=1))
        self._prune(d)
        return v

    def record_before_save(self, kernelspec: str, name: str, current: str) -> None:
        """Keep what is on disk now if the history does not already end with it (first save, hand edits)."""
        versions = self.list(kernelspec, name)
        if current and (not versions or versions[0].sha256 != sha256(current)):
            self.add(kernelspec, name, current, user="(on disk)", action="original")

    def _prune(self, d: Path) -> None:
        metas = sorted(d.glob("*.json"), reverse=True)
        for meta in metas[self.limit :]:
            meta.unlink(missing_ok=True)
            meta.with_suffix(".txt").unlink(missing_ok=True)


def _mkdir_private(path: Path, root: Path) -> None:
    """Create ``path`` and every missing ancestor 0700; directories from ``root`` down are made 0700 even
    when they exist. On a fresh install not even ``{jupyter_data_dir}/mlp-kernel`` exists yet, and the first
    admin save must create it rather than fail."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for p in reversed(missing):
        p.mkdir(mode=0o700, exist_ok=True)
    for p in (path, *path.parents):
        os.chmod(p, 0o700)
        if p == root:
            break


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)
