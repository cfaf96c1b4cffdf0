"""The gateway's status file for the server: written so that a planted symbolic link is never followed.

The runtime directory is the user's, but a shared or misconfigured one (or a path in another user's reach)
must not let anyone turn the gateway's write into a write to a file of their choosing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlp_kernel.gateway import status as status_module
from mlp_kernel.gateway.status import write_status_file


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    return victim


def test_a_symlink_at_the_old_fixed_temp_name_is_not_followed(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    path = tmp_path / "mlp-kernel-status-k1.json"
    os.symlink(victim, path.with_name(path.name + ".tmp"))
    write_status_file(path, {"state": "running"})
    assert victim.read_text() == "precious"
    assert json.loads(path.read_text()) == {"state": "running"}
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)


def test_a_symlink_at_the_temp_name_itself_is_refused_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = _victim(tmp_path)
    path = tmp_path / "mlp-kernel-status-k1.json"
    monkeypatch.setattr(status_module.secrets, "token_hex", lambda n: "guessed")
    os.symlink(victim, tmp_path / ".mlp-kernel-status-k1.json.guessed.tmp")
    with pytest.raises(FileExistsError):
        write_status_file(path, {"state": "running"})
    assert victim.read_text() == "precious"
    assert not path.exists()


def test_the_temp_name_differs_on_every_write_and_none_is_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names: list[str] = []
    real_replace = os.replace

    def record(src: str | Path, dst: str | Path) -> None:
        names.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(status_module.os, "replace", record)
    path = tmp_path / "mlp-kernel-status-k1.json"
    for i in range(3):
        write_status_file(path, {"n": i})
    assert len(set(names)) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
