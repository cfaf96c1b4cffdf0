"""The test kubelet: real processes, env, Secret and claim volumes, status transitions, kill on delete, OOM,
logs."""

from __future__ import annotations

import os
import sys

import psutil
import pytest
from kubernetes import client

from .builders import python_pod
from .fixtures import PRIVATE_NODES
from .members import Member


@pytest.fixture
def core(kube_member):
    return client.CoreV1Api(kube_member.api_client())


def _reasons(core, name: str) -> list[str]:
    events = core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}").items
    return [e.reason for e in sorted(events, key=lambda e: int(e.metadata.resource_version))]


def _log(core, name: str) -> str:
    """The pod's log, or "" while its container is still being created (the API answers 400 then)."""
    try:
        return core.read_namespaced_pod_log(name, "default")
    except client.ApiException as exc:
        if exc.status == 400:
            return ""
        raise


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_pod_runs_to_success_with_exit_code(kube_member, core):
    core.create_namespaced_pod("default", python_pod("ok", "print('hi')"))
    pod = kube_member.wait_for_pod_phase("default", "ok", ("Succeeded", "Failed"))
    assert pod["status"]["phase"] == "Succeeded"
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (0, "Completed")
    assert core.read_namespaced_pod_log("ok", "default").strip() == "hi"


def test_failing_process_sets_failed_and_exit_code(kube_member, core):
    core.create_namespaced_pod("default", python_pod("bad", "raise SystemExit(3)"))
    pod = kube_member.wait_for_pod_phase("default", "bad", ("Succeeded", "Failed"))
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (pod["status"]["phase"], term["exitCode"], term["reason"]) == ("Failed", 3, "Error")


def test_fallback_to_logs_on_error_puts_the_end_of_the_log_in_the_termination_message(kube_member, core):
    code = "import sys\nfor i in range(200): print('line', i)\nsys.exit('boom: no GPU here')"
    failing = python_pod("fails", code)
    failing["spec"]["containers"][0]["terminationMessagePolicy"] = "FallbackToLogsOnError"
    core.create_namespaced_pod("default", failing)
    core.create_namespaced_pod("default", python_pod("plain", "raise SystemExit('no policy')"))
    pod = kube_member.wait_for_pod_phase("default", "fails", ("Succeeded", "Failed"))
    message = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    assert message.endswith("line 199\nboom: no GPU here"), message
    assert len(message.encode()) <= 2048 and len(message.splitlines()) <= 80 and "line 0\n" not in message
    plain = kube_member.wait_for_pod_phase("default", "plain", ("Succeeded", "Failed"))
    assert "message" not in plain["status"]["containerStatuses"][0]["state"]["terminated"]


def test_running_pod_has_pod_ip_ready_condition_and_kubelet_events(kube_member, core):
    core.create_namespaced_pod("default", python_pod("run"))
    kube_member.wait_for_pod_phase("default", "run", "Running")
    pod = core.read_namespaced_pod("run", "default")
    assert pod.status.pod_ip == "127.0.0.1"
    assert pod.status.container_statuses[0].state.running is not None
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
    assert _reasons(core, "run") == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]


def test_env_and_secret_volume_reach_the_process(kube_member, core):
    core.create_namespaced_secret(
        "default",
        {
            "metadata": {"name": "conn"},
            "stringData": {"connection.json": '{"key": "s3cret"}', "token": "t0k"},
        },
    )
    code = (
        "import json, os; d = json.load(open('/etc/kernel/connection.json')); "
        "print(d['key'], os.environ['TOKEN'], os.environ['PLAIN'], os.environ['CONN_FILE'].endswith("
        "'/etc/kernel/connection.json'), "
        "os.environ['CONN_FILE'].startswith(os.environ['MLP_TEST_MOUNT_ROOT']))"
    )
    pod = python_pod(
        "envs",
        code,
        env=[
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "conn", "key": "token"}}},
            {"name": "PLAIN", "value": "v-$(TOKEN)"},
            {"name": "CONN_FILE", "value": "/etc/kernel/connection.json"},
        ],
        volume_mounts=[{"name": "conn", "mountPath": "/etc/kernel", "readOnly": True}],
        volumes=[{"name": "conn", "secret": {"secretName": "conn"}}],
    )
    core.create_namespaced_pod("default", pod)
    done = kube_member.wait_for_pod_phase("default", "envs", ("Succeeded", "Failed"))
    log = core.read_namespaced_pod_log("envs", "default")
    assert done["status"]["phase"] == "Succeeded", log
    assert log.split() == ["s3cret", "t0k", "v-t0k", "True", "True"]


def test_missing_secret_keeps_pod_pending_with_failed_mount_event(kube_member, core):
    core.create_namespaced_pod(
        "default",
        python_pod(
            "nosecret",
            volume_mounts=[{"name": "v", "mountPath": "/x"}],
            volumes=[{"name": "v", "secret": {"secretName": "absent"}}],
        ),
    )
    kube_member.wait_for(lambda: "FailedMount" in _reasons(core, "nosecret"), what="FailedMount event")
    assert core.read_namespaced_pod("nosecret", "default").status.phase == "Pending"
    core.create_namespaced_secret("default", {"metadata": {"name": "absent"}, "stringData": {"a": "b"}})
    kube_member.wait_for_pod_phase("default", "nosecret", "Running")


