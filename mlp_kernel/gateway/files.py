"""What the GPU kernel sees of the notebook's files: the snapshot's ``files`` part, and its sentence.

A user who reads ``data.csv`` next to the notebook needs to know, before the cell fails, whether the GPU
kernel has that file: the same directory on the workspace volume (a private member's pod), the same disk (the
local backend), copies taken through the bucket and which files were left out and why (``workspace_sync`` on
a public member), or nothing at all. The backend says what it mounted (``KernelFiles``); the kernel says where
it started; ``WorkspaceSync`` says what it copied. This module only turns those facts into ``FilesInfo`` and
the one sentence ``%gpu status`` prints and the panel shows, so the wording is tested without a kernel.
"""

from __future__ import annotations

import ast
import contextlib
from typing import TYPE_CHECKING

from ..backends.base import KernelFiles
from ..protocol import FilesInfo, FilesMode, LeftOut

if TYPE_CHECKING:
    from ..snapshot.sync_select import Selection
    from .relay import RemoteLink

#: left-out files listed in the snapshot; the rest are counted (``left_out_count``)
LEFT_OUT_SHOWN = 50
CWD_EXPR = "__import__('os').getcwd()"


async def kernel_cwd(link: RemoteLink, timeout: float = 10.0) -> str | None:
    """The remote kernel's working directory, as it reports it; None when it does not answer."""
    with contextlib.suppress(Exception):
        reply = await link.execute_silently("", timeout=timeout, user_expressions={"cwd": CWD_EXPR})
        value = (reply.content.get("user_expressions") or {}).get("cwd") or {}
        if value.get("status") == "ok":
            cwd = ast.literal_eval(str(value.get("data", {}).get("text/plain", "")))
            return cwd if isinstance(cwd, str) else None
    return None


def left_out(selection: Selection, errors: list[str]) -> tuple[list[LeftOut], int]:
    """Every file a copy did not take, with its reason (at most ``LEFT_OUT_SHOWN``), and how many in all."""
    items: list[LeftOut] = [
        {"path": path, "reason": reason} for reason, paths in selection.left_out.items() for path in paths
    ]
    for error in errors:  # "path: why" from the kernel's fetch
        path, _, why = error.partition(": ")
        items.append({"path": path, "reason": f"could not be written on the GPU kernel: {why or error}"})
    return items[:LEFT_OUT_SHOWN], len(items) + selection.not_allowed


def files_info(
    kernel: KernelFiles,
    *,
    notebook_dirs: tuple[str, ...],
    working_dir: str | None,
    member: str,
    public: bool,
    copied: Selection | None = None,
    copy_line: str = "",
    copy_errors: list[str] | None = None,
    not_copied: str = "",
) -> FilesInfo:
    """The snapshot's ``files`` for a kernel on ``member`` that started in ``working_dir``; ``notebook_dirs``:
    the notebook's directory as this process and the notebook server name it.

    ``copied``: what ``workspace_sync`` took to it (``copy_line`` said so at start); ``not_copied``: why the
    notebook's files are not there when a public member's kernel got none ("workspace_sync is off", an error).
    """
    wd = working_dir or kernel.working_dir
    starts = f"; the kernel starts in {wd}" if wd else ""
    info: FilesInfo = {"mode": kernel.mode, "message": "", "working_dir": wd}
    if copied is not None:
        shown, count = left_out(copied, copy_errors or [])
        message = (
            f"copies in {wd or 'its working directory'}: {copy_line} What the kernel writes there comes back "
            "next to the notebook at release."
        )
        synced: FilesInfo = {"mode": FilesMode.SYNCED, "message": message, "working_dir": wd}
        synced["files_taken"], synced["bytes_taken"] = len(copied.taken), copied.bytes
        synced["left_out"], synced["left_out_count"] = shown, count
        return synced
    here = f"the notebook's directory {wd}" if wd and wd in notebook_dirs else ""
    if kernel.mode is FilesMode.VOLUME:
        access = "read-only" if kernel.read_only else "read-write"
        claim = f"volume claim {kernel.workspace_claim}, {access}"
        info["workspace_claim"], info["workspace_path"] = kernel.workspace_claim, kernel.workspace_path
        info["read_only"] = kernel.read_only
        message = (
            f"{here} ({claim})" if here else f"the workspace at {kernel.workspace_path} ({claim}){starts}"
        )
    elif kernel.mode is FilesMode.LOCAL:
        disk = "this machine's disk, as the notebook server sees it"
        message = f"{here} ({disk})" if here else f"{disk}{starts}"
    elif public:
        message = f"none of the notebook's files are on this public GPU kernel ({not_copied}){starts}"
    else:
        message = (
            f"none of the notebook's files are on this GPU kernel: member {member} mounts no workspace "
            f"volume (an admin sets members.{member}.workspace_claim){starts}"
        )
    if kernel.packages_claim:
        info["packages_claim"], info["packages_path"] = kernel.packages_claim, kernel.packages_path
        message += f"; packages persist in {kernel.packages_path} (claim {kernel.packages_claim})"
    info["message"] = message
    return info
