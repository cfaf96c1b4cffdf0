"""The code that runs *inside* the remote kernel to save and restore the user's namespace.

Why a separate file: the remote kernel is any image with ipykernel, and mlp_kernel is not installed there.
The gateway therefore sends this file's *source* (read with importlib.resources by ``codegen``) inside a
silent execute_request. That is why this module imports only the standard library at the top, reaches for
cloudpickle, numpy and torch only when the kernel already has them, and exposes three entry points,
``snapshot``, ``restore`` and ``forget``, that take one JSON string of parameters and return one JSON string
report. It never prints: a silent request still broadcasts stdout, and the user must see only the gateway's
summary.

On-disk layout under the snapshot directory (one per notebook kernel)::

    manifest.json          written last, by atomic rename: a snapshot without it does not exist
    data-<id>/NNNN.pkl     one cloudpickle stream per variable (protocol 5: buffers are written in place)
    data-<id>/NNNN.npy     one numpy array per file (np.lib.format, never pickled)
    data-<id>/torch.pt     all torch objects of the namespace in one torch.save, so that an optimizer keeps
                           pointing at its model's parameters after the restore

Each variable is written straight to its file and each file is read back one at a time, so neither side
needs the namespace twice in memory. Directories are 0700 and files 0600; ``restore`` refuses a manifest
whose owner is not the requesting user, or a snapshot that others can write to: loading a pickle runs code.
"""

from __future__ import annotations  # annotations are never evaluated: any Python 3 kernel runs this

import fnmatch
import json
import os
import sys
import time
import types
import uuid
import warnings
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # names for the annotations only (a kernel's Python may predate their runtime forms)
    Namespace = dict[str, Any]  # the user's namespace (IPython's ``user_ns``)
    Entry = dict[str, Any]  # one saved variable in a manifest
    Manifest = dict[str, Any]  # manifest.json: FORMAT, owner, entries, skipped, ...
    Report = dict[str, Any]  # what an entry point returns, as JSON
    OnFile = Callable[[str, str], None]  # (filename, path) of a complete data file
    Fetch = Callable[[str], str]  # filename -> a local path to load
    Release = Callable[[str], None]  # a loaded local path -> None (the bucket's temp file is deleted)

FORMAT = "mlp-kernel-snapshot/1"
MANIFEST = "manifest.json"

# Names IPython puts in every namespace; names starting with "_" (``_``, ``__``, ``_i3``, ``_oh`` ...) are
# skipped by the prefix rule.
_IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})


class _OverCap(Exception):
    """Raised by the capped writer when a variable would take the snapshot past its size cap."""


class _TransferError(Exception):
    """Moving a file to or from the snapshot bucket failed: the whole snapshot or restore stops."""


# The local store fsyncs every data file before the manifest (its commit point); files that are uploaded to a
# bucket and deleted right after need not reach the disk (the bucket's manifest is the commit point there).
_FSYNC = True


def _skip_fsync() -> None:
    """Called by ``agent_s3`` before a bucket snapshot. A function, not ``global _FSYNC`` there: it changes
    this module's flag whether ``agent_s3`` shares this dictionary (in the kernel) or imports this module."""
    global _FSYNC
    _FSYNC = False


class _CappedWriter:
    """A binary file wrapper that counts bytes and stops a streaming write at the size cap."""

    def __init__(self, raw: IO[bytes], limit: int | None) -> None:
        self.raw = raw
        self.limit = limit
        self.written = 0
        self.over = False  # libraries (torch.save) may wrap our exception in their own: remember it here

    def write(self, data: bytes | memoryview) -> int:
        n = memoryview(data).nbytes
        if self.limit is not None and self.written + n > self.limit:
            self.over = True
            raise _OverCap()
        self.written += n
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()

    # torch.save probes these to decide between a path and a file-like object
    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.written


def _json_default(value: object) -> str:
    return str(value)


def _user_namespace() -> tuple[Any, Namespace]:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:
        shell = None
    if shell is not None:
        return shell, shell.user_ns
    return None, sys.modules["__main__"].__dict__


