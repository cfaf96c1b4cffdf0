"""configurable-http-proxy, JupyterHub's proxy, from the npm registry, once per version.

``python -m tests.hub.proxy`` installs it. JupyterHub (PyPI, in the test extra) does not ship its proxy: it
is a Node.js program, installed in production with ``npm install -g configurable-http-proxy``. Here it goes
into a directory of its own under ``~/.cache/mlp-kernel`` (``.ci/run`` installs it during set-up, so the hub
test does not spend the install), and the test hub is pointed at that executable
(``ConfigurableHTTPProxy.command``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

VERSION = "5.3.0"
CACHE = Path(os.environ.get("MLP_KERNEL_CACHE", Path.home() / ".cache" / "mlp-kernel"))
PREFIX = CACHE / "hub" / f"configurable-http-proxy-{VERSION}"
CHP = PREFIX / "node_modules" / ".bin" / "configurable-http-proxy"


def ensure() -> Path:
    """The ``configurable-http-proxy`` executable, installing it first if needed (npm registry)."""
    if CHP.exists():
        return CHP
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "npm is not on PATH: configurable-http-proxy (JupyterHub's proxy) needs Node.js and npm"
        )
    PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(PREFIX),
            f"configurable-http-proxy@{VERSION}",
        ],
        check=True,
    )
    if not CHP.exists():
        raise RuntimeError(f"npm installed configurable-http-proxy {VERSION} without {CHP}")
    return CHP


if __name__ == "__main__":
    print(f"configurable-http-proxy {VERSION}: {ensure()}")
