"""The upstream CRD schemas the tests validate against are vendored (tests/crds), so no test skips for want
of them; where the shared reference folder exists, the copy must match it."""

from __future__ import annotations

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


def test_the_vendored_schemas_match_the_shared_reference_where_it_exists() -> None:
    if not SHARED.is_dir():  # a clone on its own (CI): the vendored copy is the reference
        return
    assert _files(VENDORED) == _files(SHARED), "tests/crds is stale: copy ../shared/reference/crds again"
