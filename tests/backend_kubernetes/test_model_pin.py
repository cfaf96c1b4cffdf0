"""The GPU model pin in the kernel pod (issue 14 §3): what ``render_kernel_objects`` and ``mlp-kernel render``
make of a named model on a flavor with several (platform policy: Gold = A100 (two SKUs) and H100)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml

from mlp_kernel.backends.kubernetes.objects import KernelObjectsError, render_kernel_objects
from mlp_kernel.backends.kubernetes.validation import policy_issues
from mlp_kernel.placement import load_policy

from .policies import KERNELSPEC, PLATFORM_POLICY, ROOT

POLICY = load_policy(PLATFORM_POLICY)
SHIPPED = (KERNELSPEC / "pod-template.yaml.j2").read_text()
A100 = ["NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-SXM4-40GB"]
PRODUCT = "nvidia.com/gpu.product"


def pod(pin_model: str | None, template: str | None = None, flavor: str = "gold") -> dict[str, Any]:
    member = POLICY.flavors[flavor].member
    _secret, rendered = render_kernel_objects(
        KERNELSPEC,
        POLICY,
        member,
        flavor,
        "alice",
        kernel_id="k-1",
        pin_model=pin_model,
        template_text=template,
    )
    return rendered


def terms(p: dict[str, Any]) -> list[dict[str, Any]]:
    return p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]


def test_one_sku_is_a_node_selector_entry_beside_the_flavor_label() -> None:
    p = pod("h100")
    assert p["spec"]["nodeSelector"] == {"mlp.io/gpu-tier": "gold", PRODUCT: "NVIDIA-H100-80GB-HBM3"}
    assert "affinity" not in p["spec"]


def test_several_skus_are_one_required_in_term() -> None:
    p = pod("A100")
    assert PRODUCT not in p["spec"]["nodeSelector"]
    assert terms(p) == [{"matchExpressions": [{"key": PRODUCT, "operator": "In", "values": A100}]}]


def test_no_model_no_pin() -> None:
    p = pod(None)
    assert p["spec"]["nodeSelector"] == {"mlp.io/gpu-tier": "gold"} and "affinity" not in p["spec"]


AFFINITY = """\
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: topology.kubernetes.io/zone, operator: In, values: [a]}
          - {key: nvidia.com/gpu.product, operator: In, values: [NVIDIA-H100-80GB-HBM3]}
        - matchExpressions:
          - {key: topology.kubernetes.io/zone, operator: In, values: [b]}
  nodeSelector: {nvidia.com/gpu.product: something-else, disk: ssd}
"""


def test_the_pin_is_anded_into_every_template_term_and_replaces_a_contradicting_one() -> None:
    template = SHIPPED.replace("  restartPolicy: Never\n", "  restartPolicy: Never\n" + AFFINITY, 1)
    p = pod("a100", template)
    pin = {"key": PRODUCT, "operator": "In", "values": A100}
    assert terms(p) == [
        {
            "matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]},
                pin,
            ]
        },
        {
            "matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["b"]},
                pin,
            ]
        },
    ]
    assert p["spec"]["nodeSelector"] == {"disk": "ssd", "mlp.io/gpu-tier": "gold"}
    one = pod("h100", template)
    assert one["spec"]["nodeSelector"][PRODUCT] == "NVIDIA-H100-80GB-HBM3"


def test_a_model_the_flavor_lacks_is_refused() -> None:
    with pytest.raises(KernelObjectsError, match="flavor 'gold' does not offer 'V100'; it offers A100, H100"):
        pod("V100")


def test_the_policy_check_refuses_a_pod_without_the_pin() -> None:
    member, flavor = POLICY.members["aws"], POLICY.flavors["gold"]
    pin = (PRODUCT, tuple(A100))
    unpinned = pod(None)
    assert policy_issues(unpinned, POLICY, member, flavor, pin) == [
        f"the pod must be pinned to nodes with {PRODUCT} in ({', '.join(A100)})"
    ]
    assert policy_issues(pod("a100"), POLICY, member, flavor, pin) == []
    wider = pod("a100")
    terms(wider)[0]["matchExpressions"][0]["values"].append("NVIDIA-H100-80GB-HBM3")
    assert policy_issues(wider, POLICY, member, flavor, pin)  # an H100 value is not an A100 pin


def test_mlp_kernel_render_pin_pins_the_model_and_says_how() -> None:
    def render(model: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mlp_kernel.cli", "render", "--kernelspec", str(KERNELSPEC), "--policy",
             str(PLATFORM_POLICY), "--member", "private", "--flavor", "silver", "--user", "alice",
             "--gpu-model", model, "--pin"],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
        )  # fmt: skip

    result = render("v100")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first == (
        "# GPU model V100: pinned by required node affinity (In) nvidia.com/gpu.product in "
        "(Tesla-V100-SXM2-16GB, Tesla-V100-SXM2-32GB)"
    )
    _secret, p = list(yaml.safe_load_all(result.stdout))
    assert terms(p)[0]["matchExpressions"][0]["values"] == ["Tesla-V100-SXM2-16GB", "Tesla-V100-SXM2-32GB"]
    assert render("a30").stdout.startswith(
        "# GPU model A30: pinned by nodeSelector nvidia.com/gpu.product in"
    )
    wrong = render("h100")
    assert wrong.returncode == 2 and "flavor 'silver' does not offer 'h100'" in wrong.stderr
    plain = subprocess.run(
        [sys.executable, "-m", "mlp_kernel.cli", "render", "--kernelspec", str(KERNELSPEC), "--policy",
         str(PLATFORM_POLICY), "--member", "private", "--flavor", "silver", "--user", "alice",
         "--gpu-model", "v100"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert plain.returncode == 0 and not plain.stdout.startswith("#") and PRODUCT not in plain.stdout
