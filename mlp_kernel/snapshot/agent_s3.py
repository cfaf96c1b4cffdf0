"""The in-kernel half of snapshots in an S3-compatible bucket: upload and download with presigned grants.

Why a separate file: like ``agent.py`` it runs inside the remote kernel, which has no mlp_kernel and no boto3,
and must never hold the bucket's credentials. ``codegen`` executes ``agent.py`` and then this file in the same
private dictionary, so the names of ``agent.py`` (``_write_entries``, ``_restore_manifest`` ...) are globals
here; imported as a module (tests, type checkers), it takes them from ``agent`` instead. Only the standard
library is used: ``urllib.request`` (which honours the pod's proxy variables and CA store) with a body
streamed from a file, never held in memory.

Saving: each variable is written to a private temporary directory (``tempfile``: honour ``TMPDIR``),
uploaded with the gateway's presigned POST policy, and deleted; the manifest goes last, and is the commit
point. Restoring: each file the gateway signed a GET for is downloaded to a private temporary file, loaded,
and deleted. Error messages name the bucket's host, never a URL (a presigned URL is a short-lived grant).
"""

from __future__ import annotations  # annotations are never evaluated: any Python 3 kernel runs this

import json
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

if __name__ != "__mlp_snapshot_agent__":  # imported as a module; in the kernel, codegen ran agent.py here
    from .agent import (
        _candidates,
        _check_manifest,
        _json_default,
        _manifest,
        _open_private,
        _remove_tree,
        _report,
        _restore_manifest,
        _skip_fsync,
        _TransferError,
        _unlink_quietly,
        _user_namespace,
        _write_entries,
    )

_CHUNK = 1 << 20
_TIMEOUT_S = 120


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


def _s3_error(exc: urllib.error.HTTPError) -> str:
    """``Code: Message`` from an S3 error body (XML), or the HTTP reason."""
    import re

    try:
        body = exc.read(4096).decode("utf-8", "replace")
    except Exception:
        body = ""
    code = re.search(r"<Code>([^<]{1,100})</Code>", body)
    message = re.search(r"<Message>([^<]{1,300})</Message>", body)
    if code:
        return code.group(1) + (": " + message.group(1) if message else "")
    return str(exc.reason)


def _open(request: urllib.request.Request, what: str) -> Any:
    try:
        return urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        host = _host(request.full_url)
        raise _TransferError(
            f"{what} was refused by the snapshot bucket ({host}): HTTP {exc.code} {_s3_error(exc)}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        host = _host(request.full_url)
        raise _TransferError(
            f"cannot reach the snapshot bucket at {host} ({reason}); {what} did not happen"
        ) from None


def _post(grant: dict[str, Any], key: str, path: str | None = None, data: bytes = b"") -> None:
    """Upload the file at ``path`` (streamed), else ``data``, under ``key`` with a presigned POST policy (S3
    browser upload)."""
    boundary = uuid.uuid4().hex
    fields = dict(grant["fields"])
    fields["key"] = key
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = os.path.getsize(path) if path is not None else len(data)

    def body() -> Iterator[bytes]:
        yield head
        if path is None:
            yield data
        else:
            with open(path, "rb") as f:
                while True:
                    chunk = f.read(_CHUNK)
                    if not chunk:
                        break
                    yield chunk
        yield tail

    request = urllib.request.Request(
        grant["url"],
        data=body(),
        method="POST",
        headers={
            "Content-Type": "multipart/form-data; boundary=" + boundary,
            "Content-Length": str(len(head) + size + len(tail)),
        },
    )
    with _open(request, "the upload of " + key.rsplit("/", 1)[-1]) as response:
        response.read()


def _download(info: dict[str, Any], dest: str, filename: str) -> None:
    request = urllib.request.Request(info["url"], method="GET")
    expected = info.get("bytes")
    got = 0
    with _open(request, "the download of " + filename) as response:
        with _open_private(dest) as out:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                got += len(chunk)
                if expected is not None and got > expected:
                    raise _TransferError(filename + " is longer than the bucket said; it was not restored")
                out.write(chunk)
    if expected is not None and got != expected:
        raise _TransferError(f"the download of {filename} stopped after {got} of {expected} bytes")


def snapshot_s3(params_json: str) -> str:
    """Save the user namespace to the bucket with the grants in ``params``; returns the JSON report."""
    _skip_fsync()
    started = time.monotonic()
    params = json.loads(params_json)
    report = _report("snapshot")
    tmp = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shell, user_ns = _user_namespace()
            tmp = tempfile.mkdtemp(prefix="mlp-snapshot-")
            data_post = params["data_post"]
            manifest_post = params["manifest_post"]

            def upload(filename: str, path: str) -> None:
                try:
                    _post(data_post, data_post["key_prefix"] + filename, path=path)
                finally:
                    _unlink_quietly(path)

            names = _candidates(shell, user_ns, params.get("exclude") or [])
            skipped: dict[str, str] = {}
            entries, total = _write_entries(
                user_ns,
                names,
                tmp,
                params.get("max_bytes"),
                skipped,
                on_file=upload,
                file_limit=params.get("max_file_bytes"),
            )
            manifest = _manifest(params["user"], shell, params["data"], names, entries, skipped)
            _post(
                manifest_post,
                manifest_post["key"],
                data=json.dumps(manifest, default=_json_default).encode("utf-8"),
            )
            report.update(
                ok=True, saved=[e["name"] for e in entries], skipped=skipped, count=len(entries), bytes=total
            )
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        # also on KeyboardInterrupt; the gateway deletes what was uploaded of a failed snapshot
        _remove_temp(tmp)
    report["seconds"] = round(time.monotonic() - started, 3)
    return json.dumps(report, default=_json_default)


def _remove_temp(tmp: str | None) -> None:
    """Remove the pod-side temp directory of a snapshot or restore, if one was made; never raise."""
    if tmp is not None:
        try:
            _remove_tree(tmp)
        except OSError:
            pass


def restore_s3(params_json: str) -> str:
    """Load the snapshot the gateway checked and signed (``manifest``, ``files``) into the user namespace."""
    started = time.monotonic()
    params = json.loads(params_json)
    report = _report("restore")
    tmp = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            manifest = params["manifest"]
            _check_manifest(manifest, params["user"])
            files = params.get("files") or {}
            tmp = tempfile.mkdtemp(prefix="mlp-restore-")

            def fetch(filename: str) -> str:
                info = files.get(filename) if isinstance(filename, str) else None
                if info is None:
                    raise FileNotFoundError(f"{filename!r} is not in the snapshot bucket")
                dest = os.path.join(tmp, "file-" + uuid.uuid4().hex)
                try:
                    _download(info, dest, filename)
                except BaseException:
                    _unlink_quietly(dest)
                    raise
                return dest

            _restore_manifest(manifest, fetch, _unlink_quietly, report)
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _remove_temp(tmp)
    report["seconds"] = round(time.monotonic() - started, 3)
    return json.dumps(report, default=_json_default)
