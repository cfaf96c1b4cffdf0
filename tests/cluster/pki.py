"""The test control plane's keys: one CA, one serving certificate for 127.0.0.1, service-account keys, tokens.

Every member shares them (they all listen on loopback); a kubeconfig trusts the CA and authenticates with a
static bearer token (``--token-auth-file``), as the components do, so no client certificates are needed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

#: static token users: name -> (user, groups). Kueue gets its real service-account identity, so the RBAC from
#: its module's config/ is what authorizes it.
USERS = {
    "admin": ("admin", ["system:masters"]),
    "controller-manager": ("system:kube-controller-manager", []),
    "scheduler": ("system:kube-scheduler", []),
    "kueue": (
        "system:serviceaccount:kueue-system:kueue-controller-manager",
        ["system:serviceaccounts", "system:serviceaccounts:kueue-system"],
    ),
    "kubelet": (
        "system:node:mlp-test",
        ["system:masters"],
    ),  # one kubelet for many nodes: not NodeRestriction
}


@dataclass(frozen=True)
class Pki:
    root: Path
    tokens: dict[str, str]

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"

    @property
    def cert(self) -> Path:
        return self.root / "tls.crt"

    @property
    def key(self) -> Path:
        return self.root / "tls.key"

    @property
    def proxy_cert(self) -> Path:
        return self.root / "front-proxy-client.crt"

    @property
    def proxy_key(self) -> Path:
        return self.root / "front-proxy-client.key"

    @property
    def sa_key(self) -> Path:
        return self.root / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.root / "sa.pub"

    @property
    def token_file(self) -> Path:
        return self.root / "tokens.csv"


def _pem_key(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


_EKU = x509.oid.ExtendedKeyUsageOID


def _builder(subject: str, issuer: x509.Name | None, public_key: Any, now: dt.datetime) -> Any:
    """A certificate valid for a week around ``now`` (self-issued when ``issuer`` is None)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
    )


def _leaf(
    ca: x509.Certificate, ca_key: Any, cn: str, san: list[x509.GeneralName], usage: Any, now: dt.datetime
) -> tuple[Any, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(cn, ca.subject, key.public_key(), now).add_extension(
        x509.ExtendedKeyUsage([usage]), critical=False
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def make_pki(root: Path) -> Pki:
    root.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _builder("mlp-kernel test CA", None, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    server = _EKU.SERVER_AUTH
    key, cert = _leaf(
        ca,
        ca_key,
        "127.0.0.1",
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
        server,
        now,
    )
    # the aggregator's client certificate towards extension API servers (Kueue's visibility API)
    proxy_key, proxy_cert = _leaf(ca, ca_key, "front-proxy-client", [], _EKU.CLIENT_AUTH, now)
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pki = Pki(root, {name: secrets.token_hex(16) for name in USERS})
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(_pem_key(key))
    pki.proxy_cert.write_bytes(proxy_cert.public_bytes(serialization.Encoding.PEM))
    pki.proxy_key.write_bytes(_pem_key(proxy_key))
    pki.sa_key.write_bytes(_pem_key(sa))
    pki.sa_pub.write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    lines = []
    for name, (user, groups) in USERS.items():
        lines.append(f'{pki.tokens[name]},{user},{name},"{",".join(groups)}"')
    pki.token_file.write_text("\n".join(lines) + "\n")
    for path in root.iterdir():
        path.chmod(0o600)
    return pki
