"""The two objects a kernel owns on a member: its connection Secret and its Pod, rendered and validated.

``render_kernel_objects`` is the one place that turns (kernelspec, policy, member, flavor, user, request) into
the exact manifests the backend sends, so ``mlp-kernel render`` and the admin UI's dry run show what a launch
would create, byte for byte (minus secret values). The admin's template decides the pod's shape; this module
then sets what mlp-kernel relies on whatever the template says (names, labels, the Kueue queue label, the
flavor pin, the GPU model pin, GPU request/limit, the connection Secret mount, the kernel ports) and validates
the result against the Kubernetes schema and the policy before anything leaves the process.

The model pin: a flavor may offer several models (Gold: A100 and H100) behind one flavor label, so a request
that names one is pinned by the member's ``gpu_product_label`` (GFD's ``nvidia.com/gpu.product``) too: a
``nodeSelector`` entry for one product value, a required node affinity ``In`` term, ANDed into every term the
template has, for several (one model, several SKUs). Kueue compares only the label keys its ResourceFlavors
define, so the extra key does not change which flavor Kueue assigns (docs/design.md, "The exact GPU model").

The Secret's ownerReference to the Pod is added at creation time (the Pod's uid is known only then): the
backend creates the Pod first, then the Secret owned by it, so deleting the pod deletes the Secret and no
Secret can exist without an owner. The kubelet retries mounting a Secret that does not exist yet, and Kueue's
scheduling gate normally keeps the pod unscheduled far longer than the two creates take.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ...placement.policy import Flavor, Member, Policy
from ..base import KERNEL_ARGS
from . import ingress, names
from .connection import CONNECTION_DIR, CONNECTION_KEY, DEFAULT_PORTS, CurveKeys, connection_info, redacted
from .template import Scalar, TemplateError, render_pod_template
from .validation import kernel_container, policy_issues, schema_issues

TEMPLATE_FILE = "pod-template.yaml.j2"
CONNECTION_VOLUME = "connection"


class KernelObjectsError(ValueError):
    """The kernel's objects cannot be rendered or would be rejected; ``issues`` lists every problem."""

    def __init__(self, issues: list[str]) -> None:
        self.issues = issues
        super().__init__("cannot render the kernel pod: " + "; ".join(issues))


def resolve_kernelspec(name_or_dir: str | Path) -> Path:
    """A kernelspec directory given as a path or as an installed kernelspec name."""
    path = Path(name_or_dir)
    if path.is_dir():
        return path
    from jupyter_client.kernelspec import KernelSpecManager

    found = KernelSpecManager().find_kernel_specs().get(str(name_or_dir))
    if found is None:
        raise KernelObjectsError(
            [f"no kernelspec directory or installed kernelspec named {str(name_or_dir)!r}"]
        )
    return Path(found)


def kernelspec_config(kernelspec_dir: Path) -> dict[str, Any]:
    """``metadata.kernel_provisioner.config.kubernetes`` of the kernelspec's kernel.json (image, ports).

    No kernel.json: no options. A kernel.json that is not JSON, or whose path to these options holds
    something other than an object (a hand-edited ``[]`` or ``5``; it once raised AttributeError from deep
    in a launch), is a ``KernelObjectsError`` naming the file and the field: silently rendering without the
    admin's image or ports would start the wrong pod.
    """
    path = kernelspec_dir / "kernel.json"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8
        raise KernelObjectsError([f"{path}: cannot be read: {exc}"]) from None
    try:
        node: Any = json.loads(text)
    except ValueError as exc:
        raise KernelObjectsError([f"{path}: not valid JSON: {exc}"]) from None
    field = ""
    for key in ("metadata", "kernel_provisioner", "config", "kubernetes", ""):
        if not isinstance(node, Mapping):
            where = field or "the top level"
            raise KernelObjectsError([f"{path}: {where} must be a JSON object, got {type(node).__name__}"])
        if not key:
            break
        node = node.get(key) or {}
        field = f"{field}.{key}".lstrip(".")
    issues = [
        f"{path}: {field}.{k} must be a string"
        for k in ("image", "service_account")
        if node.get(k) is not None and not isinstance(node[k], str)
    ]
    ports = node.get("ports")
    if ports is not None and not (
        isinstance(ports, Mapping)
        and all(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports.values())
    ):
        issues.append(f"{path}: {field}.ports must map channels to port numbers 1 to 65535")
    if issues:
        raise KernelObjectsError(issues)
    return dict(node)


