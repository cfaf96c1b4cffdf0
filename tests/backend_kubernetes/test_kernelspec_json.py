"""A hand-edited kernel.json under a Kubernetes kernelspec: a clear error naming the file, never a traceback.

``kernelspec_config`` once called ``.get`` on whatever the JSON held: ``[]`` or ``5`` (at the top or at any
level down to ``config.kubernetes``) raised AttributeError from inside a launch or ``mlp-kernel render``, and
invalid JSON silently rendered the pod without the admin's image and ports.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlp_kernel.backends.kubernetes.objects import KernelObjectsError, render_kernel_objects

from .policies import KERNELSPEC, members_policy


def spec_with(tmp_path: Path, kernel_json: str) -> Path:
    dest = tmp_path / "spec"
    shutil.copytree(KERNELSPEC, dest)
    (dest / "kernel.json").write_text(kernel_json)
    return dest


def render(spec: Path) -> Any:
    return render_kernel_objects(spec, members_policy(), member="private", flavor="silver", user="alice")


def nested(kubernetes: Any) -> str:
    return json.dumps({"metadata": {"kernel_provisioner": {"config": {"kubernetes": kubernetes}}}})


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[]", "the top level"),
        ("5", "the top level"),
        ('"x"', "the top level"),
        ('{"metadata": [1]}', "metadata"),
        ('{"metadata": {"kernel_provisioner": 7}}', "metadata.kernel_provisioner"),
        ('{"metadata": {"kernel_provisioner": {"config": "x"}}}', "metadata.kernel_provisioner.config"),
        (nested([1]), "metadata.kernel_provisioner.config.kubernetes"),
        (nested({"ports": [1, 2]}), "kubernetes.ports"),
        (nested({"ports": {"shell": "high"}}), "kubernetes.ports"),
        (nested({"ports": {"shell": 70000}}), "kubernetes.ports"),
        (nested({"image": ["python"]}), "kubernetes.image"),
        ("{not json", "not valid JSON"),
        ("\ufeff\ufeff", "not valid JSON"),
    ],
)
def test_a_kernel_json_of_the_wrong_shape_is_an_error_naming_the_file_and_field(tmp_path, text, field):
    spec = spec_with(tmp_path, text)
    with pytest.raises(KernelObjectsError) as err:
        render(spec)
    assert str(spec / "kernel.json") in str(err.value) and field in str(err.value), err.value


def test_binary_kernel_json_is_an_error_naming_the_file(tmp_path):
    spec = spec_with(tmp_path, "")
    (spec / "kernel.json").write_bytes(b"\x1f\x8b\x08\x00\xff\xfe")
    with pytest.raises(KernelObjectsError, match="kernel.json"):
        render(spec)


def test_null_levels_and_a_missing_kernel_json_mean_no_options(tmp_path):
    _secret, pod = render(spec_with(tmp_path, '{"metadata": {"kernel_provisioner": null}}'))
    assert pod["kind"] == "Pod"
    spec = spec_with(tmp_path / "b", "{}")
    (spec / "kernel.json").unlink()
    _secret, pod = render(spec)
    assert pod["kind"] == "Pod"
