"""Snapshots in an S3-compatible bucket (MinIO, AWS S3), driven by the gateway, which alone holds the keys.

The remote kernel runs any image with ipykernel: no mlp_kernel, no boto3, and it must never see the bucket's
secret. So the gateway signs, with its own credentials, short-lived grants limited to one notebook kernel's
key prefix ``<prefix>/<escaped user>/<kernel_id>/`` and hands only those to the in-kernel agent:

- to save: two presigned POST policies (S3 browser-based upload), one for the data files (key ``starts-with``
  ``.../data-<id>/``, ``content-length-range`` up to the size cap) and one for exactly ``.../manifest.json``,
  both expiring after ``url_expiry``; the agent uploads with the standard library;
- to restore: the gateway reads the manifest itself, checks its format and owner, and signs one GET URL per
  data file the manifest lists and the bucket holds (with its size, so the agent can refuse a longer body);
- to forget, and when the notebook's kernel shuts down: the gateway deletes the prefix (manifest first).

The gateway only ever builds keys from the user jupyter_server authenticated, so it never signs another
user's prefix. Every method here blocks on the network: the gateway calls them in a worker thread.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from .s3_config import Credentials, S3ConfigError, S3Settings, read_credentials
from .store import MANIFEST, _check_kernel_id, user_dirname

FORMAT = "mlp-kernel-snapshot/1"
MAX_POST_BYTES = 5 * 1024**3  # the most one S3 POST upload may hold
MAX_MANIFEST_BYTES = 16 * 1024**2
_DATA_DIR = re.compile(r"data-[0-9a-f]{12}")
_NO_BOTO3 = "Snapshots in a bucket need boto3 in the gateway's environment: pip install 'mlp-kernel[s3]'."
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class S3StoreError(Exception):
    """The bucket could not be used; the message says what happened and what to do (never a credential)."""


class S3Snapshots:
    """One notebook kernel's snapshot in the bucket, for one user.

    ``user`` comes from jupyter_server's identity, never from cell text; ``environ`` (tests) replaces the
    gateway's environment when credentials come ``from: env``.
    """

    noun = "snapshot"  # how messages name what the bucket holds, and the policy section that names the bucket
    section = "snapshot.storage"

    def __init__(
        self, settings: S3Settings, *, user: str, kernel_id: str, environ: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.user = user
        self.kernel_id = _check_kernel_id(kernel_id)
        self.base = f"{settings.prefix}/{user_dirname(user)}/{kernel_id}/"
        self._environ = environ
        self._client: Any = None
        self._signer: Any = None

    @property
    def where(self) -> str:
        """The bucket in words, for messages: ``bucket notebook-snapshots at http://minio:9000``."""
        return f"bucket {self.settings.bucket}" + (
            f" at {self.settings.endpoint}" if self.settings.endpoint else ""
        )

    # ------------------------------------------------------------------------------------------ clients
    def _clients(self) -> tuple[Any, Any]:
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise S3StoreError(_NO_BOTO3) from None
            creds = read_credentials(self.settings.credentials, self._environ)
            session = boto3.session.Session(**_session_args(creds, self.settings.region))
            config = Config(
                signature_version="s3v4",
                s3={"addressing_style": self.settings.addressing_style},
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            )
            self._client = session.client(
                "s3", endpoint_url=self.settings.endpoint, verify=self.settings.verify, config=config
            )
            # presigned URLs embed the host the kernel pods use, which may differ from the gateway's
            kernel_url = self.settings.kernel_endpoint
            self._signer = (
                session.client("s3", endpoint_url=kernel_url, config=config) if kernel_url else self._client
            )
        return self._client, self._signer

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one boto3 call, turning its errors into a message the user can act on."""
        try:
            from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
        except ImportError:
            raise S3StoreError(_NO_BOTO3) from None

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "error"))
            hint = {
                "NoSuchBucket": f"create the bucket or fix {self.section}.bucket in the policy",
                "AccessDenied": "give the gateway's credentials access to this prefix",
                "InvalidAccessKeyId": "check the credentials the gateway reads",
                "SignatureDoesNotMatch": "check the credentials the gateway reads",
            }.get(code, "see the bucket's logs")
            raise S3StoreError(
                f"{what} in the {self.noun} {self.where} failed: {code}: "
                f"{str(error.get('Message', ''))[:200]} ({hint})."
            ) from None
        except S3ConfigError as exc:
            raise S3StoreError(str(exc)) from None
        except NoCredentialsError:
            raise S3StoreError(
                f"No credentials for the {self.noun} {self.where}: the gateway looked in "
                f"{self.settings.credentials.describe()}; see {self.section}.credentials in the policy."
            ) from None
        except BotoCoreError as exc:
            raise S3StoreError(
                f"Cannot reach the {self.noun} {self.where} ({type(exc).__name__}); check that the endpoint "
                "is right and reachable from the Jupyter server."
            ) from None

    # ------------------------------------------------------------------------------------------ saving
    def prepare_upload(self, max_bytes: int | None) -> dict[str, Any]:
        """Drop the previous snapshot, then sign the grants the agent needs to upload a new one.

        Dropping first means a failed attempt never leaves an older state to be restored by mistake.
        """
        self.clear()
        _, signer = self._call("Signing", self._clients)
        data = f"data-{uuid.uuid4().hex[:12]}"
        per_file = MAX_POST_BYTES if max_bytes is None else min(max_bytes, MAX_POST_BYTES)
        expiry = int(self.settings.url_expiry_s)
        data_post = self._call(
            "Signing the upload", signer.generate_presigned_post, self.settings.bucket,
            f"{self.base}{data}/${{filename}}", Conditions=[["content-length-range", 0, per_file]],
            ExpiresIn=expiry,
        )  # fmt: skip
        manifest_post = self._call(
            "Signing the upload", signer.generate_presigned_post, self.settings.bucket, self.base + MANIFEST,
            Conditions=[["content-length-range", 1, MAX_MANIFEST_BYTES]], ExpiresIn=expiry,
        )  # fmt: skip
        return {
            "data": data,
            "max_file_bytes": per_file,
            "data_post": {
                "url": data_post["url"], "fields": data_post["fields"], "key_prefix": f"{self.base}{data}/",
            },
            "manifest_post": {
                "url": manifest_post["url"], "fields": manifest_post["fields"], "key": self.base + MANIFEST,
            },
        }  # fmt: skip

    # ------------------------------------------------------------------------------------------ restoring
    def read_manifest(self) -> dict[str, Any] | None:
        """This kernel's manifest, checked (format, owner, data directory); None if there is none."""
        client, _ = self._call("Connecting", self._clients)
        from botocore.exceptions import ClientError

        try:
            response = client.get_object(Bucket=self.settings.bucket, Key=self.base + MANIFEST)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            self._call("Reading the manifest", _raise, exc)
        except Exception as exc:
            self._call("Reading the manifest", _raise, exc)
        body = self._call("Reading the manifest", response["Body"].read, MAX_MANIFEST_BYTES + 1)
        if len(body) > MAX_MANIFEST_BYTES:
            raise S3StoreError(
                "The snapshot's manifest is larger than any snapshot writes; it was not restored."
            )
        try:
            manifest = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise S3StoreError("The snapshot's manifest is not valid JSON; it was not restored.") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise S3StoreError(
                f"Unknown snapshot format {manifest.get('format') if isinstance(manifest, dict) else None!r}."
            )
        if manifest.get("owner") != self.user:
            raise S3StoreError("This snapshot belongs to another user; it was not restored.")
        if not isinstance(manifest.get("data"), str) or not _DATA_DIR.fullmatch(manifest["data"]):
            raise S3StoreError(
                "The snapshot's manifest names an invalid data directory; it was not restored."
            )
        if not isinstance(manifest.get("entries"), list):
            raise S3StoreError("The snapshot's manifest has no list of entries; it was not restored.")
        return manifest

    def restore_plan(self) -> dict[str, Any] | None:
        """What the agent needs: the checked manifest and a signed GET per data file; None if none."""
        manifest = self.read_manifest()
        if manifest is None:
            return None
        client, signer = self._call("Connecting", self._clients)
        prefix = f"{self.base}{manifest['data']}/"
        sizes = {key[len(prefix) :]: size for key, size in self._list(prefix)}
        wanted = {e.get("file") for e in manifest["entries"] if isinstance(e, dict) and e.get("file")}
        files = {}
        for name in sorted(n for n in wanted if isinstance(n, str) and _FILE.fullmatch(n) and n in sizes):
            url = self._call(
                "Signing the download", signer.generate_presigned_url, "get_object",
                Params={"Bucket": self.settings.bucket, "Key": prefix + name},
                ExpiresIn=int(self.settings.url_expiry_s),
            )  # fmt: skip
            files[name] = {"url": url, "bytes": sizes[name]}
        return {"manifest": manifest, "files": files}

    # ------------------------------------------------------------------------------------------ deleting
    def exists(self) -> bool:
        """Whether a complete snapshot of this user is in the bucket (a manifest that names them)."""
        try:
            return self.read_manifest() is not None
        except S3StoreError:
            return False

    def keys(self) -> list[str]:
        """Every key under this kernel's prefix (for tests and for ``clear``)."""
        return [key for key, _ in self._list(self.base)]

    def clear(self) -> None:
        """Delete this kernel's snapshot: manifest first, so a half-deleted one never looks restorable."""
        client, _ = self._call("Connecting", self._clients)
        self._call(
            "Deleting the snapshot",
            client.delete_object,
            Bucket=self.settings.bucket,
            Key=self.base + MANIFEST,
        )
        keys = self.keys()
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            result = self._call(
                "Deleting the snapshot", client.delete_objects, Bucket=self.settings.bucket,
                Delete={"Objects": batch, "Quiet": True},
            )  # fmt: skip
            if result.get("Errors"):
                first = result["Errors"][0]
                raise S3StoreError(
                    f"Deleting the snapshot in the {self.where} failed for {len(result['Errors'])} objects "
                    f"({first.get('Code')}: {first.get('Message')})."
                )

    def _list(self, prefix: str) -> list[tuple[str, int]]:
        client, _ = self._call("Connecting", self._clients)
        paginator = client.get_paginator("list_objects_v2")
        found: list[tuple[str, int]] = []

        def walk() -> None:
            for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=prefix):
                found.extend((obj["Key"], int(obj["Size"])) for obj in page.get("Contents", []))

        self._call("Listing the snapshot", walk)
        return found


def _raise(exc: BaseException) -> None:
    raise exc


def _session_args(creds: Credentials | None, region: str) -> dict[str, Any]:
    args: dict[str, Any] = {"region_name": region}
    if creds is not None:
        args.update(aws_access_key_id=creds.access_key_id, aws_secret_access_key=creds.secret_access_key)
        if creds.session_token:
            args["aws_session_token"] = creds.session_token
    return args
