"""The jupyter_server extension of mlp-kernel: REST API under ``/mlp-kernel/api/`` and Prometheus metrics.

Enabled by ``etc/jupyter/jupyter_server_config.d/mlp_kernel.json`` (installed with the wheel). The package
``mlp_kernel`` points jupyter_server here; this module only loads the extension. See docs/rest-api.md.
"""

from __future__ import annotations

from typing import Any

from .app import MlpKernelExtension

__all__ = ["MlpKernelExtension"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlp_kernel.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> MlpKernelExtension:
    from .handlers import handlers

    extension = MlpKernelExtension(parent=serverapp)
    extension.setup(serverapp, handlers(serverapp.web_app.settings["base_url"]))
    serverapp.log.info(
        "mlp-kernel: server extension loaded (REST API at %smlp-kernel/api/)", serverapp.base_url
    )
    return extension
