"""The generated source is self-contained and carries its parameters as data, never as code."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from mlp_kernel.snapshot import REPORT_EXPR, REPORT_NAME, snapshot_code, user_expressions
from mlp_kernel.snapshot.codegen import agent_digest, agent_source, prime_code, validate_exclude

from .conftest import KernelFactory, shutdown
from .helpers import restore_into, take_snapshot


def test_generated_code_is_valid_python_with_one_top_level_name() -> None:
    tree = ast.parse(snapshot_code("/tmp/s", user="alice", max_bytes=10, exclude=["tmp_*"]))
    assigned = {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name) and node in tree.body[1].body
    }
    assert assigned == {REPORT_NAME}
    assert user_expressions() == {"r": REPORT_EXPR}


def test_the_agent_imports_only_the_standard_library_at_top_level() -> None:
    tree = ast.parse(agent_source())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    modules = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in top if isinstance(n, ast.ImportFrom) and n.module}
    assert modules and modules <= set(sys.stdlib_module_names)
    every = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(name.startswith("mlp_kernel") for name in every)


@pytest.mark.parametrize("path", ["relative/path", "/tmp/with\nnewline", "/tmp/nul\x00byte"])
def test_bad_paths_are_rejected(path: str) -> None:
    with pytest.raises(ValueError, match="snapshot path must be an absolute path"):
        snapshot_code(path, user="a", max_bytes=None, exclude=())


@pytest.mark.parametrize("pattern", ["a b", "x;import os", "a.b", "", "__import__('os')"])
def test_bad_exclude_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(ValueError, match="cannot exclude"):
        snapshot_code("/tmp/s", user="a", max_bytes=None, exclude=[pattern])


@pytest.mark.parametrize("pattern", ["df", "tmp_*", "x?", "[ab]_*", "[!_]*"])
def test_fnmatch_exclude_patterns_are_accepted(pattern: str) -> None:
    assert validate_exclude([pattern]) == [pattern]


@pytest.mark.parametrize("max_bytes", [-1, 1.5, True, "10"])
def test_bad_size_caps_are_rejected(max_bytes: object) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        snapshot_code("/tmp/s", user="a", max_bytes=max_bytes, exclude=())  # type: ignore[arg-type]


def test_a_single_string_is_not_taken_as_a_list_of_names() -> None:
    with pytest.raises(ValueError, match="not one string"):
        snapshot_code("/tmp/s", user="a", max_bytes=None, exclude="abc")


async def test_hostile_user_and_path_text_stay_data(kernels: KernelFactory, tmp_path: Path) -> None:
    user = "o'brien\"; import os; os._exit(1) #\\"
    path = tmp_path / "it's \"quoted\" \\ '); os._exit(1) #"
    kernel = await kernels()
    await kernel.run("x = 1\n")
    await take_snapshot(kernel, path, user=user)
    assert json.loads((path / "manifest.json").read_text())["owner"] == user
    await shutdown(kernel)
    second = await kernels()
    await restore_into(second, path, user=user)
    assert await second.value("x") == 1


async def test_the_agent_is_compiled_once_per_kernel_and_priming_leaves_no_name(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    """The compiled agent is kept in the kernel by its source's digest (the restore after a warm-pool claim
    then only loads): ``prime_code`` fills it and leaves the user's namespace as it was; a snapshot and a
    restore run the cached code, and a stale entry under another digest is never used."""
    kernel = await kernels()
    await kernel.run("x = 41\n")
    before = await kernel.names()
    reply = await kernel.silent(prime_code(), {})
    assert reply.content["status"] == "ok", reply.content.get("traceback")
    assert await kernel.names() == before
    cached = "sorted(getattr(__import__('sys'), '_mlp_agent_code', {}))"
    assert agent_digest("agent.py") in await kernel.value(cached)
    # a code object the kernel would run in place of the agent if the digest did not match the source
    await kernel.run("import sys; sys._mlp_agent_code['0' * 16] = compile('restore = None', 's', 'exec')\n")
    await take_snapshot(kernel, tmp_path / "s")
    await kernel.run("x = 0\n")
    await restore_into(kernel, tmp_path / "s")
    assert await kernel.value("x") == 41