def _mkdir_private(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def _open_private(path: str) -> IO[bytes]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    return os.fdopen(fd, "wb")


def _durable(raw: IO[bytes]) -> None:
    # the manifest is the commit point: every data file must be on disk before it is written
    raw.flush()
    if _FSYNC:
        os.fsync(raw.fileno())


def _remove_tree(path: str) -> None:
    if not os.path.isdir(path) or os.path.islink(path):
        return
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            _remove_tree(full)
        else:
            os.unlink(full)
    os.rmdir(path)


# ---------------------------------------------------------------- classifying values


def _torch() -> Any:
    return sys.modules.get("torch")


def _is_torch_object(value: object) -> bool:
    torch = _torch()
    if torch is None:
        return False
    kinds = [torch.Tensor, torch.nn.Module, torch.optim.Optimizer]
    scheduler = getattr(torch.optim.lr_scheduler, "LRScheduler", None)
    if scheduler is not None:
        kinds.append(scheduler)
    return isinstance(value, tuple(kinds))


def _why_unsaveable(value: object) -> str | None:
    """A short reason for kinds of objects that can never be carried to another process, else None."""
    import io
    import threading

    if isinstance(value, types.GeneratorType):
        return "generator"
    if isinstance(value, types.CoroutineType):
        return "coroutine"
    if isinstance(value, types.AsyncGeneratorType):
        return "async generator"
    if isinstance(value, io.IOBase):
        return "closed file" if getattr(value, "closed", False) else "open file"
    if isinstance(value, threading.Thread):
        return "thread"
    if isinstance(value, (type(threading.Lock()), type(threading.RLock()))):
        return "lock"
    for module_name, type_name, reason in (
        ("socket", "socket", "socket"),
        ("subprocess", "Popen", "running process"),
        ("sqlite3", "Connection", "database connection"),
        ("mmap", "mmap", "memory map"),
    ):
        module = sys.modules.get(module_name)
        cls = getattr(module, type_name, None) if module is not None else None
        if isinstance(cls, type) and isinstance(value, cls):
            return reason
    return None


def _has_cloudpickle() -> bool:
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return False
    return True


def _needs_cloudpickle(value: object) -> str | None:
    """Without cloudpickle, plain pickle would save notebook code *by name*, which a fresh kernel lacks."""
    code = isinstance(value, (types.FunctionType, type)) and getattr(value, "__module__", None) == "__main__"
    if (code or type(value).__module__ == "__main__") and not _has_cloudpickle():
        return "defined in the notebook; install cloudpickle in the kernel image to carry it"
    return None


def _explain_pickle_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    for marker, reason in (
        ("Cannot pickle files", "holds an open file"),
        ("TextIOWrapper", "holds an open file"),
        ("BufferedReader", "holds an open file"),
        ("BufferedWriter", "holds an open file"),
        ("socket", "holds a socket"),
        ("generator", "holds a generator"),
        ("_thread.lock", "holds a lock"),
        ("_thread.RLock", "holds a lock"),
    ):
        if marker in text:
            return reason
    if len(text) > 120:
        text = text[:117] + "..."
    return "refuses to pickle: " + type(exc).__name__ + ": " + text


def _estimate_bytes(value: Any) -> int:
    """A cheap size guess, used only to save small variables first when a size cap applies."""
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    torch = _torch()
    if torch is not None and isinstance(value, torch.nn.Module):
        return sum(t.numel() * t.element_size() for t in value.state_dict().values() if hasattr(t, "numel"))
    if torch is not None and isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    memory_usage = getattr(value, "memory_usage", None)
    if callable(memory_usage) and type(value).__module__.startswith("pandas"):
        try:
            usage = memory_usage(index=True)
            return int(usage.sum()) if hasattr(usage, "sum") else int(usage)
        except Exception:
            pass
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    return sys.getsizeof(value)


def _candidates(shell: Any, user_ns: Namespace, exclude: list[str]) -> list[str]:
    hidden = getattr(shell, "user_ns_hidden", {}) if shell is not None else {}
    names = []
    for name, value in list(user_ns.items()):
        if not isinstance(name, str) or name.startswith("_") or name in _IPYTHON_NAMES:
            continue
        if name in hidden and hidden[name] is value:
            continue
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in exclude):
            continue
        names.append(name)
    return names


