"""A kubelet that runs each bound pod's first container as a local subprocess.

What a pod needs to really run here: its first container's ``command`` + ``args`` (no image entrypoints:
there are no images; ``command_aliases`` maps e.g. ``python`` to this interpreter), its ``env`` (values,
``secretKeyRef``, ``configMapKeyRef``, ``fieldRef``, ``envFrom``, with ``$(VAR)`` expansion) and its Secret /
ConfigMap / emptyDir / PersistentVolumeClaim volumes. Volumes are materialised under a per-pod temp directory
(a claim is one host directory shared by every pod that mounts it, see ``claims.py``) and every
``mountPath`` prefix in command, args, env values and workingDir is rewritten to that directory, so a
container that reads ``/etc/kernel/connection.json`` finds the file; ``MLP_TEST_MOUNT_ROOT`` names the root.

Pod status follows the process (Pending/ContainerCreating -> Running with podIP 127.0.0.1 -> Succeeded or
Failed with the exit code) and Events are emitted like a kubelet's (Pulling, Pulled, Created, Started,
Killing, FailedMount); a container that fails under ``terminationMessagePolicy: FallbackToLogsOnError``
gets the end of its log as ``terminated.message``. Deleting a pod sends SIGTERM to its process group, then
SIGKILL after the grace period (capped by ``max_grace``). ``oom_kill`` fakes an OOM kill. Containers are
never restarted.

Native sidecars (``initContainers`` with ``restartPolicy: Always``) run as processes of their own, started
before the first container and stopped after it, as a kubelet does; other init containers are not run. A pod
annotated ``test.mlp.io/netns: <name>`` (test-only) runs all its processes in that existing network namespace
(``ip netns exec``) and its podIP is that namespace's address: a pod reachable only over its own network, as
the ingress transport's tests need (tests/cluster/test_ingress_real.py).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..conditions import set_condition
from ..events import record_event
from ..store import Event, Obj, now_iso
from .base import Controller
from .claims import ClaimVolumes
from .container_setup import ContainerConfigError, environment, expand, materialise_volumes, rewrite

TERMINAL = ("Succeeded", "Failed")
NETNS_ANNOTATION = "test.mlp.io/netns"
#: every live container process of every kubelet in this interpreter, killed at exit if a test crashed
_LIVE: dict[int, subprocess.Popen[bytes]] = {}


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE.values()):
        _kill_group(proc, signal.SIGKILL)


@dataclass
class PodRun:
    namespace: str
    name: str
    uid: str
    root: Path
    proc: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None
    terminate: threading.Event = field(default_factory=threading.Event)
    grace: float = 30.0
    kill_reason: str | None = None
    started_at: str | None = None
    log_path: Path | None = None
    done: threading.Event = field(default_factory=threading.Event)
    sidecars: list[subprocess.Popen[bytes]] = field(default_factory=list)


class Kubelet(Controller):
    name = "kubelet"
    watches = (("", "pods"),)
    resync = 1.0

    def __init__(
        self,
        server: Any,
        *,
        root_dir: str | Path | None = None,
        pull_delays: dict[str, float] | None = None,
        default_pull_delay: float = 0.0,
        command_aliases: dict[str, str] | None = None,
        max_grace: float = 10.0,
        extra_env: dict[str, str] | None = None,
        inherit_env: bool = False,
    ):
        super().__init__(server)
        self._own_root = root_dir is None
        self.root = Path(root_dir or tempfile.mkdtemp(prefix=f"kubelet-{server.name}-"))
        self.root.mkdir(parents=True, exist_ok=True)
        #: seconds to spend "pulling" each image (exact image string -> seconds)
        self.pull_delays = dict(pull_delays or {})
        self.default_pull_delay = default_pull_delay
        self.command_aliases = {
            "python": sys.executable,
            "python3": sys.executable,
            **(command_aliases or {}),
        }
        self.max_grace = max_grace
        self.extra_env = dict(extra_env or {})
        self.inherit_env = inherit_env
        self.runs: dict[str, PodRun] = {}
        #: PersistentVolumeClaim directories and view-root links (``claims.view_path``, ``claims.directory``)
        self.claims = ClaimVolumes(self.store, self.root)
        self._lock = threading.Lock()
        server.rest.add_route("", "pods", "log", self._log_route)

    # -- controller ----------------------------------------------------------------------------------

    def handle(self, events: list[Event]) -> None:
        for event in events:
            if event.type == "DELETED":
                run = self.runs.get(event.new["metadata"]["uid"])
                if run is not None:
                    self._request_stop(
                        run, grace=float(event.new["metadata"].get("deletionGracePeriodSeconds") or 0)
                    )

    def reconcile(self) -> None:
        pods, _ = self.store.list(self.store.registry.get("", "pods"))
        for pod in pods:
            m, spec = pod["metadata"], pod["spec"]
            phase = pod.get("status", {}).get("phase")
            if not spec.get("nodeName") or phase in TERMINAL:
                continue
            run = self.runs.get(m["uid"])
            if m.get("deletionTimestamp"):
                if run is None:
                    self._finish_unstarted(pod)
                else:
                    self._request_stop(run, grace=float(m.get("deletionGracePeriodSeconds") or 0))
            elif run is None:
                self._start(pod)
        self.claims.prune()

    def stop(self) -> None:
        super().stop()
        with self._lock:
            runs = list(self.runs.values())
        for run in runs:
            run.kill_reason = run.kill_reason or "Killing"
            run.terminate.set()
            _kill_group(run.proc, signal.SIGKILL)
            for sidecar in run.sidecars:
                _kill_group(sidecar, signal.SIGKILL)
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=10)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- faults and test hooks -----------------------------------------------------------------------

    def oom_kill(self, namespace: str, name: str) -> None:
        """Kill the pod's process as the kernel's OOM killer would: status reason OOMKilled, exit code 137."""
        run = self._run_for(namespace, name)
        run.kill_reason = "OOMKilled"
        _kill_group(run.proc, signal.SIGKILL)

    def process(self, namespace: str, name: str) -> subprocess.Popen[bytes] | None:
        return self._run_for(namespace, name).proc

    def pids(self) -> list[int]:
        return [r.proc.pid for r in self.runs.values() if r.proc is not None and r.proc.poll() is None]

    def _run_for(self, namespace: str, name: str) -> PodRun:
        for run in list(self.runs.values()):
            if run.namespace == namespace and run.name == name and not run.done.is_set():
                return run
        raise KeyError(f"pod {namespace}/{name} is not running on the test kubelet of {self.server.name!r}")

    # -- lifecycle of one pod ------------------------------------------------------------------------

    def _start(self, pod: Obj) -> None:
        m = pod["metadata"]
        root = self.root / f"{m['namespace']}_{m['name']}_{m['uid'][:8]}"
        run = PodRun(m["namespace"], m["name"], m["uid"], root)
        run.thread = threading.Thread(
            target=self._run_pod, args=(run, pod), daemon=True, name=f"kubelet-{m['name']}"
        )
        with self._lock:
            self.runs[m["uid"]] = run
        run.thread.start()

    def _request_stop(self, run: PodRun, grace: float) -> None:
        if run.terminate.is_set():
            return
        run.grace = min(grace, self.max_grace)
        run.kill_reason = run.kill_reason or "Killing"
        run.terminate.set()

    def _finish_unstarted(self, pod: Obj) -> None:
        self._update(
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            pod["metadata"]["uid"],
            lambda p: p["status"].__setitem__("phase", "Failed"),
        )

    def _run_pod(self, run: PodRun, pod: Obj) -> None:
        try:
            self._run_pod_inner(run, pod)
        except Exception as exc:  # surface kubelet bugs as a failed pod, not a silent hang
            self.errors.append(repr(exc))
            self._terminated(run, pod, 128, "StartError", str(exc))
        finally:
            if run.proc is not None:
                _LIVE.pop(run.proc.pid, None)
            self._stop_sidecars(run)
            self.claims.release(run.uid)
            run.done.set()
            with self._lock:
                self.runs.pop(run.uid, None)

    def _run_pod_inner(self, run: PodRun, pod: Obj) -> None:
        container = pod["spec"]["containers"][0]
        cname, image = container["name"], container.get("image", "")
        node = pod["spec"]["nodeName"]
        self._set_waiting(run, pod, "ContainerCreating", None)
        record_event(
            self.store,
            pod,
            "Pulling",
            f'Pulling image "{image}"',
            host=node,
            field_path=f"spec.containers{{{cname}}}",
        )
        delay = self.pull_delays.get(image, self.default_pull_delay)
        if run.terminate.wait(delay):
            return self._terminated(run, pod, 137, "ContainerStatusUnknown", "killed before start")
        record_event(
            self.store,
            pod,
            "Pulled",
            f'Successfully pulled image "{image}" in {delay:.3f}s '
            f"({delay:.3f}s including waiting). Image size: 0 bytes.",
            host=node,
            field_path=f"spec.containers{{{cname}}}",
        )
        last_error = None
        while True:
            current = self.store.find(self.store.registry.get("", "pods"), run.namespace, run.name)
            if current is None or current["metadata"]["uid"] != run.uid:
                return None
            try:
                argv, env, cwd = self._prepare(run, current, container)
                sidecars = [(c, *self._prepare(run, current, c)) for c in _sidecars(current)]
                break
            except ContainerConfigError as exc:
                if exc.message != last_error:
                    last_error = exc.message
                    reason = "FailedMount" if exc.reason == "FailedMount" else "Failed"
                    record_event(self.store, current, reason, exc.message, type_="Warning", host=node)
                    self._set_waiting(run, current, exc.waiting, exc.message)
                if run.terminate.wait(0.5):
                    return self._terminated(run, pod, 137, "ContainerStatusUnknown", "killed before start")
        record_event(
            self.store,
            pod,
            "Created",
            f"Created container: {cname}",
            host=node,
            field_path=f"spec.containers{{{cname}}}",
        )
        netns = (pod["metadata"].get("annotations") or {}).get(NETNS_ANNOTATION)
        wrap = ["ip", "netns", "exec", netns] if netns else []
        for sidecar, s_argv, s_env, s_cwd in sidecars:
            self._start_sidecar(run, pod, sidecar, wrap + s_argv, s_env, s_cwd, node)
        run.log_path = run.root / "container.log"
        with open(run.log_path, "ab") as log:
            try:
                run.proc = subprocess.Popen(
                    wrap + argv,
                    env=env,
                    cwd=cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                record_event(
                    self.store,
                    pod,
                    "Failed",
                    f"Error: failed to start container {cname!r}: {exc}",
                    type_="Warning",
                    host=node,
                )
                return self._terminated(run, pod, 128, "StartError", str(exc))
        _LIVE[run.proc.pid] = run.proc
        run.started_at = now_iso()
        record_event(
            self.store,
            pod,
            "Started",
            f"Started container {cname}",
            host=node,
            field_path=f"spec.containers{{{cname}}}",
        )
        self._set_running(run, pod)
        code = self._wait(run, pod, cname, node)
        reason = (
            run.kill_reason if run.kill_reason == "OOMKilled" else ("Completed" if code == 0 else "Error")
        )
        if run.kill_reason == "OOMKilled":
            code = 137
        message = None
        if code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = _log_tail(run.log_path)
        return self._terminated(run, pod, code, reason, message)

    def _start_sidecar(
        self,
        run: PodRun,
        pod: Obj,
        container: dict[str, Any],
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        node: str,
    ) -> None:
        """A native sidecar: its own process (and log), started before the pod's first container."""
        with open(run.root / f"{container['name']}.log", "ab") as log:
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        _LIVE[proc.pid] = proc
        run.sidecars.append(proc)
        where = f"spec.initContainers{{{container['name']}}}"
        record_event(self.store, pod, "Started", f"Started container {container['name']}", host=node,
                     field_path=where)  # fmt: skip

    def _stop_sidecars(self, run: PodRun) -> None:
        """After the pod's containers, as a kubelet ends sidecars: SIGTERM, then SIGKILL after 2 s."""
        for proc in run.sidecars:
            _kill_group(proc, signal.SIGTERM)
        for proc in run.sidecars:
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                _kill_group(proc, signal.SIGKILL)
                proc.wait()
            _LIVE.pop(proc.pid, None)

    def pod_ip(self, pod: Obj) -> str:
        """127.0.0.1, or the address of the network namespace the pod asked for (``NETNS_ANNOTATION``)."""
        netns = (pod["metadata"].get("annotations") or {}).get(NETNS_ANNOTATION)
        if not netns:
            return "127.0.0.1"
        out = subprocess.run(
            ["ip", "netns", "exec", netns, "ip", "-4", "-o", "addr", "show", "scope", "global"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return out.split()[3].split("/")[0]

    def _wait(self, run: PodRun, pod: Obj, cname: str, node: str) -> int:
        assert run.proc is not None
        while True:
            try:
                code = run.proc.wait(timeout=0.1)
                return code if code >= 0 else 128 - code
            except subprocess.TimeoutExpired:
                pass
            if run.terminate.is_set() and run.kill_reason != "OOMKilled":
                record_event(
                    self.store,
                    pod,
                    "Killing",
                    f"Stopping container {cname}",
                    host=node,
                    field_path=f"spec.containers{{{cname}}}",
                )
                _kill_group(run.proc, signal.SIGTERM)
                try:
                    run.proc.wait(timeout=max(run.grace, 0.05))
                except subprocess.TimeoutExpired:
                    _kill_group(run.proc, signal.SIGKILL)
                code = run.proc.wait()
                _kill_group(run.proc, signal.SIGKILL)  # children left in the group
                return code if code >= 0 else 128 - code

    # -- building the process ------------------------------------------------------------------------

    def _prepare(
        self, run: PodRun, pod: Obj, container: dict[str, Any]
    ) -> tuple[list[str], dict[str, str], str]:
        fs = run.root / "fs"
        fs.mkdir(parents=True, exist_ok=True)
        mounts = materialise_volumes(self.store, pod, container, fs, self.claims)
        home = run.root / "home"
        home.mkdir(parents=True, exist_ok=True)
        base = (
            dict(os.environ)
            if self.inherit_env
            else {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": os.environ.get("LANG", "C.UTF-8"),
            }
        )
        base.update({"HOME": str(home), "HOSTNAME": pod["metadata"]["name"], "PYTHONUNBUFFERED": "1"})
        base.update(self.extra_env)
        env = environment(self.store, pod, container, base)
        command = list(container.get("command") or [])
        if not command:
            raise ContainerConfigError(
                "Failed",
                f"Error: container {container['name']!r} has no command: the "
                "test kubelet has no images, so it runs only containers with an explicit "
                "command (add `command` to the pod template)",
            )
        argv = [expand(a, env) for a in command + list(container.get("args") or [])]
        argv = [rewrite(a, mounts) for a in argv]
        argv[0] = self.command_aliases.get(argv[0], argv[0])
        env = {k: rewrite(v, mounts) for k, v in env.items()}
        env["MLP_TEST_MOUNT_ROOT"] = str(fs)
        cwd = fs
        if container.get("workingDir"):
            cwd = Path(rewrite(container["workingDir"], mounts))
            if not cwd.is_absolute() or not (cwd.is_relative_to(fs) or cwd.is_relative_to(self.claims.root)):
                cwd = fs / str(container["workingDir"]).lstrip("/")
            cwd.mkdir(parents=True, exist_ok=True)
        return argv, env, str(cwd)

    def _update(self, namespace: str, name: str, uid: str, fn: Any) -> Obj | None:
        def guarded(pod: Obj) -> bool:
            if pod["metadata"]["uid"] != uid:
                return False
            pod.setdefault("status", {})
            fn(pod)
            return True

        return self.store.mutate(self.store.registry.get("", "pods"), namespace, name, guarded)

    def _container_status(self, pod: Obj, state: dict[str, Any], ready: bool, run: PodRun) -> dict[str, Any]:
        container = pod["spec"]["containers"][0]
        return {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": f"test-image://{container.get('image', '')}",
            "containerID": f"test://{run.proc.pid}" if run.proc is not None else None,
            "ready": ready,
            "started": "running" in state,
            "restartCount": 0,
            "state": state,
        }

    def _set_waiting(self, run: PodRun, pod: Obj, reason: str, message: str | None) -> None:
        def apply(p: Obj) -> None:
            st = p["status"]
            st["hostIP"] = "127.0.0.1"
            st["hostIPs"] = [{"ip": "127.0.0.1"}]
            st.setdefault("startTime", now_iso())
            waiting = {"reason": reason, **({"message": message} if message else {})}
            st["containerStatuses"] = [self._container_status(p, {"waiting": waiting}, False, run)]
            set_condition(st, "PodReadyToStartContainers", "True")
            set_condition(st, "Initialized", "True")
            set_condition(
                st,
                "ContainersReady",
                "False",
                "ContainersNotReady",
                f"containers with unready status: [{p['spec']['containers'][0]['name']}]",
            )
            set_condition(
                st,
                "Ready",
                "False",
                "ContainersNotReady",
                f"containers with unready status: [{p['spec']['containers'][0]['name']}]",
            )

        self._update(run.namespace, run.name, run.uid, apply)

    def _set_running(self, run: PodRun, pod: Obj) -> None:
        ip = self.pod_ip(pod)

        def apply(p: Obj) -> None:
            st = p["status"]
            st["phase"] = "Running"
            st["podIP"] = ip
            st["podIPs"] = [{"ip": ip}]
            st["containerStatuses"] = [
                self._container_status(p, {"running": {"startedAt": run.started_at}}, True, run)
            ]
            set_condition(st, "ContainersReady", "True", "", "")
            set_condition(st, "Ready", "True", "", "")

        self._update(run.namespace, run.name, run.uid, apply)

    def _terminated(self, run: PodRun, pod: Obj, code: int, reason: str, message: str | None) -> None:
        def apply(p: Obj) -> None:
            st = p["status"]
            st["phase"] = "Succeeded" if code == 0 else "Failed"
            term = {
                "exitCode": code,
                "reason": reason,
                "startedAt": run.started_at,
                "finishedAt": now_iso(),
                **({"message": message} if message else {}),
                **({"containerID": f"test://{run.proc.pid}"} if run.proc is not None else {}),
            }
            st["containerStatuses"] = [self._container_status(p, {"terminated": term}, False, run)]
            cname = p["spec"]["containers"][0]["name"]
            why = "PodCompleted" if code == 0 else "PodFailed"
            set_condition(st, "ContainersReady", "False", why, f"containers with unready status: [{cname}]")
            set_condition(st, "Ready", "False", why, f"containers with unready status: [{cname}]")
            set_condition(st, "PodReadyToStartContainers", "False")

        self._update(run.namespace, run.name, run.uid, apply)

    # -- logs ----------------------------------------------------------------------------------------

    def _log_route(self, req: Any, target: Any) -> Any:
        from ..errors import ApiError
        from ..responses import StreamResponse, TextResponse

        pod = self.store.get(self.store.registry.get("", "pods"), target.namespace, target.name)
        path = self.root / f"{target.namespace}_{target.name}_{pod['metadata']['uid'][:8]}" / "container.log"
        if not path.exists():
            cname = pod["spec"]["containers"][0]["name"]
            raise ApiError(
                400,
                "BadRequest",
                f'container "{cname}" in pod "{target.name}" is waiting to start: ContainerCreating',
            )
        text = path.read_text(errors="replace")
        tail = req.query.get("tailLines")
        if tail:
            text = "".join(text.splitlines(keepends=True)[-int(tail) :])
        if req.query.get("follow") not in ("true", "1"):
            return TextResponse(200, text)
        uid = pod["metadata"]["uid"]

        def follow() -> Any:
            yield text.encode()
            with open(path, "rb") as fh:
                fh.seek(len(text.encode()))
                while True:
                    chunk = fh.read()
                    if chunk:
                        yield chunk
                        continue
                    if uid not in self.runs or self.server.rest.stopping.is_set():
                        rest = fh.read()
                        if rest:
                            yield rest
                        return
                    time.sleep(0.1)
                    yield b""

        return StreamResponse(follow(), content_type="text/plain")


def _sidecars(pod: Obj) -> list[dict[str, Any]]:
    return [c for c in pod["spec"].get("initContainers") or [] if c.get("restartPolicy") == "Always"]


def _log_tail(path: Path) -> str | None:
    """What a kubelet puts in ``terminated.message`` under ``FallbackToLogsOnError``: the end of the log,
    at most 80 lines and 2048 bytes (there is no termination message file here)."""
    try:
        data = path.read_bytes()[-2048:]
    except OSError:
        return None
    text = "\n".join(data.decode("utf-8", "replace").splitlines()[-80:])
    return text or None


def _kill_group(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is None:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
