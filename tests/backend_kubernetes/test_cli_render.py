"""`mlp-kernel render`: the exact objects a launch would create, secrets redacted; bad input exits 2."""

from __future__ import annotations

import subprocess
import sys

import yaml

from .policies import KERNELSPEC, PLATFORM_POLICY, ROOT


def render(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlp_kernel.cli", "render", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_render_prints_the_redacted_secret_and_the_pod() -> None:
    result = render(
        "--kernelspec",
        str(KERNELSPEC),
        "--policy",
        str(PLATFORM_POLICY),
        "--member",
        "aws",
        "--flavor",
        "gold",
        "--user",
        "alice",
        "--gpus",
        "2",
        "--kernel-id",
        "k1",
    )
    assert result.returncode == 0, result.stderr
    secret, pod = yaml.safe_load_all(result.stdout)
    assert secret["kind"] == "Secret" and pod["kind"] == "Pod"
    assert '"key": "<redacted>"' in secret["stringData"]["connection.json"]
    assert "data" not in secret
    assert pod["metadata"]["name"] == "mlpk-k1-1"
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["spec"]["nodeSelector"] == {"mlp.io/gpu-tier": "gold"}


def test_render_lists_policy_problems_and_exits_2() -> None:
    result = render(
        "--kernelspec",
        str(KERNELSPEC),
        "--policy",
        str(PLATFORM_POLICY),
        "--member",
        "private",
        "--flavor",
        "gold",
        "--user",
        "alice",
    )
    assert result.returncode == 2
    assert "flavor 'gold' belongs to member 'aws', not 'private'" in result.stderr


def test_render_with_an_unknown_kernelspec_exits_2() -> None:
    result = render("--kernelspec", "no-such-kernelspec", "--member", "m", "--flavor", "f", "--user", "u")
    assert result.returncode == 2 and "no-such-kernelspec" in result.stderr
