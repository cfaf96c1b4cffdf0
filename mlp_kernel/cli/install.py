"""``mlp-kernel install``: install the GPU (auto) kernelspec under another name, policy or idle timeout.

``pip install mlp-kernel`` already installs ``gpu-auto`` into ``{sys.prefix}/share/jupyter/kernels``.
Admins use
this command for variants (a "GPU (auto, team A)" with the team's policy, a kernelspec whose default request
is an A100) without editing JSON by hand. It goes through jupyter_client's ``KernelSpecManager`` so the result
lands where ``jupyter kernelspec list`` looks.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def source_kernelspec() -> Path:
    """The shipped kernelspec: the source tree's copy, else the one pip installed."""
    here = Path(__file__).resolve().parents[2] / "kernelspecs" / "gpu-auto"
    if (here / "kernel.json").exists():
        return here
    from jupyter_client.kernelspec import KernelSpecManager

    return Path(KernelSpecManager().get_kernel_spec("gpu-auto").resource_dir)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "install", help="install the GPU (auto) kernelspec (optionally renamed / re-configured)"
    )
    p.add_argument("--name", default="gpu-auto", help="kernelspec name (default gpu-auto)")
    p.add_argument("--display-name", default=None, help='launcher name (default "GPU (auto)")')
    p.add_argument("--policy", type=Path, help="placement policy YAML to ship with this kernelspec")
    p.add_argument(
        "--pod-template", type=Path, help="pod template (Jinja2 YAML) to ship with this kernelspec"
    )
    p.add_argument("--idle-timeout", help="release the GPU after this long idle (e.g. 15m, 0 = never)")
    p.add_argument(
        "--default",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="default %%gpu option, e.g. --default burst=on --default gpu=a100 (repeatable)",
    )
    p.add_argument(
        "--python",
        help="the interpreter that runs the kernel (one with mlp-kernel installed); default: python, which "
        "jupyter_client replaces with its own. Needed where the kernel starts from another environment, e.g. "
        "Jupyter Enterprise Gateway's (docs/admin-guide.md)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix (virtualenv/conda)")
    where.add_argument("--prefix", help="install under this prefix")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jupyter_client.kernelspec import KernelSpecManager

    if not NAME_RE.match(args.name):
        print(
            f"mlp-kernel install: invalid name {args.name!r}: use lowercase letters, digits, . _ -",
            file=sys.stderr,
        )
        return 2
    defaults: dict[str, str] = {}
    for item in args.default:
        key, eq, value = item.partition("=")
        if not eq or not key:
            print(f"mlp-kernel install: --default {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        defaults[key] = value
    for path in (args.policy, args.pod_template):
        if path is not None and not path.is_file():
            print(f"mlp-kernel install: {path}: no such file", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / args.name
        shutil.copytree(source_kernelspec(), dest)
        spec = json.loads((dest / "kernel.json").read_text())
        config = spec["metadata"]["kernel_provisioner"]["config"]
        if args.display_name:
            spec["display_name"] = args.display_name
        if args.python:
            python = Path(args.python).absolute()
            if not python.is_file():
                print(f"mlp-kernel install: --python {args.python}: no such file", file=sys.stderr)
                return 2
            spec["argv"][0] = str(python)
        if args.policy:
            from ..placement import PolicyError, load_policy

            try:
                load_policy(args.policy)
            except PolicyError as exc:
                print(f"mlp-kernel install: {exc.describe()}", file=sys.stderr)
                return 2
            shutil.copy(args.policy, dest / "policy.yaml")
            config["policy"] = "policy.yaml"
        if args.pod_template:
            from ..backends.kubernetes.template import validate_template
            from ..safe_yaml import YamlInputError, read_yaml_text

            try:  # checked like the admin page checks it: a broken template would fail every launch
                issues = [str(i) for i in validate_template(read_yaml_text(args.pod_template))]
            except YamlInputError as exc:
                issues = [exc.problem]
            if issues:
                print(
                    f"mlp-kernel install: {args.pod_template}: {issues[0]}"
                    + (f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""),
                    file=sys.stderr,
                )
                return 2
            shutil.copy(args.pod_template, dest / "pod-template.yaml.j2")
        if args.idle_timeout is not None:
            from ..gateway.magic import MagicError, check_idle

            try:  # the same range as %gpu idle=: the gateway arms its release timer with it
                check_idle(args.idle_timeout)
            except MagicError as exc:
                print(f"mlp-kernel install: --idle-timeout: {exc}", file=sys.stderr)
                return 2
            config["idle_timeout"] = args.idle_timeout
        if defaults:
            config["defaults"] = {**config.get("defaults", {}), **defaults}
            if args.policy or (dest / "policy.yaml").exists():
                from ..gateway.magic import MagicError, parse_magics
                from ..placement import load_policy

                tokens = " ".join(f"{k}={v}" for k, v in defaults.items())
                try:
                    parse_magics([f"%gpu {tokens}"], load_policy(dest / config.get("policy", "policy.yaml")))
                except MagicError as exc:
                    print(f"mlp-kernel install: --default: {exc}", file=sys.stderr)
                    return 2
        (dest / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
        installed = KernelSpecManager().install_kernel_spec(
            str(dest), kernel_name=args.name, user=args.user,
            prefix=sys.prefix if args.sys_prefix else args.prefix,
        )  # fmt: skip
    print(f"Installed kernelspec {args.name} in {installed}")
    return 0
