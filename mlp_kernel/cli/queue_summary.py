"""``mlp-kernel queue-summary``: publish one member's Workload counters for every gateway (issue 15).

Run once per member, as a Deployment with one replica (docs/samples/queue-summary/): it watches every
Workload of the member once, keeps them as the counters placement reads (``placement/adapters/workloads.py``)
and writes those every ``--period`` into one ConfigMap (``placement/adapters/summary.py``). Gateways whose
policy names that ConfigMap (``members.<name>.queue_summary``) watch it instead of the Workloads, so what each
gateway reads no longer grows with the number of Workloads. It writes every period even when nothing changed:
the publication time is how gateways tell a running publisher from a stopped one. While its own watch is
broken it writes nothing, so the summary goes stale and gateways count Workloads themselves.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes import client as k8s

from ..placement.adapters.summary import DEFAULT_PERIOD_S, encode, publish
from ..placement.adapters.watch_cache import MemberCache


class Publisher:
    """The Workload watch and the ConfigMap writes of one member."""

    def __init__(self, api: k8s.ApiClient, namespace: str, name: str, period_s: float = DEFAULT_PERIOD_S):
        self.api, self.namespace, self.name, self.period_s = api, namespace, name, period_s
        self.cache: MemberCache | None = None
        self.writes = 0
        self.stopping = threading.Event()
        self._rv: str | None = None

    def start(self) -> None:
        """List every Workload (raising the API's error, e.g. 403) and follow them."""
        from kubernetes import client as k8s

        from ..placement.adapters.live import served_version

        version = served_version(k8s.CustomObjectsApi(self.api))
        self.cache = MemberCache(self.api, version, "", kinds=(("workloads", "Workload", False),))
        self.cache.start()

    def publish_once(self, now: datetime | None = None) -> bool:
        """Write the counters as they are now; False (nothing written) while the watch is not synced."""
        from kubernetes.client.rest import ApiException

        cache = self.cache
        if cache is None or not cache.synced or self.stopping.is_set():
            return False
        with cache.lock:
            doc = encode(cache.counters, cache.bad, now or datetime.now(timezone.utc), self.period_s)
        try:
            self._rv = publish(self.api, self.namespace, self.name, doc, self._rv)
        except ApiException as exc:
            self._rv = None  # 409: someone else wrote it; read the current version next time
            if exc.status != 409:
                raise
            return False
        self.writes += 1
        return True

    def run(self) -> None:
        """Publish every period until ``stop``; an API error is reported and retried next period."""
        while not self.stopping.is_set():
            try:
                self.publish_once()
            except Exception as exc:  # the API server restarting, RBAC changed: say so, keep going
                print(
                    f"mlp-kernel queue-summary: cannot write {self.namespace}/{self.name}: {exc}", flush=True
                )
            self.stopping.wait(self.period_s)

    def stop(self) -> None:
        """No write starts after this returns; the Workload watch is shut."""
        self.stopping.set()
        if self.cache is not None:
            self.cache.stop()


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "queue-summary",
        help="publish a member's Workload counters in one ConfigMap that gateways watch",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--namespace", required=True, help="namespace of the summary ConfigMap")
    p.add_argument("--name", default="mlp-queue-summary", help="its name (default: mlp-queue-summary)")
    p.add_argument("--period", metavar="DURATION", default="10s", help="seconds between writes (default 10s)")
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default: the pod's service account)")
    p.add_argument("--context", metavar="CTX", help="kubeconfig context")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import kubernetes

    from . import duration_flag

    try:
        period = duration_flag("--period", args.period)
    except ValueError as exc:
        print(f"mlp-kernel queue-summary: {exc}", file=sys.stderr)
        return 2
    if period < 1:
        print("mlp-kernel queue-summary: --period: at least 1s", file=sys.stderr)
        return 2
    if args.kubeconfig or args.context:
        api = kubernetes.config.new_client_from_config(config_file=args.kubeconfig, context=args.context)
    else:
        kubernetes.config.load_incluster_config()
        api = kubernetes.client.ApiClient()
    publisher = Publisher(api, args.namespace, args.name, period)
    signal.signal(signal.SIGTERM, lambda *_: publisher.stopping.set())
    try:
        publisher.start()
        print(
            f"mlp-kernel queue-summary: publishing to {args.namespace}/{args.name} every {period:g} s",
            flush=True,
        )
        publisher.run()
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # cannot list Workloads (RBAC, Kueue not installed): say which and why
        print(f"mlp-kernel queue-summary: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        publisher.stop()
    return 0
