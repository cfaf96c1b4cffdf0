"""Hypothesis strategies for values a hand-edited file or a careless exporter can hold (fuzz tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def scalars(*words: str, text_size: int = 30) -> st.SearchStrategy[Any]:
    """null, booleans, 400-digit integers, NaN and infinity, short text, and the given words."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**400), max_value=10**400),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=text_size),
        st.sampled_from(["nan", "inf", "1e308", "1e12", "-1", "9" * 400, "1s " * 50 + "x", *words]),
    )
