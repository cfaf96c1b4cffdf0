"""The policy's ``snapshot.storage`` for an S3-compatible bucket, validated, and the gateway's credentials.

Why a module of its own, without boto3: the policy loader and ``mlp-kernel`` checks can validate the settings
(and refuse a secret written into the policy) on a machine without the ``s3`` extra. The bucket credentials
are read here, from the *gateway process's* environment or from a file (a Kubernetes Secret mount); they
never go into the policy, the code sent to the kernel, a log line or an error message.

```yaml
snapshot:
  storage:
    kind: s3
    endpoint: http://minio.storage.svc:9000   # AWS S3: https://s3.<region>.amazonaws.com
    bucket: notebook-snapshots
    prefix: mlp-kernel                        # keys: <prefix>/<user>/<kernel id>/...
    region: us-east-1
    public: false                             # the bucket is inside the private cluster (MinIO there)
    credentials: {from: env}                  # or {from: file, path: /var/run/secrets/mlp-snapshots}
```
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlp_kernel.placement.units import parse_duration

FIELDS = frozenset({
    "kind", "endpoint", "kernel_endpoint", "bucket", "prefix", "region", "public", "credentials", "verify",
    "addressing_style", "url_expiry",
})  # fmt: skip
CREDENTIAL_FIELDS = frozenset({
    "from", "access_key_id_env", "secret_access_key_env", "session_token_env", "path", "profile",
})  # fmt: skip
# Keys that would hold a secret itself: refused wherever they appear in ``snapshot.storage``.
_SECRET_KEYS = re.compile(r"(?i).*(secret|password|token|access_?key|credential).*")
_ALLOWED_SECRET_LOOKALIKES = frozenset({
    "credentials", "access_key_id_env", "secret_access_key_env", "session_token_env",
})  # fmt: skip
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_PART = re.compile(r"[A-Za-z0-9_.=+@-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEFAULT_EXPIRY_S = 15 * 60


class S3ConfigError(ValueError):
    """``snapshot.storage`` (``kind: s3``) is wrong or its credentials cannot be read; says which and how."""


@dataclass(frozen=True)
class CredentialSource:
    """Where the gateway finds the bucket credentials (never the secret itself)."""

    source: str = "env"  # env | file | default
    access_key_id_env: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY"
    session_token_env: str = "AWS_SESSION_TOKEN"
    path: str = ""
    profile: str = "default"

    def describe(self) -> str:
        if self.source == "env":
            return f"environment variables {self.access_key_id_env} and {self.secret_access_key_env}"
        if self.source == "file":
            return f"the file {self.path}"
        return "botocore's default credential chain"


@dataclass(frozen=True)
class S3Settings:
    """A validated ``snapshot.storage`` of ``kind: s3``."""

    bucket: str
    prefix: str = "mlp-kernel"
    endpoint: str | None = None  # None: AWS S3
    kernel_endpoint: str | None = None  # the URL kernel pods use, when it differs from the gateway's
    region: str = "us-east-1"
    public: bool = (
        True  # the bucket lies outside the private cluster (AWS S3): private classes never go there
    )
    verify: bool | str = True
    addressing_style: str = "auto"
    url_expiry_s: float = DEFAULT_EXPIRY_S
    credentials: CredentialSource = field(default_factory=CredentialSource)


def storage_errors(storage: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems in an s3 ``storage`` mapping as ``(path under snapshot.storage, message)``; [] if fine."""
    try:
        parse_s3_storage(storage)
    except S3ConfigError as exc:
        return [(getattr(exc, "path", ()), getattr(exc, "detail", str(exc)))]
    return []


