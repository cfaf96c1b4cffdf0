"""The errors a user sees in a cell: each class name is the ``ename`` of the error output.

A cell that fails for a reason of GPU (auto)'s own (not the user's code) ends with an ``error`` output and
reply whose ``ename`` says which kind of failure it is, so users, notebooks that catch it in tests, and the
docs name one thing. Raising the class is how a call site says which; no call site spells an ``ename``.

    GpuError
    ├── GpuMagicError          a %gpu line is wrong (unknown option, out of range)
    ├── GpuPolicyError         the admin's policy or kernelspec is broken (named file and field)
    ├── GpuStartError          no GPU kernel could be started
    │   ├── GpuPlacementRejected  placement says nothing may serve the request (and what to change)
    │   ├── GpuStartTimeout       nothing started within the policy's launch_timeout
    │   └── GpuStartCancelled     the user interrupted the start (shown as KeyboardInterrupt, as Python does)
    ├── GpuKernelLost          the GPU kernel ended mid-cell (crash, OOM kill, preemption, eviction)
    ├── NoGpuKernel            a request only a running kernel answers (debugger, subshells), none runs
    └── GatewayError           a bug of the gateway's own; the kernel stays usable
"""

from __future__ import annotations


class GpuError(Exception):
    """A failure of GPU (auto) shown in a cell; ``ename`` is the class name unless the class overrides it."""

    ename_override: str | None = None

    @property
    def ename(self) -> str:
        return self.ename_override or type(self).__name__


class GpuMagicError(GpuError, ValueError):
    pass


class GpuPolicyError(GpuError):
    pass


class GpuStartError(GpuError):
    pass


class GpuPlacementRejected(GpuStartError):
    pass


class GpuStartTimeout(GpuStartError):
    pass


class GpuStartCancelled(GpuStartError):
    ename_override = "KeyboardInterrupt"  # what an interrupted cell shows in any Python kernel


class GpuKernelLost(GpuError):
    pass


class NoGpuKernel(GpuError):
    pass


class GatewayError(GpuError):
    pass
