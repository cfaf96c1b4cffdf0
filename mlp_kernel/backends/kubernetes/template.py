"""Rendering the admin's pod template so that values are data and can never become structure.

Enterprise Gateway's pod templates had two advisories from splicing values into YAML text: server-side
template injection through ``KERNEL_POD_NAME`` (GHSA-f49j-v924-fx9w) and YAML injection through ``KERNEL_*``
values (GHSA-cfw7-6c5v-2wjq). Here the template is rendered in Jinja2's ``ImmutableSandboxedEnvironment``
with every *string* value replaced by an opaque token (``mlpv<nonce>n<i>z``: letters and digits only, so it
is a plain YAML scalar wherever it lands). The rendered text therefore depends only on the template, never on
what a user typed. It is parsed with ``safe_yaml.load_yaml_all`` (bounded), and only then are the tokens in
the parsed tree replaced by the real strings: a value holding ``a\\nkind: Secret``, ``{x: y}``, ``---`` or
``{{7*7}}`` ends up as the characters of one string field, because no parser or template engine ever sees it
again.

Integers and booleans (GPU count, ports) are passed as themselves, so templates can compute on them
(``{% if kernel_gpus > 0 %}``); their text form cannot carry YAML syntax. Strings are opaque in the template:
place them, test ``is defined``, but do not filter or compare them (a filtered token is detected and
reported). Values that are ``None`` are left undefined, like Enterprise Gateway's unset ``KERNEL_*``.
"""

from __future__ import annotations

import re
import secrets
import traceback
from collections.abc import Mapping
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from ...safe_yaml import YamlInputError, load_yaml_all
from ...validation import Issue
from .validation import schema_issues

Scalar = str | int | bool | None

# The variables a template may use. Names follow Enterprise Gateway's kernel-pod.yaml.j2 where they mean the
# same thing, so admins can bring their EG templates over with little change.
TEMPLATE_VARIABLES: dict[str, str] = {
    "kernel_id": "the kernel id (same as the gateway kernel's id)",
    "kernel_pod_name": "the pod name (deterministic: mlpk-<kernel id>-<generation>)",
    "kernel_namespace": "the member's namespace for kernel pods (policy members.<m>.namespace)",
    "kernel_image": "the container image; undefined unless set in the backend or kernelspec config",
    "kernel_username": "the user from jupyter_server's identity (never typed by the user)",
    "kernel_team": "the user's team; undefined when unknown",
    "kernel_notebook": "hash of the notebook path (the same value as the mlp.io/notebook label)",
    "kernel_gpus": "number of GPUs (int)",
    "kernel_gpu_resource": "the flavor's extended resource name, e.g. nvidia.com/gpu",
    "kernel_gpu_model": "the GPU model placement chose, e.g. A100; undefined when any model of the flavor",
    "kernel_cpus": "CPU request as a Kubernetes quantity (string); undefined when not requested",
    "kernel_memory": "memory request as a Kubernetes quantity (string); undefined when not requested",
    "kernel_member": "the member (cluster) name",
    "kernel_flavor": "the Kueue ResourceFlavor name",
    "kernel_queue_name": "the Kueue LocalQueue (also set as the kueue.x-k8s.io/queue-name label)",
    "kernel_secret_name": "the Secret holding the connection file",
    "kernel_connection_dir": "where the connection Secret is mounted, e.g. /var/run/mlp-kernel",
    "kernel_connection_file": "the connection file path inside the container",
    "kernel_service_account_name": "service account for the pod; undefined unless configured",
    "kernel_snapshot_claim": "PVC for variable snapshots (policy snapshot.storage kind volume); private only",
    "kernel_snapshot_dir": "where the snapshot volume is mounted; defined with kernel_snapshot_claim",
    "kernel_workspace_claim": "the user's workspace PVC (members.<m>.workspace_claim); private only",
    "kernel_workspace_dir": "where the workspace is mounted (the notebook server's root, workspace_path)",
    "kernel_working_dir": "the notebook's directory in the workspace (else its root); with the claim",
    "kernel_packages_claim": "the user's packages PVC (members.<m>.packages_claim); private only",
    "kernel_packages_dir": "where the packages volume is mounted (packages_path)",
    "kernel_shell_port": "shell port (int)",
    "kernel_iopub_port": "iopub port (int)",
    "kernel_stdin_port": "stdin port (int)",
    "kernel_control_port": "control port (int)",
    "kernel_hb_port": "heartbeat port (int)",
}