def parse_s3_storage(storage: Mapping[str, Any]) -> S3Settings:
    """``S3Settings`` from the policy's ``snapshot.storage``; ``S3ConfigError`` naming the bad field."""
    _refuse_inline_secrets(storage, ())
    unknown = sorted(set(storage) - FIELDS)
    if unknown:
        raise _err((unknown[0],), f"unknown field {unknown[0]!r}; known: {', '.join(sorted(FIELDS))}")
    bucket = storage.get("bucket")
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise _err(("bucket",), f"expected an S3 bucket name (3-63 of a-z 0-9 . -), got {bucket!r}")
    prefix = storage.get("prefix", "mlp-kernel")
    if not isinstance(prefix, str) or not all(_PREFIX_PART.fullmatch(p) for p in prefix.split("/")):
        raise _err(("prefix",), f"expected key segments such as 'mlp-kernel/snapshots' (no leading, trailing "
                                f"or double '/'), got {prefix!r}")  # fmt: skip
    if any(p in (".", "..") for p in prefix.split("/")):
        raise _err(("prefix",), f"'.' and '..' are not allowed in prefix {prefix!r}")
    endpoint = _url(storage, "endpoint")
    kernel_endpoint = _url(storage, "kernel_endpoint")
    region = storage.get("region", "us-east-1")
    if not isinstance(region, str) or not re.fullmatch(r"[a-z0-9-]{2,32}", region):
        raise _err(("region",), f"expected a region such as us-east-1, got {region!r}")
    public = storage.get("public", True)
    if not isinstance(public, bool):
        raise _err(("public",), "expected true (the bucket is outside the private cluster) or false")
    verify = storage.get("verify", True)
    if not isinstance(verify, (bool, str)):
        raise _err(("verify",), "expected true, false or the path of a CA bundle on the gateway")
    # MinIO and most S3-compatible servers want path-style keys; AWS (any endpoint of it) picks for itself
    host = urlsplit(endpoint).hostname or "" if endpoint else ""
    on_aws = endpoint is None or host.endswith((".amazonaws.com", ".amazonaws.com.cn"))
    style = storage.get("addressing_style", "auto" if on_aws else "path")
    if style not in ("auto", "path", "virtual"):
        raise _err(("addressing_style",), f"expected auto, path or virtual, got {style!r}")
    try:
        expiry = parse_duration(storage.get("url_expiry", DEFAULT_EXPIRY_S))
    except (ValueError, TypeError):
        raise _err(("url_expiry",), "expected a duration such as 15m") from None
    if not 60 <= expiry <= 7 * 24 * 3600:
        raise _err(("url_expiry",), "expected between 1m and 7d (the longest a SigV4 signature lasts)")
    return S3Settings(
        bucket=bucket, prefix=prefix, endpoint=endpoint, kernel_endpoint=kernel_endpoint, region=region,
        public=public, verify=verify, addressing_style=str(style), url_expiry_s=expiry,
        credentials=_credential_source(storage.get("credentials", {"from": "env"})),
    )  # fmt: skip


def _err(path: tuple[str | int, ...], message: str) -> S3ConfigError:
    exc = S3ConfigError(f"snapshot.storage.{'.'.join(str(p) for p in path)}: {message}")
    exc.path = path  # type: ignore[attr-defined]
    exc.detail = message  # type: ignore[attr-defined]
    return exc


def _refuse_inline_secrets(node: Any, path: tuple[str | int, ...]) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(key, str) and _SECRET_KEYS.fullmatch(key) and key not in _ALLOWED_SECRET_LOOKALIKES:
                raise _err(path + (key,), "a secret must never be written into the policy; name the "
                                          "gateway's environment variables (credentials: {from: env}) or a "
                                          "mounted file "
                                          "(credentials: {from: file, path: ...}) instead")  # fmt: skip
            _refuse_inline_secrets(value, path + (key,))


def _url(storage: Mapping[str, Any], key: str) -> str | None:
    value = storage.get(key)
    if value is None:
        return None
    parts = urlsplit(str(value)) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _err((key,), f"expected a URL such as https://minio.example.org:9000, got {value!r}")
    if parts.username or parts.password or parts.query:
        raise _err((key,), "the URL must not carry a user, password or query; credentials go in credentials:")
    return str(value).rstrip("/")


