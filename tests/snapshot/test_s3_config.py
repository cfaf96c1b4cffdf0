"""``snapshot.storage`` of ``kind: s3``: validated, no secret in the policy, credentials read safely."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlp_kernel.snapshot.s3_config import (
    CredentialSource,
    S3ConfigError,
    parse_s3_storage,
    read_credentials,
    storage_errors,
)

BASE = {"kind": "s3", "bucket": "notebook-snapshots"}


def test_defaults_are_safe() -> None:
    settings = parse_s3_storage(BASE)
    assert settings.prefix == "mlp-kernel" and settings.region == "us-east-1"
    assert settings.public is True, "unless declared private, a bucket may be outside the private cluster"
    assert settings.credentials.source == "env"
    assert settings.credentials.access_key_id_env == "AWS_ACCESS_KEY_ID"
    assert settings.url_expiry_s == 900
    assert settings.addressing_style == "auto"


def test_aws_endpoints_keep_virtual_hosted_addressing() -> None:
    aws = {**BASE, "endpoint": "https://s3.eu-west-1.amazonaws.com", "region": "eu-west-1"}
    settings = parse_s3_storage(aws)
    assert settings.addressing_style == "auto"


def test_a_minio_bucket_on_the_private_member() -> None:
    settings = parse_s3_storage({
        **BASE, "endpoint": "http://minio.storage.svc:9000/", "prefix": "team-a/snaps", "public": False,
        "credentials": {"from": "file", "path": "/var/run/secrets/mlp-snapshots"}, "url_expiry": "30m",
    })  # fmt: skip
    assert settings.endpoint == "http://minio.storage.svc:9000"
    assert settings.addressing_style == "path", "MinIO wants path-style addressing"
    assert settings.public is False and settings.url_expiry_s == 1800
    assert settings.credentials.describe() == "the file /var/run/secrets/mlp-snapshots"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"bucket": "No_Such"}, "bucket", "S3 bucket name"),
        ({"prefix": "/abs"}, "prefix", "key segments"),
        ({"prefix": "a/../b"}, "prefix", "not allowed"),
        ({"endpoint": "ftp://x"}, "endpoint", "expected a URL"),
        ({"endpoint": "http://user:pw@minio:9000"}, "endpoint", "must not carry a user, password"),
        ({"public": "yes"}, "public", "expected true"),
        ({"url_expiry": "10s"}, "url_expiry", "between 1m and 7d"),
        ({"addressing_style": "dns"}, "addressing_style", "auto, path or virtual"),
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"credentials": {"from": "vault"}}, "credentials.from", "env, file or default"),
        ({"credentials": {"from": "file"}}, "credentials.path", "absolute path"),
        ({"credentials": {"access_key_id_env": "1BAD"}}, "credentials.access_key_id_env", "variable name"),
    ],
)
def test_mistakes_name_the_field(change: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(S3ConfigError, match=words) as info:
        parse_s3_storage({**BASE, **change})
    assert str(info.value).startswith(f"snapshot.storage.{field}:")


@pytest.mark.parametrize(
    "storage",
    [
        {**BASE, "secret_access_key": "abc123SECRET"},
        {**BASE, "aws_secret_access_key": "abc123SECRET"},
        {**BASE, "credentials": {"from": "env", "secret_access_key": "abc123SECRET"}},
        {**BASE, "credentials": {"access_key_id": "AKIA", "password": "abc123SECRET"}},
        {**BASE, "session_token": "abc123SECRET"},
    ],
)
def test_a_secret_written_into_the_policy_is_refused_without_being_echoed(storage: dict[str, object]) -> None:
    problems = storage_errors(storage)
    assert len(problems) == 1
    path, message = problems[0]
    assert "a secret must never be written into the policy" in message
    assert "abc123SECRET" not in message and "AKIA" not in message


def test_credentials_from_the_gateways_environment() -> None:
    source = CredentialSource(access_key_id_env="SNAP_KEY", secret_access_key_env="SNAP_SECRET")
    creds = read_credentials(source, {"SNAP_KEY": "id1", "SNAP_SECRET": "s3cr3t-value"})
    assert creds is not None and (creds.access_key_id, creds.secret_access_key) == ("id1", "s3cr3t-value")
    assert "s3cr3t-value" not in repr(creds)
    with pytest.raises(S3ConfigError, match="set SNAP_KEY and SNAP_SECRET in the environment") as info:
        read_credentials(source, {"SNAP_KEY": "id1"})
    assert "id1" not in str(info.value)


def test_credentials_from_a_secret_mount_or_a_credentials_file(tmp_path: Path) -> None:
    mount = tmp_path / "mount"
    mount.mkdir()
    (mount / "AWS_ACCESS_KEY_ID").write_text("id2\n")
    (mount / "AWS_SECRET_ACCESS_KEY").write_text("s3cr3t-two\n")
    creds = read_credentials(CredentialSource(source="file", path=str(mount)))
    assert creds is not None and (creds.access_key_id, creds.secret_access_key) == ("id2", "s3cr3t-two")
    ini = tmp_path / "credentials"
    ini.write_text("[snaps]\naws_access_key_id = id3\naws_secret_access_key = s3cr3t-three\n")
    creds = read_credentials(CredentialSource(source="file", path=str(ini), profile="snaps"))
    assert creds is not None and creds.secret_access_key == "s3cr3t-three"
    with pytest.raises(S3ConfigError, match=r"holds no access key id .* under \[default\]") as info:
        read_credentials(CredentialSource(source="file", path=str(ini)))
    assert "s3cr3t" not in str(info.value)
    with pytest.raises(S3ConfigError, match="Cannot read the snapshot bucket's credentials file"):
        read_credentials(CredentialSource(source="file", path=str(tmp_path / "missing")))


def test_the_default_chain_is_left_to_botocore() -> None:
    assert read_credentials(CredentialSource(source="default"), {}) is None
