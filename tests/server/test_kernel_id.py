"""A client-chosen kernel id cannot name files outside the runtime directory.

jupyter_server's ``POST /api/kernels`` takes a ``kernel_id`` from the body as it is; the GPU (auto)
provisioner builds its record and status file names (and Kubernetes object names) from it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mlp_kernel.provisioner import GpuAutoProvisioner

BAD_IDS = ["../../../escape", "a/b", "x" * 200, "-rf", "k\n1", "k1\n"]


@pytest.mark.parametrize("kernel_id", BAD_IDS)
def test_the_provisioner_refuses_a_kernel_id_that_is_not_a_plain_name(kernel_id: str) -> None:
    prov = GpuAutoProvisioner(kernel_id=kernel_id, kernel_spec=None)
    with pytest.raises(ValueError, match="refusing kernel id"):
        asyncio.run(prov.pre_launch())


def test_a_start_request_with_such_an_id_starts_nothing_and_writes_nothing_outside(
    api: Any, jp_serverapp: Any
) -> None:
    root = Path(jp_serverapp.runtime_dir).parent
    before = set(root.rglob("*"))
    for kernel_id in BAD_IDS:
        status, _ = api("POST", "/api/kernels", body={"name": "gpu-auto", "kernel_id": kernel_id})
        assert status == 500
    assert not [p for p in set(root.rglob("*")) - before if "mlp-kernel" in p.name or "escape" in p.name]
    _, kernels = api("GET", "/api/kernels")
    assert kernels == []
