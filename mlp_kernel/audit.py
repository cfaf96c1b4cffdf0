"""The audit log: one JSON line per decision a platform team has to be able to account for afterwards.

What is recorded: every placement that ran on a public (paid) member, every refusal for a budget or a data
class, and every admin change (policy, pod templates). Each line says who (``user``, ``team``), what
(``event`` plus the event's own fields), when (``time``, UTC ISO 8601) and why (``why``: the same sentence
the user or admin was shown).

Why a file that both processes append to, and not a call into the server: the gateway (which places and
refuses) is a separate process from the notebook server (which serves ``/metrics`` and the admin page), and
it must not depend on the server being reachable to leave a record. Each ``record`` is one ``write`` of one
line on a descriptor opened with ``O_APPEND``, so lines from any number of processes interleave whole and are
never rewritten. The server extension counts the lines for Prometheus by reading the same file from where it
stopped (``server/audit_metrics.py``), so the counters say exactly what the log says.

Where it goes (``MLP_KERNEL_AUDIT_LOG`` in the server's environment, which its kernels inherit):

- unset: ``<jupyter data dir>/mlp-kernel/audit.jsonl``;
- a path: that file (created with its directories, mode 0600);
- ``-``: the process's standard output (a log collector reads the server's and its kernels' stdout); the
  Prometheus counters then come from the collector, not from the file.
- ``off``: nothing is written (tests of other parts, or a deployment that audits elsewhere).

Recording never raises: an audit sink that is full or gone is logged once per process and the decision
goes on (the decision itself is what the user is waiting for). Bottom layer: it imports nothing of the
product.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

AUDIT_ENV = "MLP_KERNEL_AUDIT_LOG"
STDOUT = "-"
OFF = "off"

# The events this product records; the Prometheus counter is labelled with them.
PUBLIC_PLACEMENT = "public_placement"
BUDGET_REFUSAL = "budget_refusal"
DATA_CLASS_REFUSAL = "data_class_refusal"
ADMIN_CHANGE = "admin_change"
EVENTS = (PUBLIC_PLACEMENT, BUDGET_REFUSAL, DATA_CLASS_REFUSAL, ADMIN_CHANGE)

log = logging.getLogger("mlp_kernel.audit")
_warned = False


def default_path() -> Path:
    """The per-server audit file when ``MLP_KERNEL_AUDIT_LOG`` is unset."""
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "mlp-kernel" / "audit.jsonl"


def destination(environ: dict[str, str] | None = None) -> str:
    """Where records go: a file path, ``-`` (stdout) or ``off``."""
    env = os.environ if environ is None else environ
    value = env.get(AUDIT_ENV, "").strip()
    return value or str(default_path())


def line(event: str, *, user: str, team: str, why: str, when: datetime | None = None, **what: Any) -> str:
    """The JSON line ``record`` writes (no trailing newline). ``what``'s keys never override the five
    fixed ones: a caller's field called ``user`` is kept as ``what_user``."""
    when = when or datetime.now(timezone.utc)
    doc: dict[str, Any] = {
        "time": when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        "event": event,
        "user": user,
        "team": team,
        "why": why,
    }
    for key, value in what.items():
        doc[f"what_{key}" if key in doc else key] = value
    return json.dumps(doc, sort_keys=False, default=str, separators=(",", ":"))


def record(event: str, *, user: str, team: str, why: str, **what: Any) -> None:
    """Append one audit line. ``what`` holds the event's own fields (member, flavor, price, budget, spend,
    limit, revision ...); values must be JSON-serialisable or are written as their ``str``."""
    global _warned
    dest = destination()
    if dest == OFF:
        return
    data = (line(event, user=user, team=team, why=why, **what) + "\n").encode()
    try:
        if dest == STDOUT:
            os.write(1, data)  # fd 1, not sys.stdout: the line must reach the collector whole
            return
        path = Path(dest).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        if not _warned:
            _warned = True
            log.error("audit log %s cannot be written (%s); audit records are being lost", dest, exc)


def read(path: str | Path) -> list[dict[str, Any]]:
    """Every record of an audit file, oldest first (lines that are not JSON objects are skipped)."""
    out: list[dict[str, Any]] = []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return out
    for raw in text.splitlines():
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out
