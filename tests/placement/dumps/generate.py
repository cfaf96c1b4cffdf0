"""Regenerate the ``kubectl get -o yaml``-shaped dumps the placement scenario tests read.

The dumps are committed (tests read the files, as an admin's dumps would be read); this script documents how
they were made and rebuilds them: ``.venv/bin/python tests/placement/dumps/generate.py``. Every object is
validated against the upstream CRD schemas in tests (test_samples.py), so the shapes stay real.

The scene, at NOW = 2026-11-28T12:00:00Z:
- private member, ClusterQueue ``gpu-private`` (cohort ``gpu``): bronze 8/8 GPUs used, silver 6/8 used.
  Peer ClusterQueue ``training`` in the same cohort: bronze 4/4 used, silver 4/4 used (nothing to borrow).
  Six workloads were admitted on bronze in the last hour (one every 10 min); three pending workloads are
  pinned to bronze and one is unpinned, so a new bronze request is 5th: ~50 min at medium confidence.
- aws member, ClusterQueue ``gpu-aws``: gold 4/16 used.
- Karmada: both Clusters Ready.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
GPU = "nvidia.com/gpu"


def ts(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(
    name: str, namespace: str | None = None, minutes_ago: float = 60 * 24 * 30, uid: int = 0
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "creationTimestamp": ts(minutes_ago),
        "generation": 1,
        "resourceVersion": str(1000 + uid),
        "uid": f"7c9e6679-7425-40de-944b-e07fc1f9{uid:04d}",
    }
    if namespace:
        out["namespace"] = namespace
    return out


def flavor(name: str, taint: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeLabels": {"mlp.io/gpu-tier": name}}
    if taint:
        spec["nodeTaints"] = [{"key": "mlp.io/gpu-tier", "value": name, "effect": "NoSchedule"}]
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ResourceFlavor",
        "metadata": meta(name),
        "spec": spec,
    }


def cluster_queue(
    name: str, cohort: str | None, quotas: dict[str, tuple[int, int]], pending: int, admitted: int
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "namespaceSelector": {},
        "queueingStrategy": "BestEffortFIFO",
        "resourceGroups": [
            {
                "coveredResources": ["cpu", "memory", GPU],
                "flavors": [
                    {
                        "name": f,
                        "resources": [
                            {"name": "cpu", "nominalQuota": 12 * q},
                            {"name": "memory", "nominalQuota": f"{96 * q}Gi"},
                            {"name": GPU, "nominalQuota": q},
                        ],
                    }
                    for f, (q, _) in quotas.items()
                ],
            }
        ],
        "preemption": {"withinClusterQueue": "Never", "reclaimWithinCohort": "Never"},
        "stopPolicy": "None",
    }
    if cohort:
        spec["cohortName"] = cohort
    usage = [
        {
            "name": f,
            "resources": [
                {"name": "cpu", "total": 4 * u, "borrowed": 0},
                {"name": "memory", "total": f"{16 * u}Gi", "borrowed": 0},
                {"name": GPU, "total": u, "borrowed": 0},
            ],
        }
        for f, (_, u) in quotas.items()
    ]
    status = {
        "conditions": [
            {
                "type": "Active",
                "status": "True",
                "reason": "Ready",
                "message": "Can admit new workloads",
                "lastTransitionTime": ts(60 * 24 * 30),
                "observedGeneration": 1,
            }
        ],
        "flavorsReservation": copy.deepcopy(usage),
        "flavorsUsage": usage,
        "pendingWorkloads": pending,
        "reservingWorkloads": admitted,
        "admittedWorkloads": admitted,
    }
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ClusterQueue",
        "metadata": meta(name),
        "spec": spec,
        "status": status,
    }


def local_queue(name: str, namespace: str, cq: str, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "LocalQueue",
        "metadata": meta(name, namespace),
        "spec": {"clusterQueue": cq, "stopPolicy": "None"},
        "status": {
            "conditions": [
                {
                    "type": "Active",
                    "status": "True",
                    "reason": "Ready",
                    "message": "Can submit new workloads to localQueue",
                    "lastTransitionTime": ts(60 * 24 * 30),
                    "observedGeneration": 1,
                }
            ],
            "pendingWorkloads": 0,
            "reservingWorkloads": sum(usage.values()),
            "admittedWorkloads": sum(usage.values()),
            "flavorsUsage": [{"name": f, "resources": [{"name": GPU, "total": u}]} for f, u in usage.items()],
        },
    }


def workload(
    name: str,
    namespace: str,
    queue: str,
    minutes_ago: float,
    pin: str | None,
    gpus: int = 1,
    admitted_on: tuple[str, str, float] | None = None,
    uid: int = 0,
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {
        "containers": [
            {
                "name": "kernel",
                "image": "quay.io/jupyter/pytorch-notebook:cuda12-2026-11-01",
                "resources": {
                    "requests": {"cpu": "4", "memory": "16Gi", GPU: str(gpus)},
                    "limits": {GPU: str(gpus)},
                },
            }
        ],
        "restartPolicy": "Never",
    }
    if pin:
        pod_spec["nodeSelector"] = {"mlp.io/gpu-tier": pin}
    w: dict[str, Any] = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {
            **meta(f"pod-{name}-{uid:05x}", namespace, minutes_ago, uid),
            "labels": {"kueue.x-k8s.io/job-uid": f"3f1d{uid:04d}"},
        },
        "spec": {
            "active": True,
            "queueName": queue,
            "priority": 0,
            "podSets": [{"name": "main", "count": 1, "template": {"spec": pod_spec}}],
        },
    }
    if admitted_on:
        cq, fl, at = admitted_on
        w["status"] = {
            "admission": {
                "clusterQueue": cq,
                "podSetAssignments": [
                    {
                        "name": "main",
                        "count": 1,
                        "flavors": {"cpu": fl, "memory": fl, GPU: fl},
                        "resourceUsage": {"cpu": "4", "memory": "16Gi", GPU: str(gpus)},
                    }
                ],
            },
            "conditions": [
                {
                    "type": "QuotaReserved",
                    "status": "True",
                    "reason": "QuotaReserved",
                    "message": f"Quota reserved in ClusterQueue {cq}",
                    "lastTransitionTime": ts(at),
                    "observedGeneration": 1,
                },
                {
                    "type": "Admitted",
                    "status": "True",
                    "reason": "Admitted",
                    "message": "The workload is admitted",
                    "lastTransitionTime": ts(at),
                    "observedGeneration": 1,
                },
            ],
        }
    else:
        w["status"] = {
            "conditions": [
                {
                    "type": "QuotaReserved",
                    "status": "False",
                    "reason": "Pending",
                    "message": f"couldn't assign flavors to pod set main: insufficient unused quota for {GPU}",  # noqa: E501
                    "lastTransitionTime": ts(minutes_ago),
                    "observedGeneration": 1,
                }
            ]
        }
    return w


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def private_objects() -> list[dict[str, Any]]:
    items = [flavor("bronze"), flavor("silver")]
    items.append(
        cluster_queue("gpu-private", "gpu", {"bronze": (8, 8), "silver": (8, 6)}, pending=4, admitted=14)
    )
    items.append(
        cluster_queue("training", "gpu", {"bronze": (4, 4), "silver": (4, 4)}, pending=0, admitted=8)
    )
    items.append(local_queue("kernels", "jupyter", "gpu-private", {"bronze": 8, "silver": 6}))
    items.append(local_queue("training", "ml", "training", {"bronze": 4, "silver": 4}))
    uid = 1
    for i in range(6):  # admitted on bronze over the last hour, one every 10 minutes
        items.append(
            workload(
                f"kernel-b{i}",
                "jupyter",
                "kernels",
                70 + i,
                "bronze",
                admitted_on=("gpu-private", "bronze", 5 + 10 * i),
                uid=uid,
            )
        )
        uid += 1
    for i in range(2):  # admitted on bronze long ago
        items.append(
            workload(
                f"kernel-old{i}",
                "jupyter",
                "kernels",
                300,
                "bronze",
                admitted_on=("gpu-private", "bronze", 200 + i),
                uid=uid,
            )
        )
        uid += 1
    for i in range(6):
        items.append(
            workload(
                f"kernel-s{i}",
                "jupyter",
                "kernels",
                120,
                "silver",
                admitted_on=("gpu-private", "silver", 100 + 5 * i),
                uid=uid,
            )
        )
        uid += 1
    for i in range(3):  # pending, pinned to bronze
        items.append(workload(f"kernel-p{i}", "jupyter", "kernels", 30 - 5 * i, "bronze", uid=uid))
        uid += 1
    items.append(workload("kernel-any", "jupyter", "kernels", 8, None, uid=uid))  # pending, any flavor
    return items


def to_v1beta1(obj: dict[str, Any]) -> dict[str, Any]:
    """The same object as a v1beta1-only cluster serves it."""
    o = copy.deepcopy(obj)
    if not o["apiVersion"].startswith("kueue.x-k8s.io/"):
        return o
    o["apiVersion"] = "kueue.x-k8s.io/v1beta1"
    if o["kind"] == "ClusterQueue" and "cohortName" in o["spec"]:
        o["spec"]["cohort"] = o["spec"].pop("cohortName")
    if o["kind"] == "LocalQueue":
        o["status"]["flavorUsage"] = o["status"].pop("flavorsUsage")
    return o


def aws_objects() -> list[dict[str, Any]]:
    return [
        flavor("gold", taint=True),
        cluster_queue("gpu-aws", None, {"gold": (16, 4)}, pending=0, admitted=4),
        local_queue("kernels", "jupyter", "gpu-aws", {"gold": 4}),
    ] + [
        workload(
            f"kernel-g{i}",
            "jupyter",
            "kernels",
            50,
            "gold",
            admitted_on=("gpu-aws", "gold", 40 + i),
            uid=100 + i,
        )
        for i in range(4)
    ]


def karmada_cluster(name: str, ready: bool, provider: str, region: str) -> dict[str, Any]:
    cond = (
        {
            "type": "Ready",
            "status": "True",
            "reason": "ClusterReady",
            "message": "cluster is healthy and ready to accept workloads",
        }
        if ready
        else {
            "type": "Ready",
            "status": "False",
            "reason": "ClusterNotReachable",
            "message": "cluster is not reachable",
        }
    )
    cond["lastTransitionTime"] = ts(600)
    return {
        "apiVersion": "cluster.karmada.io/v1alpha1",
        "kind": "Cluster",
        "metadata": meta(name),
        "spec": {
            "syncMode": "Push",
            "apiEndpoint": f"https://{name}.example.internal:6443",
            "provider": provider,
            "region": region,
            "id": f"{name}-cluster-id",
        },
        "status": {
            "kubernetesVersion": "v1.34.1",
            "conditions": [cond],
            "resourceSummary": {
                "allocatable": {"cpu": "256", "memory": "2Ti", GPU: "16"},
                "allocated": {"cpu": "100", "memory": "800Gi", GPU: "12"},
            },
        },
    }


def pending_summary() -> dict[str, Any]:
    """Output of `kubectl get --raw` on the visibility API pendingworkloads path of gpu-private."""
    names = ["kernel-p0", "kernel-p1", "kernel-p2", "kernel-any", "kernel-mine"]
    return {
        "kind": "PendingWorkloadsSummary",
        "apiVersion": "visibility.kueue.x-k8s.io/v1beta2",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": n, "namespace": "jupyter", "creationTimestamp": ts(30 - 5 * i)},
                "priority": 0,
                "localQueueName": "kernels",
                "positionInClusterQueue": i,
                "positionInLocalQueue": i,
            }
            for i, n in enumerate(names)
        ],
    }


def write(name: str, doc: Any, fmt: str = "yaml") -> None:
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as fh:
        if fmt == "json":
            json.dump(doc, fh, indent=2)
            fh.write("\n")
        else:
            yaml.safe_dump(doc, fh, sort_keys=False)


if __name__ == "__main__":
    write("private-v1beta2.yaml", as_list(private_objects()))
    write("private-v1beta1.yaml", as_list([to_v1beta1(o) for o in private_objects()]))
    write("aws.yaml", as_list(aws_objects()))
    write(
        "karmada-clusters.yaml",
        as_list(
            [
                karmada_cluster("private", True, "onprem", "eu-west"),
                karmada_cluster("aws", True, "aws", "eu-west-1"),
            ]
        ),
    )
    write("private-pending.json", pending_summary(), fmt="json")