# ---------------------------------------------------------------- writing


def _dump_pickle(value: object, path: str, limit: int | None) -> int:
    import pickle

    try:
        import cloudpickle

        pickler_class = cloudpickle.Pickler
    except ImportError:  # plain pickle still carries data; notebook-defined functions will be reported
        pickler_class = pickle.Pickler
    with _open_private(path) as raw:
        out = _CappedWriter(raw, limit)
        pickler_class(out, protocol=5).dump(value)
        _durable(raw)
        return out.written


def _dump_numpy(value: Any, path: str, limit: int | None) -> int:
    import numpy as np

    with _open_private(path) as raw:
        if limit is not None and value.nbytes > limit:
            raise _OverCap()
        # write_array streams a contiguous array straight from its buffer (array.tofile on a real file)
        np.lib.format.write_array(raw, value, allow_pickle=False)
        if limit is not None and raw.tell() > limit:  # the header tipped it over
            raise _OverCap()
        _durable(raw)
        return raw.tell()


def _dump_torch(objects: dict[str, Any], path: str, limit: int | None) -> int:
    torch = _torch()
    try:
        import cloudpickle as pickle_module  # notebook-defined nn.Module subclasses are carried by value
    except ImportError:
        import pickle as pickle_module
    with _open_private(path) as raw:
        out = _CappedWriter(raw, limit)
        try:
            torch.save(objects, out, pickle_module=pickle_module)
        except Exception:
            if out.over:
                raise _OverCap() from None
            raise
        _durable(raw)
        return out.written


def _torch_devices(value: object) -> list[str]:
    torch = _torch()
    devices = set()
    if isinstance(value, torch.Tensor):
        devices.add(str(value.device))
    elif isinstance(value, torch.nn.Module):
        for tensor in list(value.parameters()) + list(value.buffers()):
            devices.add(str(tensor.device))
    elif isinstance(value, torch.optim.Optimizer):
        for state in value.state.values():
            for tensor in state.values():
                if isinstance(tensor, torch.Tensor):
                    devices.add(str(tensor.device))
    return sorted(devices)


def _limit(remaining: int | None, file_limit: int | None) -> tuple[int | None, str]:
    """The byte limit for the next file and the reason to give when it is passed."""
    if file_limit is not None and (remaining is None or file_limit < remaining):
        return file_limit, f"larger than the {_size_text(file_limit)} one bucket upload may hold"
    return remaining, "over the size cap"


