"""mlp-kernel's own processes skip jsonschema's slow optional ``rfc3987_syntax`` (mlp_kernel/startup.py), and
validation still catches what it must; a process that imports mlp-kernel as a library is left alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.backend_kubernetes.policies import KERNELSPEC, PLATFORM_POLICY, ROOT


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_after_the_call_kubernetes_imports_without_rfc3987_syntax_and_validation_still_works() -> None:
    result = run_python(
        """
        import sys
        from mlp_kernel.startup import skip_slow_optional_imports
        skip_slow_optional_imports()
        import kubernetes  # its dynamic client imports kubernetes_validate, hence jsonschema
        import kubernetes_validate
        assert "jsonschema" in sys.modules
        assert sys.modules.get("rfc3987_syntax") is None, "the slow optional import ran"
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}
        kubernetes_validate.validate(pod, "1.30", strict=True)
        pod["spec"]["containers"][0]["ports"] = [{"containerPort": "not a number"}]
        try:
            kubernetes_validate.validate(pod, "1.30", strict=True)
        except kubernetes_validate.ValidationError as exc:
            print("rejected:", exc.message)
        else:
            raise SystemExit("a bad Pod passed")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "rejected:" in result.stdout and "not a number" in result.stdout, result.stdout


def test_a_process_that_loaded_it_already_keeps_it() -> None:
    result = run_python(
        """
        import sys
        import rfc3987_syntax
        from mlp_kernel.startup import skip_slow_optional_imports
        skip_slow_optional_imports()
        assert sys.modules["rfc3987_syntax"] is rfc3987_syntax
        import jsonschema
        assert "iri" in jsonschema.FormatChecker.checkers, "jsonschema lost a checker it could have"
        """
    )
    assert result.returncode == 0, result.stderr


def test_importing_mlp_kernel_as_a_library_changes_nothing() -> None:
    """The Jupyter server imports the provisioner and the server extension: no process-wide choice there."""
    result = run_python(
        """
        import sys
        import mlp_kernel.provisioner, mlp_kernel.server, mlp_kernel.backends.kubernetes
        print(sys.modules.get("rfc3987_syntax"))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "rfc3987_syntax" in result.stdout, "the library import should have loaded jsonschema's checker"


def test_the_render_command_never_imports_it() -> None:
    """An entry point makes the call: ``-X importtime`` lists every module the command imported (a blocked
    import is listed too, as an attempt of a few microseconds with nothing under it)."""
    flags = ["--member", "aws", "--flavor", "gold", "--user", "alice", "--kernel-id", "k1"]
    command = ["render", "--kernelspec", str(KERNELSPEC), "--policy", str(PLATFORM_POLICY), *flags]
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlp_kernel.cli", *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "kind: Pod" in result.stdout
    imported: dict[str, int] = {}  # module -> cumulative microseconds
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "imported package" not in line:
            _, cumulative, name = line.split("|")
            imported[name.strip()] = int(cumulative)
    assert "jsonschema" in imported, "render validates with jsonschema: the check below would prove nothing"
    assert "rfc3987_syntax.syntax_helpers" not in imported  # where its parsers are built
    assert imported.get("rfc3987_syntax", 0) < 1000, imported.get("rfc3987_syntax")
