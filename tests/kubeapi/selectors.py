"""Label and field selectors, parsed from query strings and from ``LabelSelector`` objects.

List and watch filter by these exactly as the apiserver does for the forms clients send:
``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a`` for labels, and
``path=value`` / ``path!=value`` for fields (any dotted path is accepted; the apiserver supports
metadata.name, metadata.namespace, status.phase, spec.nodeName and a few more per kind).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request

Matcher = Callable[[dict[str, Any]], bool]

_TERM_SPLIT = re.compile(r",(?![^()]*\))")
_SET_TERM = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def parse_label_selector(text: str | None) -> Matcher:
    if not text:
        return lambda labels: True
    checks: list[Matcher] = []
    for raw in _TERM_SPLIT.split(text):
        term = raw.strip()
        if not term:
            continue
        m = _SET_TERM.match(term)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                checks.append(lambda lab, k=key, vs=values: lab.get(k) in vs)
            else:
                checks.append(lambda lab, k=key, vs=values: lab.get(k) not in vs)
        elif "!=" in term:
            key, value = (p.strip() for p in term.split("!=", 1))
            checks.append(lambda lab, k=key, v=value: lab.get(k) != v)
        elif "=" in term:
            key, value = (p.strip() for p in term.replace("==", "=").split("=", 1))
            checks.append(lambda lab, k=key, v=value: lab.get(k) == v)
        elif term.startswith("!"):
            missing = term[1:].strip()
            checks.append(lambda lab, k=missing: k not in lab)
        elif re.fullmatch(r"[A-Za-z0-9_./-]+", term):
            checks.append(lambda lab, k=term: k in lab)
        else:
            raise bad_request(f"unable to parse requirement: {term!r} in labelSelector {text!r}")
    return lambda labels: all(check(labels) for check in checks)


def field_value(obj: dict[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def parse_field_selector(text: str | None) -> Matcher:
    if not text:
        return lambda obj: True
    checks: list[Matcher] = []
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        if "!=" in term:
            path, value = (p.strip() for p in term.split("!=", 1))
            checks.append(lambda o, p=path, v=value: field_value(o, p) != v)
        elif "=" in term:
            path, value = (p.strip() for p in term.replace("==", "=").split("=", 1))
            checks.append(lambda o, p=path, v=value: field_value(o, p) == v)
        else:
            raise bad_request(f"invalid selector: {text!r}; can't understand {term!r}")
    return lambda obj: all(check(obj) for check in checks)


def label_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Match a ``metav1.LabelSelector`` object; ``None`` matches nothing and ``{}`` matches everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
