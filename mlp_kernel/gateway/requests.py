"""What this notebook asks for, and the gateway's calls into placement.

Holds the loaded policy (or why it could not be loaded), the kernelspec's default options and the user's
``%gpu`` overrides, and turns them into the ``GpuRequest`` placement decides on. Also owns the small files the
gateway shares with others: the remote-kernel record the provisioner cleans up after a crash.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends.base import GatewayBackend, RemoteKernel
from ..identity import server_namespace
from ..placement.data_class import DataClassRefused, Notebook, admin_data_class, effective_data_class
from ..placement.prestart import Prestart
from ..placement.release import ReleaseRule
from ..placement.types import Decision, GpuRequest
from ..placement.units import MAX_DURATION_S, format_duration, parse_duration
from ..protocol import Choices, ReleaseReason
from .budget import BudgetKeeper
from .config import GatewayConfig
from .errors import GpuMagicError, GpuPolicyError
from .magic import MIN_IDLE_S, RANGES, MagicError, parse_magics

if TYPE_CHECKING:
    from ..placement import Policy
    from .carryover import CarryOver
    from .relay import RemoteLink
    from .status import GatewayStatus
    from .workspace import WorkspaceSync

log = logging.getLogger(__name__)

KERNELSPEC_DURATIONS = {  # kernel.json's provisioner config: the ranges of %gpu idle= and the policy
    "idle_timeout": RANGES["idle"],
    "launch_timeout": f"longer than 0 and at most {format_duration(MAX_DURATION_S)}",
}


def kernelspec_duration(key: str, value: Any) -> float:
    """Seconds of kernel.json's ``idle_timeout`` or ``launch_timeout`` within ``KERNELSPEC_DURATIONS``.

    Raises ValueError saying what is allowed. A hand-edited kernel.json reaches the gateway unvalidated:
    ``"1e12"`` once reached the gateway's timers (an overflow far from where it was typed) and
    ``"15 minutes"`` raised out of the gateway's first load. The admin page checks with this too.
    """
    wanted = KERNELSPEC_DURATIONS[key]
    try:
        seconds = parse_duration(value, maximum=MAX_DURATION_S)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{exc} (allowed: {wanted})") from None
    in_range = seconds == 0 or seconds >= MIN_IDLE_S if key == "idle_timeout" else seconds > 0
    if not in_range:
        raise ValueError(f"invalid duration {str(value)[:40]!r}: out of range (allowed: {wanted})")
    return seconds


class RequestState:
    """Loaded lazily: the policy, YAML and snapshot code are read on first use, not at gateway start-up."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._loaded = False
        self._policy: Policy | None = None
        self._policy_error = ""
        self.defaults: dict[str, Any] = {}
        self.overrides: dict[str, Any] = {}
        self.deferred_silent: list[str] = []
        self._idle_timeout_s: float | None = None
        self._release_rule: ReleaseRule | None = None  # set by %gpu idle= (flat); else the policy's
        self._launch_timeout_s = 1800.0
        self._carry: CarryOver | None = None
        self._workspace: WorkspaceSync | None = None
        self.budget = BudgetKeeper(config)  # spend before placing, spend recorded, the audit log

    def load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        from ..placement import PolicyError, load_policy
        from ..placement.tenancy import TenancyError, resolve_policy
        from ..snapshot import storage  # noqa: F401  registers its snapshot.storage check with the loader

        config = self.config
        try:  # a namespace per user: resolved once, so placement and the backend read this user's members
            self._policy = resolve_policy(load_policy(config.policy_path()), config.user, config.team)
        except (PolicyError, OSError, TenancyError) as exc:
            self._policy_error = (
                f"The GPU policy {config.policy_path()} cannot be used:\n{exc}\n"
                "Ask an admin to fix it (mlp-kernel place --policy FILE shows the problems). "
                "Nothing was started; this kernel stays usable."
            )
            log.error("%s", self._policy_error)
        policy = self._policy
        idle = self._kernelspec_duration("idle_timeout")
        if self._idle_timeout_s is None:
            self._idle_timeout_s = policy.idle_timeout_s if policy else 900.0
            if idle is not None:
                self._idle_timeout_s = idle
        self._launch_timeout_s = policy.launch_timeout_s if policy else 1800.0
        launch = self._kernelspec_duration("launch_timeout")
        if launch is not None:
            self._launch_timeout_s = launch
        if policy and config.defaults:
            tokens = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in config.defaults.items())
            try:
                self.defaults = parse_magics([f"%gpu {tokens}"], policy).request
            except MagicError as exc:
                self._add_error(f"The kernelspec's default GPU options are invalid: {exc}")

    def _kernelspec_duration(self, key: str) -> float | None:
        """A kernelspec duration (see ``kernelspec_duration``), or None when unset or unusable; unusable
        becomes the policy error, as a broken policy does: every ``%gpu`` cell and launch says which file
        and field to fix, nothing starts, and the kernel stays usable."""
        value = getattr(self.config, key)
        if value is None or value == "":
            return None
        try:
            return kernelspec_duration(key, value)
        except ValueError as exc:
            where = Path(self.config.kernelspec_dir or ".") / "kernel.json"
            problem = (
                f"{where}: metadata.kernel_provisioner.config.{key} (or c.GpuAutoProvisioner.{key}) "
                f"cannot be used: {exc}\n"
                "Ask an admin to fix it (the admin page or mlp-kernel install). "
                "Nothing was started; this kernel stays usable."
            )
            log.error("%s", problem)
            self._add_error(problem)
            return None

    def _add_error(self, problem: str) -> None:
        """Every problem of the kernelspec is reported, not only the last one found."""
        self._policy_error = "\n\n".join(p for p in (self._policy_error, problem) if p)

    @property
    def policy(self) -> Policy | None:
        self.load()
        return self._policy

    @property
    def policy_error(self) -> str:
        self.load()
        return self._policy_error

    @property
    def idle_timeout_s(self) -> float:
        self.load()
        return float(self._idle_timeout_s or 0.0)

    @idle_timeout_s.setter
    def idle_timeout_s(self, value: float) -> None:
        self.load()
        self._idle_timeout_s = value

    @property
    def release_rule(self) -> ReleaseRule:
        """How the idle timeout applies to this kernel's size: the policy's ``release`` rule (default
        ``gpu-minutes``), or flat once the user set ``%gpu idle=``."""
        if self._release_rule is not None:
            return self._release_rule
        policy = self.policy
        return policy.release if policy else ReleaseRule()

    @release_rule.setter
    def release_rule(self, rule: ReleaseRule) -> None:
        self._release_rule = rule

    @property
    def prestart(self) -> Prestart | None:
        """Pre-start on activity (``release.prestart``): the policy's, whatever ``%gpu idle=`` made of the
        release rule; None when it is off or the policy cannot be used."""
        policy = self.policy
        rule = policy.release.prestart if policy and not self.policy_error else None
        return rule if rule is not None and rule.enabled else None

    @property
    def launch_timeout_s(self) -> float:
        self.load()
        return self._launch_timeout_s

    @property
    def carry(self) -> CarryOver:
        if self._carry is None:
            from .carryover import CarryOver

            self._carry = CarryOver(self.policy, self.config.kernel_id, self.config.user)
        return self._carry

    @property
    def workspace(self) -> WorkspaceSync:
        """The notebook's files on kernels of public members (``workspace_sync``; cwd: the notebook's)."""
        if self._workspace is None:
            from .workspace import WorkspaceSync

            self._workspace = WorkspaceSync(self.policy, self.config.kernel_id, self.config.user)
        return self._workspace

    # ------------------------------------------------------------------------------------------- request
    def policy_view(self) -> Policy:
        if self.policy is None or self.policy_error:
            raise GpuPolicyError(self.policy_error)
        return self.policy

    def current(self) -> GpuRequest:
        base = self.policy.default_request if self.policy else GpuRequest()
        request = replace(base, **{**self.defaults, **self.overrides})
        if self.policy is None or not self.policy.data_class_defaults:
            return request
        try:  # the admin's class when the user set none (a relaxing one was refused by admit)
            data_class = effective_data_class(self.policy, self.notebook(), request.data_class)
        except DataClassRefused:
            data_class = admin_data_class(self.policy, self.notebook()).data_class  # type: ignore[union-attr]
        return replace(request, data_class=data_class)

    def notebook(self) -> Notebook:
        """What ``data_classes.defaults`` match on: the server's team and namespace, the notebook's path."""
        return Notebook(team=self.config.team, namespace=server_namespace(), path=self.config.notebook)

    def admit(self, changes: dict[str, Any]) -> None:
        """Refuse a ``%gpu data=`` that is less strict than the admin's class for this notebook."""
        if self.policy is not None and changes.get("data_class") is not None:
            try:
                effective_data_class(self.policy, self.notebook(), changes["data_class"])
            except DataClassRefused as exc:
                raise GpuMagicError(str(exc)) from None

    def update(self, changes: dict[str, Any]) -> None:
        self.overrides.update(changes)

    def reset(self) -> None:
        self.overrides.clear()

    def describe(self, r: GpuRequest) -> str:
        better = self.policy is not None and self.policy.upgrades(r.gpu_model, r.upgrade)
        what = (
            f"{r.gpu_model}{'+' if better else ''} x{r.gpu_count}"
            if r.gpu_model
            else (f"tier {r.tier} x{r.gpu_count}" if r.tier else f"any GPU x{r.gpu_count}")
        )
        parts = [what, f"burst={'on' if r.burstable else 'off'}", f"budget={r.budget}"]
        if r.deadline:
            parts.append(f"deadline={r.deadline.isoformat(timespec='minutes')}")
        if r.data_class:
            parts.append(f"data={r.data_class}")
        if r.cpu:
            parts.append(f"cpu={r.cpu}")
        if r.memory:
            parts.append(f"memory={r.memory}")
        return ", ".join(parts)

    def satisfied_by_current(self, status: Any) -> bool:
        """Whether the running kernel already matches the (changed) request, so no move is needed."""
        r = self.current()
        if self.policy is None or not status.flavor:
            return False
        flavor = self.policy.flavors.get(status.flavor)
        if flavor is None or r.gpu_count != status.gpu_count:
            return False
        if r.gpu_model and not flavor.offers(r.gpu_model):
            # "or better": a flavor of a higher tier than the model's serves it as it is
            if not self.policy.upgrades(r.gpu_model, r.upgrade):
                return False
            if flavor not in self.policy.better_flavors(r.gpu_model):
                return False
        elif r.gpu_model and flavor.products(r.gpu_model):
            # the flavor has several models: only a kernel pinned to this one is on it
            decision = getattr(status, "decision", None)
            if decision is None or decision.pinned_model != flavor.model_for(r.gpu_model):
                return False
        if r.tier and flavor.tier != r.tier:
            return False
        return not (status.public and not self.policy.may_leave_private(r.data_class))

    def choices(self) -> Choices:
        if self.policy is None:
            return {"gpu_models": [], "tiers": [], "burst_allowed": False}
        return {
            "gpu_models": self.policy.gpu_models(),
            "tiers": list(self.policy.tiers),
            "burst_allowed": bool(self.policy.burst.enabled and self.policy.public_members()),
            "max_gpus": self.policy.max_gpus,
            "member_labels": {m.name: m.label for m in self.policy.members.values()},
        }

    # ----------------------------------------------------------------------------------------- placement
    async def decide(
        self, waited_s: float, backend: GatewayBackend | None, now: float | None = None
    ) -> Decision:
        """Ask placement at clock time ``now`` (default: the system's), with live state when the backend can
        read it (the policy's capacity otherwise)."""
        from ..placement import ClusterState, decide

        policy = self.policy_view()

        try:
            state = await backend.cluster_state(policy) if backend else ClusterState.from_policy(policy)
        except Exception as exc:  # an unreachable cluster must not hang or crash the notebook
            log.warning("could not read cluster state, using declared capacity: %s", exc)
            state = ClusterState.from_policy(policy)
        request = replace(self.current(), waited_s=waited_s)
        at = datetime.now(timezone.utc) if now is None else datetime.fromtimestamp(now, timezone.utc)
        if waited_s == 0:
            self.budget.new_launch()
        spend = await self.budget.spend(policy, at.timestamp())
        decision = decide(policy, state, request, at, spend)
        self.budget.decided(decision)
        return decision

    # ----------------------------------------------------------------------------- records and snapshots
    def write_record(self, record: dict[str, Any], remote: RemoteKernel) -> None:
        if not self.config.record_path:
            return
        data = {
            **record,
            "kernel_id": self.config.kernel_id,
            "member": remote.member,
            "gateway_pid": os.getpid(),
        }
        path = Path(self.config.record_path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)

    def clear_record(self) -> None:
        if self.config.record_path:
            Path(self.config.record_path).unlink(missing_ok=True)

    async def before_release(
        self, status: GatewayStatus, link: RemoteLink, reason: ReleaseReason
    ) -> tuple[bool, str]:
        """Run before a release or move: bring the kernel's files back (workspace_sync), snapshot the
        variables. (ok, note for the user)."""
        files = await self.workspace.pull(link)
        ok, note = await self.carry.save(link, self.current(), status.public, status.member)
        return ok, " ".join(n for n in (files, note) if n)

    async def after_connect(self, status: GatewayStatus, link: RemoteLink, consume: bool = True) -> str:
        """Run when a new remote kernel answered: copy the notebook's files to it when it is on a public
        member (workspace_sync), say what it sees of them (``status.files``), restore the variables saved at
        the last release. A pre-started kernel (``consume`` False) leaves the snapshot in place until a cell
        uses it: dropped unused, the next kernel restores the same one."""
        files = await self.workspace.push(link, self.current(), status.public)
        status.files = await self.workspace.seen(link, status.public, self.config.notebook)
        note = await self.carry.restore(link, self.current(), status.public)
        if consume:
            await self.carry.consume(link, status.public)  # used once: the next release takes a new one
        return " ".join(n for n in (files, note) if n)

    def set_keep(self, keep: bool, max_bytes: int | None) -> None:
        self.carry.set_keep(keep, max_bytes)

    async def forget(self, link: RemoteLink | None) -> str:
        return await self.carry.forget(link)

    async def on_shutdown(self) -> None:
        if self._carry is not None:
            self._carry.on_shutdown()
        if self._workspace is not None:
            self._workspace.on_shutdown()