def _lookup(policy: Policy, member: str | Member, flavor: str | Flavor) -> tuple[Member, Flavor]:
    issues = []
    m = policy.members.get(member) if isinstance(member, str) else member
    f = policy.flavors.get(flavor) if isinstance(flavor, str) else flavor
    if m is None:
        issues.append(f"unknown member {member!r}; the policy has: {', '.join(policy.members)}")
    if f is None:
        issues.append(f"unknown flavor {flavor!r}; the policy has: {', '.join(policy.flavors)}")
    if m is not None and m.tenancy is not None and not m.namespace:
        issues.append(
            f"member {m.name!r} has a namespace per user ({m.tenancy.namespace}): resolve the policy for the "
            "user first (placement.tenancy.resolve_policy)"
        )
    elif m is not None and (not m.namespace or not m.local_queue):
        issues.append(
            f"member {m.name!r} needs namespace and local_queue in the policy for the kubernetes backend"
        )
    if issues:
        raise KernelObjectsError(issues)
    assert m is not None and f is not None
    return m, f


def kernel_labels(
    *,
    kernel_id: str,
    generation: int,
    user: str,
    notebook: str,
    team: str,
    member: Member,
    flavor: Flavor,
    data_class: str | None = None,
) -> dict[str, str]:
    """The labels every kernel object carries (documented in docs/admin-guide.md, "Labels").

    The data class is a label so that the cluster can check it without trusting the gateway's decision
    (docs/samples/admission refuses a private-only class on a public member); none set, no label."""
    labels = {
        names.MANAGED_BY: names.MANAGED_BY_VALUE,
        names.KERNEL_ID: names.label_value(kernel_id),
        names.GENERATION: str(generation),
        names.USER: names.label_value(user) if user else "",
        names.NOTEBOOK: names.notebook_label(notebook),
        names.TEAM: names.label_value(team) if team else "",
        names.MEMBER: names.label_value(member.name),
        names.FLAVOR: names.label_value(flavor.name),
        names.DATA_CLASS: names.label_value(data_class) if data_class else "",
    }
    return {k: v for k, v in labels.items() if v}


def _replace_named(
    items: list[dict[str, Any]], item: dict[str, Any], key: str = "name"
) -> list[dict[str, Any]]:
    return [i for i in items if i.get(key) != item[key]] + [item]


def _quantities_as_strings(spec: dict[str, Any]) -> None:
    """Resource quantities as strings (``cpu: 2`` in YAML is an int; the API client expects strings)."""
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for part in (c.get("resources") or {}).values():
            if isinstance(part, dict):
                for k, v in part.items():
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        part[k] = str(v)


