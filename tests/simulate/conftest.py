"""Shared fixtures: the hand-sized policy and helpers to replay tiny traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlp_kernel.placement import Policy, load_policy

HERE = Path(__file__).parent
REPO = HERE.parent.parent


@pytest.fixture(scope="session")
def tiny_policy() -> Policy:
    return load_policy(HERE / "tiny-policy.yaml")


@pytest.fixture(scope="session")
def platform_policy() -> Policy:
    return load_policy(REPO / "kernelspecs/gpu-auto/platform-policy.yaml")
