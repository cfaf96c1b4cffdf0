"""Gateway configuration: what the provisioner hands the gateway process, and loading the policy.

The provisioner passes one JSON object in the ``MLP_KERNEL_CONFIG`` environment variable (merged from the
kernelspec's ``metadata.kernel_provisioner.config`` and traitlets). It holds no secrets: the connection key
travels only in the connection file, which the gateway reads with ``-f`` like any kernel. The user and team
come only from here (the provisioner decides them from the server's identity): ``KERNEL_USERNAME`` and
``KERNEL_TEAM`` in the gateway's environment may have been set by a client and are never read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..identity import os_user

ENV = "MLP_KERNEL_CONFIG"


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
    def from_env(cls, environ: dict[str, str] | None = None) -> GatewayConfig:
        environ = dict(os.environ if environ is None else environ)
        raw = json.loads(environ.get(ENV) or "{}")
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
