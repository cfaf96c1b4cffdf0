"""Durations and sizes as people type them, and as we print them back.

Policy files, ``%gpu`` options and the CLI all accept human units (``15m``, ``1h30m``, ``2Gi``). One parser
for all of them keeps the accepted spellings identical everywhere, and one formatter keeps the messages users
read consistent ("ETA ~6 min", "idle timeout 15 min").
"""

from __future__ import annotations

import math
import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.IGNORECASE)
# One way to match any text: a whitespace run belongs to the part before it (``\s*`` at both ends of a part
# made "1s 1s ... x" backtrack exponentially; 5,000 parts hung the gateway and the policy loader).
_DURATION_FULL = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\s*)+", re.IGNORECASE)
_DURATION_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

MAX_DURATION_S = 30 * 86400.0
"""The longest duration any ``%gpu`` option, policy field or CLI flag may give (30 days). Every one of them
ends up in a timer or a ``datetime``; a larger value (``1e12`` seconds) overflows those far from where it was
typed, so it is refused where it is typed."""

_DURATION_HELP = "expected e.g. 90s, 15m, 1h30m, 2h or a number of seconds"
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtpe]i?)?(b)?", re.IGNORECASE)  # on stripped text: see above
_SIZE_FACTOR = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "p": 10**15,
    "e": 10**18,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
    "pi": 2**50,
    "ei": 2**60,
}


def parse_duration(text: str | int | float, maximum: float = math.inf) -> float:
    """Seconds in a duration such as ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2h"``, ``"0"`` or ``"45"``.

    A bare number means seconds. Units: ms, s, m, h, d, combinable largest first or in any order
    (``"1h30m"``). Raises ``ValueError`` naming the accepted forms otherwise, or when over ``maximum``.
    """
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r}: {_DURATION_HELP}")
    if isinstance(text, (int, float)):
        value = float(text) if abs(text) < 1e300 else math.inf  # float(10**400) raises OverflowError
    else:
        s = str(text).strip()
        try:
            value = float(s)
        except ValueError:
            if not s or not _DURATION_FULL.fullmatch(s):
                raise ValueError(f"invalid duration {_short(text)}: {_DURATION_HELP}") from None
            value = sum(float(n) * _DURATION_UNIT_S[u.lower()] for n, u in _DURATION_PART.findall(s))
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"invalid duration {_short(text)}: must be a finite number of seconds >= 0")
    if value > maximum:
        raise ValueError(f"invalid duration {_short(text)}: must be at most {format_duration(maximum)}")
    return value


def format_duration(seconds: float) -> str:
    """Short human form: ``"45 s"``, ``"15 min"``, ``"1 h 30 min"``, ``"2 d 3 h"``.

    Seconds are shown only under a minute; minutes are rounded to the nearest whole minute above that.
    """
    if seconds is None or math.isnan(seconds):
        return "unknown"
    if math.isinf(seconds):
        return "forever"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def parse_size(text: str | int) -> int:
    """Bytes in a size such as ``"2Gi"``, ``"500M"``, ``"100MB"``, ``"1.5Gi"`` or ``"1024"``.

    Binary suffixes (Ki, Mi, Gi, Ti, Pi, Ei) are powers of 1024, decimal ones (k, M, G, T, P, E) powers of
    1000, as in Kubernetes quantities; a trailing ``B`` is allowed. Raises ``ValueError`` otherwise.
    """
    if isinstance(text, bool):
        raise ValueError(f"invalid size {text!r}: expected e.g. 2Gi, 500M, 100MB or a number of bytes")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {text!r}: must be >= 0")
        return text
    m = _SIZE.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f"invalid size {_short(text)}: expected e.g. 2Gi, 500M, 100MB or a number of bytes")
    number, suffix, _ = m.groups()
    value = float(number) * _SIZE_FACTOR[(suffix or "").lower()]
    if not math.isfinite(value):  # hundreds of digits: float() says inf, and int(inf) raises OverflowError
        raise ValueError(f"invalid size {_short(text)}: far too large")
    return int(value)


def _short(text: object) -> str:
    """``repr`` of a value for an error message, cut so a thousand-digit input stays one readable line."""
    r = repr(text)
    return r if len(r) <= 40 else r[:37] + "..."


def format_size(n: int | float) -> str:
    """Short binary form: ``"512 B"``, ``"1.5 KiB"``, ``"2 GiB"``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            if unit == "B":
                return f"{int(value)} B"
            text = f"{value:.1f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
