"""``python -m mlp_kernel.gateway -f CONNECTION_FILE``: the kernel command of the GPU (auto) kernelspec.

Start-up order matters (one gateway per open notebook, and "kernel ready" is measured): read the connection
file and bind the sockets with nothing but ``zmq`` imported, then import asyncio and the gateway, and only on
first need the policy, YAML and the snapshot code.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..startup import skip_slow_optional_imports

if TYPE_CHECKING:
    from ..backends import BackendRouter
    from ..backends.local_pool import PoolSpec
    from .requests import RequestState


def make_backend(state: RequestState, runtime_dir: Path) -> BackendRouter:
    from ..backends import BackendRouter
    from ..backends.base import Backend, LaunchError

    cfg = state.config

    def member_backend(member: str) -> str:
        policy = state.policy
        if policy is not None and member in policy.members:
            return policy.members[member].backend
        return "local"

    def capacity(flavor: str) -> int | None:
        policy = state.policy
        f = policy.flavors.get(flavor) if policy is not None else None
        return f.capacity_gpus if f is not None else None

    def workdir(member: str) -> str:
        policy = state.policy
        m = policy.members.get(member) if policy is not None else None
        return m.local_workdir if m is not None else "notebook"

    def pool(flavor: str) -> PoolSpec | None:
        from ..backends.local_pool import PoolSpec

        policy = state.policy
        f = policy.flavors.get(flavor) if policy is not None else None
        return PoolSpec(f.warm_pool, f.warm_pool_gpus, f.warm_pool_idle_s) if f and f.warm_pool else None

    def local() -> Backend:
        from jupyter_core.paths import jupyter_runtime_dir

        from ..backends.local import LocalBackend
        from ..backends.local_queue import LocalQuota

        return LocalBackend(
            python=cfg.local_python or None,
            runtime_dir=runtime_dir,
            extra_args=cfg.local_kernel_args,
            # the user's Jupyter runtime dir (private to them): every notebook of theirs shares the GPUs
            quota=LocalQuota(Path(jupyter_runtime_dir())),
            capacity=capacity,
            workdir=workdir,
            pool=pool,
        )

    def kubernetes() -> Backend:
        from ..backends.kubernetes import KubernetesBackend

        if state.policy is None:  # a member on kubernetes comes from a policy: unreachable without one
            raise LaunchError("the kubernetes backend needs a placement policy")
        return KubernetesBackend(state.policy, cfg.kernelspec_dir, **cfg.kubernetes)

    return BackendRouter(member_backend, {"local": local, "kubernetes": kubernetes}, force=cfg.backend)


USAGE = "usage: python -m mlp_kernel.gateway -f CONNECTION_FILE [--kernelspec-dir DIR]"


def _option(argv: list[str], names: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(argv):
        if arg in names and i + 1 < len(argv):
            return argv[i + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _connection_file(argv: list[str]) -> str:
    return _option(argv, ("-f", "--connection-file")) or sys.exit(USAGE)


def _import_gateway(failed: list[BaseException], done: threading.Event) -> None:
    """Import the gateway (into ``sys.modules``) off the main thread, which answers kernel_info meanwhile."""
    try:
        import asyncio  # noqa: F401

        from . import kernel, requests  # noqa: F401
    except BaseException as exc:  # re-raised by main() in the main thread
        failed.append(exc)
    finally:
        done.set()


def main(argv: list[str] | None = None) -> int:
    skip_slow_optional_imports()
    args = sys.argv[1:] if argv is None else argv
    conn_path = Path(_connection_file(args))
    connection = json.loads(conn_path.read_text())
    kernel_id = json.loads(os.environ.get("MLP_KERNEL_CONFIG") or "{}").get("kernel_id") or conn_path.stem
    from .sockets import bind

    bound = bind(connection)  # clients can connect from here on
    failed: list[BaseException] = []
    done = threading.Event()
    threading.Thread(target=_import_gateway, args=(failed, done), daemon=True).start()
    from .early import serve_until_ready

    early = serve_until_ready(bound, connection, done, kernel_id.removeprefix("kernel-"))
    if failed:
        raise failed[0]
    import asyncio  # already imported by the thread: these are dictionary look-ups now
    import logging

    from .config import GatewayConfig
    from .kernel import GatewayKernel
    from .requests import RequestState

    config = GatewayConfig.from_env(kernelspec_dir=_option(args, ("--kernelspec-dir",)) or "")
    logging.basicConfig(
        level=config.log_level, stream=sys.stderr, format="[mlp-kernel %(levelname)s %(asctime)s] %(message)s"
    )
    if not config.kernel_id:
        config.kernel_id = conn_path.stem.removeprefix("kernel-")
    requests = RequestState(config)
    backend = make_backend(requests, conn_path.parent)
    kernel = GatewayKernel(connection, requests, backend, bound, early, str(conn_path.resolve()))
    asyncio.run(kernel.run())
    return kernel.exit_code


if __name__ == "__main__":
    sys.exit(main())
