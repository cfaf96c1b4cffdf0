"""Server-side validation of the three editable kernelspec files, as the admin page shows it.

Every issue names where it is (line, and field path when there is one) and what is wrong, so the editor can
point at it. The real checks live with their owners: the policy schema in
``mlp_kernel.placement.parse_policy`` (with ``snapshot.storage`` checked by ``mlp_kernel.snapshot.storage``),
the pod template checks in ``mlp_kernel.backends.kubernetes.validate_template``. All of them report
``mlp_kernel.validation.Issue``, the one issue type, so this module passes their findings through instead of
guessing at their attributes, and there is no syntax-only fallback that could pass a file as "valid".
"""

from __future__ import annotations

import json
import re

from ..backends.kubernetes import validate_template
from ..placement import PolicyError, parse_policy
from ..snapshot import storage as _storage  # noqa: F401  registers the snapshot.storage check with the loader
from ..validation import Issue, has_errors
from .files import POLICY_FILE_NAME

__all__ = [
    "Issue",
    "has_errors",
    "validate",
    "validate_kernel_json",
    "validate_pod_template",
    "validate_policy",
]

BACKENDS = ("local", "kubernetes")


def validate(kind: str, text: str, source: str = "") -> list[Issue]:
    """Issues found in ``text``, a file of the given ``kind`` ("kernel", "pod_template" or "policy")."""
    if kind == "kernel":
        return validate_kernel_json(text)
    if kind == "policy":
        return validate_policy(text, source)
    if kind == "pod_template":
        return validate_pod_template(text)
    raise ValueError(f"unknown file kind {kind!r}")


def _key_line(text: str, key: str) -> int | None:
    """Line of the first ``"key":`` in a JSON text: good enough to point the editor at a field."""
    m = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def validate_kernel_json(text: str) -> list[Issue]:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        return [Issue("", f"Invalid JSON: {e.msg} (column {e.colno}).", e.lineno)]
    if not isinstance(spec, dict):
        return [Issue("", "kernel.json must be a JSON object.", 1)]
    issues: list[Issue] = []

    def need(cond: bool, field: str, message: str) -> None:
        if not cond:
            line = _key_line(text, field.split(".")[-1])
            issues.append(Issue(field, message, line))

    argv = spec.get("argv")
    need(
        isinstance(argv, list) and bool(argv) and all(isinstance(a, str) for a in argv),
        "argv",
        "expected a non-empty list of strings (the gateway kernel command).",
    )
    need(
        isinstance(spec.get("display_name"), str) and bool(spec.get("display_name")),
        "display_name",
        "expected a non-empty string.",
    )
    need(isinstance(spec.get("language", ""), str), "language", "expected a string.")
    metadata = spec.get("metadata")
    prov = metadata.get("kernel_provisioner") if isinstance(metadata, dict) else None
    if not isinstance(prov, dict):
        issues.append(
            Issue(
                "metadata.kernel_provisioner",
                "missing; GPU (auto) needs its provisioner.",
                _key_line(text, "metadata"),
            )
        )
        return issues
    need(
        isinstance(prov.get("provisioner_name"), str),
        "metadata.kernel_provisioner.provisioner_name",
        "expected a string (the provisioner entry point name).",
    )
    config = prov.get("config", {})
    if not isinstance(config, dict):
        need(False, "metadata.kernel_provisioner.config", "expected an object.")
        return issues
    prefix = "metadata.kernel_provisioner.config."
    if "policy" in config:
        p = config["policy"]
        need(
            isinstance(p, str) and bool(POLICY_FILE_NAME.match(p)),
            prefix + "policy",
            "expected a file name in the kernelspec directory ending in .yaml or .yml (no directories).",
        )
    from ..gateway.requests import KERNELSPEC_DURATIONS, kernelspec_duration

    for key in KERNELSPEC_DURATIONS:  # the gateway's own check; null: the policy's value
        if config.get(key) is not None:
            try:
                kernelspec_duration(key, config[key])
            except ValueError as e:
                need(False, prefix + key, str(e))
    if config.get("backend"):  # "" or null: each member's own backend
        need(
            config["backend"] in BACKENDS,
            prefix + "backend",
            f'expected one of {", ".join(BACKENDS)}, or "" for each member\'s own backend.',
        )
    return issues


def validate_policy(text: str, source: str = "policy.yaml") -> list[Issue]:
    try:
        parse_policy(text, source)
    except PolicyError as e:
        return list(e.errors)
    return []


def validate_pod_template(text: str) -> list[Issue]:
    return list(validate_template(text))
