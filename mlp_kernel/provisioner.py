"""GpuAutoProvisioner: the ``jupyter_client`` kernel provisioner behind the "GPU (auto)" kernelspec.

It launches the small gateway kernel process like ``LocalProvisioner`` launches any local kernel, handing it
its configuration in one environment variable, and guarantees that no remote GPU kernel outlives it: the
gateway records the remote kernel it runs in a file next to the connection file, and whenever the gateway
process ends (shutdown, restart, kill, crash) ``cleanup`` releases whatever that record still names.

Configuration: traitlets (``c.GpuAutoProvisioner.idle_timeout = "30m"``) or the kernelspec's
``metadata.kernel_provisioner.config`` (which wins), like any provisioner.

The user and team a kernel runs for are decided here, from the server's own identity (``identity.py``), and
handed to the gateway inside ``MLP_KERNEL_CONFIG``, which this provisioner always sets last. Whatever a
client put in the start request's environment (``KERNEL_USERNAME``, ``KERNEL_TEAM``, ``MLP_KERNEL_*``) is
overwritten or dropped before the gateway starts.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jupyter_client.provisioning import LocalProvisioner
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import Bool, Dict, Float, List, Unicode

from .gateway.config import ENV, GatewayConfig
from .identity import SERVICE_ACCOUNT_DIR_ENV, server_team, server_user
from .protocol import status_file_name

# set by this provisioner only; a client-supplied value must never reach the gateway
PROVISIONER_ONLY = (ENV, "MLP_KERNEL_FDS")
# jupyter_server takes a client's `kernel_id` in POST /api/kernels as it is; it names files here (record,
# status), the gateway's temp directory and Kubernetes objects, so it must be a plain name
KERNEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def gateway_environment(kernel_env: Mapping[str, str]) -> dict[str, str]:
    """The kernel's environment (which a client may have set) as the gateway gets it: without what only this
    provisioner sets, and with the server's own ServiceAccount directory (the files the gateway reaches the
    cluster and reads its namespace with are the server's setting, as the user is: never a request's)."""
    env = {k: v for k, v in kernel_env.items() if k not in PROVISIONER_ONLY and k != SERVICE_ACCOUNT_DIR_ENV}
    if os.environ.get(SERVICE_ACCOUNT_DIR_ENV):
        env[SERVICE_ACCOUNT_DIR_ENV] = os.environ[SERVICE_ACCOUNT_DIR_ENV]
    return env


class GpuAutoProvisioner(LocalProvisioner):
    policy = Unicode(
        "policy.yaml",
        config=True,
        help="Placement policy YAML; relative paths are inside the kernelspec directory.",
    )
    idle_timeout = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Release the GPU kernel after this long idle ('15m'; '0' = never). "
        "Default: the policy's idle_timeout.",
    )
    launch_timeout = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Give up starting a GPU kernel after this long. Default: the policy's.",
    )
    reevaluate_s = Float(
        5.0,
        config=True,
        help="While a GPU kernel is queued, ask placement again this often (seconds): how soon a burst "
        "follows the policy's burst threshold.",
    )
    backend = Unicode("", config=True, help="Force one backend ('local') for every member; '' = per member.")
    user = Unicode(
        "",
        config=True,
        help="Who this server's kernels belong to (pod labels, kernel_username, snapshot directory). "
        "Default: JUPYTERHUB_USER of the server's own environment, else the OS account running the server. "
        "Never taken from the kernel start request.",
    )
    trust_request_user = Bool(
        False,
        config=True,
        help="The user is the authenticated user of the request that starts the kernel (jupyter_server's "
        "current_user), when the server has no JUPYTERHUB_USER: for a server or kernel gateway whose "
        "identity provider authenticates several users. Off by default: a token-only server's user is "
        "anonymous.",
    )
    team = Unicode(
        "",
        config=True,
        help="The user's team (label mlp.io/team, kernel_team). Default: MLP_KERNEL_TEAM of the server's "
        "own environment. Never taken from the kernel start request.",
    )
    defaults = Dict(config=True, help="Default %gpu options of this kernelspec, e.g. {'burst': 'on'}.")
    log_level = Unicode("WARNING", config=True, help="Log level of the gateway process.")
    kubernetes = Dict(
        config=True,
        help="KubernetesBackend options: kubeconfig, karmada_context, image, "
        "service_account, curve, lease_duration_s; for members with transport: ingress, ingress_ca, "
        "ingress_client_cert, ingress_client_key (files in the notebook server's pod).",
    )
    local_python = Unicode("", config=True, help="Python with ipykernel for local-backend kernels.")
    local_kernel_args = List(
        Unicode(),
        None,
        allow_none=True,
        config=True,
        help="ipykernel options of local-backend kernels. Default (None): "
        "['--HistoryManager.hist_file=:memory:'] (the gateway keeps the history; docs/admin-guide.md).",
    )

    def _runtime(self) -> Path:
        path = Path(jupyter_runtime_dir())
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def record_path(self) -> Path:
        return self._runtime() / f"mlp-kernel-remote-{self.kernel_id}.json"

    @property
    def status_path(self) -> Path:
        return self._runtime() / status_file_name(self.kernel_id)

    def gateway_config(self, env: dict[str, str] | None = None) -> GatewayConfig:
        """The gateway's configuration; ``env`` is the kernel's environment, which a client may have set:
        only the notebook's name is read from it, never who the user is."""
        env = env or {}
        return GatewayConfig(
            kernel_id=str(self.kernel_id),
            policy=self.policy,
            backend=self.backend,
            idle_timeout=self.idle_timeout,
            launch_timeout=self.launch_timeout,
            defaults=dict(self.defaults),
            record_path=str(self.record_path),
            status_path=str(self.status_path),
            kernelspec_dir=str(self.kernel_spec.resource_dir) if self.kernel_spec else "",
            user=self.user or server_user(trust_request=self.trust_request_user),
            notebook=env.get("JPY_SESSION_NAME", ""),
            team=self.team or server_team(),
            log_level=self.log_level,
            local_python=self.local_python,
            local_kernel_args=None if self.local_kernel_args is None else list(self.local_kernel_args),
            kubernetes=dict(self.kubernetes),
            reevaluate_s=max(0.05, float(self.reevaluate_s)),
        )

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        if not KERNEL_ID.fullmatch(str(self.kernel_id)):
            raise ValueError(
                f"GPU (auto): refusing kernel id {str(self.kernel_id)[:80]!r}: expected "
                "letters, digits, '-' and '_' (at most 128), like the ids jupyter_server makes"
            )
        kwargs = await super().pre_launch(**kwargs)
        env = gateway_environment(kwargs.get("env") or os.environ)
        config = self.gateway_config(env)
        env[ENV] = config.to_env()
        # code in the kernels that reads these sees who the server says the user is, not the client's claim
        env["KERNEL_USERNAME"] = config.user
        if config.team:
            env["KERNEL_TEAM"] = config.team
        else:
            env.pop("KERNEL_TEAM", None)
        fds = self._listen_early()
        if fds:
            env["MLP_KERNEL_FDS"] = json.dumps(fds)
            kwargs["pass_fds"] = tuple(fds.values())
        kwargs["env"] = env
        return kwargs

    def _listen_early(self) -> dict[str, int]:
        """Listen on the kernel's TCP ports now and hand the sockets to the gateway (see gateway/sockets.py).

        Clients connect the moment the kernel is started; with the ports already listening their first
        attempt succeeds instead of waiting out ZeroMQ's reconnect interval. Best effort: any problem and the
        gateway simply binds the ports itself.
        """
        km = self.parent
        if km is None or getattr(km, "transport", "tcp") != "tcp":
            return {}
        self._early_sockets: list[socket.socket] = []
        fds: dict[str, int] = {}
        try:
            for channel in ("shell", "control", "stdin", "iopub", "hb"):
                port = int(getattr(km, f"{channel}_port"))
                family = socket.AF_INET6 if ":" in km.ip else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("" if km.ip in ("*", "0.0.0.0") else km.ip, port))
                sock.listen(128)
                sock.set_inheritable(True)
                self._early_sockets.append(sock)
                fds[channel] = sock.fileno()
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            self.log.debug("mlp-kernel: not pre-binding kernel ports: %s", exc)
            self._close_early()
            return {}
        return fds

    def _close_early(self) -> None:
        for sock in getattr(self, "_early_sockets", []):
            sock.close()
        self._early_sockets = []

    async def post_launch(self, **kwargs: Any) -> None:
        self._close_early()  # the gateway holds its own copies now
        await super().post_launch(**kwargs)

    async def cleanup(self, restart: bool = False) -> None:
        self._close_early()
        await super().cleanup(restart=restart)
        await self.release_remote()
        if not restart:
            self.status_path.unlink(missing_ok=True)

    async def kill(self, restart: bool = False) -> None:
        await super().kill(restart=restart)
        await self.release_remote()

    async def release_remote(self) -> bool:
        """Release the remote kernel a gone gateway left recorded. True when one was still running."""
        path = self.record_path
        if not path.exists():
            return False
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            return False
        from .gateway.__main__ import make_backend
        from .gateway.requests import RequestState

        router = make_backend(RequestState(self.gateway_config()), self._runtime())
        try:
            released = await router.release_record(record)
        except Exception as exc:  # never fail a shutdown on this; gc catches what is left
            self.log.warning("mlp-kernel: could not release remote kernel %s: %s", record, exc)
            return False
        path.unlink(missing_ok=True)
        if released:
            self.log.info("mlp-kernel: released the remote kernel left by gateway of %s", self.kernel_id)
        return released
