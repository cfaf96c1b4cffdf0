"""Carry a notebook's variables across remote kernel releases and moves.

Before an idle release, ``%gpu release`` or a move, the gateway sends the remote kernel a silent
execute_request with ``snapshot_code(...)`` and ``user_expressions()``; it reads the outcome with
``parse_report`` and shows ``report.summary_line("saved")``. When it starts the next remote kernel it does the
same with ``restore_code(...)`` before the user's cell. See docs/snapshots.md for the formats and the security
model.

- ``store``   where snapshots live on local disk (``SnapshotStore``);
- ``codegen`` the self-contained source sent to the kernel (``snapshot_code``, ``restore_code``);
- ``agent``   that source, run inside the kernel (stdlib; cloudpickle, numpy, torch when present);
- ``report``  the kernel's answer (``parse_report``, ``SnapshotReport``, ``SnapshotError``);
- ``s3`` / ``s3_config`` snapshots in an S3-compatible bucket: the gateway's side (boto3, imported lazily)
  and the policy settings; ``agent_s3`` is the in-kernel side (presigned POST/GET with the stdlib);
- ``policy``  pure rules: ``snapshot_allowed`` for private data classes, ``keep_limit`` for ``%gpu keep=``.
"""

from . import storage as storage  # registers the policy's snapshot.storage check with the loader
from .codegen import (
    REPORT_EXPR,
    REPORT_KEY,
    REPORT_NAME,
    forget_code,
    restore_code,
    restore_s3_code,
    snapshot_code,
    snapshot_s3_code,
    user_expressions,
)
from .policy import keep_limit, snapshot_allowed
from .report import SnapshotError, SnapshotReport, parse_report
from .store import SnapshotStore, default_root

__all__ = [
    "REPORT_EXPR",
    "REPORT_KEY",
    "REPORT_NAME",
    "SnapshotError",
    "SnapshotReport",
    "SnapshotStore",
    "default_root",
    "forget_code",
    "keep_limit",
    "parse_report",
    "restore_code",
    "restore_s3_code",
    "snapshot_allowed",
    "snapshot_code",
    "snapshot_s3_code",
    "user_expressions",
]