def test_delete_sends_sigterm_then_sigkill_after_grace(kube_member, core):
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
        "time.sleep(300)"
    )
    core.create_namespaced_pod("default", python_pod("stubborn", code, grace=1))
    kube_member.wait_for(lambda: "up" in _log(core, "stubborn"), what="process up")
    proc = psutil.Process(kube_member.kubelet.process("default", "stubborn").pid)
    deleted = core.delete_namespaced_pod("stubborn", "default")
    assert deleted.metadata.deletion_timestamp is not None
    kube_member.wait_for(
        lambda: kube_member.find("v1", "Pod", "stubborn", "default") is None,
        timeout=30,
        what="pod removal after SIGKILL",
    )
    assert not _alive(proc)
    assert "Killing" in _reasons(core, "stubborn")


def test_oom_kill_sets_reason_oomkilled(kube_member, core):
    core.create_namespaced_pod("default", python_pod("hog"))
    kube_member.wait_for_pod_phase("default", "hog", "Running")
    kube_member.oom_kill_pod("default", "hog")
    pod = kube_member.wait_for_pod_phase("default", "hog", "Failed")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["reason"], term["exitCode"]) == ("OOMKilled", 137)


def test_image_pull_delay_shows_container_creating(tmp_path):
    member = Member(
        "pull",
        nodes=PRIVATE_NODES,
        kubelet_options={"root_dir": tmp_path, "pull_delays": {"big/image:1": 1.5}},
    ).start()
    try:
        core = client.CoreV1Api(member.api_client())
        core.create_namespaced_pod("default", python_pod("slow", image="big/image:1"))
        member.wait_for(lambda: "Pulling" in _reasons(core, "slow"), what="Pulling event")
        waiting = core.read_namespaced_pod("slow", "default").status.container_statuses[0].state.waiting
        assert waiting.reason == "ContainerCreating"
        member.wait_for_pod_phase("default", "slow", "Running")
    finally:
        member.stop()


def test_container_without_command_fails_with_clear_event(kube_member, core):
    pod = python_pod("nocmd")
    del pod["spec"]["containers"][0]["command"]
    core.create_namespaced_pod("default", pod)
    kube_member.wait_for(lambda: "Failed" in _reasons(core, "nocmd"), what="Failed event")
    events = core.list_namespaced_event("default", field_selector="involvedObject.name=nocmd").items
    assert any("explicit command" in e.message for e in events)


def test_no_orphan_processes_after_teardown(tmp_path):
    member = Member("orphans", nodes=PRIVATE_NODES, kubelet_options={"root_dir": tmp_path}).start()
    core = client.CoreV1Api(member.api_client())
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']);"
        " print('up', flush=True); time.sleep(300)"
    )
    for i in range(2):
        core.create_namespaced_pod("default", python_pod(f"p{i}", code))
    for i in range(2):
        member.wait_for(lambda i=i: "up" in _log(core, f"p{i}"), what="processes up")
    pids = member.kubelet.pids()
    family = [psutil.Process(pid) for pid in pids]
    family += [child for proc in family for child in proc.children(recursive=True)]
    assert len(family) == 4
    member.stop()
    alive = [p for p in family if _alive(p)]
    assert alive == [], f"orphan processes after stop: {alive}"
    assert sys.executable  # the kubelet ran this interpreter for `python`


def _claim(name: str, mode: str = "ReadWriteMany") -> dict:
    return {
        "metadata": {"name": name},
        "spec": {"accessModes": [mode], "resources": {"requests": {"storage": "1Gi"}}},
    }


def _claim_pod(name: str, code: str, mount_path: str, claim: str = "home", **mount: str) -> dict:
    return python_pod(
        name,
        code,
        volume_mounts=[{"name": "home", "mountPath": mount_path, **mount}],
        volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": claim}}],
    )


def test_claim_volume_is_one_directory_shared_by_pods_and_outlives_them(kube_member, core):
    core.create_namespaced_persistent_volume_claim("default", _claim("home"))
    write = "import sys; open(sys.argv[1], 'w').write('kept')"
    pod = _claim_pod("writer", write, "/home/jovyan")
    pod["spec"]["containers"][0]["args"] += ["/home/jovyan/notes.txt"]
    core.create_namespaced_pod("default", pod)
    assert kube_member.wait_for_pod_phase("default", "writer", ("Succeeded", "Failed"))["status"][
        "phase"
    ] == ("Succeeded"), core.read_namespaced_pod_log("writer", "default")
    host = kube_member.kubelet.claims.directory("default", "home")
    assert (host / "notes.txt").read_text() == "kept"

    read = "import sys; print(open(sys.argv[1]).read(), open(sys.argv[2]).read())"
    pod = _claim_pod("reader", read, "/mnt/data")  # another pod, another mount path, the same files
    pod["spec"]["containers"][0]["args"] += ["/mnt/data/notes.txt", "/mnt/sub/notes.txt"]
    pod["spec"]["containers"][0]["volumeMounts"].append(
        {"name": "home", "mountPath": "/mnt/sub", "subPath": "s"}
    )
    (host / "s").mkdir()
    (host / "s" / "notes.txt").write_text("below")
    core.create_namespaced_pod("default", pod)
    kube_member.wait_for_pod_phase("default", "reader", ("Succeeded", "Failed"))
    assert core.read_namespaced_pod_log("reader", "default").split() == ["kept", "below"]


