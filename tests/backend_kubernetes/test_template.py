"""The pod template is rendered with values as data: no value can change the document's structure."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlp_kernel.backends.kubernetes.template import (
    SAMPLE_VALUES,
    TemplateError,
    render_pod_template,
    validate_template,
)

from .policies import KERNELSPEC

SHIPPED = (KERNELSPEC / "pod-template.yaml.j2").read_text()
WORKDIR = 'workingDir: {{ kernel_working_dir | default("/tmp") }}'  # the shipped line tests replace
STRING_VARS = [k for k, v in SAMPLE_VALUES.items() if isinstance(v, str)]

INJECTIONS = [
    "a\nkind: Secret",
    "alice\n  privileged: true\nmetadata:\n  name: evil",
    "{x: y}",
    "[1, 2]",
    '"; rm -rf / #',
    "'; rm -rf /",
    "{{7*7}}",
    "{% for x in range(3) %}loop{% endfor %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "---\napiVersion: v1\nkind: Secret\nmetadata: {name: stolen}",
    "...\n---",
    "&anchor x",
    "*alias",
    "!!python/object/apply:os.system ['id']",
    "key: value # comment",
    "\u2028line\u2029sep\x85",
    "",
]


def shape(node: object, value: str = "") -> object:
    """The document's structure: keys and list lengths, with every scalar replaced by its type name
    (a key equal to the variable's ``value`` is shown as ``<value>``: variables may name keys)."""
    if isinstance(node, dict):
        return {("<value>" if k == value else k): shape(v, value) for k, v in node.items()}
    if isinstance(node, list):
        return [shape(v, value) for v in node]
    return type(node).__name__


def values_with(name: str, value: str) -> dict[str, object]:
    values = dict(SAMPLE_VALUES)
    values[name] = value
    return values


def test_shipped_template_is_valid() -> None:
    assert validate_template(SHIPPED) == []


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize(
    "name",
    [
        "kernel_username",
        "kernel_image",
        "kernel_cpus",
        "kernel_memory",
        "kernel_pod_name",
        "kernel_connection_file",
        "kernel_gpu_resource",
    ],
)
def test_injected_value_adds_no_fields_or_documents(name: str, payload: str) -> None:
    benign = render_pod_template(SHIPPED, values_with(name, "benign"))
    pod = render_pod_template(SHIPPED, values_with(name, payload))
    assert shape(pod, payload) == shape(benign, "benign")
    assert pod["kind"] == "Pod"


def test_value_appears_verbatim_never_evaluated() -> None:
    pod = render_pod_template(SHIPPED, values_with("kernel_image", "{{7*7}}"))
    assert pod["spec"]["containers"][0]["image"] == "{{7*7}}"
    pod = render_pod_template(SHIPPED, values_with("kernel_id", "a\nkind: Secret"))
    assert pod["spec"]["containers"][0]["env"][0]["value"] == "a\nkind: Secret"
    assert pod["kind"] == "Pod"


def test_value_inside_a_larger_string_stays_one_string() -> None:
    template = SHIPPED.replace(WORKDIR, "workingDir: /home/{{ kernel_username }}/work")
    pod = render_pod_template(template, values_with("kernel_username", "x\ny: {z: 1}"))
    assert pod["spec"]["containers"][0]["workingDir"] == "/home/x\ny: {z: 1}/work"


def test_value_used_as_a_mapping_key_stays_a_key() -> None:
    pod = render_pod_template(SHIPPED, values_with("kernel_gpu_resource", "a: b\nc"))
    assert "a: b\nc" in pod["spec"]["containers"][0]["resources"]["limits"]


def keys(node: object) -> set[str]:
    if isinstance(node, dict):
        return set(node).union(*(keys(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(keys(v) for v in node))
    return set()


TEMPLATE_KEYS = keys(render_pod_template(SHIPPED, SAMPLE_VALUES))


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(STRING_VARS), payload=st.text(max_size=60))
def test_any_text_in_any_string_variable_keeps_the_structure(name: str, payload: str) -> None:
    assume(payload not in TEMPLATE_KEYS)  # a variable used as a key may not spell another key of the pod
    benign = render_pod_template(SHIPPED, values_with(name, "benign"))
    assert shape(render_pod_template(SHIPPED, values_with(name, payload)), payload) == shape(benign, "benign")


def test_integers_may_be_computed_on() -> None:
    pod = render_pod_template(SHIPPED, {**SAMPLE_VALUES, "kernel_gpus": 0})
    assert "nvidia.com/gpu" not in pod["spec"]["containers"][0]["resources"]["limits"]
    pod = render_pod_template(SHIPPED, {**SAMPLE_VALUES, "kernel_gpus": 2})
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2


def test_filtering_a_string_value_is_reported_not_silently_wrong() -> None:
    template = SHIPPED.replace("{{ kernel_pod_name }}", "{{ kernel_pod_name | upper }}")
    with pytest.raises(TemplateError, match="opaque"):
        render_pod_template(template, SAMPLE_VALUES)


def test_sandbox_blocks_template_code_execution() -> None:
    template = SHIPPED.replace(WORKDIR, "workingDir: {{ ''.__class__.__mro__[1].__subclasses__() }}")
    issues = validate_template(template)
    assert issues and "unsafe" in issues[0].message
    assert issues[0].line == SHIPPED[: SHIPPED.index(WORKDIR)].count("\n") + 1


def test_syntax_error_reports_its_line() -> None:
    template = SHIPPED.replace("{%- endif %}", "{%- endfi %}", 1)
    [issue] = validate_template(template)
    assert issue.line is not None and "syntax" in issue.message


def test_unknown_variable_is_reported_with_line() -> None:
    template = SHIPPED.replace("{{ kernel_id }}", "{{ kernel_idd }}")
    [issue] = validate_template(template)
    assert "kernel_idd" in issue.message
    assert issue.line == SHIPPED[: SHIPPED.index("{{ kernel_id }}")].count("\n") + 1


def test_template_with_two_documents_is_rejected() -> None:
    issues = validate_template(SHIPPED + "\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: x}\n")
    assert any("exactly one document" in i.message for i in issues)


def test_template_of_another_kind_is_rejected() -> None:
    issues = validate_template("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n")
    assert any("kind: Pod" in i.message for i in issues)


def test_unknown_pod_field_is_a_schema_issue() -> None:
    template = SHIPPED.replace(WORKDIR, "workingDir: /tmp\n    workingDirectory: /tmp")
    issues = validate_template(template)
    assert any("workingDirectory" in i.message for i in issues)


def test_invalid_yaml_reports_output_line() -> None:
    issues = validate_template("apiVersion: v1\nkind: Pod\nmetadata: {name: [\n")
    assert issues and "YAML" in issues[0].message and issues[0].line


EG_STYLE = """\
apiVersion: v1
kind: Pod
metadata:
  name: "{{ kernel_pod_name }}"
  namespace: "{{ kernel_namespace }}"
  labels:
    kernel_id: "{{ kernel_id }}"
    app: enterprise-gateway
    component: kernel
spec:
  restartPolicy: Never
  serviceAccountName: "{{ kernel_service_account_name }}"
  containers:
  - image: "{{ kernel_image }}"
    name: "{{ kernel_pod_name }}"
    {% if kernel_cpus is defined or kernel_memory is defined or kernel_gpus is defined %}
    resources:
      requests:
        {% if kernel_cpus is defined %}
        cpu: "{{ kernel_cpus }}"
        {% endif %}
        {% if kernel_memory is defined %}
        memory: "{{ kernel_memory }}"
        {% endif %}
    {% endif %}
"""


def test_an_enterprise_gateway_style_template_works_unchanged() -> None:
    assert validate_template(EG_STYLE) == []
    pod = render_pod_template(EG_STYLE, SAMPLE_VALUES)
    assert pod["metadata"]["labels"]["kernel_id"] == SAMPLE_VALUES["kernel_id"]
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "4", "memory": "16Gi"}


def test_eg_variables_we_do_not_provide_are_named() -> None:
    template = EG_STYLE.replace(
        "restartPolicy: Never", "restartPolicy: Never\n  {% if kernel_uid is defined %}{% endif %}"
    )
    [issue] = validate_template(template)
    assert "kernel_uid" in issue.message and issue.line == 12
