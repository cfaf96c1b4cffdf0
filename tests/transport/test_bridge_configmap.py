"""``mlp-kernel bridge``: the ConfigMap that ships the pod's bridge, and the bridge's promise to need nothing
but the standard library and tornado (a kernel image has no mlp-kernel). The script it carries is the one the
ingress tests run in the pod's namespace (tests/transport/deploy.py)."""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
from pathlib import Path

import yaml

from mlp_kernel.cli import bridge as bridge_cli
from mlp_kernel.transport import bridge


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlp_kernel.cli", "bridge", *args], capture_output=True, text=True
    )


def test_the_configmap_carries_the_bridge_unchanged_with_its_digest() -> None:
    result = cli("--namespace", "gpu-kernels")
    assert result.returncode == 0, result.stderr
    cm = yaml.safe_load(result.stdout)
    source = Path(bridge.__file__).read_text()
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["namespace"] == "gpu-kernels"
    assert cm["metadata"]["name"] == "mlp-kernel-bridge" and cm["data"] == {"bridge.py": source}
    assert (
        cm["metadata"]["annotations"]["mlp.io/bridge-sha256"] == hashlib.sha256(source.encode()).hexdigest()
    )
    assert result.stdout == bridge_cli.render("gpu-kernels")  # what deploy.py runs in the pod's namespace


def test_a_namespace_that_is_not_a_name_is_refused_with_what_to_do() -> None:
    result = cli("--namespace", "jupyter\nkind: Secret")
    assert result.returncode == 2 and not result.stdout
    assert "is not a Kubernetes namespace name" in result.stderr


def test_the_bridge_imports_only_the_standard_library_and_tornado() -> None:
    tree = ast.parse(Path(bridge.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}  # fmt: skip
    relative = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]
    assert not relative, "the bridge is shipped as one file: no relative imports"
    foreign = imported - set(sys.stdlib_module_names) - {"tornado"}
    assert not foreign, f"the bridge would not run in a kernel image: it imports {foreign}"
    assert "tornado" in imported  # the check above looked at real imports
