"""Kubernetes API calls from async code: off the event loop, retried on transient failures.

The official client is synchronous; each call runs in a worker thread (``asyncio.to_thread``) so the gateway's
event loop keeps relaying frames while a create or a list is in flight. Transient failures (HTTP 429 and 5xx,
dropped connections) are retried with jittered exponential backoff; everything else is raised at once.
A create retried after a lost response may meet its own object (HTTP 409): callers adopt it, which is why pod
names are deterministic.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
REQUEST_TIMEOUT_S = 30.0


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in RETRYABLE_STATUS or exc.status == 0
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def status_of(exc: BaseException) -> int | None:
    return exc.status if isinstance(exc, ApiException) else None


async def call(
    fn: Callable[..., T],
    *args: Any,
    attempts: int = 6,
    base_delay_s: float = 0.2,
    max_delay_s: float = 5.0,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)`` in a thread, retried up to ``attempts`` times on transient failures."""
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT_S)
    for attempt in range(attempts):
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except Exception as exc:
            if not is_transient(exc) or attempt == attempts - 1:
                raise
        delay = min(max_delay_s, base_delay_s * 2**attempt)
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")


def _json(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    resp = fn(*args, _preload_content=False, **kwargs)
    status = getattr(resp, "status", 200)
    if not 200 <= status <= 299:
        exc = ApiException(status=status, reason=getattr(resp, "reason", ""), http_resp=None)
        exc.body = resp.data  # the Status object: its message says why (describe quotes it for 5xx)
        raise exc from None
    return json.loads(resp.data) if resp.data else {}


async def call_json(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Like ``call`` for an API method, but the answer is the response's JSON (plain dicts, not models),
    and a non-2xx answer raises ``ApiException`` with its status."""
    return await call(_json, fn, *args, **kwargs)


#: how the API server words a refusal by an admission plugin: a ValidatingAdmissionPolicy, a webhook
ADMISSION_MARKERS = ("ValidatingAdmissionPolicy '", "admission webhook ")


def describe(exc: BaseException, action: str, where: str, echo_body: bool = True) -> str:
    """A message users can act on for a failed call: what failed, why, what to do.

    ``echo_body=False`` for calls that carried secret data: the API server's rejection may quote it.
    """
    status = status_of(exc)
    refusal = _status_message(exc, 1000) if echo_body and status in (400, 403, 422) else ""
    if any(m in refusal for m in ADMISSION_MARKERS):
        # An admission policy's refusal (docs/samples/admission, Gatekeeper) is a 403 or 422 like RBAC's or
        # the schema's, but only its own message says what to do: the cluster's rule, quoted whole.
        return f"The cluster refused to {action} on {where}: {refusal}"
    if status == 403:
        return (
            f"Cannot {action} on {where}: mlp-kernel's service account is not allowed to (403 Forbidden). "
            "Ask your admin to apply the RBAC in docs/samples/rbac/ to that namespace."
        )
    if status == 401:
        return (
            f"Cannot {action} on {where}: the credentials were rejected (401). "
            "Check the kubeconfig context or token configured for that member."
        )
    if status == 404:
        return (
            f"Cannot {action} on {where}: not found (404). Check the namespace and that the API is installed."
        )
    if status == 422 or status == 400:
        reason = (getattr(exc, "body", "") or str(exc)) if echo_body else "details withheld (secret data)"
        return (
            f"Cannot {action} on {where}: the API server rejected the object ({status}): {reason}. "
            "Run `mlp-kernel render` to see the object and fix the pod template."
        )
    if status is not None:
        reason = getattr(exc, "reason", "")
        # a 5xx's own message is often the real cause, e.g. Karmada's cluster proxy answers 500 with "dial tcp
        # ...: connection refused" when the member's API server is down (it does not look at Ready itself)
        detail = _status_message(exc) if echo_body and status >= 500 else ""
        return (
            f"Cannot {action} on {where}: the API server answered {status} {reason}"
            + (f" ({detail})" if detail else "")
            + ". Try again."
        )
    return (
        f"Cannot {action} on {where}: {exc}. Check that the member's API server is reachable, then try again."
    )


def _status_message(exc: BaseException, limit: int = 300) -> str:
    """The ``message`` of the Status object an API error carries (at most ``limit`` characters), or ""."""
    body = getattr(exc, "body", None)
    try:
        message = json.loads(body).get("message") if body else None
    except (ValueError, AttributeError):
        return ""
    return str(message)[:limit] if message else ""
