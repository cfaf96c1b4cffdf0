"""Messages read as sentences: a release note (a snapshot summary without a full stop) and what follows."""

from __future__ import annotations

from mlp_kernel.gateway.outbox import sentences


def test_parts_are_joined_as_sentences() -> None:
    note = "GPU released with %gpu release (held 2 s on local/local). Saved 1 variable (5 B) in 0.0 s"
    joined = sentences(note, "Starting a new GPU kernel.")
    assert joined.endswith("in 0.0 s. Starting a new GPU kernel."), joined
    assert sentences("Done.", None, "", "Next") == "Done. Next."
    assert sentences("Why? ", "Because:") == "Why? Because:"