def _size_text(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _write_entries(
    user_ns: Namespace,
    names: list[str],
    data_dir: str,
    max_bytes: int | None,
    skipped: dict[str, str],
    on_file: OnFile | None = None,
    file_limit: int | None = None,
) -> tuple[list[Entry], int]:
    """Write each name to its own file, smallest first; returns (entries, total bytes).

    ``on_file(filename, path)`` runs after each file is complete (the bucket back-end uploads and deletes it
    there; a ``_TransferError`` from it stops the snapshot). ``file_limit`` caps each file on its own.
    """
    entries = []
    total = 0
    torch_names = []
    sized: list[tuple[int, str | None]] = []  # (estimated bytes, name); None stands for the torch group
    for name in names:
        value = user_ns[name]
        if isinstance(value, types.ModuleType):
            entries.append({"name": name, "kind": "module", "module": value.__name__, "bytes": 0})
            continue
        reason = _why_unsaveable(value) or _needs_cloudpickle(value)
        if reason is not None:
            skipped[name] = reason
            continue
        if _is_torch_object(value):
            torch_names.append(name)
            continue
        try:
            estimate = _estimate_bytes(value)
        except Exception:
            estimate = 0
        sized.append((estimate, name))
    if torch_names:
        estimate = 0
        for name in torch_names:
            try:
                estimate += _estimate_bytes(user_ns[name])
            except Exception:
                pass
        sized.append((estimate, None))
    sized.sort(key=lambda item: item[0])

    numpy = sys.modules.get("numpy")
    for number, (_, group_or_name) in enumerate(sized):
        remaining = None if max_bytes is None else max(0, max_bytes - total)
        if group_or_name is None:
            written, torch_entries = _write_torch_group(
                user_ns, torch_names, data_dir, remaining, skipped, on_file, file_limit
            )
            entries.extend(torch_entries)
            total += written
            continue
        name = group_or_name
        limit, over_reason = _limit(remaining, file_limit)
        value = user_ns[name]
        is_array = numpy is not None and type(value) is numpy.ndarray and not value.dtype.hasobject
        filename = "{:04d}.{}".format(number, "npy" if is_array else "pkl")
        path = os.path.join(data_dir, filename)
        try:
            written = (_dump_numpy if is_array else _dump_pickle)(value, path, limit)
        except _OverCap:
            _unlink_quietly(path)
            skipped[name] = over_reason
            continue
        except Exception as exc:
            _unlink_quietly(path)
            skipped[name] = _explain_pickle_error(exc)
            continue
        if on_file is not None:
            on_file(filename, path)
        entries.append(
            {"name": name, "kind": "numpy" if is_array else "pickle", "file": filename, "bytes": written}
        )
        total += written
    return entries, total


def _write_torch_group(
    user_ns: Namespace,
    names: list[str],
    data_dir: str,
    remaining: int | None,
    skipped: dict[str, str],
    on_file: OnFile | None = None,
    file_limit: int | None = None,
) -> tuple[int, list[Entry]]:
    """Save all torch objects together (shared tensors stay shared); fall back to one by one on failure."""
    path = os.path.join(data_dir, "torch.pt")
    limit, over_reason = _limit(remaining, file_limit)
    try:
        written = _dump_torch({name: user_ns[name] for name in names}, path, limit)
    except _OverCap:
        _unlink_quietly(path)
        for name in names:
            skipped[name] = over_reason
        return 0, []
    except Exception:
        _unlink_quietly(path)
        return _write_torch_one_by_one(user_ns, names, data_dir, remaining, skipped, on_file, file_limit)
    if on_file is not None:
        on_file("torch.pt", path)
    entries = [
        {
            "name": name,
            "kind": "torch",
            "file": "torch.pt",
            "key": name,
            "devices": _torch_devices(user_ns[name]),
            "bytes": written if i == 0 else 0,
        }
        for i, name in enumerate(names)
    ]
    return written, entries


def _write_torch_one_by_one(
    user_ns: Namespace,
    names: list[str],
    data_dir: str,
    remaining: int | None,
    skipped: dict[str, str],
    on_file: OnFile | None = None,
    file_limit: int | None = None,
) -> tuple[int, list[Entry]]:
    entries = []
    total = 0
    for number, name in enumerate(names):
        filename = f"torch-{number:04d}.pt"
        path = os.path.join(data_dir, filename)
        left = None if remaining is None else max(0, remaining - total)
        limit, over_reason = _limit(left, file_limit)
        try:
            written = _dump_torch({name: user_ns[name]}, path, limit)
        except _OverCap:
            _unlink_quietly(path)
            skipped[name] = over_reason
            continue
        except Exception as exc:
            _unlink_quietly(path)
            skipped[name] = _explain_pickle_error(exc)
            continue
        if on_file is not None:
            on_file(filename, path)
        entries.append(
            {
                "name": name,
                "kind": "torch",
                "file": filename,
                "key": name,
                "devices": _torch_devices(user_ns[name]),
                "bytes": written,
            }
        )
        total += written
    return total, entries


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_manifest(root: str, manifest: Manifest) -> None:
    tmp = os.path.join(root, f".manifest-{uuid.uuid4().hex}.tmp")
    with _open_private(tmp) as out:
        out.write(json.dumps(manifest, default=_json_default).encode("utf-8"))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, os.path.join(root, MANIFEST))


