"""What leaves the private side with ``workspace_sync``: the selection, the policy section, unsafe paths.

Real directories on disk (links, a virtualenv, nested folders); the in-kernel agent's path check is run as
the kernel runs it (the module imported, standard library only).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

import mlp_kernel.snapshot  # noqa: F401  (registers the bucket check with the policy loader)
from mlp_kernel.gateway.workspace import WorkspaceSync
from mlp_kernel.placement import PolicyError, parse_policy
from mlp_kernel.snapshot.agent_sync import _safe_dest
from mlp_kernel.snapshot.sync_select import SyncRules, select

from .test_sync_gateway import POLICY


def tree(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return root


def test_skips_tool_state_virtualenvs_secrets_and_links(tmp_path: Path) -> None:
    root = tree(tmp_path / "nb", {
        "a.py": "x", "data/b.csv": "1", ".git/config": "x", "__pycache__/a.pyc": "x", "env2/pyvenv.cfg": "x",
        "env2/lib/site.py": "x", "node_modules/m.js": "x", "keys/server.pem": "x", ".aws/credentials": "x",
        ".ipynb_checkpoints/a-checkpoint.py": "x",
    })  # fmt: skip
    (root / "linked").symlink_to(tmp_path)  # a directory link out of the notebook's directory
    (root / "data" / "passwd").symlink_to("/etc/passwd")
    s = select(root, SyncRules())
    assert list(s.taken) == ["a.py", "data/b.csv"]
    assert s.left_out == {
        "a symbolic link, never followed": ["linked", "data/passwd"],
        "excluded": ["keys/server.pem"],
    }


def test_private_only_include_and_a_private_data_class(tmp_path: Path) -> None:
    root = tree(tmp_path / "nb", {"a.csv": "1", "b.txt": "2", "phi/p.csv": "3", "c.csv": "4"})
    s = select(root, SyncRules(include=("*.csv",), private_only=("phi",)))
    assert list(s.taken) == ["a.csv", "c.csv"] and s.not_allowed == 1
    assert s.left_out == {"private-only: never leaves the private cluster": ["phi/p.csv"]}
    assert "1 not in workspace_sync.include" in s.summary()
    s = select(root, SyncRules(), private_class="phi")
    assert s.taken == {} and len(s.left_out["data class phi stays on the private cluster"]) == 4
    assert s.summary().startswith("0 files (0 B) copied to the GPU kernel; not taken: a.csv, b.txt, c.csv")


def test_caps_take_the_smallest_files_first_and_name_the_rest(tmp_path: Path) -> None:
    root = tree(tmp_path / "nb", {f"f{i}.bin": b"x" * (100 * i) for i in range(1, 9)})
    s = select(root, SyncRules(max_bytes=1000, max_file_bytes=700, max_files=3))
    assert list(s.taken) == ["f1.bin", "f2.bin", "f3.bin"]
    assert s.left_out == {
        "over the 700 B file cap": ["f8.bin"],
        "over the 3-file cap": ["f4.bin", "f5.bin", "f6.bin", "f7.bin"],
    }
    s = select(root, SyncRules(max_bytes=650))
    assert list(s.taken) == ["f1.bin", "f2.bin", "f3.bin"]  # 600 B; f4 would make 1000
    line = s.summary()
    assert "f4.bin, f5.bin, f6.bin, f7.bin, f8.bin (over the 650 B total cap)" in line, line


@pytest.mark.parametrize("rel", ["../x", "/etc/passwd", "a/../../x", "a//b", "./a", "", "a\\..\\b"])
def test_the_kernel_refuses_paths_out_of_its_directory(tmp_path: Path, rel: str) -> None:
    with pytest.raises(ValueError):
        _safe_dest(str(tmp_path), rel)


def test_the_kernel_refuses_to_write_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / "out").symlink_to(outside)
    with pytest.raises(ValueError, match="symbolic link"):
        _safe_dest(str(work), "out/x.csv")
    assert _safe_dest(str(work), "new/x.csv") == os.path.join(str(work), "new", "x.csv")


@pytest.mark.parametrize("rel", ["../x", "/tmp/x", "a/../../x", "link/x"])
def test_the_gateway_never_writes_a_result_outside_the_notebook(tmp_path: Path, rel: str) -> None:
    nb = tmp_path / "nb"
    nb.mkdir()
    (nb / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError):
        WorkspaceSync(None, "k1", "alice", root=nb)._local_path(rel)


def test_the_policy_section_is_checked() -> None:
    data = yaml.safe_load(POLICY)
    data["workspace_sync"] = {"enabled": True}
    with pytest.raises(PolicyError, match="workspace_sync needs a bucket"):
        parse_policy(data)
    data["workspace_sync"] = {"enabled": True, "storage": {"kind": "volume", "claim": "x"}}
    with pytest.raises(PolicyError, match="expected kind: s3"):
        parse_policy(data)
    data["workspace_sync"] = {"storage": {"kind": "s3", "bucket": "b-1", "secret_access_key": "s3cr3t-value"}}
    with pytest.raises(PolicyError) as info:
        parse_policy(data)
    assert "a secret must never be written into the policy" in str(info.value)
    assert "s3cr3t-value" not in str(info.value)
    data["workspace_sync"] = {"enabled": True, "max_size": "10Mi", "include": ["*.csv"]}
    data["snapshot"] = {"storage": {"kind": "s3", "bucket": "snaps-1"}}
    p = parse_policy(data)
    assert p.workspace_sync.max_bytes == 10 * 1024**2 and p.workspace_sync.include == ("*.csv",)
    assert p.members["aws"].local_workdir == "empty" and p.members["private"].local_workdir == "notebook"
    assert WorkspaceSync(p, "k1", "alice").bucket is not None, "the snapshot bucket is shared by default"
