"""Build the self-contained source the gateway sends to the remote kernel to snapshot or restore it.

The remote kernel has no mlp_kernel, so the source of ``agent.py`` travels inside the code as a string
literal and is executed in a private dictionary: none of its helpers land in the user's namespace. Parameters
are validated here and embedded as one JSON document inside a ``repr()`` string literal, so nothing a user
typed is ever spliced into Python source. The only name the code leaves behind is ``REPORT_NAME``, holding
the JSON report; the gateway reads it with ``user_expressions={REPORT_KEY: REPORT_EXPR}``, an expression that
pops it, so the namespace is left as the user had it (see docs/snapshots.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources

REPORT_NAME = "__mlp_snapshot_report__"
REPORT_EXPR = f"globals().pop({REPORT_NAME!r}, None)"
REPORT_KEY = "r"

# What an ``exclude`` entry may look like: a Python name, optionally with fnmatch wildcards (``tmp_*``,
# ``df?``, ``[ab]_*``). Patterns travel as data either way; the check only catches typos early.
_EXCLUDE = re.compile(r"[A-Za-z_*?\[][A-Za-z0-9_*?\[\]!-]*")
_ENTRY_NAME = "__mlp_snapshot_entry__"


@lru_cache(maxsize=1)
def agent_source() -> str:
    """The source of the in-kernel agent, read from the package (works from a wheel or a source tree)."""
    return resources.files("mlp_kernel.snapshot").joinpath("agent.py").read_text(encoding="utf-8")


def user_expressions() -> dict[str, str]:
    """The ``user_expressions`` to send with a snapshot or restore request."""
    return {REPORT_KEY: REPORT_EXPR}


def snapshot_code(path: str, *, user: str, max_bytes: int | None, exclude: Sequence[str] = ()) -> str:
    """Source that saves the kernel's user namespace under ``path`` (a directory, created 0700).

    ``max_bytes`` caps the bytes written (``None``: no cap; small variables are saved first and the ones that
    do not fit are reported as over the cap). ``exclude`` holds names or fnmatch patterns not to save.
    """
    params = {
        "path": _check_path(path),
        "user": _check_user(user),
        "max_bytes": _check_max_bytes(max_bytes),
        "exclude": validate_exclude(exclude),
    }
    return _program("snapshot", params)


def restore_code(path: str, *, user: str) -> str:
    """Source that loads the snapshot under ``path`` into the user namespace, if ``user`` owns it."""
    return _program("restore", {"path": _check_path(path), "user": _check_user(user)})


def forget_code(path: str, *, user: str) -> str:
    """Source that deletes the snapshot under ``path`` from inside a kernel, if ``user`` owns it.

    For stores only pods can reach (the Kubernetes per-user volume); the local store uses
    ``SnapshotStore.forget`` instead.
    """
    return _program("forget", {"path": _check_path(path), "user": _check_user(user)})


def _program(entry: str, params: Mapping[str, object]) -> str:
    payload = json.dumps(params, sort_keys=True)
    return (
        f"def {_ENTRY_NAME}():\n"
        f"    agent = {{'__name__': '__mlp_snapshot_agent__'}}\n"
        f"    exec(compile({agent_source()!r}, '<mlp-kernel snapshot agent>', 'exec'), agent)\n"
        f"    return agent[{entry!r}]({payload!r})\n"
        f"try:\n"
        f"    {REPORT_NAME} = {_ENTRY_NAME}()\n"
        f"finally:\n"
        f"    del {_ENTRY_NAME}\n"
    )


def _check_path(path: object) -> str:
    text = str(path)
    if not text.startswith("/") or "\x00" in text or "\n" in text:
        raise ValueError(f"snapshot path must be an absolute path, got {text!r}")
    return text


def _check_user(user: object) -> str:
    if not isinstance(user, str) or not user.strip() or "\x00" in user:
        raise ValueError(f"snapshot user must be a non-empty string, got {user!r}")
    return user


def _check_max_bytes(max_bytes: object) -> int | None:
    if max_bytes is None:
        return None
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"snapshot max_bytes must be None or a number of bytes >= 0, got {max_bytes!r}")
    return max_bytes


def validate_exclude(exclude: Sequence[str]) -> list[str]:
    """The ``exclude`` patterns as a list, or ``ValueError`` naming the bad one (for policy loading too)."""
    if isinstance(exclude, str):
        raise ValueError("snapshot exclude must be a list of names, not one string")
    patterns = []
    for item in exclude:
        if not isinstance(item, str) or not _EXCLUDE.fullmatch(item):
            raise ValueError(
                f"cannot exclude {item!r}: expected a Python name, optionally with *, ? or [...] wildcards"
            )
        patterns.append(item)
    return patterns