# Values used by ``validate_template`` to try a template without a policy.
SAMPLE_VALUES: dict[str, Scalar] = {
    "kernel_id": "0b7c2f3e-1f2a-4c1e-9d7e-3a5b6c7d8e9f",
    "kernel_pod_name": "mlpk-0b7c2f3e-1f2a-4c1e-9d7e-3a5b6c7d8e9f-1",
    "kernel_namespace": "jupyter",
    "kernel_image": "quay.io/jupyter/pytorch-notebook:cuda12-latest",
    "kernel_username": "alice",
    "kernel_team": "vision",
    "kernel_notebook": "3f1d9a0b2c4e5f60",
    "kernel_gpus": 1,
    "kernel_gpu_resource": "nvidia.com/gpu",
    "kernel_gpu_model": "V100",
    "kernel_cpus": "4",
    "kernel_memory": "16Gi",
    "kernel_member": "private",
    "kernel_flavor": "silver",
    "kernel_queue_name": "kernels",
    "kernel_secret_name": "mlpk-0b7c2f3e-1f2a-4c1e-9d7e-3a5b6c7d8e9f-1-conn",
    "kernel_connection_dir": "/var/run/mlp-kernel",
    "kernel_connection_file": "/var/run/mlp-kernel/connection.json",
    "kernel_service_account_name": "default",
    "kernel_snapshot_claim": "home-alice",
    "kernel_snapshot_dir": "/home/jovyan/.mlp-kernel/snapshots",
    "kernel_workspace_claim": "home-alice",
    "kernel_workspace_dir": "/home/jovyan",
    "kernel_working_dir": "/home/jovyan/project",
    "kernel_packages_claim": "pkgs-alice",
    "kernel_packages_dir": "/opt/mlp-kernel/packages",
    "kernel_shell_port": 50000,
    "kernel_iopub_port": 50001,
    "kernel_stdin_port": 50002,
    "kernel_control_port": 50003,
    "kernel_hb_port": 50004,
}


