"""mlp-kernel: GPU notebooks that hold a GPU only while cells run.

The package is laid out by concept (see docs/design.md):

- ``provisioner``  the ``jupyter_client`` kernel provisioner behind the "GPU (auto)" kernelspec;
- ``gateway``      the small CPU-side process that *is* the kernel from the client's point of view;
- ``placement``    pure decision logic: which member/flavor a GPU kernel should run on, and why;
- ``backends``     where remote kernels are started (``local`` subprocesses, ``kubernetes`` pods);
- ``server``       the jupyter_server extension (REST API, metrics) for the JupyterLab extension;
- ``cli``          the ``mlp-kernel`` admin command.
"""

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlp_kernel.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "mlp-kernel"}]
