"""No request to the admin API can freeze the server for others, however big or hostile its body.

validate, render and preview parse what any user with ``read`` sends. They run in worker processes with a
time limit (mlp_kernel/server/worker.py) behind a body-size limit; these tests send the inputs that froze
the server (alias bombs, huge bodies, runaway templates) to a real jupyter_server and check that another
user's request is answered meanwhile and the hostile one gets a clear error.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from .conftest import USER
from .test_dry_runs import _platform_kernel_json

F = "kernelspecs/gpu-auto/files"
TIMEOUT_S = 2.0
BODY_LIMIT = 64 * 1024
# the classic billion laughs: 9 levels of 9 aliases, about 600 bytes, 10^9 values once expanded
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)
RUNAWAY_TEMPLATE = (
    "{% for i in range(99999) %}{% for j in range(99999) %}{% for k in range(99999) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["MlpKernelExtension"].update(work_timeout=TIMEOUT_S, max_body_bytes=BODY_LIMIT)
    return jp_server_config


def _fetch(jp_fetch: Any, method: str, path: str, body: Any = None, user: str = USER) -> Any:
    async def go() -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"method": method, "headers": {"X-Mlp-Test-User": user}}
        if body is not None:
            kwargs["body"] = body if isinstance(body, (bytes, str)) else json.dumps(body)
        try:
            r = await jp_fetch("mlp-kernel", "api", *path.split("/"), **kwargs)
        except HTTPClientError as e:
            assert e.response is not None, e
            return e.code, json.loads(e.response.body or b"null")
        return r.code, json.loads(r.body)

    return go()


def _runaway_render(spec_dir: Path) -> dict[str, Any]:
    return {
        "member": "private",
        "flavor": "bronze",
        "files": {"kernel.json": _platform_kernel_json(spec_dir), "pod-template.yaml.j2": RUNAWAY_TEMPLATE},
    }


def test_a_body_over_the_limit_is_refused_with_413_before_parsing(api: Any) -> None:
    status, body = api(
        "POST", f"{F}/policy.yaml/validate", user=USER, body={"content": "x: 1\n" * (BODY_LIMIT // 4)}
    )
    assert status == 413
    assert "too large" in body["message"] and str(BODY_LIMIT) in body["message"]


def test_an_alias_bomb_is_an_issue_not_a_hang(api: Any) -> None:
    assert len(ALIAS_BOMB) < 700
    started = time.monotonic()
    status, body = api("POST", f"{F}/policy.yaml/validate", user=USER, body={"content": ALIAS_BOMB})
    assert time.monotonic() - started < TIMEOUT_S + 5
    assert status in (200, 400), body
    assert body.get("valid") is not True and body["issues"]


def test_a_runaway_render_is_stopped_while_other_requests_are_answered(
    jp_fetch: Any, run: Any, spec_dir: Path
) -> None:
    async def scenario() -> tuple[float, float, tuple[int, Any], tuple[int, Any]]:
        started = time.monotonic()
        hostile = asyncio.ensure_future(
            _fetch(jp_fetch, "POST", "kernelspecs/gpu-auto/render", _runaway_render(spec_dir))
        )
        await asyncio.sleep(0.5)
        before = time.monotonic()
        other = await _fetch(jp_fetch, "GET", f"{F}/policy.yaml")
        other_s = time.monotonic() - before
        result = await hostile
        return other_s, time.monotonic() - started, other, result

    other_s, total_s, other, (status, body) = run(scenario())
    assert other[0] == 200 and other_s < 1.0, other_s
    assert status == 400, body
    assert "Stopped the render after 2 s" in body["message"] and "work_timeout" in body["message"]
    assert total_s < TIMEOUT_S + 30  # a new worker's imports are not timed; the job is


def test_after_a_stopped_job_the_next_one_works(jp_fetch: Any, run: Any, spec_dir: Path) -> None:
    status, body = run(_fetch(jp_fetch, "POST", "kernelspecs/gpu-auto/render", _runaway_render(spec_dir)))
    assert status == 400 and "Stopped" in body["message"]
    text = (spec_dir / "policy.yaml").read_text()
    status, body = run(_fetch(jp_fetch, "POST", f"{F}/policy.yaml/validate", {"content": text}))
    assert (status, body["valid"]) == (200, True), body


def test_a_runaway_template_in_a_validate_is_stopped(api: Any) -> None:
    status, body = api(
        "POST", f"{F}/pod-template.yaml.j2/validate", user=USER, body={"content": RUNAWAY_TEMPLATE}
    )
    assert status == 400, body
    assert "Stopped checking pod-template.yaml.j2 after 2 s" in body["message"]
    assert body["issues"][0]["message"] == body["message"]


def test_a_template_allocating_gigabytes_meets_the_memory_limit(api: Any) -> None:
    started = time.monotonic()  # a 10 GB string: MemoryError in the worker (1024 MB), reported as an issue
    status, body = api(
        "POST", f"{F}/pod-template.yaml.j2/validate", user=USER, body={"content": "{{ 'x' * 10 ** 10 }}"}
    )
    assert time.monotonic() - started < TIMEOUT_S + 30
    assert status in (200, 400) and body.get("valid") is not True and body["issues"], body
