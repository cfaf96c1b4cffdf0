"""The ``%gpu`` line magic: parsing and validation (pure, no I/O).

``%gpu`` lines at the top of a cell are handled by the gateway and never reach the remote kernel (which does
not know the magic and may not even exist yet). Parsing is an allow-list: every token must be a known verb or
``key=value`` option whose value is checked against the policy, so nothing a user types reaches a pod spec
except as a validated, typed value. Any error rejects the whole cell before anything changes.

Every value also has a range (``RANGES``, documented in docs/user-guide.md). A value that parses is not
necessarily one the rest of the kernel can hold: ``idle=1e12`` overflows the release timer,
``deadline=+1e308`` a ``datetime``, ``memory=`` with hundreds of digits ``int(float(...))``; each of those
used to escape as an ``OverflowError`` (no reply to the cell) or to end a serving task. So the only exception
that leaves ``parse_magics`` is ``MagicError``, and a value it accepts is within its range.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from ..placement.units import (
    MAX_DURATION_S,
    format_duration,
    format_size,
    parse_deadline,
    parse_duration,
    parse_size,
)
from .errors import GpuMagicError

VERBS = ("status", "release", "explain", "forget", "help", "reset")
MAGIC_RE = re.compile(r"^\s*%gpu(\s|$)")
USAGE = """\
%gpu                      status: state, where, flavor/GPU, since when, idle countdown
%gpu explain              the last placement decision and its reasons
%gpu release              release the GPU kernel now (variables are carried over when enabled)
%gpu forget               drop the saved variables of this notebook
%gpu reset                back to the kernelspec's default request
%gpu a100 | h100:2        ask for a GPU model (and count); the pod is pinned to that model's nodes
%gpu v100+ | v100+:2      that model or better: a higher tier (e.g. Gold) may serve it, and burst
%gpu upgrade=on|off       allow or refuse "or better" for the model asked for (off: exactly that model)
%gpu gpus=2               ask for a GPU count
%gpu tier=silver          ask for a tier instead of a model
%gpu burst=on|off budget=flex|fixed deadline=2026-12-01T18:00|+2h|none
%gpu data=CLASS           the data class of this notebook (sensitive classes never leave private)
%gpu cpu=4 memory=16Gi    CPU and memory for the GPU kernel
%gpu idle=20m             release after 20 minutes idle (0 = never)
%gpu keep=on|off|2Gi      carry variables over a release (on/off, or on with a size cap)"""

MIN_IDLE_S = 1.0
MAX_CPU = 1024.0
MIN_BYTES, MAX_BYTES = 2**20, 16 * 2**40
RANGES = {
    "gpus": "1 to the policy's max_gpus",
    "deadline": f"after now, at most {format_duration(MAX_DURATION_S)} ahead",
    "idle": f"0 (never) or {format_duration(MIN_IDLE_S)} to {format_duration(MAX_DURATION_S)}",
    "cpu": f"1m (a thousandth of a core) to {MAX_CPU:g}",
    "memory": f"{format_size(MIN_BYTES)} to {format_size(MAX_BYTES)}",
    "keep": f"on, off, or a size from {format_size(MIN_BYTES)} to {format_size(MAX_BYTES)}",
}


class PolicyView(Protocol):
    """What the magic needs to know about the policy (``mlp_kernel.placement.Policy`` satisfies it)."""

    @property
    def tiers(self) -> tuple[str, ...]: ...  # read-only: the policy is frozen
    @property
    def max_gpus(self) -> int: ...
    @property
    def data_classes(self) -> frozenset[str]: ...

    def gpu_models(self) -> list[str]: ...


#: A ``%gpu`` line that cannot be accepted; the message says what, where and what to type instead. The
#: parser's own name for ``errors.GpuMagicError`` (the class, so the cell's ``ename`` is GpuMagicError).
MagicError = GpuMagicError


@dataclass
class GpuCommand:
    """Everything the ``%gpu`` lines of one cell ask for, after validation."""

    verbs: list[str] = field(default_factory=list)
    request: dict[str, Any] = field(default_factory=dict)  # GpuRequest field -> value
    idle_s: float | None = None
    keep: bool | None = None
    keep_max_bytes: int | None = None
    upgrade_given: bool = False  # upgrade= was typed: a later plain model token in the cell keeps it

    @property
    def changes_request(self) -> bool:
        return bool(self.request) or "reset" in self.verbs


def split_cell(code: str) -> tuple[list[str], str]:
    """Return the ``%gpu`` lines at the top of ``code`` and the rest of the cell.

    Blank lines before and between magic lines are allowed; the first other line starts the code.
    Line numbers of the remaining code are preserved (magic lines become empty lines) so tracebacks
    point at the line the user sees.
    """
    lines = code.split("\n")
    magics: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if MAGIC_RE.match(line):
            magics.append(line.strip())
        elif line.strip():
            break
        i += 1
    if not magics:
        return [], code
    rest = lines[i:]
    if not any(s.strip() for s in rest):
        return magics, ""
    return magics, "\n" * i + "\n".join(rest)


def _parse_bool(key: str, value: str) -> bool:
    v = value.lower()
    if v in ("on", "true", "yes", "1"):
        return True
    if v in ("off", "false", "no", "0"):
        return False
    raise MagicError(f"%gpu {key}={_short(value)}: expected on or off")


def _parse_deadline(value: str, now: datetime) -> datetime | None:
    try:
        return parse_deadline(value, now)  # the one rule, shared with mlp-kernel place --deadline
    except ValueError as exc:
        raise MagicError(f"%gpu deadline={_short(value)}: {exc}") from None


def check_idle(value: str, token: str = "") -> float:
    """Seconds of an idle timeout within ``RANGES["idle"]`` (also the kernelspec's ``--idle-timeout``)."""
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise MagicError(f"%gpu {_short(token or 'idle=' + value)}: {exc}") from None
    if seconds != 0:
        _within(token or f"idle={value}", "idle", seconds, MIN_IDLE_S, MAX_DURATION_S)
    return seconds


def _short(text: str) -> str:
    """A value as echoed in a message: escaped and cut, so any input stays one readable line."""
    text = text if text.isprintable() else repr(text)[1:-1]
    return text if len(text) <= 40 else text[:37] + "..."


def _within(token: str, key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise MagicError(f"%gpu {_short(token)}: out of range; {key} must be {RANGES[key]}")


def _model(token: str, policy: PolicyView) -> tuple[str, int | None, bool]:
    """``v100``, ``h100:2``, ``v100+``, ``v100+:2``: the canonical model, the count if given, and whether
    "or better" was asked for."""
    name, _, count = token.partition(":")
    better = name.endswith("+")
    name = name[:-1] if better else name
    models = {m.lower(): m for m in policy.gpu_models()}
    canonical = models.get(name.lower())
    if canonical is None:
        raise MagicError(
            f"%gpu {_short(token)}: unknown option or GPU model {_short(name)!r}. "
            f"GPU models: {', '.join(policy.gpu_models()) or 'none'}; run %gpu help for all options"
        )
    return canonical, (_count(count, policy, token) if count else None), better


def _set_model(cmd: GpuCommand, token: str, policy: PolicyView) -> None:
    model, count, better = _model(token, policy)
    upgrade = True if better else (cmd.request.get("upgrade") if cmd.upgrade_given else None)
    cmd.request.update(gpu_model=model, tier=None, upgrade=upgrade)
    if count is not None:
        cmd.request["gpu_count"] = count


def _count(value: str, policy: PolicyView, token: str) -> int:
    if not re.fullmatch(r"[0-9]{1,4}", value) or int(value) < 1:  # isdigit() takes "²", int() 5,000 digits
        raise MagicError(
            f"%gpu {_short(token)}: the GPU count must be a whole number from 1 to {policy.max_gpus}"
        )
    n = int(value)
    if n > policy.max_gpus:
        raise MagicError(
            f"%gpu {_short(token)}: at most {policy.max_gpus} GPUs per kernel are allowed by the policy"
        )
    return n


def parse_magics(lines: list[str], policy: PolicyView, now: datetime | None = None) -> GpuCommand:
    """Validate the ``%gpu`` lines of one cell against the policy; raise ``MagicError`` if any is wrong."""
    now = now or datetime.now(timezone.utc)
    cmd = GpuCommand()
    for line in lines:
        try:
            tokens = shlex.split(line)[1:]
        except ValueError as exc:
            raise MagicError(f"{_short(line)}: {exc}") from None
        if not tokens:
            cmd.verbs.append("status")
        for token in tokens:
            _apply_token(cmd, token, policy, now)
        chose_model = any(
            "=" not in t or t.lower().startswith(("gpu=", "model=")) for t in tokens if t.lower() not in VERBS
        )
        if chose_model and any(t.lower().startswith("tier=") for t in tokens):
            raise MagicError(f"{_short(line)}: choose a GPU model or a tier, not both")
        if any(t.lower().startswith("tier=") for t in tokens) and any(
            t.lower() == "upgrade=on" or t.lower().startswith("upgrade=") and cmd.request.get("upgrade")
            for t in tokens
        ):
            raise MagicError(
                f"{_short(line)}: upgrade= is for a GPU model (%gpu v100+); a tier is asked for as it is"
            )
    return cmd


def _apply_token(cmd: GpuCommand, token: str, policy: PolicyView, now: datetime) -> None:
    key, eq, value = token.partition("=")
    key = key.lower()
    if not eq:
        if key in VERBS:
            cmd.verbs.append(key)
            return
        _set_model(cmd, token, policy)
        return
    try:
        if key in ("gpus", "count", "gpu_count"):
            cmd.request["gpu_count"] = _count(value, policy, token)
        elif key in ("gpu", "model"):
            _set_model(cmd, value, policy)
        elif key == "tier":
            tiers = {t.lower(): t for t in policy.tiers}
            if value.lower() not in tiers:
                raise MagicError(f"%gpu tier={_short(value)}: unknown tier. Tiers: {', '.join(policy.tiers)}")
            cmd.request.update(tier=tiers[value.lower()], gpu_model=None, upgrade=None)
        elif key == "upgrade":
            cmd.request["upgrade"] = _parse_bool(key, value)
            cmd.upgrade_given = True
        elif key == "burst":
            cmd.request["burstable"] = _parse_bool(key, value)
        elif key == "budget":
            if value.lower() not in ("flex", "fixed"):
                raise MagicError(f"%gpu budget={_short(value)}: expected flex or fixed")
            cmd.request["budget"] = value.lower()
        elif key == "deadline":
            cmd.request["deadline"] = _parse_deadline(value, now)
        elif key in ("data", "data_class", "data-class"):
            if value not in policy.data_classes:
                known = ", ".join(sorted(policy.data_classes)) or "none defined in the policy"
                raise MagicError(f"%gpu data={_short(value)}: unknown data class. Known: {known}")
            cmd.request["data_class"] = value
        elif key == "cpu":
            if not re.fullmatch(r"\d{1,6}(\.\d{1,3})?|\d{1,9}m", value):
                raise MagicError(f"%gpu cpu={_short(value)}: expected a CPU count such as 4, 0.5 or 500m")
            cores = float(value[:-1]) / 1000 if value.endswith("m") else float(value)
            _within(token, "cpu", cores, 0.001, MAX_CPU)
            cmd.request["cpu"] = value
        elif key in ("memory", "mem"):
            if not re.fullmatch(r"\d{1,20}(\.\d{1,6})?([KMGT]i?)?B?", value):
                raise MagicError(f"%gpu memory={_short(value)}: expected a size such as 16Gi or 512Mi")
            if value.endswith("B"):  # the value goes into the pod spec, and the API server refuses 16GB
                bare = value[:-1].rstrip("i")  # 16GB, 16GiB -> 16G; 100B -> 100
                hint = f"{bare}i (binary) or {bare} (decimal)" if bare[-1:].isalpha() else bare
                raise MagicError(f"%gpu memory={_short(value)}: Kubernetes sizes have no B; use {hint}")
            _within(token, "memory", parse_size(value), MIN_BYTES, MAX_BYTES)
            cmd.request["memory"] = value
        elif key == "idle":
            cmd.idle_s = check_idle(value, token)
        elif key == "keep":
            if value.lower() in ("on", "off", "true", "false", "yes", "no"):
                cmd.keep = _parse_bool(key, value)
            else:
                size = parse_size(value)
                _within(token, "keep", size, MIN_BYTES, MAX_BYTES)
                cmd.keep, cmd.keep_max_bytes = True, size
        else:
            raise MagicError(
                f"%gpu {_short(token)}: unknown option {_short(key)!r}; run %gpu help for the options"
            )
    except MagicError:
        raise
    except (ValueError, OverflowError) as exc:
        raise MagicError(f"%gpu {_short(token)}: {exc}") from None
