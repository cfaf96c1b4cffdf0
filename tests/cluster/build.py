"""Build the real control plane of the real-cluster tests from Go modules, into a cache outside the repo.

    python -m tests.cluster.build            # build what is missing, print how long each took
    python -m tests.cluster.build --check    # exit 0 when everything is built (nothing is built)

Components (versions pinned in ``versions.py``; ``k8s/go.mod`` and ``k8s/go.sum`` pin every module Kubernetes
itself needs):

- ``kube-apiserver``, ``kube-controller-manager``, ``kube-scheduler``: ``k8s.io/kubernetes`` built outside its
  own repository through ``k8s/go.mod``, which replaces its ``k8s.io/*`` staging modules by the matching tags;
- ``etcd``: ``go.etcd.io/etcd/server/v3`` at the version that Kubernetes release requires (same module graph);
- ``kueue``: the manager, ``go install sigs.k8s.io/kueue/cmd/kueue@<version>`` (its go.mod has no replace
  directives, so it builds as published), and its ``config/components`` (CRDs, webhook, RBAC, visibility API)
  copied beside it;
- ``karmada``: ``karmada-aggregated-apiserver`` and ``karmada-controller-manager`` from
  ``github.com/karmada-io/karmada`` through ``karmada/go.mod`` (``go install ...@version`` is refused: it
  reads the module's version list, which the module proxy answers 403), and the CRDs of its
  ``charts/karmada/_crds/bases``. Only ``tests/cluster/test_karmada_real.py`` needs it, so the members'
  fixture does not wait for it (``COMPONENTS``); ``python -m tests.cluster.build`` builds it too.
- ``seaweedfs``: ``weed`` from ``github.com/seaweedfs/seaweedfs`` through ``seaweedfs/go.mod`` (its go.mod
  has a replace directive, which ``go install ...@version`` refuses): the S3 server of ``minio.py``, which
  stands in for MinIO in the tests (MinIO is AGPL-3.0; SeaweedFS is Apache-2.0). Only the S3 tests need it.

Each component lands in ``<cache>/<name>-<version>/`` with a ``.built`` stamp written last, so an
interrupted build is redone and a finished one is never repeated. The cache is ``$MLP_CLUSTER_CACHE`` or
``~/.cache/mlp-kernel/cluster``. Go's own module and build caches make a rebuild after a version bump cheap.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import versions

HERE = Path(__file__).resolve().parent


def cache_root() -> Path:
    return Path(os.environ.get("MLP_CLUSTER_CACHE") or Path.home() / ".cache" / "mlp-kernel" / "cluster")


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    binaries: tuple[str, ...]
    #: other paths (relative to the directory) a finished build has
    files: tuple[str, ...] = ()

    @property
    def directory(self) -> Path:
        return cache_root() / f"{self.name}-{self.version}"

    def binary(self, name: str) -> Path:
        return self.directory / "bin" / name

    @property
    def built(self) -> bool:
        return (
            (self.directory / ".built").exists()
            and all(self.binary(b).exists() for b in self.binaries)
            and all((self.directory / f).exists() for f in self.files)
        )


KUBERNETES = Component(
    "kubernetes", versions.KUBERNETES, ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
)
ETCD = Component("etcd", versions.ETCD, ("etcd",))
KUEUE_CONFIG = ("crd", "webhook", "rbac", "visibility")
KUEUE = Component("kueue", versions.KUEUE, ("kueue",), tuple(f"config/{part}" for part in KUEUE_CONFIG))
KARMADA_BINARIES = ("karmada-aggregated-apiserver", "karmada-controller-manager")
KARMADA = Component("karmada", versions.KARMADA, KARMADA_BINARIES, ("crds",))
SEAWEEDFS = Component("seaweedfs", versions.SEAWEEDFS, ("weed",))
#: what every member needs (the ``real_members`` fixture builds these when missing)
COMPONENTS = (ETCD, KUBERNETES, KUEUE)
#: what ``python -m tests.cluster.build`` (and so ``.ci/run``) builds
ALL_COMPONENTS = (*COMPONENTS, KARMADA, SEAWEEDFS)


def go() -> str | None:
    return shutil.which("go")


def missing_reason(components: tuple[Component, ...] = COMPONENTS) -> str | None:
    """Why the real control plane cannot run here, in one line, or None when it can (or can be built)."""
    if all(c.built for c in components):
        return None
    if go() is None:
        return (
            "no Go toolchain on PATH: the real control plane is built from Go modules"
            " (tests/cluster/build.py)"
        )
    return None


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise SystemExit(f"build failed: {' '.join(cmd)} (in {cwd}), exit {proc.returncode}:\n{tail}")


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CGO_ENABLED", "0")
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -buildvcs=false -trimpath").strip()
    return env


def _build_kubernetes(c: Component, out: Path) -> None:
    # -mod=readonly: go.mod and go.sum are committed; a missing sum is an error, not a silent upgrade.
    packages = [f"k8s.io/kubernetes/cmd/{b}" for b in c.binaries]
    ldflags = (
        f"-s -w -X k8s.io/component-base/version.gitVersion={c.version}"
        f" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor="
        + c.version.split(".")[1]
    )
    _run(
        [go(), "build", "-mod=readonly", "-ldflags", ldflags, "-o", str(out) + "/", *packages],
        HERE / "k8s",
        _go_env(),
    )


def _build_etcd(c: Component, out: Path) -> None:
    _run(
        [
            go(),
            "build",
            "-mod=readonly",
            "-ldflags",
            "-s -w",
            "-o",
            str(out / "etcd"),
            "go.etcd.io/etcd/server/v3",
        ],
        HERE / "k8s",
        _go_env(),
    )


def _build_kueue(c: Component, out: Path) -> None:
    env = _go_env()
    env["GOBIN"] = str(out)
    _run([go(), "install", "-ldflags", "-s -w", f"sigs.k8s.io/kueue/cmd/kueue@{c.version}"], HERE, env)
    # the module's own manifests, from the module cache go install just filled
    source = _module_dir(f"sigs.k8s.io/kueue@{c.version}") / "config" / "components"
    _copy_out({source / part: c.directory / "config" / part for part in KUEUE_CONFIG})


def _module_dir(module_at_version: str) -> Path:
    modcache = subprocess.run(
        [go(), "env", "GOMODCACHE"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(modcache) / module_at_version


def gateway_api_crds(kinds: tuple[str, ...] = ("gateways", "httproutes")) -> list[Path]:
    """Gateway API's standard-channel CRDs, from its Go module (downloaded into the module cache once)."""
    module = f"sigs.k8s.io/gateway-api@{versions.GATEWAY_API}"
    _run([go(), "mod", "download", module], HERE, _go_env())
    folder = _module_dir(module) / "config" / "crd" / "standard"
    return [folder / f"gateway.networking.k8s.io_{kind}.yaml" for kind in kinds]


