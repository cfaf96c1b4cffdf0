"""Gateway configuration: what the provisioner hands the gateway process, and loading the policy.

The provisioner passes one JSON object in the ``MLP_KERNEL_CONFIG`` environment variable (merged from the
kernelspec's ``metadata.kernel_provisioner.config`` and traitlets). It holds no secrets: the connection key
travels only in the connection file, which the gateway reads with ``-f`` like any kernel. The user and team
come only from here (the provisioner decides them from the server's identity): ``KERNEL_USERNAME`` and
``KERNEL_TEAM`` in the gateway's environment may have been set by a client and are never read.

Without a provisioner (Jupyter Enterprise Gateway 3, whose ``jupyter_client<7`` has none, starts the kernel
from ``kernel.json``'s ``argv`` alone) there is no ``MLP_KERNEL_CONFIG``: the gateway then reads the same
``metadata.kernel_provisioner.config`` from the kernelspec directory named on its command line
(``--kernelspec-dir {resource_dir}``, which every jupyter_client substitutes), so one kernel.json configures
both ways of starting. The user is then the OS account running the gateway (or the kernelspec's ``user``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..identity import os_user

ENV = "MLP_KERNEL_CONFIG"
#: set only by a provisioner (it names and cleans up these files, knows the notebook); never by kernel.json
PROVISIONER_ONLY = frozenset({"kernel_id", "record_path", "status_path", "notebook", "kernelspec_dir"})


def kernelspec_provisioner_config(spec_dir: Path) -> dict[str, Any]:
    """``metadata.kernel_provisioner.config`` of ``spec_dir/kernel.json`` (the keys a kernelspec may set).

    A kernel.json that cannot be read, or holds something else than objects on that path, is an error that
    names the file: starting with defaults instead would silently ignore the admin's policy.
    """
    path = spec_dir / "kernel.json"
    try:
        node: Any = json.loads(path.read_text())
        for key in ("metadata", "kernel_provisioner", "config"):
            node = node.get(key, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ValueError("metadata.kernel_provisioner.config is not an object")
    except (OSError, ValueError) as exc:
        raise SystemExit(f"GPU (auto): cannot read the kernelspec's configuration in {path}: {exc}") from None
    fields = GatewayConfig.__dataclass_fields__
    return {k: v for k, v in node.items() if k in fields and k not in PROVISIONER_ONLY}


@dataclass
class GatewayConfig:
    kernel_id: str = ""
    policy: str = ""  # path of the placement policy YAML; "" = the kernelspec's policy.yaml
    backend: str = ""  # "" = the policy member's backend; "local" forces every launch local
    idle_timeout: str | None = None  # overrides the policy's default idle timeout ("15m")
    defaults: dict[str, Any] = field(default_factory=dict)  # default %gpu options, e.g. {"burst": "on"}
    record_path: str = ""  # where the remote kernel's handle is recorded for the provisioner's clean-up
    status_path: str = ""  # the status snapshot file the server extension reads
    kernelspec_dir: str = ""
    user: str = ""
    notebook: str = ""
    team: str = ""
    launch_timeout: str | None = None
    kubernetes: dict[str, Any] = field(default_factory=dict)  # KubernetesBackend options (kubeconfig, ..)
    local_python: str = ""  # interpreter for local-backend kernels ("" = the gateway's own)
    local_kernel_args: list[str] | None = None  # ipykernel options of local kernels (None = the backend's)
    start_timeout_s: float = 120.0  # how long a started kernel may take to answer its first request
    reevaluate_s: float = 5.0  # while queued, placement is asked again this often (may it burst now?)
    log_level: str = "WARNING"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, kernelspec_dir: str = "") -> GatewayConfig:
        """The provisioner's configuration from ``MLP_KERNEL_CONFIG``; without it (no provisioner), the
        kernelspec's own ``metadata.kernel_provisioner.config`` from ``kernelspec_dir``."""
        environ = dict(os.environ if environ is None else environ)
        if environ.get(ENV) or not kernelspec_dir:
            raw = json.loads(environ.get(ENV) or "{}")
        else:
            raw = {**kernelspec_provisioner_config(Path(kernelspec_dir)), "kernelspec_dir": kernelspec_dir}
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        cfg = cls(**known)
        if not cfg.user:  # started without the provisioner: the OS account, never a variable a client can set
            cfg.user = os_user()
        return cfg

    def policy_path(self) -> Path:
        if self.policy:
            p = Path(self.policy)
            if not p.is_absolute() and self.kernelspec_dir:
                p = Path(self.kernelspec_dir) / p
            return p
        base = (
            Path(self.kernelspec_dir)
            if self.kernelspec_dir
            else Path(__file__).parents[2] / "kernelspecs/gpu-auto"
        )
        return base / "policy.yaml"

    def to_env(self) -> str:
        return json.dumps({k: getattr(self, k) for k in self.__dataclass_fields__})
