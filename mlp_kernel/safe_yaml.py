"""The one way mlp-kernel reads YAML it did not write: bounded in size, depth and alias expansion.

Policies, Kueue/Karmada state dumps, traces and the admin page's bodies come from people and tools we do not
control. ``yaml.safe_load`` refuses arbitrary objects but not the inputs that hang or crash a reader: a
600-byte "billion laughs" alias bomb (cheap to load, since aliases share one object, but every walk over the
result visits 10^9 values), an alias inside its own anchor (a cyclic tree: every walk recurses forever),
5,000-deep nesting (``RecursionError`` in the composer), a gzip'd or binary file (``UnicodeDecodeError``),
or an invalid implicit timestamp such as ``2020-13-45`` (a bare ``ValueError`` from the constructor). Each
becomes one ``YamlInputError`` whose message is a single line naming the source (file name or what the text
is) and, where the parser knows it, the line: ``policy.yaml: line 3: aliases expand to more than 100,000
values (an alias bomb?)``.

The bounds are checked on the parser's event stream before anything is composed, so the check itself cannot
recurse or expand: depth is counted on start/end events, and each anchor's expanded size is summed as its node
ends (an alias to an anchor that is still open is the cyclic case). Only then is the stream composed and
constructed, with the C parser when PyYAML has it (dumps of 10,000 workloads).

Public API (kept stable; the server's validation uses it too):

- ``load_yaml(text_or_bytes, *, source)``: one document (``None`` when empty); several documents are an error.
- ``load_yaml_all(text_or_bytes, *, source)``: every document, empty ones dropped.
- ``compose_yaml_all(text_or_bytes, *, source)``: the checked node trees, for callers that report lines.
- ``read_yaml_text(path)``: a file's text, size-bounded and decoded as above (``source`` is the path).
- ``YamlInputError``: the only exception any of them raises for bad input (a ``ValueError``); ``str()`` is
  one line; ``source``, ``problem`` and ``line`` (1-based or ``None``) are kept separately.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

MAX_BYTES = 32 * 1024 * 1024  # a dump of 10,000 pending workloads is about 20 MB
MAX_DEPTH = 100  # Kubernetes objects nest about 15 deep
MAX_ALIAS_EXPANSION = 100_000  # values that aliases add on top of those written out

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_GZIP = b"\x1f\x8b"


class YamlInputError(ValueError):
    """Input that is not usable YAML, or exceeds a bound; ``str()`` is one line naming the source."""

    def __init__(self, source: str, problem: str, line: int | None = None) -> None:
        self.source = source
        self.problem = " ".join(str(problem).split())  # the parser's messages span lines
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{self.source}: {where}{self.problem}"


def read_yaml_text(path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> str:
    """The text of the file at ``path``, refusing unreadable, oversized, compressed and binary files."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise YamlInputError(source, f"cannot read: {exc.strerror or exc}") from None
    return _decode(data, source, max_bytes)


def load_yaml(text_or_bytes: str | bytes, *, source: str, **bounds: int) -> Any:
    """The single document in ``text_or_bytes`` (``None`` if empty). Raises ``YamlInputError``."""
    docs = load_yaml_all(text_or_bytes, source=source, **bounds)
    if len(docs) > 1:
        raise YamlInputError(source, "expected one YAML document, found several")
    return docs[0] if docs else None


def load_yaml_all(text_or_bytes: str | bytes, *, source: str, **bounds: int) -> list[Any]:
    """Every non-empty document in ``text_or_bytes``. Raises ``YamlInputError``."""
    text = _checked(text_or_bytes, source, **bounds)
    return [d for d in _guard(source, lambda: list(yaml.load_all(text, Loader=_LOADER))) if d is not None]


def compose_yaml_all(text_or_bytes: str | bytes, *, source: str, **bounds: int) -> list[yaml.Node]:
    """The node tree of every non-empty document (nodes keep their line). Raises ``YamlInputError``."""
    text = _checked(text_or_bytes, source, **bounds)
    return [d for d in _guard(source, lambda: list(yaml.compose_all(text, Loader=_LOADER))) if d is not None]


def _checked(
    text_or_bytes: str | bytes,
    source: str,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_alias_expansion: int = MAX_ALIAS_EXPANSION,
) -> str:
    if isinstance(text_or_bytes, (bytes, bytearray, memoryview)):
        text = _decode(bytes(text_or_bytes), source, max_bytes)
    elif isinstance(text_or_bytes, str):
        if len(text_or_bytes) > max_bytes:  # characters: a cheap, conservative stand-in for bytes
            raise YamlInputError(source, f"too large (over {max_bytes:,} bytes)")
        text = text_or_bytes
        if "\x00" in text:
            raise YamlInputError(source, "binary content (a NUL character); expected YAML text")
    else:
        raise TypeError(f"load_yaml takes str or bytes, not {type(text_or_bytes).__name__}")
    _guard(source, lambda: _check_events(text, source, max_depth, max_alias_expansion))
    return text


def _decode(data: bytes, source: str, max_bytes: int) -> str:
    if len(data) > max_bytes:
        raise YamlInputError(source, f"too large (over {max_bytes:,} bytes)")
    if data.startswith(_GZIP):
        raise YamlInputError(source, "gzip-compressed; decompress it first (gunzip)")
    if b"\x00" in data:
        raise YamlInputError(source, "binary content (a NUL byte); expected UTF-8 YAML text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YamlInputError(source, f"not UTF-8 text (byte {exc.start})") from None


def _check_events(text: str, source: str, max_depth: int, max_alias_expansion: int) -> None:
    """Depth and alias expansion from the event stream: no recursion, no expansion, one pass."""
    sizes: dict[str, int] = {}  # anchor -> values in its node, aliases expanded
    stack: list[list[Any]] = []  # per open collection: [anchor, values so far]
    expanded = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.DocumentStartEvent):
            sizes.clear()  # anchors are per document
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= max_depth:
                raise YamlInputError(source, f"nested more than {max_depth} levels deep", _line(event))
            stack.append([event.anchor, 0])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, inner = stack.pop()
            _add(stack, sizes, anchor, inner + 1)
        elif isinstance(event, yaml.ScalarEvent):
            _add(stack, sizes, event.anchor, 1)
        elif isinstance(event, yaml.AliasEvent):
            if any(frame[0] == event.anchor for frame in stack):
                problem = f"alias *{event.anchor} refers to itself (recursive)"
                raise YamlInputError(source, problem, _line(event))
            size = sizes.get(event.anchor or "", 1)  # an unknown anchor: the composer reports it
            _add(stack, sizes, None, size)
            expanded += size
            if expanded > max_alias_expansion:
                raise YamlInputError(
                    source,
                    f"aliases expand to more than {max_alias_expansion:,} values (an alias bomb?)",
                    _line(event),
                )


def _add(stack: list[list[Any]], sizes: dict[str, int], anchor: str | None, size: int) -> None:
    if anchor is not None:
        sizes[anchor] = size
    if stack:
        stack[-1][1] += size


def _line(event: Any) -> int | None:
    mark = getattr(event, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def _guard(source: str, work: Any) -> Any:
    """Run ``work``; every way PyYAML fails on bad input becomes one ``YamlInputError``."""
    try:
        return work()
    except YamlInputError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlInputError(source, f"not valid YAML: {problem}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlInputError(source, f"not valid YAML: {exc}") from None
    except RecursionError:
        raise YamlInputError(source, "nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. the implicit timestamp 2020-13-45
        raise YamlInputError(source, f"not valid YAML: {exc}") from None
