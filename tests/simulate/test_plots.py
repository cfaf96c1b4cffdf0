"""The held-vs-busy curve is an exact time average, so the plot shows what the table reports."""

from __future__ import annotations

import numpy as np
import pytest

from mlp_kernel.simulate.plots import step_average


def test_step_average_integrates_overlapping_intervals_exactly():
    # 2 GPUs over [0, 100), 1 more over [50, 150): bins [0,100) -> (2*100 + 1*50)/100, [100,200) -> 50/100
    edges = np.array([0.0, 100.0, 200.0])
    assert step_average([(0, 100, 2), (50, 150, 1)], edges) == pytest.approx([2.5, 0.5])


def test_step_average_is_zero_outside_the_intervals_and_for_nothing():
    edges = np.array([0.0, 10.0, 20.0, 30.0])
    assert step_average([(12, 18, 4)], edges) == pytest.approx([0.0, 2.4, 0.0])
    assert step_average([], edges) == pytest.approx([0.0, 0.0, 0.0])


def test_the_trade_off_plot_marks_the_foresight_reference(platform_policy):
    """The reference is drawn once per panel at its own held/busy, p95 and waiting share, and labelled as a
    reference; without one, no such point."""
    import matplotlib.pyplot as plt

    from mlp_kernel.simulate import SimConfig, generate, simulate, summarise, trade_off_curves
    from mlp_kernel.simulate.plots import REFERENCE_LABEL, trade_off_figure
    from mlp_kernel.simulate.strategies import foresight

    trace = generate(users=4, days=1, seed=2)
    curves = trade_off_curves(
        platform_policy, trace, [0.0, 900.0], SimConfig(lead_scale=1.0), [0], leads=[1.0]
    )
    ref = summarise(simulate(platform_policy, trace, foresight(True), SimConfig()))
    fig = trade_off_figure(curves, reference=ref)
    marked = [(ax, line) for ax in fig.axes for line in ax.get_lines() if line.get_label() == REFERENCE_LABEL]
    assert [(list(line.get_xdata()), list(line.get_ydata())) for _, line in marked] == [
        ([max(ref.added_p95_s, 1.0)], [ref.held_per_busy]),
        ([100 * ref.waited_over_10s_share], [ref.held_per_busy]),
    ]
    legend = fig.axes[1].get_legend()
    assert REFERENCE_LABEL in [t.get_text() for t in legend.get_texts()]
    bare = trade_off_figure(curves)
    assert not [line for ax in bare.axes for line in ax.get_lines() if line.get_label() == REFERENCE_LABEL]
    plt.close(fig)
    plt.close(bare)
