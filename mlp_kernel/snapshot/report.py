"""What a snapshot or restore did, parsed from the kernel's reply, and the one line the user reads about it.

The in-kernel agent answers with a JSON document; the gateway gets it back as the ``text/plain`` repr of a str
inside the execute_reply's ``user_expressions``. Parsing lives here so the gateway handles one typed value
(``SnapshotReport``) and one exception (``SnapshotError``) instead of Jupyter message details.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mlp_kernel.placement.units import format_size

from .codegen import AGENT_MISSING, REPORT_KEY

_MAX_NAMES_SHOWN = 8


class SnapshotError(Exception):
    """The snapshot or restore did not happen; the message says why and what the user can do.

    ``report`` holds the kernel's report when there was one (a failure the agent caught and described).
    """

    def __init__(self, message: str, report: SnapshotReport | None = None) -> None:
        super().__init__(message)
        self.report = report

    @property
    def agent_missing(self) -> bool:
        """Code sent without the agent's source (``compiled=True``) found no compiled agent in the kernel: it
        did nothing, and the whole program is to be sent instead."""
        return self.report is not None and self.report.error == AGENT_MISSING


@dataclass(frozen=True)
class SnapshotReport:
    """The outcome of one snapshot (``kind="snapshot"``) or restore (``kind="restore"``) in the kernel.

    ``saved`` lists the variables written (or, for a restore, loaded), ``skipped`` maps each variable that was
    not to the reason, ``notes`` carries remarks about saved ones (``"restored to CPU: no GPU in this
    kernel"``). ``bytes`` is what went to (or came from) disk, ``seconds`` the time spent in the kernel.
    """

    ok: bool
    saved: list[str]
    skipped: dict[str, str]
    count: int
    bytes: int
    seconds: float
    notes: dict[str, str] = field(default_factory=dict)
    kind: str = "snapshot"
    error: str | None = None

    @classmethod
    def from_json(cls, text: str) -> SnapshotReport:
        try:
            data = json.loads(text)
            return cls(
                ok=bool(data["ok"]),
                saved=[str(n) for n in data.get("saved", [])],
                skipped={str(k): str(v) for k, v in (data.get("skipped") or {}).items()},
                count=int(data.get("count", 0)),
                bytes=int(data.get("bytes", 0)),
                seconds=float(data.get("seconds", 0.0)),
                notes={str(k): str(v) for k, v in (data.get("notes") or {}).items()},
                kind=str(data.get("kind", "snapshot")),
                error=None if data.get("error") is None else str(data["error"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SnapshotError(f"The kernel's snapshot report could not be read ({exc}).") from exc

    def summary_line(self, kind: Literal["saved", "restored"] = "saved") -> str:
        """One line for the cell output.

        e.g. ``Saved 12 variables (340 MiB) in 2.1 s; not saved: f (open file), gen (generator)``.
        """
        if not self.ok:
            action = "Snapshot" if kind == "saved" else "Restore"
            return f"{action} failed: {self.error or 'unknown error'}"
        noun = "variable" if self.count == 1 else "variables"
        line = f"{kind.capitalize()} {self.count} {noun} ({format_size(self.bytes)}) in {self.seconds:.1f} s"
        if self.skipped:
            line += f"; not {kind}: " + _named(self.skipped)
        if self.notes:
            line += "; " + _named(self.notes)
        return line


def _named(reasons: Mapping[str, str]) -> str:
    items = [f"{name} ({reason})" for name, reason in list(reasons.items())[:_MAX_NAMES_SHOWN]]
    if len(reasons) > _MAX_NAMES_SHOWN:
        items.append(f"and {len(reasons) - _MAX_NAMES_SHOWN} more")
    return ", ".join(items)


def parse_report(user_expressions: Mapping[str, Any]) -> SnapshotReport:
    """The report in an execute_reply's ``user_expressions`` (sent as ``{REPORT_KEY: REPORT_EXPR}``).

    Raises ``SnapshotError`` when there is none (the code raised before finishing: the reply's status is
    ``error`` and ipykernel then evaluates no expressions), when the expression failed, or when the kernel's
    report says the snapshot or restore failed.
    """
    if not user_expressions or REPORT_KEY not in user_expressions:
        raise SnapshotError(
            "The kernel sent no snapshot report: the snapshot code stopped with an error before it finished "
            "(see the execute_reply's traceback). The kernel is still running; nothing was released."
        )
    result = user_expressions[REPORT_KEY]
    if not isinstance(result, Mapping) or result.get("status") != "ok":
        ename = result.get("ename", "error") if isinstance(result, Mapping) else "error"
        evalue = result.get("evalue", "") if isinstance(result, Mapping) else repr(result)
        raise SnapshotError(f"Reading the snapshot report in the kernel failed ({ename}: {evalue}).")
    text = (result.get("data") or {}).get("text/plain")
    if not isinstance(text, str) or text == "None":
        raise SnapshotError("The kernel had no snapshot report to give (was the snapshot code sent first?).")
    try:
        payload = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise SnapshotError(f"The kernel's snapshot report is not a string literal: {text[:80]!r}") from exc
    if not isinstance(payload, str):
        raise SnapshotError(f"The kernel's snapshot report is not a string: {text[:80]!r}")
    report = SnapshotReport.from_json(payload)
    if not report.ok:
        action = report.kind.capitalize() if report.kind in ("snapshot", "restore", "forget") else "Snapshot"
        raise SnapshotError(f"{action} failed in the kernel: {report.error or 'unknown error'}", report)
    return report
