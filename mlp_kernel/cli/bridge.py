"""``mlp-kernel bridge``: print the ConfigMap that ships the pod-side bridge of the ingress transport.

Why a command: the bridge (``mlp_kernel/transport/bridge.py``) runs in the kernel's image, which has Python
and tornado but not mlp-kernel; the admin applies it once per member as a ConfigMap the kernel pods mount
(docs/admin-guide.md, "5b. Kernels behind an ingress"). The ConfigMap is built as data and dumped as YAML,
never spliced into text, and carries the script's SHA-256 so an admin (or a pod) can tell which version runs.
Run: ``mlp-kernel bridge [--namespace jupyter] | kubectl apply -f -``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import yaml

from ..backends.kubernetes.names import is_dns_label
from ..transport import bridge
from .render import _Dumper  # multi-line strings as block literals: the script stays readable

NAME = "mlp-kernel-bridge"
KEY = "bridge.py"


def configmap(namespace: str) -> dict[str, Any]:
    source = Path(bridge.__file__).read_text()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": NAME,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "mlp-kernel"},
            "annotations": {"mlp.io/bridge-sha256": hashlib.sha256(source.encode()).hexdigest()},
        },
        "data": {KEY: source},
    }


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bridge",
        help="print the ConfigMap with the pod-side bridge of the ingress transport",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--namespace", default="jupyter", metavar="NS", help="the kernels' namespace (jupyter)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not is_dns_label(args.namespace):
        print(
            f"mlp-kernel bridge: --namespace {args.namespace!r} is not a Kubernetes namespace name "
            "(lower-case letters, digits and '-', at most 63 characters)",
            file=sys.stderr,
        )
        return 2
    sys.stdout.write(render(args.namespace))
    return 0


def render(namespace: str) -> str:
    """The ConfigMap as the command prints it."""
    return yaml.dump(configmap(namespace), Dumper=_Dumper, sort_keys=False)
