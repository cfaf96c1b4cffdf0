"""What a test does when something it needs is not on this machine: skip locally, fail on CI.

A developer without Go, PyTorch or root still gets a useful run (the skip says what is missing); CI (``CI``
set, as every CI service sets it) installs all of it through ``.ci/run``, so there a missing piece is a broken
install, and a suite that passed by skipping would hide it.
"""

from __future__ import annotations

import importlib.util
import os

import pytest


def unavailable(reason: str) -> None:
    """Skip saying ``reason``; with ``CI`` set, fail saying it instead."""
    if os.environ.get("CI"):
        pytest.fail(f"required on CI, where nothing may pass by skipping: {reason}", pytrace=False)
    pytest.skip(reason)


def require_module(name: str, reason: str) -> None:
    """``unavailable(reason)`` unless Python module ``name`` can be imported."""
    if importlib.util.find_spec(name) is None:
        unavailable(reason)


def require_root(reason: str) -> None:
    """``unavailable(reason)`` unless this process runs as root."""
    if getattr(os, "geteuid", lambda: -1)() != 0:
        unavailable(reason)
