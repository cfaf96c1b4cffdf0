"""Dry runs: the Pod a kernel would get (rendered by the real Kubernetes backend) and placement previews."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import USER


def _platform_kernel_json(spec_dir: Path) -> str:
    spec = json.loads((spec_dir / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"]["policy"] = "platform-policy.yaml"
    return json.dumps(spec)


def test_render_returns_the_pod_for_member_flavor_and_user(api: Any, spec_dir: Path) -> None:
    status, body = api(
        "POST",
        "kernelspecs/gpu-auto/render",
        user=USER,
        body={
            "member": "private",
            "flavor": "silver",
            "user": "carol",
            "files": {"kernel.json": _platform_kernel_json(spec_dir)},
        },
    )
    assert status == 200, body
    pod = body["pod"]
    assert pod["kind"] == "Pod"
    assert pod["metadata"]["labels"]["mlp.io/flavor"] == "silver"
    assert pod["metadata"]["annotations"]["mlp.io/user-name"] == "carol"


def test_render_never_returns_secret_values(api: Any, spec_dir: Path) -> None:
    status, body = api(
        "POST",
        "kernelspecs/gpu-auto/render",
        body={
            "member": "private",
            "flavor": "bronze",
            "files": {"kernel.json": _platform_kernel_json(spec_dir)},
        },
    )
    assert status == 200, body
    assert body["secret"]["data"]
    assert set(body["secret"]["data"].values()) == {"<redacted>"}


def test_render_uses_the_unsaved_template_and_reports_its_error_line(api: Any, spec_dir: Path) -> None:
    template = (spec_dir / "pod-template.yaml.j2").read_text().replace("kind: Pod", "kind: Deployment")
    status, body = api(
        "POST",
        "kernelspecs/gpu-auto/render",
        body={
            "member": "private",
            "flavor": "bronze",
            "files": {"kernel.json": _platform_kernel_json(spec_dir), "pod-template.yaml.j2": template},
        },
    )
    assert status == 400
    assert "Pod" in body["message"]
    assert (spec_dir / "pod-template.yaml.j2").read_text() != template  # nothing was saved


def test_render_for_an_unknown_flavor_names_the_known_ones(api: Any, spec_dir: Path) -> None:
    status, body = api(
        "POST",
        "kernelspecs/gpu-auto/render",
        body={
            "member": "private",
            "flavor": "platinum",
            "files": {"kernel.json": _platform_kernel_json(spec_dir)},
        },
    )
    assert status == 400
    assert "platinum" in body["message"] and "silver" in body["message"]


def test_render_refuses_files_outside_the_allow_list(api: Any) -> None:
    status, body = api(
        "POST",
        "kernelspecs/gpu-auto/render",
        body={"member": "private", "flavor": "silver", "files": {"../../evil.yaml": "x"}},
    )
    assert status == 400
    assert "not an editable file" in body["message"]


def test_placement_preview_returns_the_decision_with_its_explanation(api: Any, spec_dir: Path) -> None:
    policy = (spec_dir / "platform-policy.yaml").read_text()
    status, body = api(
        "POST",
        "placement/preview",
        user=USER,
        body={
            "policy": policy,
            "request": {"gpu_model": "A100", "burstable": True, "budget": "flex", "waited_s": 3600},
        },
    )
    assert status == 200, body
    assert body["action"] in ("run", "queue", "burst", "reject")
    assert body["explanation"] and all("rule" in r for r in body["explanation"])


def test_placement_preview_with_the_saved_policy(api: Any) -> None:
    status, body = api("POST", "placement/preview", body={"request": {"gpu_count": 1}})
    assert status == 200, body
    assert body["action"] == "run"


def test_placement_preview_rejects_bad_request_fields_by_name(api: Any) -> None:
    status, body = api("POST", "placement/preview", body={"request": {"gpus": 2}})
    assert status == 400 and "request.gpus" in body["message"]
    status, body = api("POST", "placement/preview", body={"request": {"gpu_count": "two"}})
    assert status == 400 and "request.gpu_count" in body["message"]
    status, body = api("POST", "placement/preview", body={"request": {"deadline": "tomorrow"}})
    assert status == 400 and "request.deadline" in body["message"]


def test_placement_preview_with_an_invalid_policy_points_at_the_field(api: Any) -> None:
    bad = "version: 1\nmembers: 3\n"
    status, body = api("POST", "placement/preview", body={"policy": bad, "request": {}})
    assert status == 400
    assert body["issues"] and body["issues"][0]["field"]


def test_placement_preview_refuses_out_of_range_request_values_by_name(api: Any) -> None:
    for request, field in [
        ({"gpu_count": 10**400}, "request.gpu_count"),
        ({"gpu_count": 0}, "request.gpu_count"),
        ({"waited_s": -1}, "request.waited_s"),
        ({"waited_s": True}, "request.waited_s"),
        ({"gpu_model": "A" * 10_000}, "request.gpu_model"),
    ]:
        status, body = api("POST", "placement/preview", body={"request": request})
        assert status == 400 and field in body["message"], (request, body)


def test_bodies_json_does_not_allow_are_refused_with_400(jp_fetch: Any, run: Any) -> None:
    from tornado.httpclient import HTTPClientError

    async def post(raw: bytes) -> Any:  # jp_fetch makes its Future on the running loop, not at call time
        return await jp_fetch(
            "mlp-kernel",
            "api",
            "placement",
            "preview",
            method="POST",
            body=raw,
            headers={"X-Mlp-Test-User": USER},
        )

    for raw, expected in (
        (b'{"request": {"waited_s": NaN}}', b"NaN is not a number"),
        (b'{"request": {"waited_s": Infinity}}', b"Infinity is not a number"),
        (b'{"request": {"waited_s": 1e400}}', b"request.waited_s"),  # parses as inf
        (b"[" * 200_000 + b"]" * 200_000, b"nested too deeply"),
    ):
        try:
            run(post(raw))
        except HTTPClientError as e:
            assert e.code == 400 and e.response is not None, (raw[:40], e)
            assert expected in e.response.body, e.response.body
        else:
            raise AssertionError(f"accepted {raw[:40]!r}")
