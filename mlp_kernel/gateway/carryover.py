"""Variables survive a GPU release: snapshot before a release or move, restore into the next remote kernel.

The work happens inside the remote kernel (``mlp_kernel.snapshot`` builds self-contained code the gateway
sends as a silent execute_request); this module decides *whether* and *where*, and turns the kernel's report
into the one line the user reads. Rules:

- only releases and moves carry variables over; restart and shutdown mean a fresh kernel (the snapshot is
  deleted on shutdown, and a new gateway process never restores a snapshot it did not take);
- a failed snapshot before an idle release keeps the kernel running (the user is told); when the user asked
  for the release it goes ahead and says what was lost;
- a data class that must stay private is never written on, or restored onto, a public member.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..snapshot import (
    SnapshotError,
    SnapshotStore,
    forget_code,
    parse_report,
    restore_code,
    snapshot_allowed,
    snapshot_code,
    user_expressions,
)
from ..snapshot.store import user_dirname

if TYPE_CHECKING:
    from ..placement import Policy
    from ..placement.types import GpuRequest
    from .relay import RemoteLink

log = logging.getLogger(__name__)
SNAPSHOT_TIMEOUT_S = 900.0


class CarryOver:
    def __init__(self, policy: Policy | None, kernel_id: str, user: str) -> None:
        self.policy = policy
        self.kernel_id = kernel_id
        self.user = user or "anonymous"
        settings = policy.snapshot if policy else None
        self.enabled = bool(settings and settings.enabled)
        self.max_bytes: int | None = settings.max_bytes if settings else None
        self.exclude = tuple(settings.exclude) if settings else ()
        storage = dict(settings.storage) if settings else {"kind": "local"}
        self.kind = str(storage.get("kind", "local"))
        self.store: SnapshotStore | None = None
        if self.kind == "local":
            root = storage.get("path")
            self.store = SnapshotStore(Path(str(root)) if root else None, user=self.user)
            self.store.delete_all_for(kernel_id)  # left by an earlier gateway of this id: never restored
        self.mount = str(storage.get("path") or "/home/jovyan/.mlp-kernel/snapshots")
        self.saved = False  # a snapshot taken by this gateway process exists
        self.saved_public = False

    def path(self) -> str:
        if self.store is not None:
            return str(self.store.path_for(self.kernel_id))
        return str(PurePosixPath(self.mount) / user_dirname(self.user) / self.kernel_id)

    def _private_classes(self) -> frozenset[str]:
        return self.policy.private_data_classes if self.policy else frozenset()

    async def save(self, link: RemoteLink, request: GpuRequest, public: bool) -> tuple[bool, str]:
        """Snapshot the remote kernel. Returns (ok, the line for the user)."""
        if not self.enabled:
            return True, "Variables were not kept (%gpu keep=off)."
        allowed, why = snapshot_allowed(request.data_class, public, self._private_classes())
        if not allowed:
            return True, f"Variables were not saved: {why}."
        if public and self.kind != "local":
            return True, "Variables were not saved: the snapshot volume lives on the private member."
        try:
            code = snapshot_code(self.path(), user=self.user, max_bytes=self.max_bytes, exclude=self.exclude)
            reply = await link.execute_silently(
                code, timeout=SNAPSHOT_TIMEOUT_S, user_expressions=user_expressions()
            )
            report = parse_report(reply.content.get("user_expressions") or {})
        except (SnapshotError, TimeoutError, ConnectionError, ValueError) as exc:
            return False, f"Saving variables failed: {exc}"
        self.saved, self.saved_public = True, public
        return True, report.summary_line("saved")

    async def restore(self, link: RemoteLink, request: GpuRequest, public: bool) -> str:
        if not self.saved or not self.enabled:
            return ""
        allowed, why = snapshot_allowed(request.data_class, public, self._private_classes())
        if not allowed:
            return f"Saved variables were not restored: {why}."
        if public and self.kind != "local":
            return "Saved variables were not restored: the snapshot volume lives on the private member."
        try:
            code = restore_code(self.path(), user=self.user)
            reply = await link.execute_silently(
                code, timeout=SNAPSHOT_TIMEOUT_S, user_expressions=user_expressions()
            )
            report = parse_report(reply.content.get("user_expressions") or {})
        except (SnapshotError, TimeoutError, ConnectionError) as exc:
            return f"Restoring saved variables failed ({exc}); this kernel starts fresh."
        return report.summary_line("restored")

    def set_keep(self, keep: bool, max_bytes: int | None) -> None:
        self.enabled = keep
        if keep and max_bytes is not None:
            policy_cap = self.policy.snapshot.max_bytes if self.policy else None
            self.max_bytes = min(max_bytes, policy_cap) if policy_cap else max_bytes

    async def forget(self, link: RemoteLink | None) -> str:
        had = self.saved
        self.saved = False
        if self.store is not None:
            self.store.forget(self.kernel_id)
        elif link is not None:
            try:
                code = forget_code(self.path(), user=self.user)
                await link.execute_silently(code, timeout=60, user_expressions=user_expressions())
            except (TimeoutError, ConnectionError) as exc:
                log.warning("could not delete the snapshot: %s", exc)
        return "Saved variables dropped; the next GPU kernel starts fresh." if had else "No saved variables."

    def on_shutdown(self) -> None:
        self.saved = False
        if self.store is not None:
            self.store.delete_all_for(self.kernel_id)
