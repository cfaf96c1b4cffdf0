"""How a policy field is declared: its YAML key, meaning, kind, range and default, once, on the dataclass.

Kueue declares each API field once (type, doc comment, default and validation markers on the Go field) and
generates the CRD schema and the reference docs from it. The policy did the opposite: a field's doc lived in
the class docstring, its key in a ``*_FIELDS`` tuple, its default and range in the loader's call, and its row
in ``docs/policy.md``, and they drifted (``Member.health``'s default). Here each dataclass field of
``policy.py`` (and ``GpuRequest``, ``ReleaseRule``) carries a ``FieldSpec`` in its metadata; ``policy_load``
walks the specs to read and check values, and ``policy_doc`` writes the doc's tables from the same specs.

Checks that relate fields to each other (a flavor's member must exist, ``namespace`` is required for a
kubernetes member) stay in the loader's code; their words for the doc are the spec's ``rule``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..validation import Issue

Kind = Literal[
    "boolean", "string", "choice", "number", "integer", "duration", "size", "strings", "quantity", "custom"
]  # fmt: skip

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
PATTERN_NAMES = {DNS_LABEL: "DNS label", DNS_SUBDOMAIN: "DNS subdomain"}


@dataclass(frozen=True)
class FieldSpec:
    """One policy field as the admin writes it.

    - ``key``: the YAML key (``threshold``, while the dataclass field is ``threshold_s``).
    - ``doc``: what it means (Markdown; the doc's "meaning" column).
    - ``kind``: how the loader reads it; ``custom`` fields (sections, labels, storage) have their own code.
    - ``required`` / ``required_if``: must be given (always, or when a sibling field has a value, e.g.
      ``("backend", "kubernetes")``); ``hint`` says what to give, in the error and the doc.
    - ``minimum`` / ``maximum`` / ``positive``: the range of numbers and durations; ``choices`` of a choice;
      ``pattern`` of a string.
    - ``default_doc``: the default in words, when it is computed (``karmada`` when ``karmada_cluster`` is
      set); otherwise the doc prints the dataclass default itself.
    - ``rule``: what else the loader checks, in words for the doc's "validation" column.
    """

    key: str
    doc: str
    kind: Kind = "custom"
    required: bool = False
    required_if: tuple[str, str] | None = None
    hint: str = ""
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    default_doc: str = ""
    rule: str = ""


METADATA_KEY = "mlp_kernel.policy"


def policy_field(
    key: str,
    doc: str,
    kind: Kind = "custom",
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    **spec: Any,
) -> Any:
    """A dataclass field declared as policy field ``key`` (see ``FieldSpec`` for ``spec``)."""
    metadata = {METADATA_KEY: FieldSpec(key, doc, kind, **spec)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def specs(cls: type) -> list[tuple[dataclasses.Field[Any], FieldSpec]]:
    """The policy fields of a dataclass, in declaration order (fields without a spec are not in the file)."""
    return [(f, f.metadata[METADATA_KEY]) for f in dataclasses.fields(cls) if METADATA_KEY in f.metadata]


def keys(cls: type) -> tuple[str, ...]:
    """The YAML keys a section of type ``cls`` accepts; any other key is an error."""
    return tuple(s.key for _, s in specs(cls))


def default_of(f: dataclasses.Field[Any]) -> Any:
    """The dataclass default of ``f`` (None when it has none): what the loader uses for a missing field."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def spec_of(cls: type, key: str) -> FieldSpec:
    """The spec of the field whose YAML key is ``key``."""
    for _, s in specs(cls):
        if s.key == key:
            return s
    raise KeyError(key)


# --- sections owned elsewhere -------------------------------------------------------------------------------

StorageCheck = Callable[[Mapping[str, Any]], list[Issue]]
_STORAGE_CHECKS: list[StorageCheck] = []


def register_storage_check(check: StorageCheck) -> None:
    """Have the policy loader run ``check`` on ``snapshot.storage`` (paths in its issues are relative to it).

    ``snapshot.storage`` belongs to the snapshot package, which imports placement, so placement cannot import
    its check; ``mlp_kernel.snapshot.storage`` registers itself when imported, and whoever loads a policy that
    will be used for snapshots imports it first (the gateway, the CLI, the server). Without it the loader
    still checks that ``storage`` is a mapping, and the gateway checks the settings again when it uses them.
    """
    if check not in _STORAGE_CHECKS:
        _STORAGE_CHECKS.append(check)


def storage_checks() -> tuple[StorageCheck, ...]:
    return tuple(_STORAGE_CHECKS)
