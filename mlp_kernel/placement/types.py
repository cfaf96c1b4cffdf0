"""Values that flow into and out of placement.

These types are the seam between the gateway (which turns kernelspec defaults and ``%gpu`` options into a
``GpuRequest``) and the pure placement core (``decide(policy, state, request, now) -> Decision``). They are
immutable so a decision can be logged, shown by ``%gpu explain``, replayed by the simulator and serialised to
JSON for the status comm without anyone mutating it on the way.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from .schema import policy_field

Budget = Literal["flex", "fixed"]
BUDGETS: tuple[Budget, ...] = ("flex", "fixed")


class Action(str, enum.Enum):
    """What placement tells the gateway to do."""

    RUN = "run"  # a private flavor has free quota now: start there
    QUEUE = "queue"  # wait in the best private candidate's LocalQueue
    BURST = "burst"  # start on the public member
    REJECT = "reject"  # nothing may serve this request; the detail says what the user could change


@dataclass(frozen=True)
class GpuRequest:
    """What a notebook asks for. Built from kernelspec/policy defaults overridden by ``%gpu`` options.

    ``gpu_model`` and ``tier`` are mutually exclusive in user input; when both are ``None`` the policy's
    default request applies. ``waited_s`` is how long this request has already waited in a queue
    (0 for a fresh request; the gateway fills it when it re-asks placement while queued). The fields a
    policy's ``default_request`` may set are declared with ``policy_field``.
    """

    gpu_model: str | None = policy_field(
        "gpu_model", "a GPU model", "string", default=None, default_doc="none (any model)",
        rule="must be offered by some flavor; not with `tier`",
    )  # fmt: skip
    gpu_count: int = policy_field(
        "gpu_count", "GPUs", "integer", default=1, minimum=1, rule="at most `max_gpus`"
    )  # fmt: skip
    tier: str | None = policy_field(
        "tier", "a tier", "string", default=None, default_doc="none (any tier)",
        rule="must be in `tiers`; not with `gpu_model`",
    )  # fmt: skip
    cpu: str | None = policy_field(
        "cpu", "CPU for the GPU kernel's container", "quantity", default=None,
        default_doc="none (the pod template decides)",
    )  # fmt: skip
    memory: str | None = policy_field(
        "memory", "memory for the GPU kernel's container", "quantity", default=None,
        default_doc="none (the pod template decides)",
    )  # fmt: skip
    burstable: bool = policy_field("burstable", "may burst", "boolean", default=False)
    budget: Budget = policy_field(
        "budget", "`flex` (may pay for a public GPU) or `fixed`", "choice", default="fixed", choices=BUDGETS
    )  # fmt: skip
    deadline: datetime | None = None
    data_class: str | None = policy_field(
        "data_class", "data class", "string", default=None, rule="must be in `data_classes.known` when given"
    )  # fmt: skip
    upgrade: bool | None = policy_field(
        "upgrade",
        "this model or better: a flavor of a higher tier may serve a request that names a model "
        "(`%gpu v100+`); `false`: exactly the model",
        "boolean",
        default=None,
        default_doc="the policy's `upgrade_tiers`",
        rule="only with `gpu_model`",
    )
    waited_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["deadline"] = self.deadline.isoformat() if self.deadline else None
        return out


@dataclass(frozen=True)
class RuleResult:
    """One rule's evaluation, in the order the rules ran: what it looked at and what it concluded."""

    rule: str
    inputs: dict[str, Any]
    result: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """Where a GPU kernel should run, and the full explanation of why."""

    action: Action
    member: str | None = None
    flavor: str | None = None
    local_queue: str | None = None
    namespace: str | None = None
    gpu_model: str | None = None
    gpu_count: int = 0
    public: bool = False
    expected_wait_s: float | None = None
    price_per_hour: float = 0.0
    explanation: tuple[RuleResult, ...] = field(default_factory=tuple)
    summary: str = ""
    # The GPU model part of the decision (shown by ``%gpu``, ``%gpu explain`` and ``mlp-kernel place``; the
    # explanation's ``gpu_model`` rule carries the same in the status JSON): ``models`` are those the kernel
    # may get on ``flavor``; ``pin_label``/``pin_values`` the node label the pod is pinned by when the
    # request named a model of a flavor with several; ``upgraded_from`` the model asked for when a flavor
    # of a higher tier serves it ("V100 or better").
    models: tuple[str, ...] = ()
    pin_label: str | None = None
    pin_values: tuple[str, ...] = ()
    upgraded_from: str | None = None
    # Why a burst that the request allowed was refused: ``budget`` (a hard budget is used up) and/or
    # ``data_class`` (the class must stay private). The gateway writes these to the audit log.
    refused_for: tuple[str, ...] = ()

    @property
    def pinned_model(self) -> str | None:
        """The model the pod is pinned to by node label, or None when any model of the flavor will do."""
        return self.gpu_model if self.pin_label else None

    def gpu_text(self) -> str:
        """``H100 x1, pinned by nvidia.com/gpu.product``; ``A100 or H100 x1 instead of V100``; ``A100 x1``."""
        models = " or ".join(self.models) if self.models and not self.pin_label else self.gpu_model
        text = f"{models} x{self.gpu_count}"
        if self.upgraded_from:
            text += f" instead of {self.upgraded_from}"
        if self.pin_label:
            text += f", pinned by {self.pin_label} in ({', '.join(self.pin_values)})"
        return text

    def explain(self) -> str:
        """Human-readable explanation: the summary line, then each rule with its result and detail."""
        lines = [self.summary or f"{self.action.value}: {self.member or '-'} / {self.flavor or '-'}"]
        for i, r in enumerate(self.explanation, 1):
            text = f"  {i}. {r.rule}: {r.result}"
            if r.detail:
                text += f" ({r.detail})"
            lines.append(text)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "member": self.member,
            "flavor": self.flavor,
            "local_queue": self.local_queue,
            "namespace": self.namespace,
            "gpu_model": self.gpu_model,
            "gpu_count": self.gpu_count,
            "public": self.public,
            "expected_wait_s": self.expected_wait_s,
            "price_per_hour": self.price_per_hour,
            "summary": self.summary,
            "explanation": [r.to_json() for r in self.explanation],
            "refused_for": list(self.refused_for),
        }
