"""What ``%gpu status`` and the panel say the GPU kernel sees of the notebook's files (issue 14 §2), for each
way a kernel can see them: the workspace volume, the same disk, copies through the bucket, nothing.

The facts come from the real sources: a pod rendered with the shipped template and read back as the backend
reads the running pod (``pod_files``), a real ``select`` over a directory; the sentence and the snapshot's
``files`` part (validated against the protocol's schema) are what is checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from mlp_kernel import protocol
from mlp_kernel.backends.base import KernelFiles
from mlp_kernel.backends.kubernetes.files import pod_files
from mlp_kernel.gateway.files import LEFT_OUT_SHOWN, files_info
from mlp_kernel.placement import parse_policy
from mlp_kernel.protocol import FilesMode
from mlp_kernel.snapshot.sync_select import SyncRules, select
from tests.backend_kubernetes.test_workspace_volumes import policy_text, render

NOTEBOOK = "/home/jovyan/project/analysis.ipynb"


def say(kernel: KernelFiles, working_dir: str | None, **kw: Any) -> dict[str, Any]:
    """The snapshot's ``files`` for ``kernel``, as the comm carries it, checked against the protocol."""
    args: dict[str, Any] = {"notebook_dirs": ("/home/jovyan/project",), "member": "private", "public": False}
    info = json.loads(json.dumps(files_info(kernel, working_dir=working_dir, **{**args, **kw})))
    jsonschema.validate(info, {"$defs": protocol.json_schema()["$defs"], "$ref": "#/$defs/FilesInfo"})
    return info  # type: ignore[no-any-return]


def seen(member: str = "private", **render_kw: Any) -> tuple[KernelFiles, dict[str, Any]]:
    """What the backend reads from a pod rendered with the shipped template (and the pod, to change it)."""
    pod = render(member=member, **render_kw)
    return pod_files(parse_policy(policy_text()).members[member], pod), pod


def test_a_private_pod_on_the_workspace_volume_names_the_directory_the_claims_and_read_write() -> None:
    kernel, _ = seen(notebook=NOTEBOOK)
    assert kernel == KernelFiles(
        FilesMode.VOLUME, "/home/jovyan/project", "home-alice", "/home/jovyan", False, "pkgs-alice",
        "/opt/mlp-kernel/packages",
    )  # fmt: skip
    info = say(kernel, "/home/jovyan/project")
    assert info["mode"] == "volume" and info["workspace_claim"] == "home-alice" and info["read_only"] is False
    assert info["message"] == (
        "the notebook's directory /home/jovyan/project (volume claim home-alice, read-write); "
        "packages persist in /opt/mlp-kernel/packages (claim pkgs-alice)"
    )


def test_a_read_only_mount_or_a_template_without_the_volume_is_said_as_the_pod_has_it() -> None:
    member = parse_policy(policy_text()).members["private"]
    _, pod = seen(notebook=NOTEBOOK)
    container = pod["spec"]["containers"][0]
    for mount in container["volumeMounts"]:
        mount["readOnly"] = mount["name"] == "workspace" or mount.get("readOnly", False)
    info = say(pod_files(member, pod), None)
    assert "(volume claim home-alice, read-only)" in info["message"] and info["read_only"] is True
    dropped = ("workspace", "packages")
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] not in dropped]
    info = say(pod_files(member, pod), "/tmp")
    assert info["mode"] == "none" and "packages_claim" not in info
    assert info["message"] == (
        "none of the notebook's files are on this GPU kernel: member private mounts no workspace volume "
        "(an admin sets members.private.workspace_claim); the kernel starts in /tmp"
    )


def test_a_notebook_outside_the_workspace_names_the_workspace_and_where_the_kernel_starts() -> None:
    kernel, _ = seen(notebook="/srv/elsewhere/a.ipynb")
    info = say(kernel, "/home/jovyan", notebook_dirs=("/srv/elsewhere",))
    assert info["message"].startswith(
        "the workspace at /home/jovyan (volume claim home-alice, read-write); "
        "the kernel starts in /home/jovyan; packages persist in"
    )


def test_the_same_disk_on_the_local_backend() -> None:
    info = say(KernelFiles(FilesMode.LOCAL, "/w/nb"), "/w/nb", notebook_dirs=("/w/nb",), member="local")
    assert info == {
        "mode": "local",
        "working_dir": "/w/nb",
        "message": "the notebook's directory /w/nb (this machine's disk, as the notebook server sees it)",
    }


def test_a_public_kernel_without_workspace_sync_says_it_has_none_and_why() -> None:
    kernel, _ = seen(member="public", flavor="gold")
    assert kernel.mode is FilesMode.NONE and kernel.workspace_claim is None
    info = say(kernel, "/tmp", member="public", public=True, not_copied="workspace_sync is off")
    assert info["message"] == (
        "none of the notebook's files are on this public GPU kernel (workspace_sync is off); "
        "the kernel starts in /tmp"
    )


def test_synced_copies_list_every_file_left_out_with_its_reason_capped(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n")
    (tmp_path / ".env").write_text("TOKEN=x\n")
    (tmp_path / "big.bin").write_bytes(b"x" * 2048)
    many = tmp_path / "many"
    many.mkdir()
    for i in range(LEFT_OUT_SHOWN + 5):
        (many / f"p{i:03}.phi.csv").write_text("secret")
    selection = select(tmp_path, SyncRules(max_file_bytes=1024, private_only=("*.phi.*",)))
    line = selection.summary()
    kernel = KernelFiles(FilesMode.NONE, "/tmp/k")
    info = say(
        kernel, "/tmp/k", public=True, copied=selection, copy_line=line, copy_errors=["data.csv: full"]
    )
    assert info["mode"] == "synced" and info["files_taken"] == 1 and info["bytes_taken"] == 4
    assert info["left_out_count"] == LEFT_OUT_SHOWN + 5 + 2 + 1 and len(info["left_out"]) == LEFT_OUT_SHOWN
    reasons = {item["path"]: item["reason"] for item in info["left_out"]}
    assert reasons[".env"] == "excluded" and reasons["big.bin"] == "over the 1.0 KiB file cap"
    assert reasons["many/p000.phi.csv"] == "private-only: never leaves the private cluster"
    assert line.startswith("1 file (4 B) copied to the GPU kernel; not taken: ")
    assert info["message"] == (
        f"copies in /tmp/k: {line} What the kernel writes there comes back next to the notebook at release."
    )
