"""Builds the gateway's C hot path (``_hotpath.c``): into the wheel, or in place for an editable install.

Why a hatch hook and not setuptools: the project builds with hatchling (the JupyterLab extension has its hook
too), and one C file that needs nothing but Python's headers needs no build system, only the compiler line
Python was built with (``LDSHARED``). Without a compiler, or with ``MLP_KERNEL_HOTPATH=0``, the build goes on
and says why: the gateway then relays everything in Python (the same behaviour, more CPU per message;
docs/benchmarks.md). Not part of the installed package (the wheel leaves this file out).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "mlp_kernel/gateway/_hotpath.c"


def compile_hotpath(source: Path, target: Path) -> str | None:
    """Compile ``source`` to the extension module ``target``; None, or why it could not."""
    ldshared = sysconfig.get_config_var("LDSHARED") or "cc -shared"
    include = sysconfig.get_paths()["include"]
    flags = ["-O2", "-fPIC", "-std=gnu11", f"-I{include}"]
    argv = [*shlex.split(ldshared), *flags, str(source), "-o", str(target)]
    if sys.platform.startswith("linux"):
        argv.append("-ldl")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{argv[0]}: {exc}"
    if done.returncode != 0:
        return f"{shlex.join(argv)} failed:\n{done.stderr.strip()}"
    return None


class HotPathBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        if os.environ.get("MLP_KERNEL_HOTPATH") == "0":
            self.app.display_info("mlp-kernel: the gateway's C hot path is not built (MLP_KERNEL_HOTPATH=0)")
            return
        source = Path(self.root, SOURCE)
        name = "_hotpath" + str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")
        target = source.with_name(name)
        why = compile_hotpath(source, target)
        if why is not None:
            self.app.display_warning(
                f"mlp-kernel: the gateway's C hot path was not built, so it relays in Python: {why}"
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":  # an editable install imports it from the source tree
            build_data["force_include"][str(target)] = f"mlp_kernel/gateway/{name}"
