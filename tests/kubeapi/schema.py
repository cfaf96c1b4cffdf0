"""CRD structural-schema handling: load CRDs, apply defaults, prune unknown fields, validate (422).

A real apiserver defaults, prunes and validates custom resources against ``openAPIV3Schema``. We do the
same with ``jsonschema`` so that an object our product generates with a wrong field name or type fails here
the way it would fail on a cluster. CEL rules (``x-kubernetes-validations``) are not evaluated.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .errors import invalid

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Where the upstream CRD schemas live, relative to the project root (see the shared reference README).
DEFAULT_CRD_DIR = Path(__file__).resolve().parents[1] / "crds"  # vendored: tests/crds/README.md


@functools.lru_cache(maxsize=4)
def load_crds(crd_dir: str) -> tuple[dict[str, Any], ...]:
    """All CustomResourceDefinitions under ``crd_dir``.

    The upstream files are large (the Workload CRD alone is 1.4 MB of YAML, ~1 s to parse), so the parsed
    result is cached per process and as JSON in the temp directory, keyed by the files' paths, sizes and
    mtimes; a server then starts in milliseconds.
    """
    paths = sorted(Path(crd_dir).rglob("*.yaml"))
    fingerprint = hashlib.sha256(
        json.dumps([(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]).encode()
    ).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"mlp-kubeapi-crds-{fingerprint}.json"
    try:
        return tuple(json.loads(cache.read_text()))
    except (OSError, ValueError):
        pass
    crds = _parse_crds(paths)
    try:
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(crds))
        os.replace(tmp, cache)
    except OSError:
        pass
    return tuple(crds)


def _parse_crds(paths: list[Path]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for doc in yaml.load_all(fh, Loader=Loader):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    out.append(doc)
    return out


def _to_json_schema(schema: Any) -> Any:
    """Translate OpenAPI v3 ``nullable`` into JSON Schema; other x- extensions are ignored by jsonschema."""
    if isinstance(schema, list):
        return [_to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _to_json_schema(v) for k, v in schema.items()}
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    return out


_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}


def _validator(schema: dict[str, Any]) -> Any:
    entry = _VALIDATORS.get(id(schema))
    if entry is None or entry[0] is not schema:
        import jsonschema  # slow to import (~1 s on a loaded machine): only when a CR is first validated

        entry = (schema, jsonschema.Draft7Validator(_to_json_schema(schema)))
        _VALIDATORS[id(schema)] = entry
    return entry[1]


def default_and_prune(obj: Any, schema: dict[str, Any], root: bool = False) -> Any:
    """Apply ``default`` values and drop fields the structural schema does not declare."""
    if isinstance(obj, dict):
        props: dict[str, Any] | None = schema.get("properties")
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        for name, sub in (props or {}).items():
            if name not in obj and "default" in sub:
                obj[name] = copy.deepcopy(sub["default"])
        for key in list(obj):
            if root and key in ("apiVersion", "kind", "metadata"):
                continue
            if props and key in props:
                obj[key] = default_and_prune(obj[key], props[key])
            elif isinstance(additional, dict):
                obj[key] = default_and_prune(obj[key], additional)
            elif props is not None and not preserve and additional is not True:
                del obj[key]
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [default_and_prune(item, schema["items"]) for item in obj]
    return obj


def _path(error: Any) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate_custom_object(obj: dict[str, Any], schema: dict[str, Any], kind: str, group: str) -> None:
    """Raise a 422 ``Invalid`` ApiError listing every schema violation, with Kubernetes-style field paths."""
    errors = sorted(_validator(schema).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    causes: list[tuple[str, str, str]] = []
    for err in errors[:20]:
        field = _path(err)
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else "?"
            causes.append(
                (f"{field}.{missing}" if field else missing, "FieldValueRequired", "Required value")
            )
        elif err.validator == "enum":
            supported = ", ".join(f'"{v}"' for v in err.validator_value)
            causes.append(
                (
                    field,
                    "FieldValueNotSupported",
                    f"Unsupported value: {json.dumps(err.instance)}: supported values: {supported}",
                )
            )
        else:
            causes.append(
                (
                    field,
                    "FieldValueInvalid",
                    f"Invalid value: {json.dumps(err.instance)[:200]}: {err.message[:300]}",
                )
            )
    name = (obj.get("metadata") or {}).get("name", "")
    raise invalid(kind, name, causes, group)