def _drop_previous(root: str, keep_dir: str | None = None) -> None:
    """Remove an older snapshot's manifest and data directories (and leftovers of interrupted writes)."""
    manifest = os.path.join(root, MANIFEST)
    if keep_dir is None:
        _unlink_quietly(manifest)
    for name in os.listdir(root):
        full = os.path.join(root, name)
        if name.startswith("data-") and name != keep_dir:
            _remove_tree(full)
        elif name.startswith(".manifest-"):
            _unlink_quietly(full)


def _manifest(
    user: str, shell: Any, data: str, names: list[str], entries: list[Entry], skipped: dict[str, str]
) -> Manifest:
    order = {name: i for i, name in enumerate(names)}
    entries.sort(key=lambda e: (e["kind"] != "module", order[e["name"]]))
    return {
        "format": FORMAT,
        "owner": user,
        "created": time.time(),
        "python": ".".join(str(n) for n in sys.version_info[:3]),
        "execution_count": getattr(shell, "execution_count", None),
        "data": data,
        "entries": entries,
        "skipped": skipped,
    }


def _report(kind: str) -> Report:
    """The report every entry point returns (as JSON), filled in as it goes: ``ok`` only when it completed."""
    return {
        "kind": kind,
        "ok": False,
        "saved": [],
        "skipped": {},
        "notes": {},
        "count": 0,
        "bytes": 0,
        "seconds": 0.0,
        "error": None,
    }


def snapshot(params_json: str) -> str:
    """Save the user namespace under ``params["path"]``; returns the JSON report."""
    started = time.monotonic()
    params = json.loads(params_json)
    report = _report("snapshot")
    data_dir = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = params["path"]
            shell, user_ns = _user_namespace()
            _mkdir_private(root)
            if os.path.islink(root):
                raise RuntimeError(f"snapshot directory {root} is a symbolic link; refusing to write there")
            # A new attempt makes any older snapshot stale: drop it first, so a failed attempt never leaves
            # an older state behind to be restored later by mistake.
            _drop_previous(root)
            snapshot_id = uuid.uuid4().hex[:12]
            data_dir = os.path.join(root, "data-" + snapshot_id)
            _mkdir_private(data_dir)
            names = _candidates(shell, user_ns, params.get("exclude") or [])
            skipped: dict[str, str] = {}
            entries, total = _write_entries(user_ns, names, data_dir, params.get("max_bytes"), skipped)
            manifest = _manifest(params["user"], shell, "data-" + snapshot_id, names, entries, skipped)
            _write_manifest(root, manifest)
            report.update(
                ok=True, saved=[e["name"] for e in entries], skipped=skipped, count=len(entries), bytes=total
            )
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        # also on KeyboardInterrupt (the user interrupted a long snapshot): no half-written data stays behind
        if not report["ok"] and data_dir is not None:
            try:
                _remove_tree(data_dir)
            except OSError:
                pass
    report["seconds"] = round(time.monotonic() - started, 3)
    return json.dumps(report, default=_json_default)


def forget(params_json: str) -> str:
    """Delete the snapshot under ``params["path"]`` from inside a kernel (a volume only pods can reach)."""
    started = time.monotonic()
    params = json.loads(params_json)
    report = _report("forget")
    try:
        root = params["path"]
        manifest_path = os.path.join(root, MANIFEST)
        if os.path.exists(manifest_path):
            with open(manifest_path, "rb") as f:
                owner = json.loads(f.read().decode("utf-8")).get("owner")
            if owner != params["user"]:
                raise PermissionError("this snapshot belongs to another user; it was not deleted")
        if os.path.isdir(root) and not os.path.islink(root):
            _drop_previous(root)
            if not os.listdir(root):
                os.rmdir(root)
        report["ok"] = True
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    report["seconds"] = round(time.monotonic() - started, 3)
    return json.dumps(report, default=_json_default)


# ---------------------------------------------------------------- reading


def _check_private(path: str) -> None:
    import stat

    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise PermissionError(f"{path} is a symbolic link")
    if info.st_mode & 0o022:
        raise PermissionError(f"{path} can be written by other users (mode {info.st_mode & 0o777:o})")
    # mode bits alone say nothing about whose file it is: a file planted by another uid (say, the owner of a
    # directory created ahead of the user) passes them, and that uid can rewrite the pickle at any time; root
    # could write any file anyway
    if hasattr(os, "geteuid") and info.st_uid not in (os.geteuid(), 0):
        raise PermissionError(f"{path} belongs to uid {info.st_uid}, not to this kernel's uid {os.geteuid()}")


