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
