"""Build the self-contained source the gateway sends to the remote kernel to snapshot or restore it.

The remote kernel has no mlp_kernel, so the source of ``agent.py`` travels inside the code as a string
literal and is executed in a private dictionary: none of its helpers land in the user's namespace. Parameters
are validated here and embedded as one JSON document inside a ``repr()`` string literal, so nothing a user
typed is ever spliced into Python source. The only name the code leaves behind is ``REPORT_NAME``, holding
the JSON report; the gateway reads it with ``user_expressions={REPORT_KEY: REPORT_EXPR}``, an expression that
pops it, so the namespace is left as the user had it (see docs/snapshots.md).

Compiling the agent's source costs the kernel ~18 ms per request (the development machine), on the path of
the first cell after a release. So the compiled code is kept in the kernel (an attribute of ``sys``, by the
source's digest: a newer gateway's agent is compiled anew) and each request runs it in a fresh private
dictionary; ``prime_code`` compiles it ahead, for a warm-pool kernel before anyone claims it (issue 18).

Sending the 34 KB source still cost the kernel ~10 ms per request even with the code cached (the message's
signature and JSON, IPython's cell transforms and the parse of the literal): so a gateway that knows the
kernel holds the compiled agent (a primed warm-pool kernel, or one that already ran a request of this
gateway) sends ``compiled=True`` code, which names the cached code by digest and carries no source. Should
the cache not hold it (a pool kernel primed by another version, a restarted kernel), that code changes
nothing and reports ``AGENT_MISSING``; the gateway then sends the whole program (``agent_missing``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

REPORT_NAME = "__mlp_snapshot_report__"
REPORT_EXPR = f"globals().pop({REPORT_NAME!r}, None)"
REPORT_KEY = "r"

# What an ``exclude`` entry may look like: a Python name, optionally with fnmatch wildcards (``tmp_*``,
# ``df?``, ``[ab]_*``). Patterns travel as data either way; the check only catches typos early.
_EXCLUDE = re.compile(r"[A-Za-z_*?\[][A-Za-z0-9_*?\[\]!-]*")
_ENTRY_NAME = "__mlp_snapshot_entry__"
_PRIME_NAME = "__mlp_snapshot_prime__"
_CACHE = "_mlp_agent_code"  # the kernel's compiled agent code: sys._mlp_agent_code[digest of the source]
_AGENT_LABELS = {"agent.py": "<mlp-kernel snapshot agent>"}
AGENT_MISSING = "the snapshot agent is not compiled in this kernel"
# the report of ``compiled=True`` code in a kernel without the cached agent: a failure that did nothing
_MISSING_REPORT = json.dumps({"ok": False, "kind": "agent", "error": AGENT_MISSING})


@lru_cache(maxsize=4)
def agent_source(name: str = "agent.py") -> str:
    """The source of an in-kernel agent file, read from the package (works from a wheel or a source tree)."""
    return resources.files("mlp_kernel.snapshot").joinpath(name).read_text(encoding="utf-8")


def user_expressions() -> dict[str, str]:
    """The ``user_expressions`` to send with a snapshot or restore request."""
    return {REPORT_KEY: REPORT_EXPR}


def snapshot_code(
    path: str, *, user: str, max_bytes: int | None, exclude: Sequence[str] = (), compiled: bool = False
) -> str:
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
    return _program("snapshot", params, compiled=compiled)


def restore_code(path: str, *, user: str, compiled: bool = False) -> str:
    """Source that loads the snapshot under ``path`` into the user namespace, if ``user`` owns it
    (``compiled``: without the agent's source, module docstring)."""
    return _program("restore", {"path": _check_path(path), "user": _check_user(user)}, compiled=compiled)


def forget_code(path: str, *, user: str) -> str:
    """Source that deletes the snapshot under ``path`` from inside a kernel, if ``user`` owns it.

    For stores only pods can reach (the Kubernetes per-user volume); the local store uses
    ``SnapshotStore.forget`` instead.
    """
    return _program("forget", {"path": _check_path(path), "user": _check_user(user)})


def snapshot_s3_code(
    upload: Mapping[str, Any], *, user: str, max_bytes: int | None, exclude: Sequence[str] = ()
) -> str:
    """Source that saves the namespace to a bucket with the grants of ``S3Snapshots.prepare_upload``.

    ``upload`` holds presigned POST policies (short-lived, limited to one kernel's prefix), never a
    credential; see ``s3.py``.
    """
    params = {
        "user": _check_user(user),
        "max_bytes": _check_max_bytes(max_bytes),
        "exclude": validate_exclude(exclude),
        "data": _check_str(upload, "data"),
        "max_file_bytes": _check_max_bytes(upload.get("max_file_bytes")),
        "data_post": _check_post(upload.get("data_post"), "key_prefix"),
        "manifest_post": _check_post(upload.get("manifest_post"), "key"),
    }
    return _program("snapshot_s3", params, s3=True)


def restore_s3_code(plan: Mapping[str, Any], *, user: str, compiled: bool = False) -> str:
    """Source that loads the snapshot of ``S3Snapshots.restore_plan`` (checked manifest, signed GETs)."""
    files = plan.get("files")
    if not isinstance(plan.get("manifest"), Mapping) or not isinstance(files, Mapping):
        raise ValueError("a restore plan needs a manifest and files")
    for name, info in files.items():
        if not isinstance(name, str) or not isinstance(info, Mapping):
            raise ValueError(f"invalid file {name!r} in the restore plan")
        _check_url(info.get("url"))
    params = {"user": _check_user(user), "manifest": dict(plan["manifest"]),
              "files": {name: dict(info) for name, info in files.items()}}  # fmt: skip
    return _program("restore_s3", params, s3=True, compiled=compiled)


def _check_str(mapping: Mapping[str, Any], key: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ValueError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _check_url(url: object) -> str:
    if not isinstance(url, str) or not re.match(r"https?://[^\s]+$", url):
        raise ValueError("a presigned URL must be an http(s) URL")
    return url


def _check_post(post: object, key_field: str) -> dict[str, Any]:
    if not isinstance(post, Mapping) or not isinstance(post.get("fields"), Mapping):
        raise ValueError("a presigned POST needs a url and fields")
    fields = {str(k): str(v) for k, v in post["fields"].items()}
    if any(ch in text for text in (*fields, *fields.values()) for ch in '"\r\n'):
        raise ValueError("presigned POST fields must not hold quotes or line breaks")
    return {"url": _check_url(post.get("url")), "fields": fields, key_field: _check_str(post, key_field)}


@lru_cache(maxsize=8)
def agent_digest(name: str = "agent.py") -> str:
    """The key of agent file ``name``'s compiled code in the kernel's cache (``sys._mlp_agent_code``)."""
    return hashlib.sha256(agent_source(name).encode()).hexdigest()[:16]


@lru_cache(maxsize=8)
def _compiled(name: str) -> str:
    """Lines (in a function that bound ``cache``) that leave agent file ``name``'s code object in ``code``,
    compiled once per kernel and source."""
    source, digest = agent_source(name), agent_digest(name)
    label = _AGENT_LABELS.get(name, f"<mlp-kernel agent {name}>")
    return (
        f"    code = cache.get({digest!r})\n"
        f"    if code is None:\n"
        f"        code = cache[{digest!r}] = compile({source!r}, {label!r}, 'exec')\n"
    )


def _cache_line() -> str:
    return f"    import sys\n    cache = sys.__dict__.setdefault({_CACHE!r}, {{}})\n"


def _cached(name: str) -> str:
    """Lines that leave agent file ``name``'s cached code in ``code``, or return ``_MISSING_REPORT``."""
    return (
        f"    code = cache.get({agent_digest(name)!r})\n"
        f"    if code is None:\n"
        f"        return {_MISSING_REPORT!r}\n"
    )


def _program(
    entry: str,
    params: Mapping[str, object],
    s3: bool = False,
    more: Sequence[str] = (),
    compiled: bool = False,
) -> str:
    """``agent.py`` (then ``agent_s3.py`` when ``s3``, then the files of ``more``) run in one private
    dictionary, and its ``entry`` called with ``params`` as JSON; the report left in ``REPORT_NAME``.
    ``compiled``: the kernel's cached code, no source (``AGENT_MISSING`` reported where there is none)."""
    payload = json.dumps(params, sort_keys=True)
    names = ("agent.py", *(("agent_s3.py",) if s3 else ()), *more)
    load = _cached if compiled else _compiled
    return (
        f"def {_ENTRY_NAME}():\n"
        f"{_cache_line()}"
        f"    agent = {{'__name__': '__mlp_snapshot_agent__'}}\n"
        + "".join(f"{load(name)}    exec(code, agent)\n" for name in names)
        + f"    return agent[{entry!r}]({payload!r})\n"
        f"try:\n"
        f"    {REPORT_NAME} = {_ENTRY_NAME}()\n"
        f"finally:\n"
        f"    del {_ENTRY_NAME}\n"
    )


def prime_code(names: Sequence[str] = ("agent.py", "agent_s3.py")) -> str:
    """Source that compiles the agent files ``names`` into the kernel's cache and runs none of them: nothing
    of a user in it, so a warm-pool kernel runs it before it is claimed. Leaves no name behind."""
    return (
        f"def {_PRIME_NAME}():\n"
        f"{_cache_line()}" + "".join(_compiled(name) for name in names) + f"try:\n"
        f"    {_PRIME_NAME}()\n"
        f"finally:\n"
        f"    del {_PRIME_NAME}\n"
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