def _safe_file(data_dir: str, filename: object) -> str:
    if not isinstance(filename, str) or os.path.basename(filename) != filename or filename.startswith("."):
        raise PermissionError(f"manifest names an invalid file {filename!r}")
    path = os.path.join(data_dir, filename)
    _check_private(path)
    return path


def _load_pickle(path: str) -> Any:
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f)


def _load_numpy(path: str) -> Any:
    import numpy as np

    return np.load(path, allow_pickle=False)


def _load_file(loader: Callable[[str], Any], fetch: Fetch, release: Release | None, filename: str) -> Any:
    path = fetch(filename)
    try:
        return loader(path)
    finally:
        if release is not None:
            release(path)


def _load_torch_for(notes: dict[str, str], names: list[str]) -> Callable[[str], Any]:
    return lambda path: _load_torch(path, notes, names)


def _load_torch(path: str, notes: dict[str, str], names: list[str]) -> Any:
    torch = __import__("torch")
    cuda_ok = bool(torch.cuda.is_available())
    moved = []

    def to_new_device(storage: Any, location: str) -> Any:
        # storages arrive on the CPU; GPU ones go to this kernel's current GPU, or stay on the CPU
        if str(location).startswith("cuda"):
            if cuda_ok:
                return storage.cuda()
            moved.append(location)
        return storage

    objects = torch.load(path, map_location=to_new_device, weights_only=False)
    if moved:
        for name in names:
            notes[name] = "restored to CPU: no GPU in this kernel"
    return objects


def _rebind_to_namespace(value: Any, user_ns: Namespace) -> Any:
    """Give notebook-defined functions (and methods of notebook-defined classes) the live namespace back.

    cloudpickle rebuilds a function with a private copy of the globals it used; a notebook user expects
    ``def f(): return x`` to see the *current* ``x`` after a restore, as it did before the release.
    """

    def rebuilt(func: Any) -> Any:
        if not isinstance(func, types.FunctionType) or func.__module__ != "__main__":
            return func
        if func.__globals__ is user_ns:
            return func
        new = types.FunctionType(func.__code__, user_ns, func.__name__, func.__defaults__, func.__closure__)
        new.__kwdefaults__ = func.__kwdefaults__
        new.__qualname__ = func.__qualname__
        new.__dict__.update(func.__dict__)
        new.__annotations__ = func.__annotations__
        new.__doc__ = func.__doc__
        # globals the function used but the namespace lacks (a "_private" helper, an excluded name) come
        # along from cloudpickle's copy; names restored later simply overwrite them
        for name, seen in list(func.__globals__.items()):
            if not name.startswith("__") and name not in user_ns:
                user_ns[name] = seen
        return new

    if isinstance(value, types.FunctionType):
        return rebuilt(value)
    if isinstance(value, type) and value.__module__ == "__main__":
        for attr, member in list(vars(value).items()):
            if isinstance(member, types.FunctionType):
                setattr(value, attr, rebuilt(member))
            elif isinstance(member, (staticmethod, classmethod)) and isinstance(
                member.__func__, types.FunctionType
            ):
                setattr(value, attr, type(member)(rebuilt(member.__func__)))
            elif isinstance(member, property):
                setattr(
                    value,
                    attr,
                    property(
                        rebuilt(member.fget) if member.fget else None,
                        rebuilt(member.fset) if member.fset else None,
                        rebuilt(member.fdel) if member.fdel else None,
                        member.__doc__,
                    ),
                )
    return value


