"""Every bad input file to the CLI: exit 2, one line naming the file (and the field), in well under a second.

Policies (``place``, ``simulate``), Kueue/Karmada state dumps (``place --state``) and traces (``simulate
--trace``), each fed the classes of bad file that used to give tracebacks, hangs or silent zeros: binary and
gzip'd files, alias bombs and cyclic aliases, 5,000-deep nesting, wrong types inside Kueue objects, quantities
that are not quantities, NaN/infinity/absurd numbers, an empty trace. ``main()`` runs in-process so the time
measured is the command's own (CPU time: on a busy machine wall time would measure the neighbours); one runs
as a real subprocess for the exit code end to end.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import mlp_kernel.simulate  # noqa: F401  (imported here so its import time is not counted below)
from mlp_kernel.cli import main

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = ROOT / "kernelspecs/gpu-auto/platform-policy.yaml"
DUMP = ROOT / "tests/placement/dumps/private-v1beta2.yaml"
TINY = ROOT / "tests/simulate/tiny-policy.yaml"
NESTED = "- " * 5000 + "x\n"  # 5,000 levels of block sequences on one line


def laughs() -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


YAML_FILES: dict[str, tuple[bytes, str]] = {  # name -> (content, what the message must say)
    "binary": (bytes(range(256)) * 4, "binary"),
    "gzip": (gzip.compress(PLATFORM.read_bytes()), "gzip"),
    "latin-1": ("members: {caf\xe9: {}}\n".encode("latin-1"), "UTF-8"),
    "recursive alias": (b"members: &m {private: *m}\n", "refers to itself"),
    "billion laughs": (laughs().encode(), "alias bomb"),
    "5,000-deep nesting": (NESTED.encode(), "nested more than"),
}


def run_cli(*argv: str | os.PathLike[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    start = time.process_time()
    code = main([os.fspath(a) for a in argv])
    elapsed = time.process_time() - start
    return code, capsys.readouterr().err, elapsed


def assert_one_line_exit_2(result: tuple[int, str, float], path: Path, *fragments: str) -> None:
    code, err, elapsed = result
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert str(path) in err and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    assert elapsed < 1.0, f"took {elapsed:.2f} s"


# --- policies ---------------------------------------------------------------------------------------------


def policy_with(tmp_path: Path, edit: Callable[[str], str]) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(edit(PLATFORM.read_text()))
    return path


@pytest.mark.parametrize("name", list(YAML_FILES))
@pytest.mark.parametrize("command", ["place", "simulate"])
def test_unreadable_policy_files(tmp_path: Path, capsys: Any, name: str, command: str) -> None:
    content, fragment = YAML_FILES[name]
    path = tmp_path / "policy.yaml"
    path.write_bytes(content)
    extra = ("--gpu", "v100") if command == "place" else ("--generate", "users=1,days=1")
    assert_one_line_exit_2(run_cli(command, "--policy", path, *extra, capsys=capsys), path, fragment)


POLICY_VALUES = {
    "NaN price": ("price_per_gpu_hour: 0", "price_per_gpu_hour: .nan", "price_per_gpu_hour"),
    "infinite price": ("price_per_gpu_hour: 0", "price_per_gpu_hour: .inf", "price_per_gpu_hour"),
    "idle_timeout 1e12": ("idle_timeout: 15m", "idle_timeout: 1e12", "idle_timeout"),
    "idle_timeout inf": ("idle_timeout: 15m", "idle_timeout: .inf", "idle_timeout"),
    "idle_timeout 99999999d": ("idle_timeout: 15m", "idle_timeout: 99999999d", "idle_timeout"),
    "bad date": ("idle_timeout: 15m", "idle_timeout: 2020-13-45", "month"),
    "max_gpus 10**400": ("max_gpus: 8", "max_gpus: " + "1" * 400, "max_gpus"),
    "400-digit cpu": ('cpu: "4"', 'cpu: "' + "9" * 400 + '"', "default_request.cpu"),
    "backtracking duration": ("idle_timeout: 15m", 'idle_timeout: "' + "1s " * 5000 + 'x"', "idle_timeout"),
}


@pytest.mark.parametrize("name", list(POLICY_VALUES))
def test_out_of_range_policy_values_name_the_field(tmp_path: Path, capsys: Any, name: str) -> None:
    old, new, field = POLICY_VALUES[name]
    path = policy_with(tmp_path, lambda text: text.replace(old, new, 1))
    result = run_cli("place", "--policy", path, "--gpu", "v100", capsys=capsys)
    assert_one_line_exit_2(result, path, field)


@pytest.mark.parametrize("name", list(YAML_FILES))
def test_unreadable_pod_templates(tmp_path: Path, capsys: Any, name: str) -> None:
    content, fragment = YAML_FILES[name]
    spec = tmp_path / "gpu-auto"
    shutil.copytree(ROOT / "kernelspecs/gpu-auto", spec)
    (spec / "pod-template.yaml.j2").write_bytes(content)
    flags = ("--member", "private", "--flavor", "silver", "--user", "alice", "--policy", PLATFORM)
    assert_one_line_exit_2(run_cli("render", "--kernelspec", spec, *flags, capsys=capsys), spec, fragment)


# --- Kueue/Karmada state dumps ------------------------------------------------------------------------------


def first(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(item for item in doc["items"] if item["kind"] == kind)


def _quota(doc: dict[str, Any]) -> dict[str, Any]:
    return first(doc, "ClusterQueue")["spec"]["resourceGroups"][0]["flavors"][0]["resources"][2]


DUMP_EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "metadata: 5": (lambda d: first(d, "ClusterQueue").update(metadata=5), "metadata: expected a mapping"),
    "spec: []": (lambda d: first(d, "ClusterQueue").update(spec=[]), "spec: expected a mapping"),
    "count: many": (
        lambda d: first(d, "Workload")["spec"]["podSets"][0].update(count="many"),
        "spec.podSets[0].count",
    ),
    "conditions as a string": (
        lambda d: first(d, "ClusterQueue")["status"].update(conditions="Active"),
        "status.conditions: expected a list",
    ),
    "nominalQuota: lots": (lambda d: _quota(d).update(nominalQuota="lots"), "nominalQuota"),
    "nominalQuota: NaN": (lambda d: _quota(d).update(nominalQuota=float("nan")), "nominalQuota"),
    "nominalQuota: 1e400": (lambda d: _quota(d).update(nominalQuota="9" * 400), "nominalQuota"),
    "items: 5": (lambda d: d.update(items=5), "items"),
    "an item that is a string": (lambda d: d["items"].append("Workload"), "items["),
    "bad transition time": (
        lambda d: first(d, "ClusterQueue")["status"]["conditions"][0].update(lastTransitionTime="soon"),
        "lastTransitionTime",
    ),
}


def place_with_state(path: Path, capsys: Any) -> tuple[int, str, float]:
    return run_cli(
        "place", "--policy", PLATFORM, "--state", f"private={path}", "--gpu", "v100", capsys=capsys
    )


@pytest.mark.parametrize("name", list(DUMP_EDITS))
def test_wrong_types_inside_kueue_objects_name_the_file_and_field(
    tmp_path: Path, capsys: Any, name: str
) -> None:
    edit, fragment = DUMP_EDITS[name]
    doc = copy.deepcopy(yaml.safe_load(DUMP.read_text()))
    edit(doc)
    path = tmp_path / "private.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert_one_line_exit_2(place_with_state(path, capsys), path, fragment)


@pytest.mark.parametrize("name", list(YAML_FILES))
def test_unreadable_state_dumps(tmp_path: Path, capsys: Any, name: str) -> None:
    content, fragment = YAML_FILES[name]
    path = tmp_path / "private.yaml"
    path.write_bytes(content)
    assert_one_line_exit_2(place_with_state(path, capsys), path, fragment)


def test_the_unedited_dump_still_places(capsys: Any) -> None:
    code, err, _ = place_with_state(DUMP, capsys)
    assert code == 0, err


# --- traces -------------------------------------------------------------------------------------------------

OPEN = {"event": "open", "session": "s1", "user": "alice", "t": 0}
CELL = {"event": "cell", "session": "s1", "t": 60, "duration": "5m", "gpus": 1}


def with_cell(**fields: Any) -> str:
    return json.dumps(OPEN) + "\n" + json.dumps({**CELL, **fields}) + "\n"


TRACES: dict[str, tuple[str, bytes | str, str]] = {  # name -> (suffix, content, fragment)
    "empty": (".jsonl", "", "no sessions"),
    "only comments": (".jsonl", "# nothing yet\n\n", "no sessions"),
    "empty csv": (".csv", "event,session,t\n", "no sessions"),
    "binary": (".jsonl", bytes(range(256)), "binary"),
    "gzip": (".jsonl", gzip.compress(json.dumps(OPEN).encode()), "gzip"),
    "NaN time": (".jsonl", with_cell(t=float("nan")), "field 't'"),
    "infinite time": (".jsonl", json.dumps({**OPEN, "t": float("inf")}), "field 't'"),
    "time 1e308": (".jsonl", json.dumps({**OPEN, "t": 1e308}), "field 't'"),
    "year 9999": (".jsonl", json.dumps({**OPEN, "t": "9999-12-31T23:59:59Z"}), "field 't'"),
    "infinite duration": (".jsonl", with_cell(duration="inf"), "duration"),
    "duration 1e308": (".jsonl", with_cell(duration=1e308), "duration"),
    "infinite gpus": (".jsonl", with_cell(gpus=float("inf")), "gpus"),
    "5,000-digit number": (".jsonl", '{"event": "open", "session": "s", "t": ' + "9" * 5000 + "}", ":1:"),
    "deeply nested JSON": (".jsonl", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "huge CSV field": (".csv", "event,session,t\nopen,s1," + "9" * 200_000 + "\n", "CSV"),
}


@pytest.mark.parametrize("name", list(TRACES))
def test_bad_traces(tmp_path: Path, capsys: Any, name: str) -> None:
    suffix, content, fragment = TRACES[name]
    path = tmp_path / f"trace{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = run_cli("simulate", "--policy", TINY, "--trace", path, capsys=capsys)
    assert_one_line_exit_2(result, path, fragment)


SIMULATE = ("simulate", "--policy", TINY)
PLACE = ("place", "--policy", PLATFORM, "--gpu", "v100")


@pytest.mark.parametrize(
    "command, flag, value",
    [
        (SIMULATE, "--idle-timeout", "1e12"),
        (SIMULATE, "--cold-start-public", "99999999d"),
        (SIMULATE, "--capacity-scale", "nan"),
        (SIMULATE, "--idle-sweep", "inf"),
        (SIMULATE, "--generate", "users=100000"),
        (SIMULATE, "--generate", "days=nan"),
        (SIMULATE, "--budget", "inf"),
        (PLACE, "--deadline", "+1e308"),
        (PLACE, "--deadline", "+99999999d"),
        (PLACE, "--now", "9999-12-31T23:59"),
        (PLACE, "--waited", "1e12"),
    ],
)
def test_flags_out_of_range(capsys: Any, command: tuple[Any, ...], flag: str, value: str) -> None:
    code, err, elapsed = run_cli(*command, flag, value, capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and flag in err, err
    assert elapsed < 1.0


@pytest.mark.parametrize("value", ["1e12", "inf", "nan", "31d", "0.5"])
def test_install_idle_timeout_out_of_range(tmp_path: Path, capsys: Any, value: str) -> None:
    code, err, _ = run_cli(
        "install", "--prefix", tmp_path, "--name", "gpu-x", "--idle-timeout", value, capsys=capsys
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--idle-timeout" in err, err
    assert not list(tmp_path.rglob("kernel.json"))


@pytest.mark.parametrize("name", list(YAML_FILES))
def test_install_refuses_an_unusable_pod_template(tmp_path: Path, capsys: Any, name: str) -> None:
    content, fragment = YAML_FILES[name]
    template = tmp_path / "pod.yaml.j2"
    template.write_bytes(content)
    result = run_cli(
        "install", "--prefix", tmp_path, "--name", "gpu-x", "--pod-template", template, capsys=capsys
    )
    assert_one_line_exit_2(result, template, fragment)
    assert not list(tmp_path.rglob("kernel.json"))


def test_install_takes_the_shipped_pod_template(tmp_path: Path, capsys: Any) -> None:
    template = ROOT / "kernelspecs/gpu-auto/pod-template.yaml.j2"
    code, err, _ = run_cli(
        "install", "--prefix", tmp_path, "--name", "gpu-x", "--pod-template", template, capsys=capsys
    )
    assert code == 0, err


# --- end to end: the entry point's exit code ----------------------------------------------------------------


def test_real_process_exits_2_with_one_line(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(laughs())
    proc = subprocess.run(
        [sys.executable, "-m", "mlp_kernel.cli", "place", "--policy", PLATFORM, "--state", f"private={bomb}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert str(bomb) in proc.stderr and "alias bomb" in proc.stderr
