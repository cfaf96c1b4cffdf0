"""The in-kernel half of ``workspace_sync``: fetch the notebook's files into the working directory, send
back what the kernel created or changed.

Why here and like this: it runs inside the user's kernel image (no mlp_kernel, no boto3, never a credential),
so ``sync_code`` executes ``agent.py``, ``agent_s3.py`` (``_download``, ``_post``: presigned GET and POST with
``urllib``), ``sync_walk.py`` (the walk and globs the gateway uses too) and then this file in one private
dictionary; imported as a module (tests, type checkers) it takes those names from the modules instead.

Paths come from the gateway's JSON parameters; each is checked before use (relative, no ``..``, no empty or
``.`` part) and every directory on the way must be a real directory inside the working directory, never a
symbolic link, so a path can never write outside it. Files are written to a temporary name and renamed.
"""

from __future__ import annotations  # annotations are never evaluated: any Python 3 kernel runs this

import json
import os
import time
from typing import Any

if __name__ != "__mlp_snapshot_agent__":  # imported as a module; in the kernel, sync_code ran the others here
    from .agent import _TransferError
    from .agent_s3 import _download, _post
    from .sync_walk import SECRET_FILES, matches, sha256_file, walk


def _safe_dest(root: str, rel: str) -> str:
    """The absolute path of ``rel`` under ``root``, its parent directories made; ``ValueError`` if unsafe."""
    parts = rel.split("/") if isinstance(rel, str) else []
    if (
        not parts
        or any(p in ("", ".", "..") or "\x00" in p or "\\" in p for p in parts)
        or rel.startswith("/")
    ):
        raise ValueError(f"unsafe path {rel!r}")
    here = root
    for part in parts[:-1]:
        here = os.path.join(here, part)
        if os.path.islink(here):
            raise ValueError(f"{rel!r} goes through a symbolic link")
        if not os.path.isdir(here):
            os.mkdir(here, 0o755)
    dest = os.path.join(here, parts[-1])
    if os.path.islink(dest) or os.path.isdir(dest):
        raise ValueError(f"{rel!r} is a link or a directory here")
    return dest


def fetch(params_json: str) -> str:
    """Download each of ``files`` (path -> presigned GET and size) into the working directory."""
    started = time.monotonic()
    params = json.loads(params_json)
    root = os.getcwd()
    report: dict[str, Any] = {"fetched": 0, "bytes": 0, "errors": []}
    for rel, info in sorted((params.get("files") or {}).items()):
        tmp = None
        try:
            dest = _safe_dest(root, rel)
            tmp = os.path.join(os.path.dirname(dest), f".mlp-sync-{os.getpid()}-{report['fetched']}")
            _download(info, tmp, rel)
            os.replace(tmp, dest)
            tmp = None
            report["fetched"] += 1
            report["bytes"] += int(info.get("bytes") or 0)
        except (ValueError, OSError, _TransferError) as exc:
            report["errors"].append(f"{rel}: {exc}")
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
    report["seconds"] = round(time.monotonic() - started, 3)
    return json.dumps(report)


def back(params_json: str) -> str:
    """Upload the files of the working directory that are new or differ from ``sent`` (path -> sha256),
    smallest first, within the caps; report what went (path, key, size, sha256) and what did not."""
    started = time.monotonic()
    params = json.loads(params_json)
    root = os.getcwd()
    sent, grant = params.get("sent") or {}, params["grant"]
    report: dict[str, Any] = {"files": [], "left_out": {}, "errors": []}
    changed = []
    for rel, size, kind in walk(root):
        if kind != "file" or matches(rel, params.get("exclude") or ()) or matches(rel, SECRET_FILES):
            continue
        if rel.startswith(".mlp-sync-") or "/.mlp-sync-" in rel:
            continue
        if size > params["max_file_bytes"]:
            report["left_out"].setdefault("over the file cap", []).append(rel)
            continue
        try:
            digest = sha256_file(os.path.join(root, rel))
        except OSError:
            continue
        if sent.get(rel) != digest:
            changed.append((size, rel, digest))
    total = 0
    for size, rel, digest in sorted(changed):
        if len(report["files"]) >= params["max_files"]:
            report["left_out"].setdefault("over the file-count cap", []).append(rel)
            continue
        if total + size > params["max_bytes"]:
            report["left_out"].setdefault("over the total cap", []).append(rel)
            continue
        key = f"{grant['key_prefix']}f{len(report['files']):05d}"
        try:
            _post(grant, key, path=os.path.join(root, rel))
        except (OSError, _TransferError) as exc:
            report["errors"].append(f"{rel}: {exc}")
            continue
        total += size
        report["files"].append({"path": rel, "key": key, "bytes": size, "sha256": digest})
    report["seconds"] = round(time.monotonic() - started, 3)
    return json.dumps(report)
