"""Check a presigned POST policy the way S3 does, independently of the server the tests run.

The tests' S3 server (``tests/cluster/minio.py``) enforces POST policies, and ``test_s3_security.py`` shows it
refusing uploads; this checker states the rules themselves, so a grant that a laxer server (moto, which the
tests used before, checked nothing) would accept is still caught: that the policy is signed with the
gateway's secret (SigV4), and whether a given upload (bucket, key, size, time) meets each condition we
generate (``bucket``, exact ``key``, ``starts-with $key``, ``content-length-range``, the ``x-amz-*`` fields)
and the expiration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timezone
from typing import Any


def decode(fields: dict[str, str]) -> dict[str, Any]:
    return json.loads(base64.b64decode(fields["policy"]))


def signature_ok(fields: dict[str, str], secret: str) -> bool:
    """SigV4 for POST: HMAC chain over date/region/service, then over the base64 policy itself."""
    _, date, region, service, _ = fields["x-amz-credential"].split("/")
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, fields["policy"].encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["x-amz-signature"])


def allows(fields: dict[str, str], *, bucket: str, key: str, size: int, now: datetime | None = None) -> bool:
    """Whether S3 would accept an upload of ``size`` bytes under ``key`` with these fields."""
    policy = decode(fields)
    now = now or datetime.now(timezone.utc)
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    if now >= expiration:
        return False
    form = {**fields, "key": key, "bucket": bucket}
    for condition in policy["conditions"]:
        if isinstance(condition, dict):
            ((name, value),) = condition.items()
            if form.get(name) != value:
                return False
        elif condition[0] == "starts-with":
            if not str(form.get(condition[1].lstrip("$"), "")).startswith(condition[2]):
                return False
        elif condition[0] == "eq":
            if form.get(condition[1].lstrip("$")) != condition[2]:
                return False
        elif condition[0] == "content-length-range":
            if not condition[1] <= size <= condition[2]:
                return False
        else:
            raise AssertionError(f"condition not understood by this checker: {condition}")
    return True