def _credential_source(raw: Any) -> CredentialSource:
    if not isinstance(raw, Mapping):
        raise _err(("credentials",), "expected a mapping such as {from: env} or {from: file, path: ...}")
    unknown = sorted(set(raw) - CREDENTIAL_FIELDS)
    if unknown:
        raise _err(
            ("credentials", unknown[0]), f"unknown field; known: {', '.join(sorted(CREDENTIAL_FIELDS))}"
        )
    source = raw.get("from", "env")
    if source not in ("env", "file", "default"):
        raise _err(("credentials", "from"), f"expected env, file or default, got {source!r}")
    names = {}
    for key in ("access_key_id_env", "secret_access_key_env", "session_token_env"):
        if key in raw:
            if not isinstance(raw[key], str) or not _ENV_NAME.fullmatch(raw[key]):
                raise _err(("credentials", key), f"expected an environment variable name, got {raw[key]!r}")
            names[key] = raw[key]
    path = raw.get("path", "")
    if source == "file" and (not isinstance(path, str) or not path.startswith("/")):
        raise _err(("credentials", "path"), "from: file needs the absolute path of a file or directory")
    profile = raw.get("profile", "default")
    if not isinstance(profile, str) or not profile:
        raise _err(("credentials", "profile"), "expected a profile name of the credentials file")
    return CredentialSource(source=source, path=str(path), profile=profile, **names)


@dataclass(frozen=True)
class Credentials:
    """Bucket credentials held by the gateway. ``repr`` never shows the secret or the token."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def read_credentials(
    source: CredentialSource, environ: Mapping[str, str] | None = None
) -> Credentials | None:
    """The credentials from ``source`` (``None`` for ``from: default``: botocore finds them itself).

    Raises ``S3ConfigError`` saying where they were looked for, never what was found.
    """
    env = os.environ if environ is None else environ
    if source.source == "default":
        return None
    if source.source == "env":
        key, secret = env.get(source.access_key_id_env), env.get(source.secret_access_key_env)
        if not key or not secret:
            raise S3ConfigError(
                f"The snapshot bucket's credentials are missing: set {source.access_key_id_env} and "
                f"{source.secret_access_key_env} in the environment of the Jupyter server (the gateway "
                "inherits it), or use credentials: {from: file, path: ...} in the policy."
            )
        return Credentials(
            key.strip(), secret.strip(), (env.get(source.session_token_env) or "").strip() or None
        )
    return _from_file(Path(source.path), source.profile)


def _from_file(path: Path, profile: str) -> Credentials:
    where = f"the snapshot bucket's credentials file {path}"
    try:
        if path.is_dir():  # a Kubernetes Secret mount: one file per key
            values = {}
            for names in (("access_key_id", "AWS_ACCESS_KEY_ID", "accesskey"),
                          ("secret_access_key", "AWS_SECRET_ACCESS_KEY", "secretkey"),
                          ("session_token", "AWS_SESSION_TOKEN")):  # fmt: skip
                found = next((path / n for n in names if (path / n).is_file()), None)
                values[names[0]] = found.read_text(encoding="utf-8").strip() if found else ""
            key, secret, token = values["access_key_id"], values["secret_access_key"], values["session_token"]
        else:
            parser = configparser.ConfigParser(interpolation=None)
            parser.read_string(path.read_text(encoding="utf-8"))
            section = parser[profile] if parser.has_section(profile) else {}
            key = str(section.get("aws_access_key_id", "")).strip()
            secret = str(section.get("aws_secret_access_key", "")).strip()
            token = str(section.get("aws_session_token", "")).strip()
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise S3ConfigError(f"Cannot read {where}: {type(exc).__name__}.") from None
    if not key or not secret:
        raise S3ConfigError(
            f"{where[0].upper()}{where[1:]} holds no access key id and secret access key: expected files "
            "access_key_id and secret_access_key (a Kubernetes Secret mount) or an AWS credentials file with "
            f"aws_access_key_id and aws_secret_access_key under [{profile}]."
        )
    return Credentials(key, secret, token or None)
