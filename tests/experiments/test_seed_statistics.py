"""Mean, sample standard deviation and paired differences over seeds, against numbers computed by hand."""

import math

import pytest

from mocse_tf.experiments import seed_statistics


def test_mean_and_sample_std_by_hand():
    # 0.90, 0.92, 0.97: mean 0.93; deviations -0.03, -0.01, 0.04; squares 9e-4 + 1e-4 + 16e-4 = 26e-4;
    # / (n - 1) = 13e-4; std = sqrt(13e-4) = 0.036056.
    stats = seed_statistics.mean_std([0.90, 0.92, 0.97])
    assert stats["n"] == 3
    assert stats["mean"] == pytest.approx(0.93, abs=1e-12)
    assert stats["std"] == pytest.approx(math.sqrt(13e-4), abs=1e-12)
    assert seed_statistics.format_mean_std(stats) == "93.00 ± 3.61"
    assert seed_statistics.format_mean_std(stats, signed=True) == "+93.00 ± 3.61"


def test_one_value_has_no_spread_and_none_has_no_mean():
    assert seed_statistics.mean_std([0.5]) == {"mean": 0.5, "std": None, "n": 1, "values": [0.5]}
    assert seed_statistics.mean_std([None])["mean"] is None
    assert seed_statistics.format_mean_std(seed_statistics.mean_std([0.5])) == "50.00"
    assert seed_statistics.format_mean_std(seed_statistics.mean_std([])) == "–"


def test_paired_difference_by_hand():
    # Paired by seed: MoCSE 0.50, 0.54, 0.49 vs PreAct 0.45, 0.50, 0.46 -> differences 0.05, 0.04, 0.03;
    # mean 0.04, std 0.01; standard error 0.01 / sqrt(3) = 0.00577; 95% t interval (2 df: 4.303) +- 0.0248
    # excludes 0.
    mocse = {0: 0.50, 1: 0.54, 2: 0.49}
    preact = {0: 0.45, 1: 0.50, 2: 0.46, 3: 0.99}  # seed 3 has no partner and is left out
    stats = seed_statistics.paired_difference(mocse, preact)
    assert stats["seeds"] == [0, 1, 2] and stats["n"] == 3
    assert stats["mean"] == pytest.approx(0.04, abs=1e-12)
    assert stats["std"] == pytest.approx(0.01, abs=1e-12)
    assert (stats["min"], stats["max"]) == (pytest.approx(0.03), pytest.approx(0.05))
    assert stats["ci95"] == pytest.approx(4.303 * 0.01 / math.sqrt(3), abs=1e-12)
    assert stats["separated"] is True


def test_paired_difference_is_not_the_difference_of_unpaired_spreads():
    # Same means as above but the differences disagree in sign: 0.10, -0.02, 0.04 -> mean 0.04, std 0.06,
    # standard error 0.0346, 95% interval +- 0.149: the effect is not separated from seed noise.
    stats = seed_statistics.paired_difference({0: 0.55, 1: 0.48, 2: 0.50}, {0: 0.45, 1: 0.50, 2: 0.46})
    assert stats["mean"] == pytest.approx(0.04, abs=1e-12)
    assert stats["std"] == pytest.approx(0.06, abs=1e-12)
    assert stats["separated"] is False
    single = seed_statistics.paired_difference({0: 0.6}, {0: 0.5})
    assert single["n"] == 1 and single["std"] is None and single["separated"] is None


def test_two_seeds_need_a_wide_margin():
    # Differences 0.05 and 0.02: mean 0.035, std 0.0212, standard error 0.015; with 1 degree of freedom the 95%
    # interval is +- 12.706 x 0.015 = 0.19, so 2.3 standard errors are not enough.
    stats = seed_statistics.paired_difference({0: 0.45, 1: 0.46}, {0: 0.40, 1: 0.44})
    assert stats["ci95"] == pytest.approx(12.706 * 0.015, abs=1e-9)
    assert stats["separated"] is False
    assert seed_statistics.paired_difference({0: 0.45, 1: 0.46}, {0: 0.40, 1: 0.41})["separated"] is True  # std 0