def _copy_out(trees: dict[Path, Path]) -> None:
    """Copy directories out of the module cache (read-only there) as readable, writable files."""
    for source, target in trees.items():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
        for path in [target, *target.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def _build_karmada(c: Component, out: Path) -> None:
    # one go build for both: they share most packages (go build names them after their cmd/ directories)
    packages = {b: "github.com/karmada-io/karmada/cmd/" + b.removeprefix("karmada-") for b in c.binaries}
    _run(
        [go(), "build", "-mod=readonly", "-ldflags", "-s -w", "-o", str(out) + "/", *packages.values()],
        HERE / "karmada",
        _go_env(),
    )
    for binary, package in packages.items():
        (out / package.rsplit("/", 1)[1]).rename(out / binary)
    source = _module_dir(f"github.com/karmada-io/karmada@{c.version}") / "charts" / "karmada" / "_crds"
    _copy_out({source / "bases": c.directory / "crds"})


def _build_seaweedfs(c: Component, out: Path) -> None:
    _run(
        [go(), "build", "-mod=readonly", "-ldflags", "-s -w", "-o", str(out / "weed"),
         "github.com/seaweedfs/seaweedfs/weed"],
        HERE / "seaweedfs",
        _go_env(),
    )  # fmt: skip


BUILDERS = {
    "kubernetes": _build_kubernetes,
    "etcd": _build_etcd,
    "kueue": _build_kueue,
    "karmada": _build_karmada,
    "seaweedfs": _build_seaweedfs,
}


def build(components: tuple[Component, ...] = COMPONENTS, log=print) -> dict[str, float]:
    """Build what is missing; returns seconds per component built (0.0 for those already cached)."""
    timings: dict[str, float] = {}
    for c in components:
        if c.built:
            log(f"{c.name} {c.version}: cached in {c.directory}")
            timings[c.name] = 0.0
            continue
        if go() is None:
            raise SystemExit(missing_reason())
        log(f"{c.name} {c.version}: building into {c.directory} ...")
        start = time.monotonic()
        shutil.rmtree(c.directory, ignore_errors=True)
        out = c.directory / "bin"
        out.mkdir(parents=True)
        BUILDERS[c.name](c, out)
        (c.directory / ".built").write_text(f"{c.version}\n")
        timings[c.name] = time.monotonic() - start
        log(f"{c.name} {c.version}: built in {timings[c.name]:.0f} s")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.build", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether everything is built")
    args = parser.parse_args(argv)
    if args.check:
        missing = [c.name for c in ALL_COMPONENTS if not c.built]
        print("built" if not missing else f"not built: {', '.join(missing)} (cache {cache_root()})")
        return 0 if not missing else 1
    total = time.monotonic()
    build(ALL_COMPONENTS)
    print(f"real control plane ready in {cache_root()} ({time.monotonic() - total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
