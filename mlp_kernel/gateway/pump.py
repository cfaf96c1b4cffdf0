"""The gateway's I/O thread: every socket of the relay's hot path, served by one epoll loop (``_serve_once``).

Why a thread and not the event loop: relaying is most of what the gateway does, and each message relayed
through asyncio costs a loop iteration, a future and its callbacks, while a blocking poll in a thread costs
one system call and releases the GIL while it waits. Measured on the 2-core development machine with a
bare relay between a client and an ipykernel (`pass` round trips): +0.46 ms per round trip through asyncio,
+0.30 ms through a poll loop (docs/benchmarks.md). So this thread owns the client-facing sockets (shell,
control, stdin ROUTERs and the iopub XPUB) and the sockets to the remote kernel, and relays without the
event loop whenever nothing about a message needs it:

- client -> remote: a request goes straight to the remote kernel when a remote kernel is connected and the
  gateway's ``fast_forward`` hook (a look at the header, no I/O) accepts it, and its bookkeeping follows in
  a batch; everything else (``%gpu`` cells, shutdown, interrupt, the status comm, anything while no remote
  kernel runs) is handed to the event loop, in order: once a message of a channel went to the loop, that
  channel's later messages follow it there until the loop has handled it, so nothing overtakes a ``%gpu``
  cell;
- remote -> client: replies, stdin and iopub are forwarded untouched; replies to the gateway's own requests
  (they carry no client identity) and their iopub output go to the loop. While nothing needs to look at the
  remote's iopub (no request of the gateway's own, no ``busy`` it announced itself, the kernel serving),
  libzmq's proxy relays it in a thread of its own, in C (``forwarder.py``), and this thread takes the two
  sockets back whenever it must screen that output or send iopub of its own;
- the loop's own messages (replies it authors, status, progress) and its requests to the remote kernel come
  to this thread over an inproc PAIR and are sent in order.

Where it was built (``_hotpath.c``), this thread waits in C rather than in ``select.epoll``, and the C code
relays there, without Python, the two messages of a round trip that need no decision of the loop: a remote
reply to a client, and a client shell request that passes the same screen as ``fast_forward`` (its signature,
its ``msg_type``, no ``%gpu``); everything else it hands back with its frames untouched, and the rules above
apply as before. Copies of what it relayed go to the same deferred bookkeeping.

Only this thread touches these sockets (ZeroMQ sockets are not thread-safe). The event loop side uses the
methods marked "loop side"; the hooks run in this thread and must only update plain Python state.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import select
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import zmq
import zmq.asyncio

from .forwarder import Forwarder, name_this_thread, zmq_error
from .wire import DELIM, Malformed, Message

log = logging.getLogger(__name__)

CLIENT_CHANNELS = ("shell", "control", "stdin")
REMOTE_CHANNELS = ("shell", "control", "stdin", "iopub")
# A finished cell's status update waits until no cell has ended for STATUS_QUIET_S, and at most STATUS_MAX_S
# after the first unpublished end: cells run back to back ("Run all", a loop of short cells) publish once
# every STATUS_MAX_S instead of every 0.25 s. Each publish costs the event loop a snapshot and a status file
# replaced (~1 ms of CPU on the development machine, 20-60 us per `pass` round trip; docs/benchmarks.md).
STATUS_QUIET_S = 0.25
STATUS_MAX_S = 2.0
# Bookkeeping for relayed requests and replies runs in batches this far apart (and before anything is handed
# to the loop, and at every flush()). 50 ms rather than 10: with the C hot path the batch is the I/O thread's
# only Python per round trip; 184 -> 126 us of its CPU per `pass` round trip (docs/benchmarks.md). Status is
# published at most every STATUS_QUIET_S anyway.
BOOKKEEPING_S = 0.05
BOOKKEEPING_MS = round(BOOKKEEPING_S * 1000)

_send = zmq.backend.Socket.send  # the Cython method: pyzmq's send_multipart costs ~16 us a message in
_recv = zmq.backend.Socket.recv  # flag and argument handling, these loops ~2 us (docs/benchmarks.md)
_get = zmq.backend.Socket.get
_SNDMORE, _NOBLOCK, _RCVMORE = int(zmq.SNDMORE), int(zmq.NOBLOCK), int(zmq.RCVMORE)
_EVENTS, _POLLIN, _FD = int(zmq.EVENTS), int(zmq.POLLIN), int(zmq.FD)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt() parameters

# The wait and the messages that need no Python in C (``_hotpath.c``): built by the package's build hook
# where a C compiler is found; else (or with MLP_KERNEL_HOTPATH=0) this module relays all in Python.
HOTPATH_ENV = "MLP_KERNEL_HOTPATH"
ROLE_PYTHON, ROLE_CLIENT_SHELL, ROLE_REMOTE_SHELL, ROLE_REMOTE_CONTROL = 0, 1, 2, 3
_hotpath_state: list[Any] = []  # [module or None], once per process


def hotpath() -> Any:
    """The ``_hotpath`` module with libzmq's functions resolved in the copy pyzmq loaded, or None (why: logged
    once). It must be that copy: the sockets it is handed are pyzmq's."""
    if _hotpath_state:
        return _hotpath_state[0]
    module = None
    if os.environ.get(HOTPATH_ENV, "1") == "0":
        log.info("the gateway relays in Python (%s=0)", HOTPATH_ENV)
    else:
        try:
            from . import _hotpath  # type: ignore[attr-defined]

            path = _libzmq_path()
            version = _hotpath.load(path)
            module = _hotpath
            log.info("the gateway relays with its C hot path (libzmq %s: %s)", version, path)
        except (ImportError, OSError) as exc:  # not built (no compiler at install), or an unusual pyzmq
            log.info("the gateway relays in Python: its C hot path is unavailable (%s)", exc)
    _hotpath_state.append(module)
    return module


