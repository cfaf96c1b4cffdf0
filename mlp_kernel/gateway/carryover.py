"""Variables survive a GPU release: snapshot before a release or move, restore into the next remote kernel.

The work happens inside the remote kernel (``mlp_kernel.snapshot`` builds self-contained code the gateway
sends as a silent execute_request); this module decides *whether* and *where*, and turns the kernel's report
into the one line the user reads. Rules:

- only releases and moves carry variables over; restart and shutdown mean a fresh kernel (the snapshot is
  deleted on shutdown, and a new gateway process never restores a snapshot it did not take);
- a snapshot is used once: deleted as soon as the next kernel restored it (or was refused it);
- a volume snapshot (``kind: volume``) lives where only pods see it, unless the admin says where this
  process sees the same volume (``gateway_path``, e.g. the notebook server's mount of the RWX home): without
  it, files the gateway cannot reach are deleted by the next kernel before anything else;
- a failed snapshot before an idle release keeps the kernel running (the user is told); when the user asked
  for the release it goes ahead and says what was lost;
- a data class that must stay private is never written on, or restored onto, a public member (the class
  the snapshot was *taken* under counts too: relabelling a notebook does not move its saved data), nor into a
  bucket outside the private cluster (``snapshot.storage: {kind: s3, public: true}``);
- with ``kind: s3`` the bucket's credentials stay in this process: the kernel gets only short-lived grants
  for this user's and kernel's prefix (``mlp_kernel.snapshot.s3``); bucket calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..snapshot import (
    SnapshotError,
    SnapshotReport,
    SnapshotStore,
    forget_code,
    parse_report,
    restore_code,
    restore_s3_code,
    snapshot_allowed,
    snapshot_code,
    snapshot_s3_code,
    user_expressions,
)
from ..snapshot.s3 import S3Snapshots, S3StoreError
from ..snapshot.s3_config import S3ConfigError, parse_s3_storage
from ..snapshot.store import remove_tree, user_dirname

if TYPE_CHECKING:
    from ..placement import Policy
    from ..placement.types import GpuRequest
    from .relay import RemoteLink

log = logging.getLogger(__name__)
SNAPSHOT_TIMEOUT_S = 900.0


async def _delete_aside(path: Path) -> None:
    try:
        await asyncio.to_thread(remove_tree, path)
    except OSError as exc:  # what is left is an old kernel id to the store's prune
        log.warning("could not delete a used snapshot (%s): %s", path, exc)


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
        self.volume_view: SnapshotStore | None = None  # the volume as this process sees it, if it does
        if self.kind == "volume" and storage.get("gateway_path"):
            self.volume_view = SnapshotStore(Path(str(storage["gateway_path"])), user=self.user)
        self.delete_pending = False  # volume files to delete through the next kernel, before any restore
        self.bucket: S3Snapshots | None = None
        self.bucket_error = ""  # a policy mistake in snapshot.storage, said at the first release
        if self.kind == "s3":
            try:
                self.bucket = S3Snapshots(parse_s3_storage(storage), user=self.user, kernel_id=kernel_id)
            except (S3ConfigError, ValueError) as exc:
                self.bucket_error = str(exc)
        self.saved = False  # a snapshot taken by this gateway process exists
        self.wrote_bucket = False  # this process may have put objects in the bucket (deleted at shutdown)
        self.saved_public = False
        self.saved_class: str | None = None  # the data class the snapshot was taken under
        # the last restore as measured: (the gateway's wall seconds for the request, the kernel's own seconds)
        self.restore_timing: tuple[float, float] | None = None
        self._deleting: set[asyncio.Future[None]] = set()  # used snapshots being deleted in a thread
        self._agent_link: RemoteLink | None = None  # the kernel that ran the agent last: it holds it compiled

    def path(self) -> str:
        if self.store is not None:
            return str(self.store.path_for(self.kernel_id))
        return str(PurePosixPath(self.mount) / user_dirname(self.user) / self.kernel_id)

    def _private_classes(self) -> frozenset[str]:
        return self.policy.private_data_classes if self.policy else frozenset()

    def _may_restore(self, request: GpuRequest, public: bool) -> tuple[bool, str]:
        """Both the notebook's class now and the class the snapshot was taken under must allow the member."""
        for data_class in (self.saved_class, request.data_class):
            allowed, why = snapshot_allowed(data_class, public, self._private_classes())
            if not allowed:
                return False, why
        return True, ""

    def _off_machine(self, member: str | None) -> bool:
        """``kind: local`` is this server's disk: a kernel pod on a cluster cannot write or read it."""
        m = self.policy.members.get(member or "") if self.policy else None
        return self.kind == "local" and m is not None and m.backend != "local"

    async def save(
        self, link: RemoteLink, request: GpuRequest, public: bool, member: str | None = None
    ) -> tuple[bool, str]:
        """Snapshot the remote kernel. Returns (ok, the line for the user)."""
        if not self.enabled:
            return True, "Variables were not kept (%gpu keep=off)."
        if self._off_machine(member):
            return True, (
                f"Variables were not saved: snapshots are kept on this server's disk (snapshot.storage "
                f"kind: local), which the GPU kernel on {member} cannot reach; ask an admin for a volume or "
                "bucket (docs/snapshots.md)."
            )
        allowed, why = snapshot_allowed(request.data_class, public, self._private_classes())
        if not allowed:
            return True, f"Variables were not saved: {why}."
        if self.kind == "s3":
            return await self._save_to_bucket(link, request, public)
        if public and self.kind != "local":
            return True, "Variables were not saved: the snapshot volume lives on the private member."
        self.saved_class = request.data_class
        try:
            report = await self._run_agent(
                link,
                lambda compiled: snapshot_code(
                    self.path(),
                    user=self.user,
                    max_bytes=self.max_bytes,
                    exclude=self.exclude,
                    compiled=compiled,
                ),
            )
        except (SnapshotError, TimeoutError, ConnectionError, ValueError) as exc:
            return False, f"Saving variables failed: {exc}"
        self.saved, self.saved_public = True, public
        return True, report.summary_line("saved")

    async def restore(self, link: RemoteLink, request: GpuRequest, public: bool) -> str:
        self.restore_timing = None
        if self.delete_pending and not public:  # dropped while no kernel could reach the volume
            await self._delete_through(link)
        if not self.saved or not self.enabled:
            return ""
        allowed, why = self._may_restore(request, public)
        if not allowed:
            return f"Saved variables were not restored: {why}."
        if self.kind == "s3":
            return await self._restore_from_bucket(link, request, public)
        if public and self.kind != "local":
            return (
                "Saved variables were not restored: the snapshot volume lives on the private member; "
                "this kernel starts fresh."
            )
        try:
            started = time.perf_counter()
            report = await self._run_agent(
                link, lambda compiled: restore_code(self.path(), user=self.user, compiled=compiled)
            )
        except (SnapshotError, TimeoutError, ConnectionError) as exc:
            return f"Restoring saved variables failed ({exc}); this kernel starts fresh."
        self.restore_timing = (time.perf_counter() - started, report.seconds)
        return report.summary_line("restored")

    async def _run_agent(self, link: RemoteLink, program: Callable[[bool], str]) -> SnapshotReport:
        """Run the agent's ``program(compiled)`` in the kernel; its report. Without the agent's source
        (``compiled``, ~10 ms less on the first cell's path) where the kernel holds it compiled: a warm-pool
        kernel primed before its claim, or the kernel that ran the last agent request. A kernel that turns out
        not to hold it did nothing and gets the whole program."""
        remote = getattr(link, "remote", None)  # the kernel as the backend gave it (not every link says)
        compiled = link is self._agent_link or bool(remote is not None and remote.handle.get("agent_primed"))
        try:
            report = await self._agent_request(link, program(compiled))
        except SnapshotError as exc:
            if not (compiled and exc.agent_missing):
                raise
            report = await self._agent_request(link, program(False))
        self._agent_link = link
        return report

    @staticmethod
    async def _agent_request(link: RemoteLink, code: str) -> SnapshotReport:
        reply = await link.execute_silently(
            code, timeout=SNAPSHOT_TIMEOUT_S, user_expressions=user_expressions()
        )
        return parse_report(reply.content.get("user_expressions") or {})

    def set_keep(self, keep: bool, max_bytes: int | None) -> None:
        self.enabled = keep
        if keep and max_bytes is not None:
            policy_cap = self.policy.snapshot.max_bytes if self.policy else None
            self.max_bytes = min(max_bytes, policy_cap) if policy_cap else max_bytes

    async def consume(self, link: RemoteLink, public: bool) -> None:
        """The next kernel restored the snapshot (or was refused it): it is not needed any more; the next
        release takes a fresh one."""
        if self.saved:
            await self._drop(None if public else link)
        self.saved = False

    async def _drop(self, link: RemoteLink | None) -> bool:
        """Delete the snapshot wherever it lives; False when only a later kernel can (volume, no view)."""
        if (
            self.store is not None
        ):  # unrestorable at once; its files go in a thread, off the first cell's path
            aside = self.store.set_aside(self.kernel_id)
            if aside is not None:
                task = asyncio.ensure_future(_delete_aside(aside))
                self._deleting.add(task)
                task.add_done_callback(self._deleting.discard)
        elif self.bucket is not None:
            if self.wrote_bucket:
                try:
                    await asyncio.to_thread(self.bucket.clear)
                    self.wrote_bucket = False
                except S3StoreError as exc:
                    log.warning("could not delete the snapshot from the bucket: %s", exc)
        elif self.volume_view is not None:
            self.volume_view.delete_all_for(self.kernel_id)
        elif link is not None:
            await self._delete_through(link)
        else:
            self.delete_pending = True
            return False
        return True

    async def _delete_through(self, link: RemoteLink) -> None:
        try:
            code = forget_code(self.path(), user=self.user)
            await link.execute_silently(code, timeout=60, user_expressions=user_expressions())
            self.delete_pending = False
        except (TimeoutError, ConnectionError) as exc:
            log.warning("could not delete the snapshot: %s", exc)

    async def forget(self, link: RemoteLink | None) -> str:
        had = self.saved
        self.saved = False
        if self.kind == "volume":
            if not had:
                return "No saved variables."
            if await self._drop(link):
                return "Saved variables dropped; the next GPU kernel starts fresh."
            return (
                "Saved variables dropped: the next GPU kernel starts fresh and deletes their files on the "
                "volume first (this server cannot reach that volume)."
            )
        if self.store is not None:
            self.store.forget(self.kernel_id)
        elif self.bucket is not None:
            if not self.wrote_bucket:
                return "No saved variables."
            try:
                await asyncio.to_thread(self.bucket.clear)
            except S3StoreError as exc:
                return f"The saved variables could not be deleted from the bucket: {exc}"
            self.wrote_bucket = False
        elif link is not None:
            try:
                code = forget_code(self.path(), user=self.user)
                await link.execute_silently(code, timeout=60, user_expressions=user_expressions())
            except (TimeoutError, ConnectionError) as exc:
                log.warning("could not delete the snapshot: %s", exc)
        return "Saved variables dropped; the next GPU kernel starts fresh." if had else "No saved variables."

    def on_shutdown(self) -> None:
        had = self.saved or self.delete_pending
        self.saved = False
        if self.store is not None:
            self.store.delete_all_for(self.kernel_id)
        elif self.volume_view is not None:
            self.volume_view.delete_all_for(self.kernel_id)
        elif self.kind == "volume" and had:
            log.warning(
                "the saved variables of kernel %s stay on the snapshot volume (%s): this server cannot "
                "reach it; set snapshot.storage.gateway_path where it can (docs/snapshots.md)",
                self.kernel_id,
                self.path(),
            )
        elif self.bucket is not None and self.wrote_bucket:
            # blocking, bounded by the client's short timeouts and retries: the kernel is going away anyway
            try:
                self.bucket.clear()
                self.wrote_bucket = False
            except S3StoreError as exc:
                log.warning("could not delete the snapshot of kernel %s: %s", self.kernel_id, exc)

    # ------------------------------------------------------------------------------------- S3 bucket
    def _bucket_refusal(self, data_class: str | None, public: bool, action: str) -> str:
        """Why variables may not go into (or come from) the bucket here; "" when they may."""
        if self.bucket is None:
            return f"the snapshot bucket is misconfigured ({self.bucket_error})"
        if self.bucket.settings.public:
            allowed, _ = snapshot_allowed(data_class, True, self._private_classes())
            if not allowed:
                return (
                    f"data class {data_class!r} must stay on the private cluster and the snapshot bucket is "
                    f"outside it, so its variables are never {action} there"
                )
        elif public:
            return "the snapshot bucket lives on the private cluster, which this kernel cannot use"
        return ""

    async def _save_to_bucket(self, link: RemoteLink, request: GpuRequest, public: bool) -> tuple[bool, str]:
        refusal = self._bucket_refusal(request.data_class, public, "written")
        if refusal:
            return True, f"Variables were not saved: {refusal}."
        assert self.bucket is not None
        self.saved_class = request.data_class
        try:
            self.wrote_bucket = True  # from here on something may be in the bucket: shutdown deletes it
            upload = await asyncio.to_thread(self.bucket.prepare_upload, self.max_bytes)
            code = snapshot_s3_code(upload, user=self.user, max_bytes=self.max_bytes, exclude=self.exclude)
            reply = await link.execute_silently(
                code, timeout=SNAPSHOT_TIMEOUT_S, user_expressions=user_expressions()
            )
            report = parse_report(reply.content.get("user_expressions") or {})
        except S3StoreError as exc:
            return False, f"Saving variables failed: {exc} The kernel keeps running."
        except (SnapshotError, TimeoutError, ConnectionError, ValueError) as exc:
            await self._discard_partial_upload()
            return False, f"Saving variables failed: {exc}"
        self.saved, self.saved_public = True, public
        return True, report.summary_line("saved")

    async def _discard_partial_upload(self) -> None:
        assert self.bucket is not None
        try:
            await asyncio.to_thread(self.bucket.clear)
        except S3StoreError as exc:
            log.warning("could not delete a failed snapshot from the bucket: %s", exc)

    async def _restore_from_bucket(self, link: RemoteLink, request: GpuRequest, public: bool) -> str:
        refusal = self._bucket_refusal(request.data_class, public, "loaded")
        if refusal:
            return f"Saved variables were not restored: {refusal}; this kernel starts fresh."
        assert self.bucket is not None
        try:
            plan = await asyncio.to_thread(self.bucket.restore_plan)
            if plan is None:
                return "Saved variables were not found in the snapshot bucket; this kernel starts fresh."
            started = time.perf_counter()
            report = await self._run_agent(
                link, lambda compiled: restore_s3_code(plan, user=self.user, compiled=compiled)
            )
        except (S3StoreError, SnapshotError, TimeoutError, ConnectionError, ValueError) as exc:
            return f"Restoring saved variables failed ({exc}); this kernel starts fresh."
        self.restore_timing = (time.perf_counter() - started, report.seconds)
        return report.summary_line("restored")
