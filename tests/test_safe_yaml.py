"""The one safe YAML loader: every hostile or careless input is one ``YamlInputError`` line, quickly."""

from __future__ import annotations

import gzip
import time

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlp_kernel.safe_yaml import (
    YamlInputError,
    compose_yaml_all,
    load_yaml,
    load_yaml_all,
    read_yaml_text,
)


def laughs(levels: int = 9) -> str:
    """The classic billion-laughs bomb: about 600 bytes, 10**levels values once expanded."""
    out = ["a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    for i in range(1, levels):
        out.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(out) + "\n"


BAD: dict[str, tuple[str | bytes, str]] = {
    "billion laughs": (laughs(), "alias bomb"),
    "recursive alias": ("a: &a [1, *a]\n", "refers to itself"),
    "recursive alias in a mapping": ("a: &a {b: *a}\n", "refers to itself"),
    "5,000-deep block nesting": ("- " * 5000 + "x\n", "nested more than"),
    "150-deep indented nesting": ("".join("  " * i + "-\n" for i in range(150)), "nested more than"),
    "5,000-deep flow nesting": ("[" * 5000 + "]" * 5000, "nesting depth"),
    "gzip": (gzip.compress(b"a: 1\n"), "gzip"),
    "binary": (bytes(range(256)), "binary"),
    "latin-1": ("caf\xe9: 1\n".encode("latin-1"), "not UTF-8"),
    "NUL in text": ("a: 1\x00\n", "binary"),
    "bad implicit timestamp": ("a: 2020-13-45\n", "month"),
    "undefined alias": ("a: *nope\n", "undefined alias"),
    "python tag": ("a: !!python/object/apply:os.system [true]\n", "not valid YAML"),
    "unhashable key": ("? [a]\n: 1\n", "not valid YAML"),
    "syntax": ("a: [1, 2\n", "not valid YAML"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_one_line_naming_the_source_in_well_under_a_second(name: str) -> None:
    data, expected = BAD[name]
    start = time.process_time()
    with pytest.raises(YamlInputError) as info:
        load_yaml_all(data, source="team-a.yaml")
    assert time.process_time() - start < 0.5
    message = str(info.value)
    assert message.startswith("team-a.yaml: ") and "\n" not in message
    assert expected in message


def test_aliases_within_bounds_still_work() -> None:
    text = "tol: &tol [{key: gpu, operator: Exists}]\na: {tolerations: *tol}\nb: {tolerations: *tol}\n"
    data = load_yaml(text, source="p.yaml")
    assert data["a"]["tolerations"] == data["b"]["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert load_yaml(laughs(4), source="p.yaml")["a3"][0][0][0][0] == "lol"  # 10,000 values: fine


def test_bounds_are_parameters() -> None:
    with pytest.raises(YamlInputError, match="over 10 bytes"):
        load_yaml("a: 12345678901\n", source="x", max_bytes=10)
    with pytest.raises(YamlInputError, match="more than 2 levels"):
        load_yaml("a: {b: {c: 1}}", source="x", max_depth=2)
    assert load_yaml("a: {b: 1}", source="x", max_depth=2) == {"a": {"b": 1}}


def test_one_document_or_all() -> None:
    assert load_yaml("", source="x") is None
    assert load_yaml(b"\xef\xbb\xbfa: 1\n", source="x") == {"a": 1}  # a BOM is fine
    with pytest.raises(YamlInputError, match="found several"):
        load_yaml("a: 1\n---\nb: 2\n", source="x")
    assert load_yaml_all("a: 1\n---\n---\nb: 2\n", source="x") == [{"a": 1}, {"b": 2}]


def test_nodes_keep_their_lines() -> None:
    (doc,) = compose_yaml_all("a: 1\nb:\n  c: 2\n", source="x")
    assert doc.value[1][1].start_mark.line == 2  # 0-based: "c: 2" is line 3


def test_read_yaml_text_names_the_file(tmp_path: object) -> None:
    path = tmp_path / "dump.yaml.gz"  # type: ignore[operator]
    path.write_bytes(gzip.compress(b"kind: List\n"))
    with pytest.raises(YamlInputError, match=r"dump\.yaml\.gz: gzip"):
        read_yaml_text(path)
    with pytest.raises(YamlInputError, match="missing.yaml: cannot read"):
        read_yaml_text(tmp_path / "missing.yaml")  # type: ignore[operator]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_arbitrary_input_loads_or_raises_only_yaml_input_error(data: str | bytes) -> None:
    try:
        load_yaml_all(data, source="fuzz")
    except YamlInputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz: ")


yaml_ish = st.text(alphabet="[]{}:,-&*!? \n\tab01'\"#|>%@`.", max_size=200)


@settings(max_examples=300, deadline=None)
@given(yaml_ish)
def test_yaml_punctuation_soup_loads_or_raises_only_yaml_input_error(text: str) -> None:
    try:
        docs = load_yaml_all(text, source="fuzz")
    except YamlInputError:
        return
    yaml.safe_dump_all(docs)  # whatever loads is an ordinary, finite tree


# --- its users: the pod template's rendered output goes through it too -----------------------------------


@pytest.mark.parametrize(
    "template, expected",
    [
        ("apiVersion: v1\nkind: Pod\n" + laughs(), "alias bomb"),
        ("apiVersion: v1\nkind: Pod\nspec: &s {x: *s}\n", "refers to itself"),
        (
            "apiVersion: v1\nkind: Pod\nspec: {% for i in range(300) %}[{% endfor %}1"
            "{% for i in range(300) %}]{% endfor %}\n",
            "nest",
        ),
    ],
)
def test_a_template_that_renders_a_yaml_bomb_is_a_template_issue(template: str, expected: str) -> None:
    from mlp_kernel.backends.kubernetes.template import validate_template

    start = time.process_time()
    issues = validate_template(template)
    assert time.process_time() - start < 1.0
    assert issues and "rendered YAML is invalid" in issues[0].message and expected in issues[0].message
