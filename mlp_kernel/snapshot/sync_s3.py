"""The notebook's files in a bucket on their way to and from a GPU kernel on a public member (gateway side).

The same security model as snapshots in a bucket (``s3.py``, whose client, error messages and deletion this
class reuses): the gateway alone holds the credentials; the kernel gets short-lived presigned GETs for exactly
the objects it must fetch, and one presigned POST policy limited to ``back/`` under this kernel's prefix and
to the size cap for what it sends back. Keys never contain a user's file name (``in/f00001``, ``back/...``):
paths travel as data in the code's JSON parameters and in the kernel's report, and are checked on both sides.

Keys: ``<prefix>/<user>/<kernel id>~workspace/`` (``~`` is not allowed in a kernel id, so this never meets a
snapshot's ``<prefix>/<user>/<kernel id>/``); the whole prefix is deleted once the files came back, and when
the notebook's kernel shuts down. Every method blocks on the network: the gateway calls them in a thread.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from .s3 import MAX_POST_BYTES, S3Snapshots, S3StoreError

_CHUNK = 1 << 20


class SyncBucket(S3Snapshots):
    """One notebook kernel's workspace prefix in the bucket, for one user."""

    noun = "workspace sync"
    section = "workspace_sync.storage"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base = self.base.rstrip("/") + "~workspace/"

    def upload(self, root: Path, files: dict[str, int]) -> dict[str, dict[str, Any]]:
        """Put each file of ``files`` (relative path -> size) under ``in/``; return path -> key, size, sha256.

        A file that changed size meanwhile, or became a link, is skipped (it is no longer what was selected).
        """
        client, _ = self._call("Connecting", self._clients)
        sent: dict[str, dict[str, Any]] = {}
        for i, (rel, size) in enumerate(files.items()):
            key = f"{self.base}in/f{i:05d}"
            try:
                fd = os.open(root / rel, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                digest = hashlib.sha256()
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
                if f.tell() != size:
                    continue
                f.seek(0)
                self._call("Uploading the notebook's files", client.put_object,
                           Bucket=self.settings.bucket, Key=key, Body=f, ContentLength=size)  # fmt: skip
            sent[rel] = {"key": key, "bytes": size, "sha256": digest.hexdigest()}
        return sent

    def fetch_plan(self, sent: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Path -> a presigned GET and the size, for the kernel to fetch what ``upload`` put."""
        _, signer = self._call("Signing", self._clients)
        return {
            rel: {
                "url": self._call(
                    "Signing the download",
                    signer.generate_presigned_url,
                    "get_object",
                    Params={"Bucket": self.settings.bucket, "Key": info["key"]},
                    ExpiresIn=int(self.settings.url_expiry_s),
                ),  # fmt: skip
                "bytes": info["bytes"],
            }
            for rel, info in sent.items()
        }

    def back_grant(self, max_file_bytes: int) -> dict[str, Any]:
        """A presigned POST policy for ``back/`` under this prefix, each upload at most ``max_file_bytes``."""
        _, signer = self._call("Signing", self._clients)
        per_file = min(max_file_bytes, MAX_POST_BYTES)
        post = self._call(
            "Signing the upload", signer.generate_presigned_post, self.settings.bucket,
            f"{self.base}back/${{filename}}", Conditions=[["content-length-range", 0, per_file]],
            ExpiresIn=int(self.settings.url_expiry_s),
        )  # fmt: skip
        return {"url": post["url"], "fields": post["fields"], "key_prefix": f"{self.base}back/"}

    def download(self, key: str, directory: Path, size: int) -> tuple[Path, str]:
        """Fetch ``key`` (which must lie under ``back/``) into a new private file in ``directory``.

        Returns the file and its sha256; refuses a body longer or shorter than ``size``.
        """
        if not key.startswith(self.base + "back/") or ".." in key:
            raise S3StoreError(f"The GPU kernel named an object outside its workspace prefix: {key[-60:]!r}.")
        client, _ = self._call("Connecting", self._clients)
        response = self._call(
            "Downloading a result file", client.get_object, Bucket=self.settings.bucket, Key=key
        )
        fd, name = tempfile.mkstemp(prefix=".mlp-sync-", dir=directory)
        digest, got = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                body = response["Body"]
                while chunk := self._call("Downloading a result file", body.read, _CHUNK):
                    got += len(chunk)
                    if got > size:
                        raise S3StoreError("A result file in the bucket is longer than the GPU kernel said.")
                    digest.update(chunk)
                    out.write(chunk)
            if got != size:
                raise S3StoreError(f"A result file stopped after {got} of {size} bytes.")
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name), digest.hexdigest()
