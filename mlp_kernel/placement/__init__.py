"""Placement: where a GPU kernel should run, and why (pure core; I/O lives in ``adapters``)."""

from __future__ import annotations

from .units import format_duration, format_size, parse_duration, parse_size

__all__ = ["format_duration", "format_size", "parse_duration", "parse_size"]
