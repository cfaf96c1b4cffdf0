"""Shared fixtures for placement tests: the shipped policies, the dump files and a fixed clock."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
import yaml

from mlp_kernel.placement import Policy, load_policy
from tests.kubeapi.fixtures import kube_crd_dir, kube_members, kube_members_config  # noqa: F401  (test_live)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUMPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dumps")
KERNELSPEC = os.path.join(ROOT, "kernelspecs", "gpu-auto")
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)


def dump(name: str) -> str:
    return os.path.join(DUMPS, name)


@pytest.fixture
def demo_policy() -> Policy:
    return load_policy(os.path.join(KERNELSPEC, "demo-policy.yaml"))


@pytest.fixture
def platform_policy() -> Policy:
    return load_policy(os.path.join(KERNELSPEC, "platform-policy.yaml"))


@pytest.fixture
def edited_dump(tmp_path: Any) -> Callable[[str, Callable[[dict[str, Any]], None]], str]:
    """Copy a dump, call ``edit(obj)`` on every item, and return the edited copy's path."""

    def make(name: str, edit: Callable[[dict[str, Any]], None]) -> str:
        with open(dump(name), encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
        doc = copy.deepcopy(doc)
        for item in doc["items"]:
            edit(item)
        path = tmp_path / f"edited-{len(list(tmp_path.iterdir()))}-{name}"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        return str(path)

    return make
