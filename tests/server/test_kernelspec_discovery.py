"""Every kernelspec that uses our provisioner is managed with no setting to edit (issue 16): the README's
``GPU (demo)`` kernelspec next to ``gpu-auto``; a kernelspec of another provisioner stays out; the render form
offers only what can be rendered and says why when nothing can."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO_SPEC


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], jp_data_dir: Path) -> dict[str, Any]:
    demo = jp_data_dir / "kernels" / "gpu-demo"
    shutil.copytree(REPO_SPEC, demo)
    spec = json.loads((demo / "kernel.json").read_text())
    spec["display_name"] = "GPU (demo)"
    spec["metadata"]["kernel_provisioner"]["config"]["policy"] = "demo-policy.yaml"
    (demo / "kernel.json").write_text(json.dumps(spec))
    plain = jp_data_dir / "kernels" / "plain"
    plain.mkdir(parents=True)
    (plain / "kernel.json").write_text(
        json.dumps({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "plain", "language": "python"})
    )  # fmt: skip
    return jp_server_config


def test_every_kernelspec_of_our_provisioner_is_listed_and_no_other(api: Any) -> None:
    status, body = api("GET", "kernelspecs")
    assert status == 200
    listed = {s["name"]: s["display_name"] for s in body["kernelspecs"]}
    assert listed == {"gpu-auto": "GPU (auto)", "gpu-demo": "GPU (demo)"}
    demo = next(s for s in body["kernelspecs"] if s["name"] == "gpu-demo")
    assert {f["file"] for f in demo["files"]} == {"kernel.json", "pod-template.yaml.j2", "demo-policy.yaml"}


def test_the_demo_kernelspecs_files_can_be_read_and_another_provisioners_cannot(api: Any) -> None:
    status, body = api("GET", "kernelspecs/gpu-demo/files/demo-policy.yaml")
    assert status == 200 and "members" in body["content"]
    status, body = api("GET", "kernelspecs/plain/files/kernel.json")
    assert status == 404
    assert "gpu-auto-provisioner" in body["message"]


def test_render_form_of_the_shipped_local_policy_offers_nothing_and_says_why(api: Any) -> None:
    status, body = api("GET", "kernelspecs/gpu-auto")
    assert status == 200
    assert body["render_targets"] == []
    assert "'local'" in body["render_note"] and "namespace and local_queue" in body["render_note"]


def test_render_form_offers_each_member_with_its_own_flavors_only(api: Any, spec_dir: Path) -> None:
    spec = json.loads((spec_dir / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"]["policy"] = "platform-policy.yaml"
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    status, body = api("GET", "kernelspecs/gpu-auto")
    assert status == 200 and body["render_note"] == ""
    targets = body["render_targets"]
    assert targets, body
    for t in targets:  # every offered pair renders
        status, out = api(
            "POST", "kernelspecs/gpu-auto/render", body={"member": t["member"], "flavor": t["flavor"]}
        )
        assert status == 200, (t, out)
        assert out["pod"]["kind"] == "Pod"


def test_render_targets_follow_the_unsaved_kernel_json(api: Any, spec_dir: Path) -> None:
    spec = json.loads((spec_dir / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"]["policy"] = "platform-policy.yaml"
    status, body = api(
        "POST", "kernelspecs/gpu-auto/render/targets", body={"files": {"kernel.json": json.dumps(spec)}}
    )
    assert status == 200 and body["render_note"] == ""
    assert {"member": "private", "flavor": "silver"} in body["render_targets"]
    status, body = api("POST", "kernelspecs/gpu-auto/render/targets", body={})
    assert status == 200 and body["render_targets"] == [] and "'local'" in body["render_note"]
    status, body = api(
        "POST", "kernelspecs/gpu-auto/render/targets", body={"files": {"policy.yaml": "members: ["}}
    )
    assert status == 400 and body["message"].startswith("No dry run")
