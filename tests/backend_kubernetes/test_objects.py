"""``render_kernel_objects``: the exact Secret and Pod a launch sends, validated before anything is sent."""

from __future__ import annotations

import base64
import json

import pytest

from mlp_kernel.backends.kubernetes import names
from mlp_kernel.backends.kubernetes.connection import CurveKeys
from mlp_kernel.backends.kubernetes.objects import KernelObjectsError, redact_secret, render_kernel_objects

from .policies import KERNELSPEC, members_policy

SHIPPED = (KERNELSPEC / "pod-template.yaml.j2").read_text()
KEY = "0123456789abcdef-secret-hmac-key"


def render(**kw: object) -> tuple[dict, dict]:
    args = {"member": "private", "flavor": "silver", "user": "alice", "key": KEY, "kernel_id": "k-1"}
    args.update(kw)
    return render_kernel_objects(KERNELSPEC, members_policy(), **args)  # type: ignore[arg-type]


def kernel(pod: dict) -> dict:
    return pod["spec"]["containers"][0]


def connection(secret: dict) -> dict:
    return json.loads(base64.b64decode(secret["data"]["connection.json"]))


def test_pod_carries_queue_flavor_pin_gpus_and_labels() -> None:
    _secret, pod = render(gpus=2, notebook="work/train.ipynb", team="vision")
    labels = pod["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == "kernels"
    assert labels[names.MANAGED_BY] == "mlp-kernel"
    assert labels[names.KERNEL_ID] == "k-1"
    assert labels[names.USER] == "alice"
    assert labels[names.TEAM] == "vision"
    assert labels[names.MEMBER] == "private" and labels[names.FLAVOR] == "silver"
    assert labels[names.NOTEBOOK] == names.notebook_label("work/train.ipynb") != "work/train.ipynb"
    assert pod["spec"]["nodeSelector"] == {"mlp.io/gpu-tier": "silver"}
    res = kernel(pod)["resources"]
    assert res["requests"]["nvidia.com/gpu"] == "2" and res["limits"]["nvidia.com/gpu"] == "2"
    assert pod["metadata"]["namespace"] == "jupyter"
    assert pod["metadata"]["name"] == "mlpk-k-1-1"


def test_tainted_flavor_gets_its_toleration() -> None:
    _secret, pod = render(member="public", flavor="gold")
    assert {"key": "mlp.io/gpu-tier", "operator": "Equal", "value": "gold", "effect": "NoSchedule"} in pod[
        "spec"
    ]["tolerations"]


def test_kernel_runs_ipykernel_on_the_mounted_connection_file() -> None:
    secret, pod = render()
    c = kernel(pod)
    assert c["command"] == [
        "python", "-m", "ipykernel_launcher", "-f", "/var/run/mlp-kernel/connection.json",
        "--HistoryManager.hist_file=:memory:",
    ]  # fmt: skip
    lines = SHIPPED.splitlines(keepends=True)
    no_command = "".join(line for line in lines if not line.startswith("    command:"))
    assert no_command != SHIPPED
    assert kernel(render(template_text=no_command)[1])["command"] == c["command"]
    assert {"name": "connection", "mountPath": "/var/run/mlp-kernel", "readOnly": True} in c["volumeMounts"]
    vol = next(v for v in pod["spec"]["volumes"] if v["name"] == "connection")
    assert vol["secret"]["secretName"] == secret["metadata"]["name"] == "mlpk-k-1-1-conn"
    info = connection(secret)
    assert info["ip"] == "0.0.0.0" and info["key"] == KEY
    assert [info[f"{ch}_port"] for ch in ("shell", "iopub", "stdin", "control", "hb")] == list(
        range(50000, 50005)
    )
    assert sorted(p["containerPort"] for p in c["ports"]) == list(range(50000, 50005))


def test_key_never_appears_in_the_pod() -> None:
    _secret, pod = render(curve=CurveKeys.generate())
    assert KEY not in json.dumps(pod)


def test_template_that_leaks_the_key_into_env_is_rejected() -> None:
    # a template cannot see the key; a value equal to it (here the user name) still must not reach the pod
    with pytest.raises(KernelObjectsError, match="connection key"):
        render(user=KEY)


def test_redacted_secret_shows_no_secret_values() -> None:
    keys = CurveKeys.generate()
    secret, _pod = render(curve=keys)
    shown = json.dumps(redact_secret(secret))
    assert KEY not in shown and keys.secret not in shown
    assert "<redacted>" in shown and keys.public in shown


def test_more_gpus_than_policy_allows_is_rejected() -> None:
    with pytest.raises(KernelObjectsError, match="at most 4|0 to 4"):
        render(gpus=5)


def test_flavor_of_another_member_is_rejected() -> None:
    with pytest.raises(KernelObjectsError, match="belongs to member 'public'"):
        render(member="private", flavor="gold")


def test_a_failing_kernel_leaves_its_last_output_in_the_pod_status_unless_the_template_objects() -> None:
    assert kernel(render()[1])["terminationMessagePolicy"] == "FallbackToLogsOnError"
    bare = SHIPPED.replace("    terminationMessagePolicy: FallbackToLogsOnError\n", "")
    assert bare != SHIPPED
    assert kernel(render(template_text=bare)[1])["terminationMessagePolicy"] == "FallbackToLogsOnError"
    own = SHIPPED.replace("terminationMessagePolicy: FallbackToLogsOnError", "terminationMessagePolicy: File")
    assert kernel(render(template_text=own)[1])["terminationMessagePolicy"] == "File"


def test_template_gpu_count_is_overridden_by_the_request() -> None:
    template = SHIPPED.replace("{{ kernel_gpu_resource }}: {{ kernel_gpus }}", "nvidia.com/gpu: 64")
    _secret, pod = render(template_text=template, gpus=1)
    assert kernel(pod)["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_gpus_smuggled_into_a_sidecar_are_rejected() -> None:
    template = SHIPPED.replace(
        "  volumes:",
        """  - name: sidecar
    image: busybox
    resources: {limits: {nvidia.com/gpu: 8}}
  volumes:""",
    )
    with pytest.raises(KernelObjectsError, match="allows at most 4"):
        render(template_text=template)


def test_unknown_member_or_flavor_names_the_choices() -> None:
    with pytest.raises(KernelObjectsError, match="the policy has: private, public"):
        render(member="nowhere")


def test_user_name_becomes_a_valid_label_and_stays_readable_in_annotation() -> None:
    user = "Alice Smith <alice@example.org>\nkind: Secret"
    _secret, pod = render(user=user)
    label = pod["metadata"]["labels"][names.USER]
    assert names.is_label_value(label) and label.startswith("Alice-Smith")
    assert pod["metadata"]["annotations"][names.USER_ANNOTATION] == user
    assert pod["kind"] == "Pod"


def test_distinct_users_never_share_a_sanitised_label() -> None:
    assert names.label_value("a@b") != names.label_value("a#b")


def test_deterministic_names_per_generation() -> None:
    assert names.pod_name("K-1", 2) == "mlpk-k-1-2"
    assert names.is_dns_label(names.pod_name("x" * 80, 1))


def test_backend_options_from_kernel_json_are_plain_json() -> None:
    from mlp_kernel.backends.kubernetes.backend import KubernetesBackend

    options = {
        "image": "python:3.12",
        "ports": {"shell": 1, "iopub": 2, "stdin": 3, "control": 4, "hb": 5},
        "timeouts": {"pulling_s": 1800},
        "lease_duration_s": 120,
        "curve": True,
    }
    backend = KubernetesBackend(members_policy(), KERNELSPEC, **options)
    assert (
        backend.timeouts.pulling_s == 1800 and backend.timeouts.queued_s == members_policy().launch_timeout_s
    )
    assert backend.ports["hb"] == 5 and backend.curve