def restore(params_json: str) -> str:
    """Load the snapshot under ``params["path"]`` into the user namespace; returns the JSON report."""
    started = time.monotonic()
    params = json.loads(params_json)
    report = _report("restore")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = params["path"]
            manifest_path = os.path.join(root, MANIFEST)
            if not os.path.exists(manifest_path):
                raise FileNotFoundError(f"no snapshot at {root}")
            _check_private(root)
            _check_private(manifest_path)
            with open(manifest_path, "rb") as f:
                manifest = json.loads(f.read().decode("utf-8"))
            _check_manifest(manifest, params["user"])
            data_dir = os.path.join(root, os.path.basename(str(manifest["data"])))
            _check_private(data_dir)
            _restore_manifest(manifest, lambda filename: _safe_file(data_dir, filename), None, report)
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    report["seconds"] = round(time.monotonic() - started, 3)
    return json.dumps(report, default=_json_default)


def _check_manifest(manifest: object, user: str) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(
            "unknown snapshot format {!r}".format(
                manifest.get("format") if isinstance(manifest, dict) else None
            )
        )
    if manifest.get("owner") != user:
        raise PermissionError("this snapshot belongs to another user; it was not restored")


def _restore_manifest(manifest: Manifest, fetch: Fetch, release: Release | None, report: Report) -> None:
    """Load a checked manifest's entries into the user namespace and fill in ``report``."""
    shell, user_ns = _user_namespace()
    restored, skipped, notes, total = _restore_entries(manifest["entries"], fetch, release, user_ns)
    here = ".".join(str(n) for n in sys.version_info[:2])
    saved_under = ".".join(str(manifest.get("python", "")).split(".")[:2])
    if saved_under and saved_under != here:
        for name in skipped:
            skipped[name] += f" (saved under Python {saved_under}, this kernel runs {here})"
    for name, reason in (manifest.get("skipped") or {}).items():
        skipped.setdefault(name, "not saved: " + str(reason))
    count = manifest.get("execution_count")
    if shell is not None and isinstance(count, int) and count > getattr(shell, "execution_count", 0):
        shell.execution_count = count
    report.update(ok=True, saved=restored, skipped=skipped, notes=notes, count=len(restored), bytes=total)


def _restore_entries(
    entries: list[Entry], fetch: Fetch, release: Release | None, user_ns: Namespace
) -> tuple[list[str], dict[str, str], dict[str, str], int]:
    """Load each entry; ``fetch(filename)`` gives a local path to read, ``release(path)`` (if any) is called
    once it is loaded. A ``_TransferError`` stops the restore; any other error skips that one variable."""
    restored: list[str] = []
    skipped: dict[str, str] = {}
    notes: dict[str, str] = {}
    total = 0
    torch_loaded: dict[str, Any] = {}
    value: Any = None
    for entry in entries:
        name = entry["name"]
        kind = entry["kind"]
        if not isinstance(name, str) or not name.isidentifier():
            continue
        try:
            if kind == "module":
                import importlib

                value = importlib.import_module(entry["module"])
            elif kind == "torch":
                filename = entry["file"]
                if filename not in torch_loaded:
                    group = [e["name"] for e in entries if e.get("file") == filename]
                    loader = _load_torch_for(notes, group)
                    torch_loaded[filename] = _load_file(loader, fetch, release, filename)
                value = torch_loaded[filename][entry["key"]]
            elif kind == "numpy":
                value = _load_file(_load_numpy, fetch, release, entry["file"])
            elif kind == "pickle":
                value = _load_file(_load_pickle, fetch, release, entry["file"])
            else:
                skipped[name] = f"unknown entry kind {kind!r}"
                continue
        except _TransferError:
            raise
        except Exception as exc:
            skipped[name] = f"could not be restored: {type(exc).__name__}: {str(exc)[:120]}"
            continue
        user_ns[name] = value
        restored.append(name)
        total += int(entry.get("bytes") or 0)
        value = None
    torch_loaded.clear()
    # Rebind only once everything is loaded: unpickling an instance re-applies its (tracked) class's state,
    # which would undo a rebinding done earlier.
    for name in restored:
        value = user_ns[name]
        user_ns[name] = _rebind_to_namespace(value, user_ns)
        if not isinstance(value, type) and getattr(type(value), "__module__", None) == "__main__":
            _rebind_to_namespace(type(value), user_ns)
    return restored, skipped, notes, total