def _libzmq_path() -> str:
    """The file of the libzmq that pyzmq loaded: bundled beside it (``pyzmq.libs``), the system's, or linked
    into pyzmq's own extension."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.rstrip("\n").split(" ")[-1]
            if "/libzmq" in path:
                return path
    import zmq.backend.cython._zmq as backend

    return str(backend.__file__)


def keep_freed_buffers(trim: int = 16 << 20, mmap: int = 4 << 20) -> None:
    """Have glibc keep freed memory of up to ``trim`` bytes instead of returning it at once.

    Why: libzmq's I/O thread allocates a buffer for every large message it receives and frees it once sent
    on; with glibc's defaults a freed 64 KB stream chunk at the top of the heap is returned to the system,
    and the next one is page-faulted and zeroed anew. That was ~10% of the gateway's CPU while streaming
    (``clear_page_erms`` under the I/O thread's ``recv``, ``perf``; docs/benchmarks.md). Messages above
    ``mmap`` bytes still get pages of their own. Without glibc (no ``mallopt``) nothing changes.
    """
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_TRIM_THRESHOLD, trim)
        libc.mallopt(M_MMAP_THRESHOLD, mmap)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


class PrivateSink(Protocol):
    """The remote side of one connected kernel, as the pump sees it (``relay.RemoteLink``): the answers to
    the gateway's own private requests go to it; everything else the pump relays itself."""

    id: str

    def on_private_reply(self, frames: list[bytes]) -> None:
        """Called on the loop with a reply to a request the gateway sent itself (``private_ids``)."""

    def on_private_iopub(self, frames: list[bytes]) -> None:
        """Called on the loop with an iopub message whose parent is such a request."""


def readable(sock: zmq.Socket[Any]) -> bool:
    """Whether a message waits (checking first is cheaper than a non-blocking recv raising ``zmq.Again``)."""
    return bool(int(_get(sock, _EVENTS)) & _POLLIN)


def send_frames(sock: zmq.Socket[Any], frames: list[bytes]) -> None:
    """``sock.send_multipart(frames)`` for bytes frames, without the per-call overhead."""
    *head, last = frames
    for frame in head:
        _send(sock, frame, _SNDMORE)
    _send(sock, last, 0)


def recv_frames(sock: zmq.Socket[Any]) -> list[bytes]:
    """``sock.recv_multipart(zmq.NOBLOCK)`` (raises ``zmq.Again``), without the per-call overhead."""
    frames = [_recv(sock, _NOBLOCK)]
    while _get(sock, _RCVMORE):
        frames.append(_recv(sock, 0))
    return frames


def recv_message(sock: zmq.Socket[Any]) -> list[zmq.Frame]:
    """A whole message as ``zmq.Frame`` objects, not copied (raises ``zmq.Again``). Relaying frames instead
    of bytes saves two copies of every frame (a 64 KB stream message: two 64 KB copies) and the RCVMORE
    option lookups: ~6 us instead of ~8.5 us for a small 7-frame message."""
    frame = _recv(sock, _NOBLOCK, False)
    frames = [frame]
    while frame.more:
        frame = _recv(sock, 0, False)
        frames.append(frame)
    return frames


def relay(sock: zmq.Socket[Any], frames: list[zmq.Frame]) -> None:
    """Send received frames on without copying them."""
    *head, last = frames
    for frame in head:
        _send(sock, frame, _SNDMORE, False)
    _send(sock, last, 0, False)


def as_bytes(frames: list[zmq.Frame]) -> list[bytes]:
    return [frame.bytes for frame in frames]


# pump -> loop
REQUEST, PRIVATE_REPLY, PRIVATE_IOPUB, SUBSCRIBE, STATUS = b"req", b"rep", b"pio", b"sub", b"sts"
FLUSHED, FAILED = b"fl", b"die"
# loop -> pump
TO_CLIENT, TO_REMOTE, ATTACH, DETACH, QUIT, FLUSH = b"c", b"r", b"a", b"d", b"q", b"f"


class PumpFailed(RuntimeError):
    """The I/O thread ended on an error: nothing reaches the client any more (``serve`` raises it)."""


class Pump:
    def __init__(
        self,
        ctx: zmq.Context[Any],
        client: dict[str, zmq.Socket[Any]],
        fast_forward: Callable[[str, list[bytes]], Any] = lambda channel, frames: None,
        after_forward: Callable[[str, Any], None] = lambda channel, parsed: None,
        on_reply: Callable[[list[bytes]], bool] = lambda frames: False,
        c_iopub: bool = True,
        c_requests: tuple[bytes, tuple[bytes, ...]] | None = None,
        hot: bool = True,
    ) -> None:
        self.ctx = ctx
        self.client = client
        # Hooks, called in this thread. ``fast_forward`` decides, before sending, whether a client request
        # may go straight to the remote kernel (anything true: it may, and is passed to ``after_forward``).
        # ``after_forward`` (the request's bookkeeping) and ``on_reply`` (a reply was relayed; True when the
        # kernel's status changed) are deferred: they run in batches at most BOOKKEEPING_S apart, and always
        # before anything is handed to the loop, so the loop never sees state older than what it is handed.
        # Why: run per message on a busy two-core machine, cold, they cost ~0.1 ms of CPU per round trip and
        # put the gateway ~0.03x above a bare relay (docs/benchmarks.md).
        self.fast_forward = fast_forward
        self.after_forward = after_forward
        self.on_reply = on_reply
        self._later: list[tuple[Callable[[Any], Any], Any]] = []
        self._later_due = 0.0
        # The C hot path (``_hotpath.c``): this thread's wait, remote replies to clients, and, with
        # ``c_requests`` (the connection's HMAC-SHA256 key, b"" for unsigned messages, and the msg_types that
        # ``fast_forward`` lets through whatever else they hold), the client's shell requests that pass the
        # same screen. ``hot`` False, or no C hot path: everything in Python.
        module = hotpath() if hot else None
        self._hp: Any = module.HotPath() if module is not None else None
        self._hp_module = module  # also relays the remote's output (Forwarder), in a thread of its own
        self._c_requests = c_requests
        # Shared state. Each counter is written by one thread only, so no lock is needed.
        self._fast = False  # loop sets (``fast``): a remote kernel is connected and serving
        self.private_ids: set[str] = set()  # loop sets: msg_ids of the gateway's own requests in flight
        self.announced: set[str] = set()  # loop adds, pump removes: requests the loop already said busy for
        self.own_input: set[str] = set()  # loop adds, pump removes: ... and published execute_input for
        self.handed = dict.fromkeys(CLIENT_CHANNELS, 0)  # pump: requests handed to the loop
        self.handled = dict.fromkeys(CLIENT_CHANNELS, 0)  # loop: requests it has finished handling
        self.links: dict[str, PrivateSink] = {}  # loop side only
        self._flushes: list[asyncio.Future[None]] = []  # loop side only: flush() calls waiting for the pump
        # Two one-way pairs: a socket both sent on synchronously and awaited by asyncio could lose the
        # edge-triggered wake-up of its file descriptor (a send may consume it), and the loop would hang.
        addr = f"inproc://mlp-pump-{uuid.uuid4().hex}"
        self._inner = self._pair(ctx.socket(zmq.PAIR))  # pump thread: commands in
        self._inner.bind(addr + "-down")
        self._outer_sync = self._pair(ctx.socket(zmq.PAIR))  # loop: commands out
        self._outer_sync.connect(addr + "-down")
        self._up = self._pair(ctx.socket(zmq.PAIR))  # pump thread: hand-overs out
        self._up.bind(addr + "-up")
        actx = zmq.asyncio.Context.shadow(ctx.underlying)
        self._outer: zmq.asyncio.Socket = self._pair(actx.socket(zmq.PAIR))  # loop: hand-overs in
        self._outer.connect(addr + "-up")
        self._remote: dict[str, zmq.Socket[Any]] = {}
        self._c_sockets: dict[int, Any] = {}  # role -> the socket the C hot path serves in it
        self._remote_id = b""
        self._c_iopub = c_iopub  # relay the remote's output in C when nothing needs to see it (forwarder.py)
        self._forwarder: Forwarder | None = None
        self._notify_at: float | None = None  # when to tell the loop to publish the status (STATUS_QUIET_S)
        self._notify_by = 0.0  # ... at the latest (STATUS_MAX_S)
        # The sockets this thread waits on, in the order it serves them (the loop's commands first), their
        # wake-up file descriptors in an epoll set, and the sockets to look at before the next wait (below).
        self._watched: list[Any] = []
        self._order: tuple[Any, ...] = ()  # a copy of _watched to iterate over while commands change it
        self._by_fd: dict[int, Any] = {}
        self._fds: dict[Any, int] = {}
        self._epoll = select.epoll()
        self._check: set[Any] = set()
        self._route: dict[Any, tuple[Callable[[str, list[zmq.Frame]], None], str]] = {}
        self._after = {name: self._forwarded(name) for name in CLIENT_CHANNELS}
        self._thread = threading.Thread(target=self._run, name="mlp-pump", daemon=True)

    @property
    def fast(self) -> bool:
        return self._fast

    @fast.setter
    def fast(self, value: bool) -> None:
        self._fast = value
        if self._hp is not None:
            self._hp.set_fast(value)  # read by the C hot path for every request, as this thread reads _fast

    @property
    def c_stats(self) -> dict[str, int] | None:
        """What the C hot path relayed (requests, replies) and handed back to Python; None without it."""
        return self._hp.stats() if self._hp is not None else None

    @staticmethod
    def _pair(sock: Any) -> Any:
        sock.sndhwm = sock.rcvhwm = 0  # never drop or block between the threads
        sock.linger = 0
        return sock

    # -- loop side ------------------------------------------------------------------------------------------
    def start(self) -> None:
        keep_freed_buffers()
        self._thread.start()

    def to_client(self, channel: str, frames: list[bytes]) -> None:
        send_frames(self._outer_sync, [TO_CLIENT, channel.encode(), *frames])

    def to_remote(self, link_id: str, channel: str, frames: list[bytes]) -> None:
        send_frames(self._outer_sync, [TO_REMOTE, link_id.encode(), channel.encode(), *frames])

    def attach(self, link: PrivateSink, config: dict[str, Any]) -> None:
        """Connect to a remote kernel (replacing any other); ``config``: urls, routing id, Curve keys."""
        self.links = {link.id: link}
        send_frames(self._outer_sync, [ATTACH, link.id.encode(), json.dumps(config).encode()])

    def forget_announced(self) -> None:
        """Loop side: the remote kernel is gone, so its busy and execute_input will never come."""
        self.announced.clear()
        self.own_input.clear()

    def detach(self, link: PrivateSink) -> None:
        self.links.pop(link.id, None)
        send_frames(self._outer_sync, [DETACH, link.id.encode()])

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait until the bookkeeping of everything relayed so far is done (``after_forward``, ``on_reply``).

        For decisions that read that state right after ``fast`` was cleared, e.g. whether a cell is running
        before releasing the kernel: a request relayed a moment ago may not be recorded yet.
        """
        done = asyncio.get_running_loop().create_future()
        self._flushes.append(done)
        send_frames(self._outer_sync, [FLUSH])
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:  # pragma: no cover - only if the I/O thread is gone
            log.warning("the gateway's I/O thread did not answer a flush")

    def done(self, channel: str) -> None:
        """The loop finished a request handed to it; the channel may take the fast path again."""
        self.handled[channel] += 1

    async def serve(
        self,
        on_request: Callable[[str, list[bytes]], None],
        on_subscribe: Callable[[bytes], None] = lambda event: None,
        on_status: Callable[[], None] = lambda: None,
    ) -> None:
        """Loop side: take what the pump hands over, until cancelled."""
        raw: zmq.Socket[bytes] = zmq.Socket.shadow(self._outer.underlying)  # receive-only, as the awaited one
        while True:
            parts = await self._outer.recv_multipart()
            while True:
                if parts[0] == FAILED:
                    raise PumpFailed("the gateway's I/O thread failed")
                try:
                    self._dispatch(parts, on_request, on_subscribe, on_status)
                except Exception:  # one hand-over (a remote's odd reply, a status bug) must not end serving
                    log.exception("error handling a hand-over from the I/O thread")
                try:
                    parts = raw.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break

    def _dispatch(self, parts: list[bytes], on_request: Any, on_subscribe: Any, on_status: Any) -> None:
        kind = parts[0]
        if kind == REQUEST:
            on_request(parts[1].decode(), parts[2:])
        elif kind in (PRIVATE_REPLY, PRIVATE_IOPUB):
            link = self.links.get(parts[1].decode())
            if link is not None:
                (link.on_private_reply if kind == PRIVATE_REPLY else link.on_private_iopub)(parts[2:])
        elif kind == SUBSCRIBE:
            on_subscribe(parts[1])
        elif kind == STATUS:
            on_status()
        elif kind == FLUSHED and self._flushes:
            done = self._flushes.pop(0)
            if not done.done():
                done.set_result(None)

    def stop(self, timeout: float = 2.0) -> None:
        """Send what is queued, close every socket this thread owns, and end the thread."""
        if self._thread.is_alive():
            send_frames(self._outer_sync, [QUIT])
            self._thread.join(timeout)
        self._outer.close(linger=0)
        self._outer_sync.close(linger=0)

    # -- pump thread ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        name_this_thread(b"mlp-pump")  # in top, py-spy and /proc/<pid>/task (docs/benchmarks.md)
        self._watch(self._inner)
        for name in CLIENT_CHANNELS:
            self._watch(self.client[name])
            self._route[self.client[name]] = (self._from_client, name)
        self._watch(self.client["iopub"])  # subscriptions
        self._route[self.client["iopub"]] = (self._from_subscriber, "iopub")
        try:
            while self._serve_once():
                pass
        except zmq.ContextTerminated:
            pass
        except Exception:  # a bug here would silence the kernel: say so loudly, and have the loop end it
            log.exception("the gateway's I/O thread failed")
            with contextlib.suppress(zmq.ZMQError):
                send_frames(self._up, [FAILED])
        finally:
            self._close_remote()
            for sock in self.client.values():
                sock.close(linger=1000)
            self._inner.close(linger=0)
            self._up.close(linger=0)
            self._epoll.close()

    def _serve_once(self) -> bool:
        """Wait for what is ready, serve it, run what is due. Why epoll and not ``zmq_poll``: ``zmq_poll``
        asks every socket for its ``ZMQ_EVENTS`` before and after it waits, a system call each (libzmq
        reads the socket's mailbox), so a wake-up with nine sockets cost ~20 system calls; epoll on the
        sockets' ``ZMQ_FD``s costs one, and only the sockets whose descriptor fired (or that this thread
        sent on, below) are asked (docs/benchmarks.md, "The relay's CPU")."""
        check, self._check = self._check, set()
        if not check:  # else those first; a descriptor that fired meanwhile stays readable for the next wait
            due = self._later_due if self._later else self._notify_at
            timeout = -1.0 if due is None else max(0.0, due - time.monotonic())
            by_fd = self._by_fd
            if self._hp is not None:
                check = self._wait_in_c(timeout)
            else:
                for fd, _ in self._epoll.poll(timeout):
                    sock = by_fd.get(fd)
                    if sock is not None:
                        check.add(sock)
        for sock in self._order if check else ():  # the command socket is first: the loop's queue goes first
            if sock not in check:
                continue
            if sock is self._inner:
                if not self._commands():
                    return False
                continue
            handler, name = self._route.get(sock, (None, ""))
            if handler is None:  # closed by a command just now
                continue
            try:
                while readable(sock):
                    handler(name, recv_message(sock))
            except zmq.Again:  # pragma: no cover - nothing else reads this socket
                continue
            except zmq.ContextTerminated:
                raise
            except Exception:  # drops that one message; the socket is looked at again before the next wait
                self._check.add(sock)
                log.exception("dropping a message on %s that the I/O thread could not handle", name)
        if self._later or self._notify_at is not None:
            now = time.monotonic()
            if self._later and now >= self._later_due:
                self._run_later()
            if self._notify_at is not None and not self._later and now >= self._notify_at:
                self._notify_at = None
                send_frames(self._up, [STATUS])
        self._choose_iopub_path()
        return True

    def _wait_in_c(self, timeout: float) -> set[Any]:
        """Wait in C (``_hotpath.c``), which relays what needs no Python meanwhile; returns the sockets to
        look at. The bookkeeping of what it relayed is deferred as the Python path defers its own, and the one
        message it handed back is handled here, first, by the handler its socket has in Python."""
        ms = -1 if timeout < 0 else int(timeout * 1000) + 1
        shell_ok = self.handed["shell"] == self.handled["shell"] and bool(self._remote)
        try:
            ready, back, done = self._hp.serve(ms, shell_ok, BOOKKEEPING_MS)
        except OSError as exc:  # a socket failed in C: as pyzmq would say it
            raise zmq_error(exc) from None
        for role, raw in done:
            self._defer(self._c_request_done if role == ROLE_CLIENT_SHELL else self._replied_raw, raw)
        by_fd = self._by_fd
        check = {by_fd[fd] for fd in ready if fd in by_fd}
        check.add(self._inner)  # C looked at it before each request, which may have taken its wake-up
        if back is not None:
            role, raw = back
            sock = self._c_sockets.get(role)
            handler, name = self._route.get(sock, (None, ""))
            if handler is not None:
                check.add(sock)  # more may wait behind it
                try:
                    handler(name, [zmq.Frame(frame) for frame in raw])
                except Exception:
                    log.exception("dropping a message on %s that the I/O thread could not handle", name)
        return check

    def _c_request_done(self, raw: list[bytes]) -> None:
        """Bookkeeping of a request the C hot path relayed: ``after_forward`` with the parsed message, as
        ``fast_forward`` would have returned it (the signature was checked there)."""
        try:
            msg = Message(raw)
        except Malformed:  # pragma: no cover - the C screen read its header
            return
        self.after_forward("shell", msg)

    def _configure_c(self) -> None:
        """Tell the C hot path which of the watched descriptors it serves itself (after every change)."""
        if self._hp is None:
            return
        requests = self._c_requests
        remote = {name: sock for name, sock in self._remote.items() if sock in self._fds}  # watched ones
        by_role = {ROLE_REMOTE_SHELL: remote.get("shell"), ROLE_REMOTE_CONTROL: remote.get("control")}
        if requests is not None:
            by_role[ROLE_CLIENT_SHELL] = self.client["shell"]
        self._c_sockets = {role: sock for role, sock in by_role.items() if sock is not None}
        roles = {sock: role for role, sock in self._c_sockets.items()}
        watched = [(self._fds[sock], roles.get(sock, ROLE_PYTHON)) for sock in self._watched]
        address = {role: sock.underlying for role, sock in self._c_sockets.items()}
        control = self.client["control"]
        self._hp.configure(
            self._epoll.fileno(),
            watched,
            address.get(ROLE_CLIENT_SHELL, 0),
            control.underlying,
            self._fds.get(control, -1),
            address.get(ROLE_REMOTE_SHELL, 0),
            address.get(ROLE_REMOTE_CONTROL, 0),
            self._inner.underlying,
            requests[0] if requests is not None else None,
            list(requests[1]) if requests is not None else [],
        )

    def _defer(self, fn: Callable[[Any], Any], arg: Any) -> None:
        if not self._later:
            self._later_due = time.monotonic() + BOOKKEEPING_S
        self._later.append((fn, arg))

    def _run_later(self) -> None:
        later, self._later = self._later, []
        for fn, arg in later:
            try:
                fn(arg)
            except Exception:  # bookkeeping must never stop the relaying
                log.exception("the gateway's bookkeeping failed for one message")

    def _forwarded(self, channel: str) -> Callable[[Any], None]:
        return lambda parsed: self.after_forward(channel, parsed)

    def _replied(self, frames: list[zmq.Frame]) -> None:
        self._replied_raw(as_bytes(frames))

    def _replied_raw(self, raw: list[bytes]) -> None:
        if self.on_reply(raw):
            now = time.monotonic()
            if self._notify_at is None:
                self._notify_by = now + STATUS_MAX_S
            self._notify_at = min(now + STATUS_QUIET_S, self._notify_by)

    def _commands(self) -> bool:
        """Carry out everything the loop has queued, in order; False once told to quit."""
        inner = self._inner
        while readable(inner):
            parts = recv_frames(inner)
            op = parts[0]
            if op == TO_CLIENT:
                if parts[1] == b"iopub":
                    self._iopub_in_python()  # the client's XPUB is the proxy's while it runs
                self._send_bytes(self.client[parts[1].decode()], parts[2:])
            elif op == TO_REMOTE:
                if self.private_ids or self.announced or self.own_input:
                    self._iopub_in_python()  # before the request: its output must be screened
                if parts[1] == self._remote_id and self._remote:
                    self._send_bytes(self._remote[parts[2].decode()], parts[3:])
            elif op == ATTACH:
                self._attach(parts[1], json.loads(parts[2]))
            elif op == DETACH:
                if parts[1] == self._remote_id:
                    self._close_remote()
            elif op == FLUSH:
                self._run_later()
                send_frames(self._up, [FLUSHED])
            elif op == QUIT:
                return False
        return True

    def _from_client(self, channel: str, frames: list[zmq.Frame]) -> None:
        if channel == "stdin":  # input_reply: to the kernel that asked, if it is still there
            if self._remote:
                self._relay(self._remote["stdin"], frames)
            return
        raw = as_bytes(frames)
        if self._fast and self.handed[channel] == self.handled[channel] and self._remote:
            self._commands()  # whatever the loop forwarded before finishing goes first
            # (and if that cleared ``fast`` and asked for a flush, this request must not be relayed now)
            parsed = self.fast_forward(channel, raw) if self._remote and self._fast else None
            if parsed:
                self._relay(self._remote[channel], frames)
                self._defer(self._after[channel], parsed)
                return
        if self._later:
            self._run_later()
        self.handed[channel] += 1
        send_frames(self._up, [REQUEST, channel.encode(), *raw])

    def _from_subscriber(self, _: str, frames: list[zmq.Frame]) -> None:
        event = frames[0].bytes
        if event[:1] == b"\x01":
            if self._forwarder is not None:  # counted by the XSUB, as the proxy would (forwarder.py)
                _send(self._remote["iopub"], event, 0)
                self._check.add(self._remote["iopub"])
            send_frames(self._up, [SUBSCRIBE, event[1:]])

    def _from_proxy(self, _: str, frames: list[zmq.Frame]) -> None:
        """A subscription the proxy relayed (its capture socket): the loop welcomes the subscriber."""
        send_frames(self._up, [SUBSCRIBE, frames[0].bytes[1:]])

    def _proxy_ended(self, _: str, frames: list[zmq.Frame]) -> None:
        """The proxy's thread ended on an error (or answered a stop): relay iopub here from now on."""
        self._iopub_in_python()

    def _choose_iopub_path(self) -> None:
        """C while nothing needs to look at the remote's output, Python while something does."""
        fwd = self._forwarder
        if fwd is None:
            return
        screen = self.private_ids or self.announced or self.own_input or not self._fast
        if screen or fwd.failed:
            self._iopub_in_python()
        elif not fwd.running:
            self._unwatch(self.client["iopub"])
            self._unwatch(self._remote["iopub"])
            fwd.start()

    def _iopub_in_python(self) -> None:
        fwd = self._forwarder
        if fwd is not None and fwd.running:
            fwd.stop()  # returns once its thread has ended: the sockets are this thread's again
            self._watch(self.client["iopub"])
            self._watch(self._remote["iopub"])
            self._check.add(fwd.notices)  # stop() read its answer, and maybe a wake-up with it

    def _from_remote_reply(self, channel: str, frames: list[zmq.Frame]) -> None:
        if frames[0].bytes == DELIM:  # no client identity: a reply to one of the gateway's own requests
            send_frames(self._up, [PRIVATE_REPLY, self._remote_id, *as_bytes(frames)])
            return
        self._relay(self.client[channel], frames)
        self._defer(self._replied, frames)

    def _from_remote_stdin(self, _: str, frames: list[zmq.Frame]) -> None:
        self._relay(self.client["stdin"], frames)

    def _from_remote_iopub(self, _: str, frames: list[zmq.Frame]) -> None:
        # Screened while the gateway's own requests run, while a request it announced itself awaits the
        # remote's ``busy``, and while the kernel is not on the fast path (booting, releasing: when its own
        # start-up messages arrive). A running kernel's output is relayed without being parsed.
        if self.private_ids or self.announced or self.own_input or not self._fast:
            raw = as_bytes(frames)
            verdict = self._screen(raw)
            if verdict == "private":
                send_frames(self._up, [PRIVATE_IOPUB, self._remote_id, *raw])
                return
            if verdict == "drop":
                return
        self._relay(self.client["iopub"], frames)

    def _screen(self, frames: list[bytes]) -> str:
        """``private``: output of the gateway's own requests, or the remote's ``iopub_welcome`` (the loop's).
        ``drop``: the remote kernel's ``status: starting``, and its ``busy`` (and ``execute_input``) for a
        request the gateway already announced (a cell that started the kernel, or whose ``%gpu`` lines the
        gateway ran first, relaying the rest: the remote saw the code without those lines). To
        the client the kernel is the gateway, which started long ago and announces each request once: one
        ``busy``, one ``idle`` per request, as the protocol (and the upstream kernel test suite) expects.
        ``""``: relay it."""
        try:
            msg = Message(frames)
            t = msg.msg_type
            parent_id = str(msg.parent.get("msg_id"))
            if t == "iopub_welcome" or parent_id in self.private_ids:
                return "private"
            if t == "status":
                state = msg.content.get("execution_state")
                if state == "starting":
                    return "drop"
                if state == "busy" and parent_id in self.announced:
                    self.announced.discard(parent_id)
                    return "drop"
            elif t == "execute_input" and parent_id in self.own_input:
                self.own_input.discard(parent_id)
                return "drop"
        except Malformed:
            pass
        return ""

    def _relay(self, sock: zmq.Socket[Any], frames: list[zmq.Frame]) -> None:
        relay(sock, frames)
        self._check.add(sock)  # the send may have read the socket's wake-up: look at it before sleeping

    def _send_bytes(self, sock: zmq.Socket[Any], frames: list[bytes]) -> None:
        send_frames(sock, frames)
        self._check.add(sock)

    def _watch(self, sock: Any) -> None:
        """Wait on ``sock``'s wake-up descriptor. libzmq signals it when commands reach the socket (a new
        message after the queue ran empty, among others) and any call on the socket may read the signal,
        so a socket is also looked at right away (it may hold messages whose signal was read already)."""
        fd = self._fds[sock] = int(_get(sock, _FD))
        self._by_fd[fd] = sock
        self._epoll.register(fd, select.EPOLLIN)
        self._watched.append(sock)
        self._order = tuple(self._watched)
        self._check.add(sock)
        self._configure_c()

    def _unwatch(self, sock: Any) -> None:
        fd = self._fds.pop(sock)  # not asked of the socket: this also runs after the context was terminated
        self._by_fd.pop(fd, None)
        with contextlib.suppress(OSError):
            self._epoll.unregister(fd)
        self._watched.remove(sock)
        self._order = tuple(self._watched)
        self._configure_c()

    def _attach(self, link_id: bytes, config: dict[str, Any]) -> None:
        self._close_remote()
        keys = config.get("curve")
        for channel in REMOTE_CHANNELS:
            sock = self.ctx.socket(zmq.XSUB if channel == "iopub" else zmq.DEALER)
            sock.linger = 0
            sock.sndhwm = 0  # a remote kernel that is slow to read must not make us drop or block
            if keys:
                sock.curve_serverkey = keys["server"].encode("ascii")
                sock.curve_publickey = keys["public"].encode("ascii")
                sock.curve_secretkey = keys["secret"].encode("ascii")
            sock.reconnect_ivl = 10  # ms: the remote kernel binds a moment after we connect; retry quickly
            if channel == "iopub":  # twice: the proxy's relaying of the clients' last unsubscribe leaves one
                sock.send(b"\x01")
                sock.send(b"\x01")
            elif channel != "control":
                sock.routing_id = config["ident"].encode()  # shell and stdin share it: input_request routing
            sock.connect(config["urls"][channel])
            self._remote[channel] = sock
            handler = {
                "iopub": self._from_remote_iopub,
                "stdin": self._from_remote_stdin,
            }.get(channel, self._from_remote_reply)
            self._route[sock] = (handler, channel)
            self._watch(sock)
        self._remote_id = link_id
        if self._c_iopub:
            fwd = Forwarder(self.ctx, self.client["iopub"], self._remote["iopub"], self._hp_module)
            self._forwarder = fwd
            self._route[fwd.subscriptions] = (self._from_proxy, "iopub")
            self._route[fwd.notices] = (self._proxy_ended, "iopub")
            self._watch(fwd.subscriptions)
            self._watch(fwd.notices)

    def _close_remote(self) -> None:
        # The proxy's thread gives the sockets back before they are closed; after the context was terminated
        # nothing can be asked of a socket, and they are closed all the same (else term() would wait forever).
        with contextlib.suppress(zmq.ZMQError):
            self._iopub_in_python()
        fwd, self._forwarder = self._forwarder, None
        if fwd is not None:
            for sock in (fwd.subscriptions, fwd.notices):
                self._route.pop(sock, None)
                self._unwatch(sock)
            fwd.close()
        for sock in self._remote.values():
            self._route.pop(sock, None)
            if sock in self._watched:
                self._unwatch(sock)
            sock.close(linger=0)
        self._remote = {}
        self._remote_id = b""