class TemplateIssue(Issue):
    """One problem with a template: the shared ``mlp_kernel.validation.Issue`` without a field path; ``line``
    is 1-based in the template (None when it has no single line). Printed ``line N: message``."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__("", message, line)

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class TemplateError(ValueError):
    """The template cannot be rendered into one Pod document."""

    def __init__(self, issues: list[TemplateIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


def _template_line(exc: BaseException) -> int | None:
    """The template line a runtime error happened on (Jinja rewrites tracebacks to point into it)."""
    line = getattr(exc, "lineno", None)
    if line:
        return int(line)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == "<template>":
            return frame.lineno
    return None


def _line_of(text: str, name: str) -> int | None:
    m = re.search(rf"\b{re.escape(name)}\b", text)
    return text.count("\n", 0, m.start()) + 1 if m else None


class _Tokens:
    """The opaque stand-ins for string values during one render, and their substitution afterwards."""

    def __init__(self, values: Mapping[str, Scalar]) -> None:
        self.nonce = secrets.token_hex(6)
        self.pattern = re.compile(rf"mlpv{self.nonce}n(\d+)z")
        self.strings: list[str] = []
        self.context: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, bool | int):
                self.context[name] = value
            elif isinstance(value, str):
                self.context[name] = f"mlpv{self.nonce}n{len(self.strings)}z"
                self.strings.append(value)
            else:
                raise TypeError(
                    f"template value {name} must be str, int, bool or None, not {type(value).__name__}"
                )

    def _substitute(self, text: str, path: str) -> Any:
        residue = self.pattern.sub("", text)
        if self.nonce in residue.lower():
            raise TemplateError(
                [
                    TemplateIssue(
                        None,
                        (
                            f"{path}: a string variable was transformed by a filter or expression; "
                            "string values are opaque in pod templates (place them as they are, "
                            "e.g. {{ kernel_username }})"
                        ),
                    )
                ]
            )
        whole = self.pattern.fullmatch(text)
        if whole:
            return self.strings[int(whole.group(1))]
        return self.pattern.sub(lambda m: self.strings[int(m.group(1))], text)

    def fill(self, node: Any, path: str = "") -> Any:
        if isinstance(node, dict):
            out: dict[Any, Any] = {}
            for k, v in node.items():
                key = self._substitute(k, f"{path}.{k}") if isinstance(k, str) else k
                if not isinstance(key, str):
                    key = str(key)
                out[key] = self.fill(v, f"{path}.{key}" if path else key)
            return out
        if isinstance(node, list):
            return [self.fill(v, f"{path}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str):
            return self._substitute(node, path)
        return node


def render_pod_template(text: str, values: Mapping[str, Scalar]) -> dict[str, Any]:
    """Render ``text`` with ``values`` into one Pod document (a dict); raises ``TemplateError``.

    The result is exactly what the template's structure says, with values filled in as data.
    """
    tokens = _Tokens(values)
    env = _environment()
    try:
        template = env.from_string(text)
        rendered = template.render(tokens.context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError([TemplateIssue(exc.lineno, f"template syntax: {exc.message}")]) from None
    except SecurityError as exc:
        raise TemplateError(
            [TemplateIssue(_template_line(exc), f"unsafe template operation: {exc}")]
        ) from None
    except jinja2.UndefinedError as exc:
        line = _template_line(exc)
        raise TemplateError(
            [TemplateIssue(line, f"{exc.message} (variables: see docs/admin-guide.md)")]
        ) from None
    except Exception as exc:  # any error inside the template is the template's, reported with its line
        raise TemplateError([TemplateIssue(_template_line(exc), f"template error: {exc}")]) from None
    try:  # bounded: a template can loop out an alias bomb or thousands of nesting levels
        docs = load_yaml_all(rendered, source="rendered template")
    except YamlInputError as exc:
        raise TemplateError(
            [TemplateIssue(exc.line, f"rendered YAML is invalid: {exc.problem} (line in output)")]
        ) from None
    if len(docs) != 1:
        raise TemplateError(
            [TemplateIssue(None, f"template must produce exactly one document, got {len(docs)}")]
        )
    doc = docs[0]
    if not isinstance(doc, dict):
        raise TemplateError([TemplateIssue(None, "template must produce a mapping (a Pod manifest)")])
    filled = tokens.fill(doc)
    if filled.get("apiVersion") != "v1" or filled.get("kind") != "Pod":
        raise TemplateError(
            [TemplateIssue(_line_of(text, "kind"), "template must produce apiVersion: v1, kind: Pod")]
        )
    return filled


def validate_template(text: str, values: Mapping[str, Scalar] | None = None) -> list[TemplateIssue]:
    """Problems an admin should fix before saving ``text`` as a pod template; empty when it is fine.

    Checks Jinja syntax, unknown variable names, sandbox violations, that it renders (with ``values`` or
    sample values) into exactly one Pod, and that the Pod passes the Kubernetes schema.
    """
    env = _environment()
    try:
        ast = env.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return [TemplateIssue(exc.lineno, f"template syntax: {exc.message}")]
    issues = [
        TemplateIssue(
            _line_of(text, name), f"unknown variable {name!r}; known: {', '.join(TEMPLATE_VARIABLES)}"
        )
        for name in sorted(jinja2.meta.find_undeclared_variables(ast))
        if name not in TEMPLATE_VARIABLES
    ]
    if issues:
        return issues
    try:
        pod = render_pod_template(text, dict(SAMPLE_VALUES if values is None else values))
    except TemplateError as exc:
        return exc.issues
    return [TemplateIssue(None, message) for message in schema_issues(pod)]
