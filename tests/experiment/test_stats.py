import math

import pytest

from mmrec.experiment.stats import mean_and_interval


def test_t_interval_matches_a_hand_computed_case():
    # values 1, 2, 3: mean 2, sample sd 1, t(0.975, 2 df) = 4.302653: half-width 4.302653 / sqrt(3) = 2.484138
    mean, half_width = mean_and_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)


def test_one_value_has_no_interval():
    assert mean_and_interval([0.3]) == (0.3, 0.0)
