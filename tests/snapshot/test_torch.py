"""PyTorch tensors, notebook-defined modules and their optimizer survive a release together."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ci import require_module

from .conftest import KernelFactory, shutdown
from .helpers import restore_into, take_snapshot


@pytest.fixture(autouse=True)
def _torch_installed() -> None:
    require_module("torch", "torch is not installed (.ci/run installs it unless MLP_SKIP_TORCH=1)")


TRAINING = """
import torch
from torch import nn
torch.manual_seed(0)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.register_buffer("calls", torch.zeros(1))
    def forward(self, x):
        self.calls += 1
        return self.fc(x)

model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
data = torch.randn(8, 4)
target = torch.randn(8, 2)
for _ in range(3):
    optimizer.zero_grad()
    loss = ((model(data) - target) ** 2).mean()
    loss.backward()
    optimizer.step()
    scheduler.step()
half = torch.arange(6, dtype=torch.float16).reshape(2, 3)
weights_only = {k: v.clone() for k, v in model.state_dict().items()}
"""

CHECK_AFTER_STEP = """
before = [p.detach().clone() for p in model.parameters()]
optimizer.zero_grad()
((model(data) - target) ** 2).mean().backward()
optimizer.step()
moved = all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
"""


async def test_model_optimizer_and_tensors_round_trip(kernels: KernelFactory, tmp_path: Path) -> None:
    first = await kernels()
    await first.run(TRAINING)
    expected = await first.value("[model(data).tolist(), optimizer.state_dict()['state'][0]['step'].item()]")
    lr = await first.value("optimizer.param_groups[0]['lr']")
    report = await take_snapshot(first, tmp_path / "snap")
    assert {"model", "optimizer", "scheduler", "data", "half", "Net", "torch", "nn"} <= set(report.saved)
    assert report.skipped == {}
    await shutdown(first)

    second = await kernels()
    restored = await restore_into(second, tmp_path / "snap")
    assert restored.notes == {}
    # the forward pass also bumps the buffer, exactly as it did in the first kernel
    assert (
        await second.value("[model(data).tolist(), optimizer.state_dict()['state'][0]['step'].item()]")
        == expected
    )
    assert await second.value("optimizer.param_groups[0]['lr']") == lr
    assert await second.value("isinstance(model, Net) and model.calls.item() == 5")
    assert await second.value("str(half.dtype), half.tolist()") == ["torch.float16", [[0, 1, 2], [3, 4, 5]]]
    assert await second.value(
        "all(torch.equal(weights_only[k], v) for k, v in model.state_dict().items() if k != 'calls')"
    )


async def test_optimizer_still_drives_the_restored_model(kernels: KernelFactory, tmp_path: Path) -> None:
    first = await kernels()
    await first.run(TRAINING)
    await take_snapshot(first, tmp_path / "snap")
    await shutdown(first)
    second = await kernels()
    await restore_into(second, tmp_path / "snap")
    assert await second.value(
        "all(a is b for a, b in zip(optimizer.param_groups[0]['params'], model.parameters()))"
    )
    assert await second.value("scheduler.optimizer is optimizer")
    await second.run(CHECK_AFTER_STEP)
    assert await second.value("moved")


async def test_gpu_tensors_come_back_on_cpu_with_a_note_when_no_gpu(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    """A snapshot taken on a GPU records CUDA storage locations; a CPU-only kernel maps them to the CPU.

    No GPU here, so the first kernel tags its storages as ``cuda:0`` exactly where torch.save asks for the
    location (``torch.serialization.location_tag``), which is what a GPU kernel's file contains.
    """
    first = await kernels()
    await first.run(
        "import torch\nimport torch.serialization as ser\n"
        "gpu_tensor = torch.arange(4.0)\nmodel = torch.nn.Linear(2, 2)\n"
        "ser.location_tag = lambda storage: 'cuda:0'\n"
    )
    await take_snapshot(first, tmp_path / "snap")
    await shutdown(first)
    second = await kernels(env={"CUDA_VISIBLE_DEVICES": ""})
    restored = await restore_into(second, tmp_path / "snap")
    assert restored.notes == {
        "gpu_tensor": "restored to CPU: no GPU in this kernel",
        "model": "restored to CPU: no GPU in this kernel",
    }
    assert "gpu_tensor (restored to CPU: no GPU in this kernel)" in restored.summary_line("restored")
    assert await second.value("str(gpu_tensor.device), gpu_tensor.tolist()") == ["cpu", [0, 1, 2, 3]]


async def test_an_unpicklable_torch_object_does_not_sink_the_others(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    first = await kernels()
    await first.run(
        "import torch, os\nclass Logged(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.lin = torch.nn.Linear(1, 1)\n        self.log = open(os.devnull, 'w')\n"
        "bad = Logged()\ngood = torch.ones(3)\n"
    )
    report = await take_snapshot(first, tmp_path / "snap")
    assert report.skipped == {"bad": "holds an open file"}
    assert "good" in report.saved
    await shutdown(first)
    second = await kernels()
    await restore_into(second, tmp_path / "snap")
    assert await second.value("good.tolist()") == [1, 1, 1]


async def test_torch_objects_over_the_cap_are_named_as_such(kernels: KernelFactory, tmp_path: Path) -> None:
    kernel = await kernels()
    await kernel.run("import torch\nbig = torch.zeros(1_000_000)\nlayer = torch.nn.Linear(2, 2)\nsmall = 1\n")
    report = await take_snapshot(kernel, tmp_path / "snap", max_bytes=100_000)
    assert report.skipped == {"big": "over the size cap", "layer": "over the size cap"}
    assert "small" in report.saved and report.bytes <= 100_000