def _enforce(
    pod: dict[str, Any],
    *,
    labels: dict[str, str],
    annotations: dict[str, str],
    pod_name: str,
    secret_name: str,
    member: Member,
    flavor: Flavor,
    gpus: int,
    ports: dict[str, int],
    connection_file: str,
    pin: tuple[str, tuple[str, ...]] | None = None,
) -> None:
    """Set what mlp-kernel relies on, whatever the template said (behind an ingress: the bridge sidecar)."""
    meta = pod.setdefault("metadata", {})
    meta["name"] = pod_name
    meta["namespace"] = member.namespace
    meta["labels"] = {**(meta.get("labels") or {}), **labels, names.QUEUE_NAME: member.local_queue}
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    spec = pod.setdefault("spec", {})
    spec["restartPolicy"] = "Never"
    spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), **dict(flavor.node_labels)}
    if pin is not None:
        _pin_model(spec, *pin)
    tolerations = list(spec.get("tolerations") or [])
    for t in flavor.tolerations:
        if dict(t) not in tolerations:
            tolerations.append(dict(t))
    if tolerations:
        spec["tolerations"] = tolerations
    container = kernel_container(pod)
    resources = container.setdefault("resources", {})
    for part in ("requests", "limits"):
        section = dict(resources.get(part) or {})
        section.pop(flavor.gpu_resource, None)
        if gpus > 0:
            section[flavor.gpu_resource] = str(gpus)
        if section:
            resources[part] = section
        else:
            resources.pop(part, None)
    # The kubelet puts the end of the log in the pod status when the kernel fails: the user is told why.
    container.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
    if not container.get("command") and not container.get("args"):
        container["command"] = ["python", "-m", "ipykernel_launcher", "-f", connection_file, *KERNEL_ARGS]
    _quantities_as_strings(spec)
    volume = {"name": CONNECTION_VOLUME, "secret": {"secretName": secret_name, "defaultMode": 0o440}}
    spec["volumes"] = _replace_named(list(spec.get("volumes") or []), volume)
    mount = {"name": CONNECTION_VOLUME, "mountPath": str(Path(connection_file).parent), "readOnly": True}
    container["volumeMounts"] = _replace_named(list(container.get("volumeMounts") or []), mount)
    declared = [p for p in container.get("ports") or [] if p.get("name") not in ports]
    if ingress.uses_ingress(member):  # the kernel binds loopback; only the bridge's port leaves the pod
        container["ports"] = declared
        if not declared:
            container.pop("ports")
        sidecar = ingress.bridge_sidecar(
            container.get("image", ""), str(Path(connection_file).parent), connection_file, CONNECTION_VOLUME
        )
        spec["initContainers"] = _replace_named(list(spec.get("initContainers") or []), sidecar)
        spec["volumes"] = _replace_named(spec["volumes"], ingress.bridge_volume())
        meta["labels"][ingress.POD_LABEL] = pod_name
        return
    container["ports"] = declared + [
        {"name": f"kernel-{ch}", "containerPort": port, "protocol": "TCP"} for ch, port in ports.items()
    ]


def _pin_model(spec: dict[str, Any], key: str, values: tuple[str, ...]) -> None:
    """Keep the pod on nodes whose ``key`` label is one of ``values``: a nodeSelector entry for one value,
    else an ``In`` expression added to every required node affinity term (terms are ORed: each needs it)."""
    if len(values) == 1:
        spec["nodeSelector"][key] = values[0]
        return
    spec["nodeSelector"].pop(key, None)  # a template's own value for the key would contradict the pin
    expression = {"key": key, "operator": "In", "values": list(values)}
    node_affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    required = node_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = list(required.get("nodeSelectorTerms") or []) or [{}]
    for term in terms:
        kept = [e for e in term.get("matchExpressions") or [] if e.get("key") != key]
        term["matchExpressions"] = [*kept, expression]
    required["nodeSelectorTerms"] = terms


def model_pin(member: Member, flavor: Flavor, gpu_model: str | None) -> tuple[str, tuple[str, ...]] | None:
    """The node label and values that pin ``gpu_model`` on ``flavor`` (None: no model named, or the flavor's
    own label pins it). A model of a several-model flavor without products cannot be pinned: an error."""
    if gpu_model is None:
        return None
    if not flavor.offers(gpu_model):
        raise KernelObjectsError(
            [f"flavor {flavor.name!r} does not offer {gpu_model!r}; it offers {', '.join(flavor.gpu_models)}"]
        )
    values = flavor.products(gpu_model)
    if values:
        return member.gpu_product_label, values
    if len(flavor.gpu_models) > 1:
        raise KernelObjectsError(
            [
                f"flavor {flavor.name!r} offers {', '.join(flavor.gpu_models)} and has no gpu_products for "
                f"{gpu_model!r}: the pod cannot be pinned to that model (policy flavors.{flavor.name}"
                ".gpu_products)"
            ]
        )
    return None


def _snapshot_values(policy: Policy, member: Member) -> dict[str, Scalar]:
    """The per-user snapshot volume (policy ``snapshot.storage: {kind: volume, claim, path}``), private only:
    variables saved before a release are written there and read back by the next kernel pod."""
    storage = policy.snapshot.storage
    wanted = policy.snapshot.enabled and storage.get("kind") == "volume" and storage.get("claim")
    if not wanted or member.public:
        return {}
    return {
        "kernel_snapshot_claim": str(storage["claim"]),
        "kernel_snapshot_dir": str(storage.get("path") or "/home/jovyan/.mlp-kernel/snapshots"),
    }


