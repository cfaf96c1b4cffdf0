"""What a kernel pod sees of the user's files, read from the pod as it runs (issue 14 §2).

The policy says where a member's workspace and packages volumes go (``members.<m>.workspace_claim``,
``workspace_path``, ``packages_claim``, ``packages_path``), but the pod template is the admin's: a template
that leaves the volume out, mounts it read-only or elsewhere would make a message built from the policy alone
tell the user something untrue. So the answer comes from the running pod's spec: the kernel container's mount
at the policy's path, the claim of the volume behind it, its ``readOnly``, and the container's ``workingDir``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import FilesMode, KernelFiles
from .validation import kernel_container

if TYPE_CHECKING:
    from ...placement import Member


def _mounted(pod: dict[str, Any], container: dict[str, Any], path: str) -> tuple[str, bool] | None:
    """(claim, read-only) of the volume claim the container mounts at ``path``; None when there is none."""
    claims = {
        v.get("name"): (v.get("persistentVolumeClaim") or {})
        for v in pod.get("spec", {}).get("volumes") or []
        if isinstance(v, dict)
    }
    for mount in container.get("volumeMounts") or []:
        if str(mount.get("mountPath", "")).rstrip("/") != path.rstrip("/") or mount.get("subPath"):
            continue
        claim = claims.get(mount.get("name")) or {}
        if claim.get("claimName"):
            return str(claim["claimName"]), bool(mount.get("readOnly") or claim.get("readOnly"))
    return None


def pod_files(member: Member, pod: dict[str, Any]) -> KernelFiles:
    """The user's files as the kernel container of ``pod`` (on ``member``) sees them."""
    try:
        container = kernel_container(pod)
    except ValueError:
        return KernelFiles()
    working_dir = container.get("workingDir") or None
    workspace = _mounted(pod, container, member.workspace_path) if member.workspace_claim else None
    packages = _mounted(pod, container, member.packages_path) if member.packages_claim else None
    return KernelFiles(
        mode=FilesMode.VOLUME if workspace else FilesMode.NONE,
        working_dir=working_dir,
        workspace_claim=workspace[0] if workspace else None,
        workspace_path=member.workspace_path if workspace else None,
        read_only=bool(workspace and workspace[1]),
        packages_claim=packages[0] if packages else None,
        packages_path=member.packages_path if packages else None,
    )
