"""The upstream CRD schemas the tests validate against are vendored (tests/crds), so no test skips for want
of them; where the shared reference folder exists, the copy must match it."""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDORED = ROOT / "tests" / "crds"
SHARED = ROOT.parent / "shared" / "reference" / "crds"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.yaml"))}


def test_the_vendored_schemas_are_there() -> None:
    names = set(_files(VENDORED))
    assert {
        "kueue/clusterqueues.yaml",
        "kueue/workloads.yaml",
        "karmada/policy.karmada.io_propagationpolicies.yaml",
    } <= names


def _sums() -> dict[str, str]:
    """``tests/crds/SHA256SUMS``: the digests of the upstream files as vendored (``sha256sum`` format)."""
    lines = (VENDORED / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split(maxsplit=1) for line in lines if line.strip())}


def test_the_vendored_schemas_are_the_recorded_upstream_files() -> None:
    """On every machine (a clean clone on CI has no ../shared): an edited or missing schema fails here."""
    found = {name: hashlib.sha256(data).hexdigest() for name, data in _files(VENDORED).items()}
    assert found == _sums(), "tests/crds differs from tests/crds/SHA256SUMS: vendor upstream files unedited"


def test_the_vendored_schemas_match_the_shared_reference_where_it_exists() -> None:
    if not SHARED.is_dir():  # a clone on its own (CI): the digests above are the reference
        return
    assert _files(VENDORED) == _files(SHARED), "tests/crds is stale: copy ../shared/reference/crds again"
