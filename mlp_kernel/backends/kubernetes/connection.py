"""The remote kernel's connection file: what goes into the per-kernel Secret, and nowhere else.

The pod runs ``python -m ipykernel_launcher -f <file>`` with the Secret mounted read-only, so any image with
ipykernel works and no launcher script is baked in. The kernel binds ``0.0.0.0`` inside the pod on fixed
ports (the pod has its own network namespace, so fixed ports never collide), and the gateway connects to the
pod IP. The HMAC key is the gateway's own key, so frames relay without re-signing; it is written only into
the Secret's data, never into the pod spec, environment or logs (``redacted`` is what humans see).

CurveZMQ: jupyter_client >= 8.9 and ipykernel >= 7 read ``curve_publickey``/``curve_secretkey`` from the
connection file and encrypt all five channels. With ``curve=True`` a fresh server keypair is generated per
kernel; the secret key stays in the Secret and the public key goes to the gateway in ``RemoteKernel.handle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import zmq

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
DEFAULT_PORTS: dict[str, int] = {
    "shell": 50000,
    "iopub": 50001,
    "stdin": 50002,
    "control": 50003,
    "hb": 50004,
}
CONNECTION_DIR = "/var/run/mlp-kernel"
CONNECTION_KEY = "connection.json"
REDACTED = "<redacted>"


@dataclass(frozen=True)
class CurveKeys:
    public: str
    secret: str

    @classmethod
    def generate(cls) -> CurveKeys:
        public, secret = zmq.curve_keypair()
        return cls(public.decode("ascii"), secret.decode("ascii"))


def connection_info(
    *,
    key: str,
    signature_scheme: str,
    ports: dict[str, int],
    kernel_name: str = "",
    curve: CurveKeys | None = None,
    ip: str = "0.0.0.0",
) -> dict[str, Any]:
    """The connection file the remote ipykernel reads (ip 0.0.0.0: it binds all pod interfaces; 127.0.0.1
    behind an ingress, where only the bridge sidecar, in the same pod, connects to the kernel)."""
    info: dict[str, Any] = {
        "transport": "tcp",
        "ip": ip,
        "key": key,
        "signature_scheme": signature_scheme,
        "kernel_name": kernel_name,
    }
    info.update({f"{ch}_port": int(ports[ch]) for ch in CHANNELS})
    if curve is not None:
        info["curve_publickey"] = curve.public
        info["curve_secretkey"] = curve.secret
    return info


def redacted(info: dict[str, Any]) -> dict[str, Any]:
    """The connection info with its secrets replaced, for printing and logs."""
    out = dict(info)
    for field in ("key", "curve_secretkey"):
        if field in out:
            out[field] = REDACTED
    return out