def working_dir(member: Member, user: str, notebook: str) -> str | None:
    """The kernel container's working directory a pod of ``notebook`` gets (None: the template's default);
    a claimed warm-pool kernel moves there."""
    return str(_workspace_values(member, user, notebook).get("kernel_working_dir") or "") or None


def _workspace_values(member: Member, user: str, notebook: str) -> dict[str, Scalar]:
    """The user's workspace volume and per-user packages volume (private members), and the working directory:
    the notebook's directory when it is inside the workspace (the notebook server mounts the same claim at
    the same path), else the workspace's root. The notebook path is a value, never template source."""
    values: dict[str, Scalar] = {}
    if member.public:
        return values
    if member.workspace_claim:
        root = PurePosixPath(member.workspace_path)
        workdir = root
        folder = PurePosixPath(notebook).parent if notebook else None
        if folder is not None and folder.is_absolute() and ".." not in folder.parts:
            if folder == root or root in folder.parents:
                workdir = folder
        values.update(
            kernel_workspace_claim=names.user_claim(member.workspace_claim, user),
            kernel_workspace_dir=str(root),
            kernel_working_dir=str(workdir),
        )
    if member.packages_claim:
        values.update(
            kernel_packages_claim=names.user_claim(member.packages_claim, user),
            kernel_packages_dir=member.packages_path,
        )
    return values


