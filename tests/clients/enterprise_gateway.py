"""Jupyter Enterprise Gateway 3.3 in a virtual environment of its own.

``python -m tests.clients.enterprise_gateway`` creates it.

EG 3.x pins ``jupyter_client<7`` and ``jupyter_server<2``, so it cannot share the test environment with
JupyterLab 4; like an admin's EG deployment it gets its own environment, created once per version under
``~/.cache/mlp-kernel`` (``.ci/run`` creates it during set-up, so the test itself does not spend the install).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

VERSION = "3.3.0"
CACHE = Path(os.environ.get("MLP_KERNEL_CACHE", Path.home() / ".cache" / "mlp-kernel"))
VENV = CACHE / f"enterprise-gateway-{VERSION}"
EG = VENV / "bin" / "jupyter-enterprisegateway"


def ensure() -> Path:
    """The ``jupyter-enterprisegateway`` executable, installing it first if needed (PyPI)."""
    if EG.exists():
        return EG
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, f"jupyter_enterprise_gateway=={VERSION}"], check=True)
    if not EG.exists():
        raise RuntimeError(f"jupyter_enterprise_gateway {VERSION} installed no {EG}")
    return EG


if __name__ == "__main__":
    print(f"Jupyter Enterprise Gateway {VERSION}: {ensure()}")
