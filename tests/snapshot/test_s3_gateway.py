"""End to end: a GPU (auto) kernel whose policy keeps snapshots in a bucket (a real S3 endpoint).

The gateway process reads the bucket credentials from a Secret-like mount named in the policy; the remote
kernel (local backend) gets only presigned grants. Variables survive ``%gpu release``; shutting the notebook's
kernel down empties its prefix.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.gateway.conftest import runtime_dir, start_kernel, text_of  # noqa: F401  (fixtures)

from .conftest import ROOT_POLICY, S3Server


def s3_policy(server: S3Server, bucket: str, credentials: Path) -> str:
    data = yaml.safe_load(ROOT_POLICY.read_text())
    data["snapshot"] = {"storage": {
        "kind": "s3", "endpoint": server.endpoint, "bucket": bucket, "prefix": "mlp", "public": False,
        "credentials": {"from": "file", "path": str(credentials)},
    }}  # fmt: skip
    return yaml.safe_dump(data)


def results(outputs: list[dict]) -> list[str]:
    return [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"]


async def test_variables_survive_a_release_through_the_bucket(
    start_kernel,  # noqa: F811  (the fixture imported above)
    s3_server: S3Server,
    credentials_dir: Path,
) -> None:
    bucket = s3_server.new_bucket()
    k = await start_kernel(policy=s3_policy(s3_server, bucket, credentials_dir))
    reply, outputs = await k.run(
        "import numpy as np\nv = np.arange(5)\ndef total():\n    return int(v.sum())"
    )
    assert reply["content"]["status"] == "ok", text_of(outputs)
    reply, outputs = await k.run("%gpu release")
    text = text_of(outputs)
    assert "Saved 3 variables" in text, text
    keys = s3_server.keys(bucket)
    assert any(key.startswith("mlp/") and key.endswith(f"/{k.kernel_id}/manifest.json") for key in keys), keys
    reply, outputs = await k.run("total()")
    assert results(outputs) == ["10"], text_of(outputs)
    text += text_of(outputs)
    assert "Restored 3 variables" in text, text
    assert s3_server.secret not in text
    k.kc.stop_channels()
    await k.km.shutdown_kernel(now=False)
    assert s3_server.keys(bucket) == [], "the notebook's kernel shut down: its snapshot is deleted"
