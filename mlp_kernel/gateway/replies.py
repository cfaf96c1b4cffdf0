"""Replies the gateway gives itself while no remote kernel exists.

A notebook that has just been opened asks for kernel_info, comm_info, history, completions and code
completeness. None of these may start a GPU kernel, so the gateway answers them the way ipykernel would for a
kernel with an empty namespace. Pure functions over message contents.
"""

from __future__ import annotations

import codeop
import platform
import warnings
from typing import Any

from .. import __version__

LANGUAGE_INFO = {
    "name": "python",
    "version": platform.python_version(),
    "mimetype": "text/x-python",
    "codemirror_mode": {"name": "ipython", "version": 3},
    "pygments_lexer": "ipython3",
    "nbconvert_exporter": "python",
    "file_extension": ".py",
}


def kernel_info() -> dict[str, Any]:
    return {
        "status": "ok",
        "protocol_version": "5.3",
        "implementation": "mlp-gpu-auto",
        "implementation_version": __version__,
        "language_info": LANGUAGE_INFO,
        "banner": (
            f"GPU (auto) {__version__}: Python runs on a GPU kernel that starts with the first cell and is "
            "released when idle. Type %gpu help for options."
        ),
        "help_links": [
            {"text": "GPU (auto) %gpu reference", "url": "https://github.com/mlp-kernel/mlp-kernel"}
        ],
        "debugger": True,
        "supported_features": ["debugger"],
    }


def is_complete(code: str) -> dict[str, Any]:
    """Like IPython's check_complete, for plain Python (``%`` lines count as complete statements)."""
    lines = [ln for ln in code.split("\n") if not ln.lstrip().startswith(("%", "!"))]
    source = "\n".join(lines)
    if not source.strip():
        return {"status": "complete"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = codeop.compile_command(source, symbol="exec")
    except (SyntaxError, OverflowError, ValueError):
        return {"status": "invalid"}
    if compiled is None:
        last = source.rstrip("\n").split("\n")[-1]
        indent = len(last) - len(last.lstrip())
        if last.rstrip().endswith(":"):
            indent += 4
        return {"status": "incomplete", "indent": " " * indent}
    if source.count("\n") and source.split("\n")[-1].startswith((" ", "\t")) and not code.endswith("\n\n"):
        return {"status": "incomplete", "indent": ""}
    return {"status": "complete"}


def complete(content: dict[str, Any]) -> dict[str, Any]:
    pos = int(content.get("cursor_pos", len(content.get("code", ""))))
    return {"status": "ok", "matches": [], "cursor_start": pos, "cursor_end": pos, "metadata": {}}


def inspect(content: dict[str, Any]) -> dict[str, Any]:
    return {"status": "ok", "found": False, "data": {}, "metadata": {}}


def history(content: dict[str, Any], session: int, entries: list[str]) -> dict[str, Any]:
    """Answer from the cells this gateway has seen (they survive GPU releases, unlike IPython's own)."""
    numbered = [(session, i + 1, code) for i, code in enumerate(entries)]
    kind = content.get("hist_access_type", "tail")
    if kind == "tail":
        n = int(content.get("n") or 10)
        items = numbered[-n:] if n > 0 else []
    elif kind == "range":
        start = int(content.get("start") or 0)
        stop = content.get("stop")
        items = [e for e in numbered if e[1] >= start and (stop is None or e[1] < int(stop))]
    elif kind == "search":
        import fnmatch

        pattern = str(content.get("pattern") or "*")
        items = [e for e in numbered if fnmatch.fnmatch(e[2], pattern)]
        if content.get("unique"):
            seen: set[str] = set()
            items = [e for e in items if not (e[2] in seen or seen.add(e[2]))]  # type: ignore[func-returns-value]
        last = content.get("n")
        if last:
            items = items[-int(last) :]
    else:
        items = []
    if content.get("output"):
        items = [(s, ln, (code, None)) for s, ln, code in items]  # type: ignore[misc]
    return {"status": "ok", "history": items}


def debug_info() -> dict[str, Any]:
    """The answer to ``debugInfo`` while no remote kernel (and so no debugger) exists."""
    return {
        "type": "response",
        "request_seq": 0,
        "success": True,
        "command": "debugInfo",
        "body": {
            "isStarted": False,
            "hashMethod": "Murmur2",
            "hashSeed": 3339675911,
            "tmpFilePrefix": "/tmp/ipykernel_0/",
            "tmpFileSuffix": ".py",
            "breakpoints": [],
            "stoppedThreads": [],
            "richRendering": True,
            "exceptionPaths": ["Python Exceptions"],
            "copyToGlobals": True,
        },
    }
