"""``mlp-kernel render``: print the exact Secret and Pod a launch would create, secret values redacted.

Admins use it to check a pod template against the policy before users hit it; the admin UI's dry run calls the
same ``render_kernel_objects``. Nothing is sent to any cluster. Problems (template, schema, policy) are listed
on stderr with exit code 2. On a member with ``transport: ingress`` the Service and HTTPRoute (or Ingress) the
backend creates with the pod follow them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from ..backends.kubernetes import ingress
from ..backends.kubernetes.objects import (
    TEMPLATE_FILE,
    KernelObjectsError,
    model_pin,
    redact_secret,
    render_kernel_objects,
    resolve_kernelspec,
)
from ..placement import Policy, PolicyError, load_policy
from ..placement.tenancy import TenancyError, resolve_policy
from ..safe_yaml import YamlInputError, read_yaml_text


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the connection file) as readable block literals."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "render",
        help="print the Secret and Pod a GPU kernel launch would create",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "--kernelspec",
        required=True,
        metavar="NAME_OR_DIR",
        help="kernelspec directory, or the name of an installed kernelspec (e.g. gpu-auto)",
    )
    p.add_argument("--member", required=True, metavar="M", help="policy member (cluster) to render for")
    p.add_argument("--flavor", required=True, metavar="F", help="policy flavor (Kueue ResourceFlavor)")
    p.add_argument("--user", required=True, metavar="U", help="user name (as the identity provider gives it)")
    p.add_argument("--policy", metavar="POLICY.yaml", help="policy (default: <kernelspec>/policy.yaml)")
    p.add_argument("--gpus", type=int, default=1, metavar="N", help="number of GPUs (default 1)")
    p.add_argument("--gpu-model", metavar="MODEL", help="GPU model placement chose, e.g. V100")
    p.add_argument(
        "--pin",
        action="store_true",
        help="pin the pod to --gpu-model's nodes, as when the request named that model (%%gpu h100): the "
        "flavor's gpu_products; a comment line above the documents says how",
    )
    p.add_argument("--cpu", metavar="Q", help="CPU request, e.g. 4")
    p.add_argument("--memory", metavar="Q", help="memory request, e.g. 16Gi")
    p.add_argument("--notebook", default="", metavar="PATH", help="notebook path (labelled as a hash)")
    p.add_argument("--team", default="", metavar="T", help="the user's team")
    p.add_argument("--image", metavar="IMAGE", help="container image (default: kernelspec or template)")
    p.add_argument("--kernel-id", metavar="ID", help="kernel id (default: a random one)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.pin and not args.gpu_model:
        print("mlp-kernel render: --pin needs --gpu-model (the model to pin the pod to)", file=sys.stderr)
        return 2
    spec_dir = None
    try:
        spec_dir = resolve_kernelspec(args.kernelspec)
        policy = load_policy(Path(args.policy) if args.policy else spec_dir / "policy.yaml")
        policy = resolve_policy(policy, args.user, args.team)  # a namespace per user: this user's
        template = read_yaml_text(spec_dir / TEMPLATE_FILE)  # size-bounded; binary and gzip refused
        secret, pod = render_kernel_objects(
            spec_dir,
            policy,
            args.member,
            args.flavor,
            args.user,
            kernel_id=args.kernel_id,
            gpus=args.gpus,
            gpu_model=args.gpu_model,
            pin_model=args.gpu_model if args.pin else None,
            cpu=args.cpu,
            memory=args.memory,
            notebook=args.notebook,
            team=args.team,
            image=args.image,
            template_text=template,
        )
    except KernelObjectsError as exc:
        of = f" of {spec_dir}" if spec_dir else ""
        head = f"mlp-kernel render: the kernel objects{of} are not valid:"
        if len(exc.issues) == 1:
            print(f"{head} {exc.issues[0]}", file=sys.stderr)
        else:
            print("\n  - ".join([head, *map(str, exc.issues)]), file=sys.stderr)
        return 2
    except YamlInputError as exc:
        print(f"mlp-kernel render: pod template {exc}", file=sys.stderr)
        return 2
    except PolicyError as exc:
        print(f"mlp-kernel render: {exc.describe()}", file=sys.stderr)
        return 2
    except TenancyError as exc:
        print(f"mlp-kernel render: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mlp-kernel render: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    member = policy.members[args.member]  # behind an ingress: the Service and route the backend adds
    routes = ingress.route_objects(member, pod) if ingress.uses_ingress(member) else []
    sys.stdout.write(
        _pin_comment(policy, args)
        + yaml.dump_all([redact_secret(secret), pod, *routes], Dumper=_Dumper, sort_keys=False)
    )
    return 0


def _pin_comment(policy: Policy, args: argparse.Namespace) -> str:
    """A YAML comment saying how the GPU model is pinned, so the output stays valid YAML for kubectl."""
    if not args.pin:
        return ""
    member, flavor = policy.members[args.member], policy.flavors[args.flavor]
    pin = model_pin(member, flavor, args.gpu_model)
    if pin is None:
        return (
            f"# GPU model {flavor.model_for(args.gpu_model)}: the flavor's only one; its node label pins it\n"
        )
    key, values = pin
    how = "nodeSelector" if len(values) == 1 else "required node affinity (In)"
    return f"# GPU model {flavor.model_for(args.gpu_model)}: pinned by {how} {key} in ({', '.join(values)})\n"
