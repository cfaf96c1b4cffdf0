"""The errors users see are classes whose names are the ``ename`` of the cell's error, listed in one place."""

from __future__ import annotations

import inspect
from pathlib import Path

from mlp_kernel.gateway import errors
from mlp_kernel.gateway.magic import MagicError, parse_magics
from mlp_kernel.placement import load_policy

ROOT = Path(__file__).resolve().parents[2]


def _all() -> list[type[errors.GpuError]]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.GpuError)]


def test_the_ename_is_the_class_name_except_an_interrupted_start_which_reads_as_python_does() -> None:
    for cls in _all():
        want = "KeyboardInterrupt" if cls is errors.GpuStartCancelled else cls.__name__
        assert cls("x").ename == want


def test_every_error_is_in_the_module_tree_that_documents_them() -> None:
    doc = errors.__doc__ or ""
    missing = [cls.__name__ for cls in _all() if cls.__name__ not in doc]
    assert not missing, missing


def test_the_parsers_error_is_the_users_ename() -> None:
    try:
        parse_magics(["%gpu tier=nope"], load_policy(ROOT / "kernelspecs/gpu-auto/demo-policy.yaml"))
    except MagicError as exc:
        assert exc.ename == "GpuMagicError" and isinstance(exc, errors.GpuError)
    else:
        raise AssertionError("an unknown tier must be refused")


def test_the_user_guide_explains_every_error() -> None:
    guide = (ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8")
    missing = [cls("x").ename for cls in _all() if f"| `{cls('x').ename}`" not in guide]
    assert missing == ["GpuError"], missing  # the base class is never raised
