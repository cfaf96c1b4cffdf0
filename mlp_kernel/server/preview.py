"""Dry runs for the admin page: render the Pod a kernel would get, and ask placement where a request goes.

Both use the real code paths (``mlp_kernel.backends.kubernetes.render_kernel_objects`` and
``mlp_kernel.placement.decide``) on the admin's *unsaved* text, so "what you see is what a kernel gets".
The owners are imported lazily: a missing piece answers 501 with a message instead of breaking the
extension. Secret values never leave the server: the rendered Secret comes back with its data redacted.
"""

from __future__ import annotations

import importlib
import re
import shutil
import tempfile
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..placement.types import GpuRequest
from .validation import Issue

REDACTED = "<redacted>"


class PreviewError(Exception):
    """Why a dry run could not be done: ``status`` is the HTTP status, ``issues`` point into the files."""

    def __init__(self, status: int, message: str, issues: list[Issue] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.issues = issues or []

    def __reduce__(self) -> Any:  # it crosses from the worker process (worker.py) with all three fields
        return (type(self), (self.status, str(self), self.issues))


def _find(name: str, modules: tuple[str, ...]) -> Any:
    for mod in modules:
        try:
            found = getattr(importlib.import_module(mod), name, None)
        except ImportError:
            continue
        if found is not None:
            return found
    return None


KUBERNETES_MODULES = (
    "mlp_kernel.backends.kubernetes",
    "mlp_kernel.backends.kubernetes.objects",
    "mlp_kernel.backends.kubernetes.render",
    "mlp_kernel.backends.kubernetes.template",
)


def parse_policy_text(text: str, source: str) -> Any:
    """A ``Policy`` from text, or ``PreviewError(400)`` whose issues name field and line."""
    from ..placement import PolicyError, parse_policy

    try:
        return parse_policy(text, source)
    except PolicyError as e:
        message = f"The policy {source} is invalid: fix it before a dry run."
        raise PreviewError(400, message, e.errors) from None


def policy_names(text: str, source: str) -> dict[str, Any]:
    """What the render form offers, or ``PreviewError(400)``: the policy's members and flavors, the
    (member, flavor) pairs a Pod can be rendered for (a flavor of that member, the member with the
    ``namespace`` and ``local_queue`` the Kubernetes backend needs), and, when there is none, why."""
    policy = parse_policy_text(text, source)
    targets = []
    unrenderable = []
    for m in policy.members.values():
        if not m.namespace or not m.local_queue:
            unrenderable.append(m.name)
            continue
        targets += [
            {"member": m.name, "flavor": f.name} for f in policy.flavors.values() if f.member == m.name
        ]
    note = ""
    if not targets:
        names = ", ".join(repr(n) for n in unrenderable) or "none"
        note = (
            f"No member of {source} can be rendered as a Pod: a dry run needs a member with namespace and "
            f"local_queue (the Kubernetes backend's), and {names} "
            f"{'has none (it runs' if len(unrenderable) == 1 else 'have none (they run'} kernels on this "
            "machine). Point kernel.json at a policy with Kubernetes members (the shipped "
            "platform-policy.yaml) to try one."
        )
    return {
        "members": list(policy.members),
        "flavors": list(policy.flavors),
        "render_targets": targets,
        "render_note": note,
    }


def _as_dict(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return obj


def redact_secret(secret: Any) -> Any:
    secret = _as_dict(secret)
    if not isinstance(secret, dict):
        return secret
    out = dict(secret)
    for key in ("data", "stringData", "string_data"):
        if isinstance(out.get(key), dict):
            out[key] = dict.fromkeys(out[key], REDACTED)
    return out


def render_pod(
    spec_dir: Path, policy_name: str, overrides: dict[str, str], member: str, flavor: str, user: str
) -> dict[str, Any]:
    """Render the kernel's Secret and Pod from the kernelspec with ``overrides`` (unsaved file texts)."""
    render = _find("render_kernel_objects", KUBERNETES_MODULES)
    if render is None:
        raise PreviewError(
            501,
            "Dry-run render is not available: this install has no "
            "mlp_kernel.backends.kubernetes.render_kernel_objects.",
        )
    with tempfile.TemporaryDirectory(prefix="mlp-kernel-render-") as tmp:
        work = Path(tmp) / spec_dir.name
        shutil.copytree(spec_dir, work)
        for name, text in overrides.items():
            (work / name).write_text(text, encoding="utf-8")
        policy_path = work / policy_name
        policy = parse_policy_text(
            policy_path.read_text(encoding="utf-8") if policy_path.is_file() else "", policy_name
        )
        if member not in policy.members:
            raise PreviewError(400, f"Unknown member {member!r}: the policy has {', '.join(policy.members)}.")
        if flavor not in policy.flavors:
            raise PreviewError(400, f"Unknown flavor {flavor!r}: the policy has {', '.join(policy.flavors)}.")
        try:
            secret, pod = render(work, policy, member, flavor, user)
        except Exception as e:  # the template is the admin's draft: any render failure is a 400 with lines
            issues = [_render_issue(i) for i in getattr(e, "issues", [])]
            raise PreviewError(400, f"The pod template does not render: {e}", issues) from None
    return {"pod": _as_dict(pod), "secret": redact_secret(secret)}


def _render_issue(found: Any) -> Issue:
    """Render problems come as ``Issue``s or as text such as ``pod template: line 7: ...``."""
    if isinstance(found, Issue):
        return found
    text = str(getattr(found, "message", found))
    line = getattr(found, "line", None)
    if line is None:
        m = re.search(r"\bline (\d+)\b", str(found))
        line = int(m.group(1)) if m else None
    return Issue("", text, line)


REQUEST_FIELDS = {f.name for f in fields(GpuRequest)}
MAX_TEXT = 256
MAX_GPUS = 4096
MAX_WAITED_S = 365 * 86400.0  # NaN and infinity fail the range check too


def gpu_request(body: dict[str, Any]) -> GpuRequest:
    """A ``GpuRequest`` from JSON, refusing unknown fields and wrong types with a message naming the field."""
    if not isinstance(body, dict):
        raise PreviewError(400, "request: expected an object with GpuRequest fields.")
    unknown = sorted(set(body) - REQUEST_FIELDS)
    if unknown:
        known = ", ".join(sorted(REQUEST_FIELDS))
        raise PreviewError(400, f"request.{unknown[0]}: unknown field; known: {known}.")
    values = dict(body)
    checks = {"gpu_model": str, "tier": str, "cpu": str, "memory": str, "data_class": str, "budget": str}
    for key, typ in checks.items():
        if values.get(key) is not None and not isinstance(values[key], typ):
            raise PreviewError(400, f"request.{key}: expected a string.")
        if isinstance(values.get(key), str) and len(values[key]) > MAX_TEXT:
            raise PreviewError(400, f"request.{key}: longer than {MAX_TEXT} characters.")
    count = values.get("gpu_count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_GPUS:
        raise PreviewError(400, f"request.gpu_count: expected a whole number from 1 to {MAX_GPUS}.")
    if "burstable" in values and not isinstance(values["burstable"], bool):
        raise PreviewError(400, "request.burstable: expected true or false.")
    waited = values.get("waited_s", 0)
    if isinstance(waited, bool) or not isinstance(waited, (int, float)) or not 0 <= waited <= MAX_WAITED_S:
        raise PreviewError(400, f"request.waited_s: expected seconds from 0 to {MAX_WAITED_S:.0f}.")
    if values.get("budget") not in (None, "flex", "fixed"):
        raise PreviewError(400, "request.budget: expected 'flex' or 'fixed'.")
    if values.get("deadline"):
        try:
            deadline = datetime.fromisoformat(str(values["deadline"]).replace("Z", "+00:00"))
        except ValueError:
            raise PreviewError(
                400, "request.deadline: expected an ISO 8601 time, e.g. 2026-12-01T18:00Z."
            ) from None
        values["deadline"] = deadline if deadline.tzinfo else deadline.replace(tzinfo=timezone.utc)
    else:
        values.pop("deadline", None)
    if values.get("budget") is None:
        values.pop("budget", None)
    return GpuRequest(**values)


def place(
    policy_text: str, source: str, request: dict[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """Where ``request`` would go under the policy with every declared flavor free: ``Decision.to_json()``."""
    from ..placement import ClusterState, decide

    policy = parse_policy_text(policy_text, source)
    decision = decide(
        policy, ClusterState.from_policy(policy), gpu_request(request), now or datetime.now(timezone.utc)
    )
    return decision.to_json()
