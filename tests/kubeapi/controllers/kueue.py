"""Kueue for plain Pods: the webhook, Workloads, quota admission, preemption and queue status.

What it reproduces (upstream names, see ../shared/reference/kueue-karmada.md):
- a Pod labelled ``kueue.x-k8s.io/queue-name`` gets, at creation, the scheduling gate
  ``kueue.x-k8s.io/admission``, the label ``kueue.x-k8s.io/managed=true`` and the finalizer of that name;
- a Workload ``pod-<podName>-<hash>`` labelled ``kueue.x-k8s.io/job-uid=<pod UID>``, owned by the Pod, whose
  conditions move QuotaReserved False (WaitingForQuota / NoMatchingFlavor / ExceedsMaxQuota / Inadmissible)
  -> QuotaReserved True + Admitted True, or Evicted (Preempted, ClusterQueueStopped, Deactivated);
- admission merges the flavor's ``nodeLabels`` into the pod's nodeSelector, appends its tolerations and
  removes the gate; finished or deleted pods free their quota and lose the finalizer;
- preemption deletes the pod (``preempt()`` from tests, or automatically within a ClusterQueue whose
  ``preemption.withinClusterQueue`` is LowerPriority when a higher-priority workload waits);
- ClusterQueue/LocalQueue status (Active, flavorsReservation/flavorsUsage, pending/reserving/admitted counts),
  ``stopPolicy`` Hold / HoldAndDrain on both queues.
Not reproduced: admission checks, TAS, fair sharing, pod groups, MultiKueue, requeue backoff.
"""

from __future__ import annotations

import hashlib
import itertools
from decimal import Decimal
from typing import Any

from ..conditions import condition, is_true, set_condition
from ..events import record_event
from ..quantities import fmt, pod_requests
from ..selectors import label_selector_matches
from ..store import Obj, now_iso
from .base import Controller
from .kueue_quota import Assignment, NoFit, Usage, add_usage, assign

GROUP = "kueue.x-k8s.io"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MANAGED_LABEL = "kueue.x-k8s.io/managed"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
GATE = "kueue.x-k8s.io/admission"
FINALIZER = "kueue.x-k8s.io/managed"
UNMANAGED_NAMESPACES = ("kube-system", "kueue-system")
TERMINAL = ("Succeeded", "Failed")


def workload_name(pod_name: str, pod_uid: str) -> str:
    digest = hashlib.sha1(f"Pod/{pod_uid}".encode()).hexdigest()[:5]
    return f"pod-{pod_name[:240]}-{digest}"


def is_reserving(wl: Obj) -> bool:
    return is_true(wl, "QuotaReserved") and not is_true(wl, "Finished")


