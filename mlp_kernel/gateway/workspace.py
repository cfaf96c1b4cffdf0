"""The notebook's files on a GPU kernel of a public member, through a bucket (``workspace_sync``).

A kernel on a private member sees the notebook's directory (the workspace volume, or this machine's disk); a
kernel on a public member (burst) cannot, so a notebook that reads ``data.csv`` next to it would fail there.
With ``workspace_sync.enabled`` this module, run by the gateway (whose working directory is the notebook's):

- **in**, when a kernel on a public member first answers (``RequestState.after_connect``, part of the
  launch's bootstrap, before the user's cell): chooses the files (``snapshot.sync_select``: allow-list, caps,
  built-in skips, private-only patterns and data classes, links never followed), uploads them with its own
  credentials, has the kernel fetch them into its working directory with presigned GETs, then deletes them
  from the bucket; the user reads what was taken and what was not, and why, in the start-up line;
- **back**, before a release (``RequestState.before_release``): the kernel uploads what it created or changed
  with a presigned POST limited to this kernel's prefix and the caps; the gateway downloads each file next to
  the notebook, never overwriting a file that changed here meanwhile (``name (from GPU).ext``, said so), then
  deletes the prefix; on shutdown the prefix is deleted too.

A failure never stops the kernel or the release: the user is told what did not move and why. Bucket calls
run in a worker thread; the bucket's credentials never leave this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..snapshot import SnapshotError, user_expressions
from ..snapshot.s3 import S3StoreError
from ..snapshot.s3_config import S3ConfigError, parse_s3_storage
from ..snapshot.sync_code import back_code, fetch_code, parse_sync_report
from ..snapshot.sync_s3 import SyncBucket
from ..snapshot.sync_select import Selection, SyncRules, names, select
from ..snapshot.sync_walk import sha256_file
from .files import files_info, kernel_cwd

if TYPE_CHECKING:
    from ..placement import Policy
    from ..placement.types import GpuRequest
    from ..protocol import FilesInfo
    from .relay import RemoteLink

log = logging.getLogger(__name__)
SYNC_TIMEOUT_S = 900.0


class WorkspaceSync:
    def __init__(self, policy: Policy | None, kernel_id: str, user: str, root: Path | None = None) -> None:
        self.policy = policy
        self.root = (root or Path.cwd()).resolve()
        settings = policy.workspace_sync if policy else None
        self.enabled = bool(settings and settings.enabled)
        self.rules = SyncRules.from_settings(settings) if settings else SyncRules()
        self.bucket: SyncBucket | None = None
        self.error = ""
        self.sent: dict[str, str] = {}  # path -> sha256 of what the current kernel was given
        self.active = False  # the current kernel got the files: bring its results back at release
        self.wrote = False  # this process may have put objects under the prefix
        self.last = ""  # what the current kernel was given, for %gpu status
        self.copied: Selection | None = None  # what the current kernel was given, for the status snapshot
        self.copy_errors: list[str] = []  # "path: why" for files the kernel could not write
        self.not_copied = "workspace_sync is off"  # why a public member's kernel has none of the files
        if self.enabled and policy is not None:
            storage = (
                dict(settings.storage) if settings and settings.storage else dict(policy.snapshot.storage)
            )
            try:
                self.bucket = SyncBucket(
                    parse_s3_storage(storage), user=user or "anonymous", kernel_id=kernel_id
                )
            except (S3ConfigError, ValueError) as exc:
                self.error = str(exc)

    # ------------------------------------------------------------------------------------------------ in
    async def push(self, link: RemoteLink, request: GpuRequest, public: bool) -> str:
        """Give a new kernel on a public member the notebook's files; the line for the user ("" if none)."""
        self.active, self.sent, self.last, self.copied, self.copy_errors = False, {}, "", None, []
        if not (self.enabled and public):
            return ""
        if self.bucket is None:
            return self._not_copied(self.error)
        assert self.policy is not None
        private = None if self.policy.may_leave_private(request.data_class) else request.data_class
        selection = await asyncio.to_thread(select, self.root, self.rules, private_class=private)
        try:
            self.wrote = True
            sent = await asyncio.to_thread(self.bucket.upload, self.root, selection.taken)
            plan = await asyncio.to_thread(self.bucket.fetch_plan, sent)
            if plan:
                reply = await link.execute_silently(
                    fetch_code(plan), timeout=SYNC_TIMEOUT_S, user_expressions=user_expressions()
                )
                report = parse_sync_report(reply.content.get("user_expressions") or {})
            else:
                report = {"errors": []}
        except (S3StoreError, SnapshotError, asyncio.TimeoutError) as exc:
            return self._not_copied(str(exc) or "timed out")
        finally:
            await self._clear()
        errors = [str(e) for e in report.get("errors") or []]
        failed = {e.split(": ", 1)[0] for e in errors}
        self.sent = {rel: str(info["sha256"]) for rel, info in sent.items() if rel not in failed}
        self.active = True
        line = selection.summary()
        if errors:
            line += f" {len(errors)} could not be written there: {errors[0][:200]}"
        self.last, self.copied, self.copy_errors = line, selection, errors
        return line

    def _not_copied(self, why: str) -> str:
        self.not_copied = f"the copy through the bucket failed: {why}"
        return f"The notebook's files were not copied to the GPU kernel: {why}"

    async def seen(self, link: RemoteLink, public: bool, notebook: str = "") -> FilesInfo:
        """What the kernel behind ``link`` sees of the notebook's files (the snapshot's ``files``), after
        ``push``: the backend's mounts and working directory (the pod's ``workingDir``: the path as the
        notebook server names it; the kernel's own answer when the backend does not know), and what was
        copied to it."""
        folder = PurePosixPath(notebook).parent if notebook.startswith("/") else None
        dirs = (str(self.root), str(Path.cwd()), *([str(folder)] if folder else []))
        return files_info(
            link.remote.files,
            notebook_dirs=dirs,
            working_dir=link.remote.files.working_dir or await kernel_cwd(link),
            member=link.remote.member,
            public=public,
            copied=self.copied,
            copy_line=self.last,
            copy_errors=self.copy_errors,
            not_copied=self.not_copied if self.enabled else "workspace_sync is off",
        )

    # ---------------------------------------------------------------------------------------------- back
    async def pull(self, link: RemoteLink) -> str:
        """Bring back what the kernel created or changed in its working directory; the line for the user."""
        if not self.active or self.bucket is None:
            return ""
        r = self.rules
        try:
            grant = await asyncio.to_thread(self.bucket.back_grant, r.max_file_bytes)
            self.wrote = True
            code = back_code(grant, self.sent, max_bytes=r.max_bytes, max_file_bytes=r.max_file_bytes,
                             max_files=r.max_files, exclude=r.exclude)  # fmt: skip
            reply = await link.execute_silently(
                code, timeout=SYNC_TIMEOUT_S, user_expressions=user_expressions()
            )
            report = parse_sync_report(reply.content.get("user_expressions") or {})
            return await asyncio.to_thread(self._take_back, report)
        except (S3StoreError, SnapshotError, asyncio.TimeoutError) as exc:
            return f"Files of the GPU kernel were not brought back: {exc or 'timed out'}"
        finally:
            await self._clear()

    def _take_back(self, report: dict[str, Any]) -> str:
        assert self.bucket is not None
        came, renamed, failed = [], [], [str(e) for e in report.get("errors") or []]
        for entry in report.get("files") or []:
            rel = str(entry.get("path", ""))
            try:
                dest = self._local_path(rel)
                tmp, digest = self.bucket.download(
                    str(entry.get("key")), dest.parent, int(entry.get("bytes"))
                )
            except (ValueError, OSError, S3StoreError, TypeError) as exc:
                failed.append(f"{rel}: {exc}")
                continue
            local = sha256_file(dest) if dest.is_file() and not dest.is_symlink() else None
            if local == digest:
                os.unlink(tmp)
            elif local is None and not dest.exists() or local is not None and local == self.sent.get(rel):
                os.replace(tmp, dest)  # new, or unchanged here since the kernel got it
                came.append(rel)
            else:  # changed here meanwhile (or not a plain file): keep it, put the kernel's beside it
                other = dest.with_name(f"{dest.stem} (from GPU){dest.suffix}")
                if other.is_symlink() or other.is_dir():
                    os.unlink(tmp)
                    failed.append(f"{rel}: {other.name} is a link or a directory here")
                    continue
                os.replace(tmp, other)
                renamed.append(f"{rel} -> {PurePosixPath(rel).parent / other.name}".replace("./", ""))
            self.sent[rel] = digest
        parts = []
        if came or renamed:
            n = len(came) + len(renamed)
            parts.append(
                f"{n} file{'s' if n != 1 else ''} came back from the GPU kernel"
                + (f" ({names(came)})" if came else "")
                + "."
            )
        if renamed:
            parts.append(f"Changed here meanwhile, so not overwritten: {names(renamed)}.")
        for reason, paths in (report.get("left_out") or {}).items():
            parts.append(f"Not brought back ({reason}): {names([str(p) for p in paths])}.")
        if failed:
            parts.append(f"{len(failed)} could not be brought back: {failed[0][:200]}")
        return " ".join(parts)

    def _local_path(self, rel: str) -> Path:
        """Where ``rel`` goes under the notebook's directory; ``ValueError`` when it would leave it."""
        parts = rel.split("/")
        if not rel or rel.startswith("/") or any(p in ("", ".", "..") or "\x00" in p for p in parts):
            raise ValueError("not a path inside the notebook's directory")
        here = self.root
        for part in parts[:-1]:
            here = here / part
            if here.is_symlink():
                raise ValueError(f"{here.name} is a symbolic link here")
            here.mkdir(exist_ok=True)
        return here / parts[-1]

    # ----------------------------------------------------------------------------------------- clean-up
    async def _clear(self) -> None:
        if self.bucket is not None and self.wrote:
            try:
                await asyncio.to_thread(self.bucket.clear)
                self.wrote = False
            except S3StoreError as exc:
                log.warning("could not delete the workspace prefix: %s", exc)

    def on_shutdown(self) -> None:
        if self.bucket is not None and self.wrote:
            with contextlib.suppress(S3StoreError):
                self.bucket.clear()
