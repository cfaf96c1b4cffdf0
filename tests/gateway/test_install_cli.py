"""``mlp-kernel install`` puts a working, re-configured kernelspec where jupyter looks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlp_kernel.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)  # fmt: skip


def test_install_under_another_name_with_another_policy(tmp_path):
    r = cli("install", "--name", "gpu-demo", "--display-name", "GPU (demo)", "--prefix", str(tmp_path),
            "--policy", str(ROOT / "kernelspecs/gpu-auto/demo-policy.yaml"), "--idle-timeout", "5m",
            "--default", "burst=on")  # fmt: skip
    assert r.returncode == 0, r.stderr
    spec_dir = tmp_path / "share/jupyter/kernels/gpu-demo"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["display_name"] == "GPU (demo)"
    cfg = spec["metadata"]["kernel_provisioner"]["config"]
    assert (
        cfg["idle_timeout"] == "5m" and cfg["defaults"] == {"burst": "on"} and cfg["policy"] == "policy.yaml"
    )
    assert "aws" in (spec_dir / "policy.yaml").read_text()


def test_install_refuses_bad_input_with_exit_code_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("members: 3\n")
    for args in (
        ["--name", "Bad Name"],
        ["--policy", str(bad)],
        ["--idle-timeout", "soon"],
        ["--default", "gpu=a1000", "--policy", str(ROOT / "kernelspecs/gpu-auto/demo-policy.yaml")],
    ):
        r = cli("install", "--prefix", str(tmp_path), *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.strip(), args
    assert not (tmp_path / "share/jupyter/kernels").exists() or not any(
        (tmp_path / "share/jupyter/kernels").iterdir()
    )
