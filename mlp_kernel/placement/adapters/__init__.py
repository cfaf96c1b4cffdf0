"""The I/O edge of placement: build a ``ClusterState`` from live clusters or ``kubectl`` dumps.

The pure core (``decide``) never imports this package; callers read state here and pass it in.
"""

from __future__ import annotations

from .dumps import read_objects, state_from_dumps, state_from_objects
from .kueue import StateError
from .live import astate_from_cluster, state_from_cluster

__all__ = [
    "StateError",
    "astate_from_cluster",
    "read_objects",
    "state_from_cluster",
    "state_from_dumps",
    "state_from_objects",
]
