"""``python -m mlp_kernel.gateway -f CONNECTION_FILE``: the kernel command of the GPU (auto) kernelspec.

Imports are kept to what the gateway needs (zmq, asyncio, yaml, the placement core), so the process starts
in a fraction of ipykernel's time and stays small: there is one per open notebook.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from ..backends import BackendRouter
from ..backends.base import Backend
from .config import GatewayConfig
from .kernel import GatewayKernel
from .requests import RequestState


def make_backend(state: RequestState, runtime_dir: Path) -> BackendRouter:
    policy = state.policy
    cfg = state.config

    def member_backend(member: str) -> str:
        if policy is not None and member in policy.members:
            return policy.members[member].backend
        return "local"

    def local() -> Backend:
        from ..backends.local import LocalBackend

        return LocalBackend(python=cfg.local_python or None, runtime_dir=runtime_dir)

    def kubernetes() -> Backend:
        from ..backends.kubernetes import KubernetesBackend

        return KubernetesBackend(policy, cfg.kernelspec_dir, **cfg.kubernetes)  # type: ignore[arg-type]

    return BackendRouter(member_backend, {"local": local, "kubernetes": kubernetes}, force=cfg.backend)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlp_kernel.gateway")
    parser.add_argument("-f", "--connection-file", required=True)
    args, _unknown = parser.parse_known_args(argv)
    config = GatewayConfig.from_env()
    logging.basicConfig(
        level=config.log_level, stream=sys.stderr, format="[mlp-kernel %(levelname)s %(asctime)s] %(message)s"
    )
    conn_path = Path(args.connection_file)
    connection = json.loads(conn_path.read_text())
    if not config.kernel_id:
        config.kernel_id = conn_path.stem.removeprefix("kernel-")
    requests = RequestState(config)
    backend = make_backend(requests, conn_path.parent)
    kernel = GatewayKernel(connection, requests, backend)
    asyncio.run(kernel.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
