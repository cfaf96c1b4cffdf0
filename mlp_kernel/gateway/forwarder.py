"""The remote kernel's output to the clients without Python, in a thread of its own: the C hot path's
forwarder (``_hotpath.forward``) where it is built, else libzmq's steerable proxy.

Why: on the iopub path the I/O thread only copies frames from one socket to another, and doing that in
Python cost ~24-35 us of CPU per message on the two-core development machine (a 50 MB stream is 781
messages, a ``pass`` cell three). On two busy cores the gateway's CPU is taken from the kernel and the
client: streaming ran at ~0.86x of a plain ipykernel. The proxy does the same copy in a few us
(docs/benchmarks.md).

What it relays: the remote kernel's iopub (an XSUB) to the clients' XPUB, and the other way the clients'
subscriptions, which libzmq's proxy cannot leave out. Those reach the remote kernel as duplicates of the
gateway's own subscription (which its XPUB drops) and, through the ``capture`` socket, the I/O thread, which
answers each one with an ``iopub_welcome`` as before. An XSUB counts subscriptions, so the client's last
unsubscribe would unsubscribe the gateway from the remote kernel's output when the count reached zero: the
I/O thread subscribes twice when it connects and counts each subscription it relays itself, so it never does.

Why not libzmq's proxy where the C hot path is there: it asks every socket for its events with ``zmq_poll``
around every message (a ``poll`` and a ``getpid`` per socket per turn, ~60 system calls per ``pass`` round
trip) and copies every output message to the capture socket; ``forward`` waits on the three sockets' file
descriptors in one epoll set and copies only subscriptions there (measured: the relay alone 1.09x -> ~1.06x
over ten runs each, docs/benchmarks.md). Same sockets, same TERMINATE, same order.

Only while nothing needs to look at the output: the I/O thread stops the proxy (``stop``) and relays iopub
itself while it screens the remote's messages (the gateway's own requests in flight, a ``busy`` or
``execute_input`` it announced already, a kernel starting) and to send the gateway's own iopub messages,
and starts it again afterwards (``start``). Stopping returns only after the proxy has forwarded the message
it was at and the thread has ended; what it has not read stays queued in the XSUB, so the order of the
remote's messages is kept across the switch. Only one thread uses the two sockets at a time.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import uuid
from typing import Any

import zmq

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
PR_SET_NAME = 15


def name_this_thread(name: bytes) -> None:
    try:
        ctypes.CDLL(None).prctl(PR_SET_NAME, name[:15], 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def zmq_error(exc: OSError) -> zmq.ZMQError:
    """A socket's failure inside the C hot path (an ``OSError`` with libzmq's errno) as pyzmq says it:
    ``ContextTerminated`` for ETERM, so that callers end the same way on either path."""
    return zmq.ContextTerminated() if exc.errno == zmq.ETERM else zmq.ZMQError(exc.errno)


class Forwarder:
    """``zmq.proxy_steerable(client, remote, capture)`` on demand; every method is for the I/O thread.
    ``native``: the C hot path's module, whose ``forward`` does it instead (see above); None: libzmq."""

    def __init__(
        self, ctx: zmq.Context[Any], client: zmq.Socket[Any], remote: zmq.Socket[Any], native: Any = None
    ) -> None:
        self.client = client
        self.remote = remote
        self._native = native
        addr = f"inproc://mlp-forwarder-{uuid.uuid4().hex}"
        # The subscriptions the proxy relays, for the I/O thread (``subscriptions``, which it polls): the
        # capture socket gets a copy of every message from libzmq's proxy (of the subscriptions only from
        # ``forward``), and a PUB drops the copies no subscriber asked for in C (the remote's output never
        # starts with the subscribe byte).
        self._capture = ctx.socket(zmq.PUB)
        self._capture.sndhwm = 0  # never drop a subscription
        self._capture.linger = 0
        self._capture.bind(addr + "-capture")
        self.subscriptions = ctx.socket(zmq.SUB)
        self.subscriptions.rcvhwm = 0
        self.subscriptions.linger = 0
        self.subscriptions.subscribe(b"\x01")
        self.subscriptions.connect(addr + "-capture")
        # I/O thread: TERMINATE out; in, the proxy's answer or the thread's note that the proxy failed (it
        # polls this socket, so a failed proxy does not silence the kernel until the next stop()).
        self.notices = ctx.socket(zmq.PAIR)
        self.notices.linger = 0
        self.notices.bind(addr + "-control")
        self._steer = ctx.socket(zmq.PAIR)  # the proxy's thread
        self._steer.linger = 0
        self._steer.connect(addr + "-control")
        self._thread: threading.Thread | None = None
        self.failed = False  # the proxy ended on an error: the I/O thread relays iopub itself from then on

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is None and not self.failed:
            self._thread = threading.Thread(target=self._run, name="mlp-iopub", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Return once the proxy has ended; the sockets are the I/O thread's again."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if thread.is_alive():
            with contextlib.suppress(zmq.ZMQError):  # a terminated context ends the proxy by itself
                self.notices.send(b"TERMINATE")
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():  # pragma: no cover - libzmq's proxy answers TERMINATE at once
            # Never share the sockets with a proxy that still runs (ZeroMQ sockets are not thread-safe):
            # wait for it, and say why output stalls meanwhile.
            log.error("the iopub proxy has not stopped after %.0f s; waiting for it", STOP_TIMEOUT_S)
            thread.join()
        with contextlib.suppress(zmq.ZMQError):
            while self.notices.poll(0):  # the proxy's answer to TERMINATE, or the thread's failure note
                self.notices.recv()

    def close(self) -> None:
        self.stop()
        for sock in (self._capture, self.subscriptions, self.notices, self._steer):
            sock.close(linger=0)

    def _run(self) -> None:
        name_this_thread(b"mlp-iopub")  # in top, py-spy and /proc (Python names only its own Thread object)
        try:
            if self._native is not None:
                try:
                    self._native.forward(
                        self.client.underlying,
                        self.remote.underlying,
                        self._capture.underlying,
                        self._steer.underlying,
                    )
                except OSError as exc:
                    raise zmq_error(exc) from None
            else:
                zmq.proxy_steerable(self.client, self.remote, self._capture, self._steer)
        except zmq.ContextTerminated:
            pass
        except Exception:  # the I/O thread, woken by the note, relays iopub itself from now on
            self.failed = True
            log.exception("the iopub proxy failed; the gateway relays output in Python from now on")
            self._steer.send(b"failed")
