"""The code the gateway sends to a GPU kernel for ``workspace_sync``, and the kernel's reports.

Built as the snapshot code is (``codegen``): the in-kernel agents travel as string literals and run in a
private dictionary, parameters are one JSON document inside a ``repr()`` literal (no user text is ever spliced
into Python source), and the report comes back through ``user_expressions`` (``REPORT_KEY``), leaving the
user's namespace as it was. The grants inside are presigned URLs for this kernel's prefix only.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

from .codegen import REPORT_KEY, _check_post, _check_url, _program
from .report import SnapshotError

AGENTS = ("sync_walk.py", "agent_sync.py")


def fetch_code(files: Mapping[str, Mapping[str, Any]]) -> str:
    """Source that downloads ``files`` (path -> ``{url, bytes}``, ``SyncBucket.fetch_plan``) into the cwd."""
    checked = {}
    for rel, info in files.items():
        if not isinstance(rel, str) or not isinstance(info, Mapping):
            raise ValueError(f"invalid file {rel!r} in the fetch plan")
        checked[rel] = {"url": _check_url(info.get("url")), "bytes": int(info.get("bytes") or 0)}
    return _program("fetch", {"files": checked}, s3=True, more=AGENTS)


def back_code(
    grant: Mapping[str, Any],
    sent: Mapping[str, str],
    *,
    max_bytes: int,
    max_file_bytes: int,
    max_files: int,
    exclude: tuple[str, ...] = (),
) -> str:
    """Source that uploads the cwd's new or changed files (vs ``sent``: path -> sha256) with ``grant``."""
    params = {
        "grant": _check_post(grant, "key_prefix"),
        "sent": {str(k): str(v) for k, v in sent.items()},
        "max_bytes": int(max_bytes),
        "max_file_bytes": int(max_file_bytes),
        "max_files": int(max_files),
        "exclude": [str(p) for p in exclude],
    }
    return _program("back", params, s3=True, more=AGENTS)


def parse_sync_report(user_expressions: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON report of ``fetch_code`` or ``back_code``; ``SnapshotError`` when the kernel gave none."""
    result = (user_expressions or {}).get(REPORT_KEY)
    if not isinstance(result, Mapping) or result.get("status") != "ok":
        raise SnapshotError("The GPU kernel sent no report on the notebook's files (its code failed).")
    try:
        payload = ast.literal_eval((result.get("data") or {}).get("text/plain", ""))
        report = json.loads(payload)
    except (ValueError, SyntaxError, TypeError) as exc:
        raise SnapshotError(
            f"The GPU kernel's report on the notebook's files is unreadable ({exc})."
        ) from None
    if not isinstance(report, dict):
        raise SnapshotError("The GPU kernel's report on the notebook's files is not an object.")
    return report
