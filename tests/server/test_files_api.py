"""Admin API: reading, validating, saving, history and rollback of kernelspec files (docs/rest-api.md)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from .conftest import ADMIN, USER

F = "kernelspecs/gpu-auto/files"


def test_lists_the_managed_kernelspec_and_its_three_files(api: Any) -> None:
    status, body = api("GET", "kernelspecs")
    assert status == 200
    (spec,) = body["kernelspecs"]
    assert spec["name"] == "gpu-auto"
    assert spec["display_name"] == "GPU (auto)"
    assert {f["file"]: f["kind"] for f in spec["files"]} == {
        "kernel.json": "kernel",
        "pod-template.yaml.j2": "pod_template",
        "policy.yaml": "policy",
    }


def test_kernelspec_lists_policy_members_and_flavors_for_the_render_form(api: Any) -> None:
    status, body = api("GET", "kernelspecs/gpu-auto")
    assert status == 200
    assert body["members"] and body["flavors"]


def test_get_returns_content_and_hash(api: Any, spec_dir: Path) -> None:
    status, body = api("GET", f"{F}/policy.yaml", user=USER)
    assert status == 200
    assert body["content"] == (spec_dir / "policy.yaml").read_text()
    assert len(body["sha256"]) == 64


@pytest.mark.parametrize(
    "kernelspec,file,code",
    [
        ("gpu-auto", "passwd", 400),
        ("gpu-auto", "..", 400),
        ("gpu-auto", "demo-policy.yaml", 400),  # in the directory, but not the policy kernel.json names
        ("GPU-AUTO", "kernel.json", 400),
        ("python3", "kernel.json", 404),
        ("..", "kernel.json", 400),
    ],
)
def test_names_outside_the_allow_list_are_refused(api: Any, kernelspec: str, file: str, code: int) -> None:
    status, body = api("GET", f"kernelspecs/{kernelspec}/files/{file}")
    assert status == code
    assert body["message"]


def test_encoded_path_traversal_is_refused(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str, run: Any
) -> None:
    token = jp_serverapp.identity_provider.token
    for path in (
        "kernelspecs/gpu-auto/files/..%2F..%2F..%2Fetc%2Fpasswd",
        "kernelspecs/..%2Fkernels%2Fgpu-auto/files/kernel.json",
    ):
        r = run(
            http_server_client.fetch(
                f"{jp_base_url}mlp-kernel/api/{path}",
                raise_error=False,
                headers={"Authorization": f"token {token}"},
            )
        )
        assert r.code in (400, 404), (path, r.code)
        assert "passwd" not in r.body.decode() or "cannot be edited" in r.body.decode()


def test_unauthenticated_requests_are_refused(http_server_client: Any, jp_base_url: str, run: Any) -> None:
    r = run(
        http_server_client.fetch(
            f"{jp_base_url}mlp-kernel/api/kernelspecs", raise_error=False, follow_redirects=False
        )
    )
    assert r.code in (302, 403)


def test_validate_reports_policy_errors_with_line_and_field(api: Any, spec_dir: Path) -> None:
    text = (spec_dir / "policy.yaml").read_text()
    text = text.replace("price_per_gpu_hour: 0", "price_per_gpu_hour: cheap")
    status, body = api("POST", f"{F}/policy.yaml/validate", user=USER, body={"content": text})
    assert status == 200
    assert body["valid"] is False
    issue = body["issues"][0]
    assert "price_per_gpu_hour" in issue["field"]
    assert (
        issue["line"]
        == text.splitlines().index(next(line for line in text.splitlines() if "cheap" in line)) + 1
    )


def test_validate_reports_bad_yaml_syntax_with_line(api: Any) -> None:
    status, body = api("POST", f"{F}/policy.yaml/validate", body={"content": "version: 1\nmembers: [\n"})
    assert status == 200 and body["valid"] is False
    assert body["issues"][0]["line"] is not None


def test_validate_reports_kernel_json_field_errors(api: Any, spec_dir: Path) -> None:
    spec = json.loads((spec_dir / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"]["idle_timeout"] = "soon"
    spec["metadata"]["kernel_provisioner"]["config"]["policy"] = "../../etc/policy.yaml"
    status, body = api("POST", f"{F}/kernel.json/validate", body={"content": json.dumps(spec, indent=2)})
    assert status == 200 and body["valid"] is False
    fields = {i["field"] for i in body["issues"]}
    config = "metadata.kernel_provisioner.config"
    assert fields == {f"{config}.idle_timeout", f"{config}.policy"}
    assert all(i["line"] for i in body["issues"])


def test_validate_reports_template_errors_with_line(api: Any, spec_dir: Path) -> None:
    text = (spec_dir / "pod-template.yaml.j2").read_text().replace("{{ kernel_id }}", "{{ kernel_id ")
    status, body = api("POST", f"{F}/pod-template.yaml.j2/validate", body={"content": text})
    assert status == 200 and body["valid"] is False
    assert body["issues"][0]["line"] is not None


def test_admin_save_writes_file_and_keeps_the_previous_version(
    api: Any, spec_dir: Path, history_dir: Path
) -> None:
    before = (spec_dir / "policy.yaml").read_text()
    after = before.replace("idle_timeout: 15m", "idle_timeout: 20m")
    assert after != before
    status, body = api("PUT", f"{F}/policy.yaml", body={"content": after})
    assert status == 200, body
    assert (spec_dir / "policy.yaml").read_text() == after
    status, hist = api("GET", f"{F}/policy.yaml/history")
    versions = hist["versions"]
    assert [v["action"] for v in versions] == ["save", "original"]
    assert versions[0]["user"] == ADMIN
    status, old = api("GET", f"{F}/policy.yaml/history/{versions[1]['version']}")
    assert old["content"] == before
    files = [p for p in history_dir.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    dirs = [p for p in history_dir.rglob("*") if p.is_dir()]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in dirs)


def test_rollback_restores_a_previous_version(api: Any, spec_dir: Path) -> None:
    before = (spec_dir / "policy.yaml").read_text()
    api("PUT", f"{F}/policy.yaml", body={"content": before.replace("15m", "30m")})
    _, hist = api("GET", f"{F}/policy.yaml/history")
    original = hist["versions"][-1]["version"]
    status, body = api("POST", f"{F}/policy.yaml/rollback", body={"version": original})
    assert status == 200, body
    assert (spec_dir / "policy.yaml").read_text() == before
    _, hist = api("GET", f"{F}/policy.yaml/history")
    assert hist["versions"][0]["action"] == "rollback"


def test_rollback_refuses_a_version_id_that_is_a_path(api: Any) -> None:
    status, body = api("POST", f"{F}/policy.yaml/rollback", body={"version": "../../kernel.json"})
    assert status == 404


def test_non_admin_cannot_save_or_roll_back(api: Any, spec_dir: Path) -> None:
    before = (spec_dir / "policy.yaml").read_text()
    status, body = api("PUT", f"{F}/policy.yaml", user=USER, body={"content": before + "\n# x\n"})
    assert status == 403
    assert "admin" in body["message"]
    assert (spec_dir / "policy.yaml").read_text() == before
    status, _ = api("POST", f"{F}/policy.yaml/rollback", user=USER, body={"version": "x"})
    assert status == 403


def test_invalid_content_is_not_saved(api: Any, spec_dir: Path) -> None:
    before = (spec_dir / "policy.yaml").read_text()
    status, body = api("PUT", f"{F}/policy.yaml", body={"content": "version: [\n"})
    assert status == 400
    assert body["issues"] and body["issues"][0]["line"]
    assert (spec_dir / "policy.yaml").read_text() == before


def test_save_against_a_stale_base_is_a_conflict(api: Any, spec_dir: Path) -> None:
    text = (spec_dir / "policy.yaml").read_text()
    status, body = api("PUT", f"{F}/policy.yaml", body={"content": text, "base_sha256": "0" * 64})
    assert status == 409
    assert "changed on the server" in body["message"]


def test_kernel_json_pointing_at_a_missing_policy_is_not_saved(api: Any, spec_dir: Path) -> None:
    spec = json.loads((spec_dir / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"]["policy"] = "nowhere.yaml"
    status, body = api("PUT", f"{F}/kernel.json", body={"content": json.dumps(spec)})
    assert status == 400
    assert "nowhere.yaml" in body["issues"][0]["message"]


def test_save_is_logged_with_who_and_what_but_not_the_content(
    api: Any, spec_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret_marker = "# do-not-log-this-line"
    text = (spec_dir / "policy.yaml").read_text() + secret_marker + "\n"
    with caplog.at_level("INFO"):
        status, _ = api("PUT", f"{F}/policy.yaml", body={"content": text})
    assert status == 200
    lines = [r.getMessage() for r in caplog.records if "mlp-kernel: save" in r.getMessage()]
    assert lines and ADMIN in lines[0] and "gpu-auto/policy.yaml" in lines[0]
    assert not any(secret_marker in r.getMessage() for r in caplog.records)


def test_me_tells_the_ui_who_may_save(api: Any) -> None:
    _, admin = api("GET", "me")
    _, user = api("GET", "me", user=USER)
    assert admin["is_admin"] is True and user["is_admin"] is False
    assert "admin_users" in user["why_not"]


def test_shipped_kernelspec_files_are_valid() -> None:
    from mlp_kernel.server.files import policy_file_name
    from mlp_kernel.server.validation import has_errors, validate

    spec = Path(__file__).resolve().parents[2] / "kernelspecs" / "gpu-auto"
    kernel_json = (spec / "kernel.json").read_text()
    for name, kind in (
        ("kernel.json", "kernel"),
        ("pod-template.yaml.j2", "pod_template"),
        (policy_file_name(kernel_json), "policy"),
    ):
        issues = validate(kind, (spec / name).read_text(), name)
        assert not has_errors(issues), (name, issues)


def test_kernel_json_accepts_the_provisioners_defaults(api: Any, spec_dir: Path) -> None:
    spec = json.loads((spec_dir / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"].update({"idle_timeout": None, "backend": ""})
    status, body = api("POST", f"{F}/kernel.json/validate", body={"content": json.dumps(spec)})
    assert status == 200 and body["valid"] is True, body
    spec["metadata"]["kernel_provisioner"]["config"]["backend"] = "slurm"
    status, body = api("POST", f"{F}/kernel.json/validate", body={"content": json.dumps(spec)})
    assert body["valid"] is False and body["issues"][0]["field"].endswith("backend")


@pytest.fixture
def fresh_install(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    """No history_dir configured: the default under {jupyter_data_dir}/mlp-kernel/ does not exist yet."""
    jp_server_config["MlpKernelExtension"]["history_dir"] = ""
    return jp_server_config


def test_the_first_save_on_a_fresh_install_creates_the_history_directories(
    fresh_install: dict[str, Any], api: Any, spec_dir: Path, jp_data_dir: Path
) -> None:
    assert not (jp_data_dir / "mlp-kernel").exists()
    text = (spec_dir / "policy.yaml").read_text().replace("idle_timeout: 15m", "idle_timeout: 25m")
    status, body = api("PUT", f"{F}/policy.yaml", body={"content": text})
    assert status == 200, body
    for d in (jp_data_dir / "mlp-kernel", jp_data_dir / "mlp-kernel" / "history"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    _, hist = api("GET", f"{F}/policy.yaml/history")
    assert [v["action"] for v in hist["versions"]] == ["save", "original"]


def test_a_save_to_a_read_only_kernelspec_is_a_clear_403(
    api: Any, spec_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlp_kernel.server import handlers

    def read_only(path: Path, text: str) -> None:  # what a root-owned a-w kernelspec does (tests run as root)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(handlers, "write_atomic", read_only)
    before = (spec_dir / "policy.yaml").read_text()
    status, body = api("PUT", f"{F}/policy.yaml", body={"content": before.replace("15m", "20m")})
    assert status == 403, body
    assert "read-only" in body["message"] and "policy.yaml" in body["message"]
    assert (spec_dir / "policy.yaml").read_text() == before