def test_pod_with_a_missing_claim_stays_pending_until_the_claim_exists(kube_member, core):
    core.create_namespaced_pod("default", _claim_pod("waits", "print('mounted')", "/data", claim="late"))
    kube_member.wait_for(lambda: "FailedScheduling" in _reasons(core, "waits"), what="FailedScheduling event")
    pod = core.read_namespaced_pod("waits", "default")
    scheduled = {c.type: c for c in pod.status.conditions}["PodScheduled"]
    assert (pod.status.phase, scheduled.status, scheduled.reason) == ("Pending", "False", "Unschedulable")
    assert scheduled.message == '0/2 nodes are available: persistentvolumeclaim "late" not found.'
    core.create_namespaced_persistent_volume_claim("default", _claim("late"))
    done = kube_member.wait_for_pod_phase("default", "waits", ("Succeeded", "Failed"))
    assert done["status"]["phase"] == "Succeeded"
    assert core.read_namespaced_pod_log("waits", "default").strip() == "mounted"


def test_pod_bound_to_a_node_without_its_claim_waits_with_failed_mount(kube_member, core):
    """The scheduler is bypassed (nodeName set): the kubelet itself refuses to start it, as upstream."""
    pod = _claim_pod("bound", "print('mounted')", "/data", claim="absent")
    pod["spec"]["nodeName"] = PRIVATE_NODES[0].name
    core.create_namespaced_pod("default", pod)
    kube_member.wait_for(lambda: "FailedMount" in _reasons(core, "bound"), what="FailedMount event")
    events = core.list_namespaced_event("default", field_selector="involvedObject.name=bound").items
    message = next(e.message for e in events if e.reason == "FailedMount")
    assert (
        "error processing PVC default/absent" in message
        and 'persistentvolumeclaims "absent" not found' in message
    )
    waiting = core.read_namespaced_pod("bound", "default").status.container_statuses[0].state.waiting
    assert waiting.reason == "ContainerCreating"
    core.create_namespaced_persistent_volume_claim("default", _claim("absent"))
    kube_member.wait_for_pod_phase("default", "bound", ("Succeeded", "Failed"))


def test_claim_under_the_view_root_is_visible_at_its_in_pod_path_only_while_mounted(kube_member, core):
    """A path that reaches the process outside argv/env (as a snapshot path in an execute_request does)."""
    claims = kube_member.kubelet.claims
    in_pod = claims.view_path("/home/jovyan/.snapshots")
    core.create_namespaced_persistent_volume_claim("default", _claim("home"))
    hidden = in_pod.encode().hex()  # not in argv as a path, so the kubelet's rewrite cannot touch it
    code = (
        f"import os, time; p = bytes.fromhex('{hidden}').decode(); os.makedirs(p + '/alice', mode=0o700); "
        "open(p + '/alice/manifest.json', 'w').write('{}'); print('wrote', flush=True); time.sleep(300)"
    )
    core.create_namespaced_pod("default", _claim_pod("kernel", code, in_pod))
    kube_member.wait_for(
        lambda: "wrote" in _log(core, "kernel"), what="the pod wrote through its in-pod path"
    )
    assert os.path.islink(in_pod)
    host = claims.directory("default", "home")
    assert (host / "alice" / "manifest.json").read_text() == "{}"
    core.delete_namespaced_pod("kernel", "default", grace_period_seconds=0)
    kube_member.wait_for(lambda: not os.path.lexists(in_pod), what="the link removed with the pod")
    assert (host / "alice" / "manifest.json").exists(), "the data stays on the claim"


def test_claim_data_goes_with_the_claim(kube_member, core):
    core.create_namespaced_persistent_volume_claim("default", _claim("scratch"))
    core.create_namespaced_pod(
        "default", _claim_pod("w", "open('/data/f', 'w').write('x')", "/data", "scratch")
    )
    kube_member.wait_for_pod_phase("default", "w", ("Succeeded", "Failed"))
    host = kube_member.kubelet.claims.directory("default", "scratch")
    assert (host / "f").exists()
    core.delete_namespaced_persistent_volume_claim("scratch", "default")
    kube_member.wait_for(lambda: not host.exists(), what="the claim's data removed (reclaim policy Delete)")
    core.create_namespaced_persistent_volume_claim("default", _claim("scratch"))
    assert kube_member.kubelet.claims.directory("default", "scratch") != host, "a new claim starts empty"
