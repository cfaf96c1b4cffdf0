"""One validation finding, shared by every checker of what admins edit: policy, pod templates, kernelspecs.

The policy loader, the pod template check and the admin page's server validation each had an issue type of
their own (``PolicyIssue(path, message, line)``, ``TemplateIssue(line, message)``, the server's
``Issue(message, line, field, severity)``), and the server read the other two by ``getattr`` so neither type
was a contract. This is the one type: where (a dotted field path, a 1-based line), what, and whether it blocks
saving. Every checker returns it; the server sends ``to_json()`` to the admin page unchanged.

This is the bottom layer: it imports nothing from the rest of the package, so anything may import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Issue:
    """One problem: ``path`` is the dotted field path (``flavors.gold.price_per_gpu_hour``, ``""`` for the
    whole file), ``line`` the 1-based line when known; an ``error`` blocks saving, a ``warning`` does not."""

    path: str
    message: str
    line: int | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.message}" + (f" (line {self.line})" if self.line else "")

    @property
    def field(self) -> str | None:
        """The path, or None for the whole file (the admin page's name for it)."""
        return self.path or None

    def to_json(self) -> dict[str, Any]:
        """For the admin page: ``field`` (the path, or null), ``message``, ``line``, ``severity``."""
        return {
            "message": self.message,
            "line": self.line,
            "field": self.field,
            "severity": self.severity,
        }


def has_errors(issues: Iterable[Issue]) -> bool:
    """Whether any issue blocks saving."""
    return any(i.severity == "error" for i in issues)


def format_path(path: Iterable[str | int]) -> str:
    """``("flavors", "gold", "tolerations", 0, "effect")`` -> ``flavors.gold.tolerations[0].effect``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text