def render_kernel_objects(
    kernelspec_dir: str | Path,
    policy: Policy,
    member: str | Member,
    flavor: str | Flavor,
    user: str,
    *,
    kernel_id: str | None = None,
    generation: int = 1,
    gpus: int = 1,
    gpu_model: str | None = None,
    pin_model: str | None = None,
    cpu: str | None = None,
    memory: str | None = None,
    notebook: str = "",
    team: str = "",
    data_class: str | None = None,
    key: str | None = None,
    signature_scheme: str = "hmac-sha256",
    image: str | None = None,
    ports: Mapping[str, int] | None = None,
    curve: CurveKeys | None = None,
    service_account: str | None = None,
    gateway: str = "",
    template_text: str | None = None,
    bridge_token: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Render and validate the connection Secret and the Pod for one kernel launch; returns ``(secret, pod)``.

    Raises ``KernelObjectsError`` listing every problem (template, Kubernetes schema, policy).
    ``key`` defaults to a random key (dry runs); ``template_text`` overrides the kernelspec's template
    (admin UI previews). ``pin_model`` (the model the request named, ``Decision.pinned_model``) pins the pod
    to that model's nodes; ``gpu_model`` is only the template's ``kernel_gpu_model``. ``data_class`` (the
    request's ``%gpu data=``) becomes the ``mlp.io/data-class`` label. On a member with ``transport: ingress``
    the Secret also holds ``bridge_token`` (default: a random one) and the pod gets the bridge sidecar
    (``ingress.py``); ``ingress.route_objects(member, pod)`` are the Service and route the backend adds.
    """
    m, f = _lookup(policy, member, flavor)
    pin = model_pin(m, f, pin_model)
    spec_dir = resolve_kernelspec(kernelspec_dir)
    config = kernelspec_config(spec_dir)
    if template_text is None:
        try:
            template_text = (spec_dir / TEMPLATE_FILE).read_text()
        except OSError as exc:
            raise KernelObjectsError([f"cannot read {spec_dir / TEMPLATE_FILE}: {exc.strerror}"]) from None
    if gpus < 0 or gpus > policy.max_gpus:
        raise KernelObjectsError([f"{gpus} GPUs requested; the policy allows 0 to {policy.max_gpus}"])
    kernel_id = kernel_id or str(uuid.uuid4())
    key = key if key is not None else secrets.token_hex(32)
    ports = dict(ports or config.get("ports") or DEFAULT_PORTS)
    connection_file = f"{CONNECTION_DIR}/{CONNECTION_KEY}"
    pod_name = names.pod_name(kernel_id, generation)
    secret_name = names.secret_name(pod_name)
    values: dict[str, Scalar] = {
        "kernel_id": kernel_id,
        "kernel_pod_name": pod_name,
        "kernel_namespace": m.namespace,
        "kernel_image": image or config.get("image"),
        "kernel_username": user,
        "kernel_team": team or None,
        "kernel_notebook": names.notebook_label(notebook) or None,
        "kernel_gpus": int(gpus),
        "kernel_gpu_resource": f.gpu_resource,
        "kernel_gpu_model": gpu_model,
        "kernel_cpus": cpu,
        "kernel_memory": memory,
        "kernel_member": m.name,
        "kernel_flavor": f.name,
        "kernel_queue_name": m.local_queue,
        "kernel_secret_name": secret_name,
        "kernel_connection_dir": CONNECTION_DIR,
        "kernel_connection_file": connection_file,
        "kernel_service_account_name": m.service_account or service_account or config.get("service_account"),
        **_snapshot_values(policy, m),
        **_workspace_values(m, user, notebook),
        **{f"kernel_{ch}_port": int(port) for ch, port in ports.items()},
    }
    try:
        pod = render_pod_template(template_text, values)
    except TemplateError as exc:
        raise KernelObjectsError([f"pod template: {i}" for i in exc.issues]) from None
    labels = kernel_labels(
        kernel_id=kernel_id,
        generation=generation,
        user=user,
        notebook=notebook,
        team=team,
        member=m,
        flavor=f,
        data_class=data_class,
    )
    annotations = {names.USER_ANNOTATION: user}
    if notebook:
        annotations[names.NOTEBOOK_ANNOTATION] = notebook
    if gateway:
        annotations[names.GATEWAY_ANNOTATION] = gateway
    try:
        _enforce(
            pod,
            labels=labels,
            annotations=annotations,
            pod_name=pod_name,
            secret_name=secret_name,
            member=m,
            flavor=f,
            gpus=gpus,
            ports=ports,
            connection_file=connection_file,
            pin=pin,
        )
    except (ValueError, AttributeError, TypeError) as exc:
        raise KernelObjectsError([f"pod template: {exc}"]) from None
    behind_ingress = ingress.uses_ingress(m)
    ip = "127.0.0.1" if behind_ingress else "0.0.0.0"
    info = connection_info(key=key, signature_scheme=signature_scheme, ports=ports, curve=curve, ip=ip)
    data = {CONNECTION_KEY: base64.b64encode(json.dumps(info).encode()).decode()}
    if behind_ingress:
        bridge_token = bridge_token or secrets.token_urlsafe(32)
        data[ingress.BRIDGE_TOKEN_KEY] = base64.b64encode(bridge_token.encode()).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name,
            "namespace": m.namespace,
            "labels": {**labels, names.COMPONENT: "connection"},
        },
        "type": "Opaque",
        "immutable": True,
        "data": data,
    }
    issues = schema_issues(pod) + schema_issues(secret) + policy_issues(pod, policy, m, f, pin)
    if key and key in json.dumps(pod):
        issues.append("the connection key appears in the pod spec; it may only be in the Secret")
    if behind_ingress and bridge_token and bridge_token in json.dumps(pod):
        issues.append("the bridge token appears in the pod spec; it may only be in the Secret")
    if issues:
        raise KernelObjectsError(issues)
    return secret, pod


def redact_secret(secret: dict[str, Any]) -> dict[str, Any]:
    """A copy of the Secret safe to print: ``stringData`` with the key and Curve secret replaced."""
    out = json.loads(json.dumps(secret))
    shown: dict[str, str] = {}
    for k, v in (out.pop("data", None) or {}).items():
        if k == ingress.BRIDGE_TOKEN_KEY:  # a bare token: nothing of it is shown
            shown[k] = "<redacted>"
            continue
        try:
            shown[k] = json.dumps(redacted(json.loads(base64.b64decode(v))), indent=1, sort_keys=True)
        except ValueError:
            shown[k] = "<redacted>"
    out["stringData"] = shown
    out.setdefault("metadata", {}).setdefault("annotations", {})["mlp.io/redacted"] = "secret values replaced"
    return out


__all__ = ["KernelObjectsError", "model_pin", "redact_secret", "render_kernel_objects"]
