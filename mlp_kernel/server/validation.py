"""Server-side validation of the three editable kernelspec files, as the admin page shows it.

Every issue names where it is (line, and field path when there is one) and what is wrong, so the editor can
point at it. The real checks live with their owners and are imported lazily: the policy schema in
``mlp_kernel.placement.parse_policy``, the pod template checks in
``mlp_kernel.backends.kubernetes.validate_template``. When an owner is not importable (an older or partial
install), a syntax-only check runs instead and a warning says that the full check was skipped, rather than
the save silently passing as "valid".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..safe_yaml import YamlInputError, load_yaml
from .files import POLICY_FILE_NAME


@dataclass(frozen=True)
class Issue:
    """One validation finding: ``line`` is 1-based (``None`` when the finding is about the whole file)."""

    message: str
    line: int | None = None
    field: str | None = None
    severity: str = "error"  # "error" blocks saving; "warning" does not

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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


def has_errors(issues: list[Issue]) -> bool:
    return any(i.severity == "error" for i in issues)


def _key_line(text: str, key: str) -> int | None:
    """Line of the first ``"key":`` in a JSON text: good enough to point the editor at a field."""
    m = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def validate_kernel_json(text: str) -> list[Issue]:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        return [Issue(f"Invalid JSON: {e.msg} (column {e.colno}).", line=e.lineno)]
    if not isinstance(spec, dict):
        return [Issue("kernel.json must be a JSON object.", line=1)]
    issues: list[Issue] = []

    def need(cond: bool, field: str, message: str) -> None:
        if not cond:
            line = _key_line(text, field.split(".")[-1])
            issues.append(Issue(f"{field}: {message}", line=line, field=field))

    argv = spec.get("argv")
    need(isinstance(argv, list) and bool(argv) and all(isinstance(a, str) for a in argv),
         "argv", "expected a non-empty list of strings (the gateway kernel command).")
    need(isinstance(spec.get("display_name"), str) and bool(spec.get("display_name")),
         "display_name", "expected a non-empty string.")
    need(isinstance(spec.get("language", ""), str), "language", "expected a string.")
    metadata = spec.get("metadata")
    prov = metadata.get("kernel_provisioner") if isinstance(metadata, dict) else None
    if not isinstance(prov, dict):
        issues.append(Issue("metadata.kernel_provisioner: missing; GPU (auto) needs its provisioner.",
                            line=_key_line(text, "metadata"), field="metadata.kernel_provisioner"))
        return issues
    need(isinstance(prov.get("provisioner_name"), str), "metadata.kernel_provisioner.provisioner_name",
         "expected a string (the provisioner entry point name).")
    config = prov.get("config", {})
    if not isinstance(config, dict):
        need(False, "metadata.kernel_provisioner.config", "expected an object.")
        return issues
    prefix = "metadata.kernel_provisioner.config."
    if "policy" in config:
        p = config["policy"]
        need(isinstance(p, str) and bool(POLICY_FILE_NAME.match(p)), prefix + "policy",
             "expected a file name in the kernelspec directory ending in .yaml or .yml (no directories).")
    from ..gateway.requests import KERNELSPEC_DURATIONS, kernelspec_duration

    for key in KERNELSPEC_DURATIONS:  # the gateway's own check; null: the policy's value
        if config.get(key) is not None:
            try:
                kernelspec_duration(key, config[key])
            except ValueError as e:
                need(False, prefix + key, str(e))
    if config.get("backend"):  # "" or null: each member's own backend
        need(config["backend"] in BACKENDS, prefix + "backend",
             f"expected one of {', '.join(BACKENDS)}, or \"\" for each member's own backend.")
    return issues


def _yaml_issue(e: YamlInputError) -> Issue:
    return Issue(f"Invalid YAML: {e.problem}.", line=e.line)


def _placement_api() -> Any:
    """The placement package when it provides ``parse_policy`` (it is written alongside this extension)."""
    try:
        from .. import placement
    except ImportError:
        return None
    return placement if hasattr(placement, "parse_policy") else None


def validate_policy(text: str, source: str = "policy.yaml") -> list[Issue]:
    placement = _placement_api()
    if placement is None:
        try:
            load_yaml(text, source=source)  # bounded: size, depth and alias expansion (safe_yaml.py)
        except YamlInputError as e:
            return [_yaml_issue(e)]
        return [Issue("Only YAML syntax was checked: the policy schema check (mlp_kernel.placement."
                      "parse_policy) is not available in this install.", severity="warning")]
    try:
        placement.parse_policy(text, source)
    except Exception as e:  # PolicyError carries .errors; anything else is reported, not a 500
        errors = getattr(e, "errors", None)
        if not errors:
            return [Issue(f"Policy rejected: {e}")]
        return [Issue(str(getattr(err, "message", err)), line=getattr(err, "line", None),
                      field=getattr(err, "path", None)) for err in errors]
    return []


def _template_validator() -> Callable[[str], list[Any]] | None:
    try:
        from ..backends.kubernetes import validate_template
    except ImportError:
        return None
    return validate_template


def validate_pod_template(text: str) -> list[Issue]:
    validate_template = _template_validator()
    if validate_template is None:
        from jinja2 import TemplateSyntaxError
        from jinja2.sandbox import SandboxedEnvironment

        try:
            SandboxedEnvironment().parse(text)
        except TemplateSyntaxError as e:
            return [Issue(f"Template syntax error: {e.message}.", line=e.lineno)]
        return [Issue("Only Jinja2 syntax was checked: the pod template check (mlp_kernel.backends."
                      "kubernetes.validate_template) is not available in this install.", severity="warning")]
    return [_to_issue(i) for i in validate_template(text)]


def _to_issue(found: Any) -> Issue:
    """Accept the backend's issue objects (attributes) or dicts, so its exact type is not a coupling."""
    get = found.get if isinstance(found, dict) else lambda k, d=None: getattr(found, k, d)
    severity = get("severity", "error") or "error"
    return Issue(str(get("message", found)), line=get("line"), field=get("path") or get("field"),
                 severity="warning" if str(severity).lower().startswith("warn") else "error")