class Kueue(Controller):
    name = "kueue"
    watches = (
        ("", "pods"),
        (GROUP, "workloads"),
        (GROUP, "clusterqueues"),
        (GROUP, "localqueues"),
        (GROUP, "resourceflavors"),
        (GROUP, "workloadpriorityclasses"),
    )
    resync = 1.0

    def __init__(self, server: Any):
        super().__init__(server)
        self._seq: dict[str, int] = {}
        self._counter = itertools.count()
        server.store.admission.insert(0, self._webhook)
        from .kueue_api import install

        install(server, self)

    def _t(self, plural: str) -> Any:
        return self.store.registry.get(GROUP if plural != "pods" else "", plural)

    # -- webhook -------------------------------------------------------------------------------------

    def _webhook(self, rtype: Any, obj: Obj) -> None:
        if rtype.key != ("", "pods"):
            return
        m = obj["metadata"]
        if not (m.get("labels") or {}).get(QUEUE_LABEL) or m.get("namespace") in UNMANAGED_NAMESPACES:
            return
        m["labels"][MANAGED_LABEL] = "true"
        gates = obj.setdefault("spec", {}).setdefault("schedulingGates", [])
        if not any(g.get("name") == GATE for g in gates):
            gates.append({"name": GATE})
        finalizers = m.setdefault("finalizers", [])
        if FINALIZER not in finalizers:
            finalizers.append(FINALIZER)

    # -- reconcile -----------------------------------------------------------------------------------

    def reconcile(self) -> None:
        pods = {
            p["metadata"]["uid"]: p
            for p in self.store.list(self._t("pods"))[0]
            if (p["metadata"].get("labels") or {}).get(MANAGED_LABEL) == "true"
        }
        workloads = self.store.list(self._t("workloads"))[0]
        by_pod = {(w["metadata"].get("labels") or {}).get(JOB_UID_LABEL): w for w in workloads}
        for uid, pod in pods.items():
            if (
                uid not in by_pod
                and not pod["metadata"].get("deletionTimestamp")
                and pod.get("status", {}).get("phase") not in TERMINAL
            ):
                created = self._create_workload(pod)
                if created is not None:
                    by_pod[uid] = created
        for uid, pod in pods.items():
            self._finish(pod, by_pod.get(uid))
        workloads = self.store.list(self._t("workloads"))[0]
        self._schedule(workloads, pods)
        workloads = self.store.list(self._t("workloads"))[0]
        self._ungate_admitted(workloads, pods)
        self._update_queue_status(workloads)

    def _create_workload(self, pod: Obj) -> Obj | None:
        m = pod["metadata"]
        priority, priority_ref = self._priority(pod)
        spec: dict[str, Any] = {
            "active": True,
            "queueName": m["labels"][QUEUE_LABEL],
            "podSets": [
                {
                    "name": "main",
                    "count": 1,
                    "template": {
                        "metadata": {
                            k: v
                            for k, v in (("labels", m.get("labels")), ("annotations", m.get("annotations")))
                            if v
                        },
                        "spec": pod["spec"],
                    },
                }
            ],
            "priority": priority,
        }
        if priority_ref:
            spec["priorityClassRef"] = priority_ref
        workload = {
            "apiVersion": f"{GROUP}/v1beta2",
            "kind": "Workload",
            "metadata": {
                "name": workload_name(m["name"], m["uid"]),
                "namespace": m["namespace"],
                "labels": {JOB_UID_LABEL: m["uid"]},
                "finalizers": [],
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": m["name"],
                        "uid": m["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
        }
        try:
            created = self.store.create(self._t("workloads"), workload)
        except Exception:  # noqa: BLE001 - created concurrently, or the namespace is going away
            return None
        record_event(
            self.store,
            pod,
            "CreatedWorkload",
            f"Created Workload: {m['namespace']}/{created['metadata']['name']}",
            component="kueue",
        )
        return created

    def _priority(self, pod: Obj) -> tuple[int, dict[str, str] | None]:
        name = (pod["metadata"].get("labels") or {}).get(PRIORITY_LABEL)
        if name:
            wpc = self.store.find(self._t("workloadpriorityclasses"), None, name)
            if wpc is not None:
                return int(wpc.get("value") or 0), {
                    "group": GROUP,
                    "kind": "WorkloadPriorityClass",
                    "name": name,
                }
        return int(pod["spec"].get("priority") or 0), None

    def _finish(self, pod: Obj, wl: Obj | None) -> None:
        """Finished or terminating pods free their quota and lose Kueue's finalizer."""
        phase = pod.get("status", {}).get("phase")
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        if phase not in TERMINAL and not terminating:
            return
        if wl is not None and not is_true(wl, "Finished"):
            reason = (
                "Succeeded" if phase == "Succeeded" else ("Failed" if phase == "Failed" else "OwnerDeleted")
            )
            message = {"Succeeded": "Job finished successfully", "Failed": "Job failed"}.get(
                reason, "The pod was deleted"
            )

            def finished(w: Obj) -> None:
                set_condition(
                    w.setdefault("status", {}),
                    "Finished",
                    "True",
                    reason,
                    message,
                    observedGeneration=w["metadata"].get("generation", 1),
                )

            self.store.mutate(
                self._t("workloads"), wl["metadata"]["namespace"], wl["metadata"]["name"], finished
            )
        if FINALIZER in (pod["metadata"].get("finalizers") or []):

            def drop(p: Obj) -> None:
                p["metadata"]["finalizers"] = [f for f in p["metadata"]["finalizers"] if f != FINALIZER]

            self.store.mutate(self._t("pods"), pod["metadata"]["namespace"], pod["metadata"]["name"], drop)

    # -- admission -----------------------------------------------------------------------------------

    def _order(self, wl: Obj) -> tuple[int, str, int]:
        seq = self._seq.setdefault(wl["metadata"]["uid"], next(self._counter))
        return (-int(wl["spec"].get("priority") or 0), wl["metadata"]["creationTimestamp"], seq)

    def usage(self, workloads: list[Obj]) -> Usage:
        usage: Usage = {}
        for wl in workloads:
            admission = (wl.get("status") or {}).get("admission")
            if not is_reserving(wl) or not admission:
                continue
            for psa in admission.get("podSetAssignments") or []:
                amounts = {
                    r: Decimal(str(v)) if not isinstance(v, str) else _q(v)
                    for r, v in (psa.get("resourceUsage") or {}).items()
                }
                add_usage(usage, admission["clusterQueue"], psa.get("flavors") or {}, amounts)
        return usage

    def pending_by_cq(self, workloads: list[Obj] | None = None) -> dict[str, list[Obj]]:
        """ClusterQueue name -> pending workloads in queue order (what the visibility API serves)."""
        if workloads is None:
            workloads = self.store.list(self._t("workloads"))[0]
        lqs = {
            (q["metadata"]["namespace"], q["metadata"]["name"]): q
            for q in self.store.list(self._t("localqueues"))[0]
        }
        out: dict[str, list[Obj]] = {}
        for wl in workloads:
            if is_reserving(wl) or is_true(wl, "Finished"):
                continue
            lq = lqs.get((wl["metadata"]["namespace"], wl["spec"].get("queueName")))
            if lq is None:
                continue
            out.setdefault(lq["spec"]["clusterQueue"], []).append(wl)
        for items in out.values():
            items.sort(key=self._order)
        return out

    def _schedule(self, workloads: list[Obj], pods: dict[str, Obj]) -> None:
        cqs = {c["metadata"]["name"]: c for c in self.store.list(self._t("clusterqueues"))[0]}
        lqs = {
            (q["metadata"]["namespace"], q["metadata"]["name"]): q
            for q in self.store.list(self._t("localqueues"))[0]
        }
        flavors = {f["metadata"]["name"]: f for f in self.store.list(self._t("resourceflavors"))[0]}
        namespaces = {
            n["metadata"]["name"]: n for n in self.store.list(self.store.registry.get("", "namespaces"))[0]
        }
        live = [w for w in workloads if not self._pod_gone(w, pods)]
        self._drain(live, cqs, lqs)
        usage = self.usage(live)
        blocked: set[str] = set()
        for wl in sorted(live, key=self._order):
            if is_reserving(wl) or is_true(wl, "Finished"):
                continue
            lq = lqs.get((wl["metadata"]["namespace"], wl["spec"].get("queueName")))
            problem = self._inadmissible(wl, lq, cqs, flavors, namespaces)
            if problem:
                self._pending(wl, "Inadmissible", problem)
                continue
            assert lq is not None
            cq = cqs[lq["spec"]["clusterQueue"]]
            cq_name = cq["metadata"]["name"]
            if cq_name in blocked:
                self._pending(
                    wl, "WaitingForQuota", "Waiting for earlier workloads in the StrictFIFO ClusterQueue"
                )
                continue
            template = wl["spec"]["podSets"][0]["template"]
            requests = pod_requests(template)
            result = assign(cq, list(cqs.values()), flavors, usage, template.get("spec") or {}, requests)
            if isinstance(result, Assignment):
                add_usage(usage, cq_name, result.flavors, result.usage)
                self._admit(wl, cq_name, result)
                continue
            assert isinstance(result, NoFit)
            if result.reason == "WaitingForQuota" and self._preempt_for(wl, cq, live, usage, flavors, cqs):
                self._pending(wl, "WaitingForQuota", result.message + "; preempting lower priority workloads")
                continue
            self._pending(wl, result.reason, result.message)
            if (cq.get("spec") or {}).get("queueingStrategy") == "StrictFIFO":
                blocked.add(cq_name)

    def _pod_gone(self, wl: Obj, pods: dict[str, Obj]) -> bool:
        pod = pods.get((wl["metadata"].get("labels") or {}).get(JOB_UID_LABEL, ""))
        return (
            pod is None
            or bool(pod["metadata"].get("deletionTimestamp"))
            or pod.get("status", {}).get("phase") in TERMINAL
        )

    def _inadmissible(
        self,
        wl: Obj,
        lq: Obj | None,
        cqs: dict[str, Obj],
        flavors: dict[str, Obj],
        namespaces: dict[str, Obj],
    ) -> str | None:
        if not wl["spec"].get("active", True):
            return "The workload is deactivated"
        if lq is None:
            return f"LocalQueue {wl['spec'].get('queueName')} doesn't exist"
        if (lq.get("spec") or {}).get("stopPolicy", "None") != "None":
            return f"LocalQueue {lq['metadata']['name']} is stopped"
        cq = cqs.get(lq["spec"].get("clusterQueue", ""))
        if cq is None:
            return f"ClusterQueue {lq['spec'].get('clusterQueue')} doesn't exist"
        if not self._cq_active(cq, flavors)[0]:
            return f"ClusterQueue {cq['metadata']['name']} is inactive"
        ns = namespaces.get(wl["metadata"]["namespace"], {})
        if not label_selector_matches(
            (cq.get("spec") or {}).get("namespaceSelector"), ns.get("metadata", {}).get("labels") or {}
        ):
            return "Workload namespace doesn't match ClusterQueue selector"
        return None

    def _cq_active(self, cq: Obj, flavors: dict[str, Obj]) -> tuple[bool, str, str]:
        if (cq.get("spec") or {}).get("stopPolicy", "None") != "None":
            return False, "Stopped", "Can't admit new workloads: ClusterQueue is stopped"
        for group in (cq.get("spec") or {}).get("resourceGroups") or []:
            for fq in group.get("flavors") or []:
                if fq["name"] not in flavors:
                    return (
                        False,
                        "FlavorNotFound",
                        f"Can't admit new workloads: references missing ResourceFlavor(s): {fq['name']}",
                    )
        return True, "Ready", "Can admit new workloads"

    def _pending(self, wl: Obj, reason: str, message: str) -> None:
        def apply(w: Obj) -> None:
            set_condition(
                w.setdefault("status", {}),
                "QuotaReserved",
                "False",
                reason,
                message,
                observedGeneration=w["metadata"].get("generation", 1),
            )

        self.store.mutate(self._t("workloads"), wl["metadata"]["namespace"], wl["metadata"]["name"], apply)

    def _admit(self, wl: Obj, cq: str, result: Assignment) -> None:
        assignment = {
            "name": "main",
            "count": 1,
            "flavors": dict(result.flavors),
            "resourceUsage": {r: fmt(q, r) for r, q in result.usage.items()},
        }

        def apply(w: Obj) -> None:
            st = w.setdefault("status", {})
            st["admission"] = {"clusterQueue": cq, "podSetAssignments": [assignment]}
            gen = w["metadata"].get("generation", 1)
            set_condition(
                st,
                "QuotaReserved",
                "True",
                "QuotaReserved",
                f"Quota reserved in ClusterQueue {cq}",
                observedGeneration=gen,
            )
            set_condition(
                st, "Admitted", "True", "Admitted", "The workload is admitted", observedGeneration=gen
            )
            for ctype in ("Evicted", "Preempted"):
                if condition(w, ctype) is not None:
                    set_condition(
                        st, ctype, "False", "QuotaReserved", "Previously: evicted", observedGeneration=gen
                    )

        updated = self.store.mutate(
            self._t("workloads"), wl["metadata"]["namespace"], wl["metadata"]["name"], apply
        )
        if updated is None:
            return
        record_event(
            self.store,
            updated,
            "QuotaReserved",
            f"Quota reserved in ClusterQueue {cq}, wait time since queued was {self._waited(wl)}s",
            component="kueue-admission",
        )
        record_event(
            self.store,
            updated,
            "Admitted",
            f"Admitted by ClusterQueue {cq}, wait time since reservation was 0s",
            component="kueue-admission",
        )

    def _ungate_admitted(self, workloads: list[Obj], pods: dict[str, Obj]) -> None:
        """Level-triggered second half of admission: inject the flavors' node labels and tolerations."""
        flavors = {f["metadata"]["name"]: f for f in self.store.list(self._t("resourceflavors"))[0]}
        for wl in workloads:
            if not is_reserving(wl) or not (wl.get("status") or {}).get("admission"):
                continue
            pod = pods.get((wl["metadata"].get("labels") or {}).get(JOB_UID_LABEL, ""))
            if pod is None or not any(
                g.get("name") == GATE for g in pod["spec"].get("schedulingGates") or []
            ):
                continue
            names: list[str] = []
            for psa in wl["status"]["admission"].get("podSetAssignments") or []:
                names += [f for f in (psa.get("flavors") or {}).values() if f not in names]
            used = [flavors[f] for f in names if f in flavors]

            def ungate(p: Obj, used: list[Obj] = used) -> None:
                spec = p["spec"]
                selector = spec.setdefault("nodeSelector", {})
                tolerations = spec.setdefault("tolerations", [])
                for flavor in used:
                    selector.update((flavor.get("spec") or {}).get("nodeLabels") or {})
                    for tol in (flavor.get("spec") or {}).get("tolerations") or []:
                        if tol not in tolerations:
                            tolerations.append(tol)
                spec["schedulingGates"] = [
                    g for g in spec.get("schedulingGates") or [] if g.get("name") != GATE
                ]
                if not spec["schedulingGates"]:
                    del spec["schedulingGates"]

            ungated = self.store.mutate(
                self._t("pods"), pod["metadata"]["namespace"], pod["metadata"]["name"], ungate
            )
            if ungated is not None:
                record_event(
                    self.store,
                    ungated,
                    "Started",
                    f"Admitted by clusterQueue {wl['status']['admission']['clusterQueue']}",
                    component="kueue-admission",
                )

    @staticmethod
    def _waited(wl: Obj) -> int:
        import datetime as dt

        created = dt.datetime.strptime(wl["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
        return max(0, int((dt.datetime.utcnow() - created).total_seconds()))

    # -- eviction and preemption ---------------------------------------------------------------------

    def preempt(
        self,
        namespace: str,
        pod_name: str,
        reason: str = "Preempted",
        message: str = "Preempted to accommodate a higher priority Workload",
    ) -> Obj:
        """Evict the pod's Workload and delete the pod, as Kueue does to a preempted plain Pod."""
        pod = self.store.get(self._t("pods"), namespace, pod_name)
        wl = next(
            (
                w
                for w in self.store.list(self._t("workloads"), namespace)[0]
                if (w["metadata"].get("labels") or {}).get(JOB_UID_LABEL) == pod["metadata"]["uid"]
            ),
            None,
        )
        if wl is not None:
            self._evict(wl, reason, message)
        self._stop_pod(pod, message)
        return pod

    def _evict(self, wl: Obj, reason: str, message: str) -> None:
        def apply(w: Obj) -> None:
            st = w.setdefault("status", {})
            gen = w["metadata"].get("generation", 1)
            set_condition(st, "Evicted", "True", reason, message, observedGeneration=gen)
            if reason == "Preempted":
                set_condition(st, "Preempted", "True", "InClusterQueue", message, observedGeneration=gen)
            set_condition(st, "QuotaReserved", "False", reason, message, observedGeneration=gen)
            if condition(w, "Admitted") is not None:
                set_condition(
                    st,
                    "Admitted",
                    "False",
                    "NoReservation",
                    "The workload has no reservation",
                    observedGeneration=gen,
                )
            st.pop("admission", None)

        updated = self.store.mutate(
            self._t("workloads"), wl["metadata"]["namespace"], wl["metadata"]["name"], apply
        )
        if updated is not None:
            record_event(self.store, updated, f"EvictedDueTo{reason}", message, component="kueue-admission")

    def _stop_pod(self, pod: Obj, message: str) -> None:
        def mark(p: Obj) -> None:
            set_condition(p.setdefault("status", {}), "TerminationTarget", "True", "StoppedByKueue", message)

        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        marked = self.store.mutate(self._t("pods"), ns, name, mark)
        if marked is not None:
            record_event(self.store, marked, "Stopped", message, component="kueue")
            try:
                self.store.delete(self._t("pods"), ns, name)
            except Exception:  # noqa: BLE001 - already gone
                pass

    def _preempt_for(
        self, wl: Obj, cq: Obj, live: list[Obj], usage: Usage, flavors: dict[str, Obj], cqs: dict[str, Obj]
    ) -> bool:
        policy = ((cq.get("spec") or {}).get("preemption") or {}).get("withinClusterQueue", "Never")
        if policy not in ("LowerPriority", "LowerOrNewerEqualPriority"):
            return False
        prio = int(wl["spec"].get("priority") or 0)
        cq_name = cq["metadata"]["name"]
        victims = sorted(
            (
                w
                for w in live
                if is_reserving(w)
                and w["status"]["admission"]["clusterQueue"] == cq_name
                and int(w["spec"].get("priority") or 0) < prio
            ),
            key=lambda w: (int(w["spec"].get("priority") or 0), w["metadata"]["creationTimestamp"]),
            reverse=False,
        )
        victims = sorted(victims, key=lambda w: int(w["spec"].get("priority") or 0))
        chosen: list[Obj] = []
        remaining = [w for w in live if w not in victims]
        template = wl["spec"]["podSets"][0]["template"]
        for victim in victims:
            chosen.append(victim)
            trial = self.usage(remaining + [v for v in victims if v not in chosen])
            if isinstance(
                assign(
                    cq, list(cqs.values()), flavors, trial, template.get("spec") or {}, pod_requests(template)
                ),
                Assignment,
            ):
                message = (
                    f"Preempted to accommodate a workload (UID: {wl['metadata']['uid']}, JobUID: "
                    f"{wl['metadata']['labels'].get(JOB_UID_LABEL)}) due to prioritization in the "
                    "ClusterQueue"
                )
                for v in chosen:
                    self._evict_and_stop(v, "Preempted", message)
                return True
        return False

    def _evict_and_stop(self, wl: Obj, reason: str, message: str) -> None:
        self._evict(wl, reason, message)
        uid = (wl["metadata"].get("labels") or {}).get(JOB_UID_LABEL)
        found = self.store.by_uid(uid) if uid else None
        if found is not None:
            self._stop_pod(found[1], message)

    def _drain(self, live: list[Obj], cqs: dict[str, Obj], lqs: dict[tuple[str, str], Obj]) -> None:
        for wl in live:
            if not is_reserving(wl):
                continue
            cq = cqs.get(wl["status"]["admission"]["clusterQueue"])
            lq = lqs.get((wl["metadata"]["namespace"], wl["spec"].get("queueName")))
            if cq is not None and (cq.get("spec") or {}).get("stopPolicy") == "HoldAndDrain":
                self._evict_and_stop(wl, "ClusterQueueStopped", "The ClusterQueue is stopped")
            elif lq is not None and (lq.get("spec") or {}).get("stopPolicy") == "HoldAndDrain":
                self._evict_and_stop(wl, "LocalQueueStopped", "The LocalQueue is stopped")
            elif not wl["spec"].get("active", True):
                self._evict_and_stop(wl, "Deactivated", "The workload is deactivated")

    # -- queue status --------------------------------------------------------------------------------

    def _update_queue_status(self, workloads: list[Obj]) -> None:
        cqs = self.store.list(self._t("clusterqueues"))[0]
        lqs = self.store.list(self._t("localqueues"))[0]
        flavors = {f["metadata"]["name"]: f for f in self.store.list(self._t("resourceflavors"))[0]}
        cq_names = {c["metadata"]["name"] for c in cqs}
        lq_of = {
            (q["metadata"]["namespace"], q["metadata"]["name"]): q["spec"].get("clusterQueue") for q in lqs
        }
        pending = self.pending_by_cq(workloads)
        for cq in cqs:
            name = cq["metadata"]["name"]
            mine = [
                w for w in workloads if is_reserving(w) and w["status"]["admission"]["clusterQueue"] == name
            ]
            usage = self.usage(mine).get(name, {})
            nominal = _nominal(cq)
            flavors_usage = [
                {
                    "name": f,
                    "resources": [
                        {
                            "name": r,
                            "total": fmt(usage.get(f, {}).get(r, Decimal(0)), r),
                            "borrowed": fmt(
                                max(Decimal(0), usage.get(f, {}).get(r, Decimal(0)) - nominal[f][r]), r
                            ),
                        }
                        for r in nominal[f]
                    ],
                }
                for f in nominal
            ]
            active, reason, message = self._cq_active(cq, flavors)
            counts = {
                "pendingWorkloads": len(pending.get(name, [])),
                "reservingWorkloads": len(mine),
                "admittedWorkloads": sum(1 for w in mine if is_true(w, "Admitted")),
            }

            def apply(
                c: Obj,
                fu: list[Any] = flavors_usage,
                counts: dict[str, int] = counts,
                cond: tuple[bool, str, str] = (active, reason, message),
            ) -> None:
                st = c.setdefault("status", {})
                st.update(counts)
                st["flavorsReservation"] = fu
                st["flavorsUsage"] = fu
                set_condition(
                    st,
                    "Active",
                    "True" if cond[0] else "False",
                    cond[1],
                    cond[2],
                    observedGeneration=c["metadata"].get("generation", 1),
                )

            self.store.mutate(self._t("clusterqueues"), None, name, apply)
        for lq in lqs:
            ns, name = lq["metadata"]["namespace"], lq["metadata"]["name"]
            mine = [
                w
                for w in workloads
                if w["metadata"]["namespace"] == ns and w["spec"].get("queueName") == name
            ]
            reserving = [w for w in mine if is_reserving(w)]
            cq_name = lq_of[(ns, name)]
            lq_usage: dict[str, dict[str, Decimal]] = {}
            for cq_usage in self.usage(reserving).values():
                for f, res in cq_usage.items():
                    for r, q in res.items():
                        lq_usage.setdefault(f, {})[r] = lq_usage.get(f, {}).get(r, Decimal(0)) + q
            fu = [
                {"name": f, "resources": [{"name": r, "total": fmt(q, r)} for r, q in sorted(res.items())]}
                for f, res in sorted(lq_usage.items())
            ]
            if cq_name not in cq_names:
                cond = ("False", "ClusterQueueDoesNotExist", "Can't submit new workloads to clusterQueue")
            elif (lq.get("spec") or {}).get("stopPolicy", "None") != "None":
                cond = ("False", "Stopped", "LocalQueue is stopped")
            else:
                cond = ("True", "Ready", "Can submit new workloads to localQueue")
            counts = {
                "pendingWorkloads": sum(
                    1 for w in mine if not is_reserving(w) and not is_true(w, "Finished")
                ),
                "reservingWorkloads": len(reserving),
                "admittedWorkloads": sum(1 for w in reserving if is_true(w, "Admitted")),
            }

            def apply_lq(
                q: Obj, fu: list[Any] = fu, counts: dict[str, int] = counts, cond: tuple[str, str, str] = cond
            ) -> None:
                st = q.setdefault("status", {})
                st.update(counts)
                st["flavorsReservation"] = fu
                st["flavorsUsage"] = fu
                set_condition(st, "Active", *cond, observedGeneration=q["metadata"].get("generation", 1))

            self.store.mutate(self._t("localqueues"), ns, name, apply_lq)


def _nominal(cq: Obj) -> dict[str, dict[str, Decimal]]:
    out: dict[str, dict[str, Decimal]] = {}
    for group in (cq.get("spec") or {}).get("resourceGroups") or []:
        for fq in group.get("flavors") or []:
            for rq in fq.get("resources") or []:
                out.setdefault(fq["name"], {})[rq["name"]] = _q(rq.get("nominalQuota"))
    return out


def _q(value: Any) -> Decimal:
    from ..quantities import quantity

    return quantity(value)


__all__ = ["Kueue", "workload_name", "now_iso"]
