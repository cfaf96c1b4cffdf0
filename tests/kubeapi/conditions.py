"""Setting status conditions the way controllers do: keep lastTransitionTime unless the status flips."""

from __future__ import annotations

from typing import Any

from .store import now_iso


def set_condition(
    status: dict[str, Any],
    ctype: str,
    value: str,
    reason: str | None = None,
    message: str | None = None,
    **extra: Any,
) -> bool:
    """Upsert condition ``ctype`` in ``status["conditions"]``; return True when anything changed."""
    conditions = status.setdefault("conditions", [])
    fields = {
        "status": value,
        **({"reason": reason} if reason is not None else {}),
        **({"message": message} if message is not None else {}),
        **extra,
    }
    for cond in conditions:
        if cond.get("type") == ctype:
            if all(cond.get(k) == v for k, v in fields.items()):
                return False
            if cond.get("status") != value:
                cond["lastTransitionTime"] = now_iso()
            cond.update(fields)
            return True
    conditions.append({"type": ctype, **fields, "lastTransitionTime": now_iso()})
    return True


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def is_true(obj: dict[str, Any], ctype: str) -> bool:
    cond = condition(obj, ctype)
    return cond is not None and cond.get("status") == "True"
