"""The statistics habit (batchlab.stats): paired comparisons, bootstrap intervals, honest rounding."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from batchlab.stats import compare_paired, round_to_error, seed_interval


def test_clear_difference_names_the_higher_setting():
    a = [0.90, 0.92, 0.91, 0.93, 0.92]
    b = [0.80, 0.83, 0.81, 0.82, 0.80]
    result = compare_paired(a, b, names=("large", "small"))
    assert result.clear and result.n == 5 and result.wins == 5
    assert result.verdict().startswith("large is higher than small at 5 seeds")
    assert result.low > 0


def test_noise_gives_no_clear_difference():
    rng = np.random.default_rng(1)
    a = rng.normal(0.5, 0.1, size=6)
    b = a + rng.normal(0, 0.1, size=6) * np.array([1, -1, 1, -1, 1, -1])
    result = compare_paired(a, b)
    assert not result.clear
    assert result.verdict().startswith("no clear difference at 6 seeds")


def test_interval_is_scipy_paired_t_interval():
    a, b = [1.0, 2.0, 3.5, 4.0, 5.5], [1.1, 1.7, 3.0, 4.2, 5.0]
    expected = scipy_stats.ttest_rel(a, b).confidence_interval(0.95)
    result = compare_paired(a, b)
    assert result.low == pytest.approx(expected.low) and result.high == pytest.approx(expected.high)
    assert result.mean == pytest.approx(np.mean(np.subtract(a, b)))
    assert result.stderr == pytest.approx(np.std(np.subtract(a, b), ddof=1) / np.sqrt(5))


def test_identical_differences_have_a_point_interval():
    result = compare_paired([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert result.low == result.high == 1.0 and result.clear


def test_lower_word_used_when_a_is_smaller():
    result = compare_paired([1.0, 1.1, 0.9, 1.0, 1.05], [2.0, 2.1, 2.0, 1.9, 2.0], names=("x", "y"))
    assert result.verdict(lower="faster").startswith("x is faster than y")


def test_verdict_without_interval_keeps_only_the_words():
    clear = compare_paired([0.90, 0.92, 0.91, 0.93, 0.92], [0.80, 0.83, 0.81, 0.82, 0.80], names=("a", "b"))
    assert clear.verdict(interval=False) == "a is higher than b at 5 seeds"
    noisy = compare_paired([1.0, 2.0, 1.5, 1.2, 1.8], [1.1, 1.9, 1.6, 1.1, 1.8])
    assert noisy.verdict(interval=False) == "no clear difference at 5 seeds"
    assert noisy.verdict().startswith(noisy.verdict(interval=False) + ": A − B = ")
    with pytest.raises(TypeError, match="interval"):
        noisy.verdict(interval="no")


def test_pair_name_words_the_verdict():
    result = compare_paired([0.90, 0.92, 0.91, 0.93, 0.92], [0.80, 0.83, 0.81, 0.82, 0.80], pair_name="runs")
    assert result.verdict(interval=False) == "A is higher than B at 5 runs"
    assert result.verdict().endswith("5 of 5 runs positive)")
    with pytest.raises(TypeError, match="pair_name"):
        compare_paired([1.0, 2.0], [1.5, 2.5], pair_name="")


def test_seed_interval_is_seeded_and_contains_the_estimate():
    values = [13.0, 14.5, 12.2, 15.8, 13.9, 14.1, 13.3, 14.8]
    first = seed_interval(values)
    assert first == seed_interval(values)
    estimate, low, high = first
    assert low <= estimate <= high and estimate == pytest.approx(np.mean(values))
    median, low_m, high_m = seed_interval(values, np.median)
    assert low_m <= median <= high_m


def test_seed_interval_without_spread():
    assert seed_interval([3.0, 3.0, 3.0]) == (3.0, 3.0, 3.0)


@pytest.mark.parametrize(("value", "error", "text"), [
    (0.7163, 0.0591, "0.72 ± 0.06"),
    (0.7163, 0.0151, "0.716 ± 0.015"),
    (13.94, 0.46, "13.9 ± 0.5"),
    (81.2, 21.3, "81 ± 21"),
    (9897.0, 120.0, "9,897 ± 120"),
])
def test_round_to_error(value, error, text):
    assert round_to_error(value, error) == text


@pytest.mark.parametrize(("args", "kwargs", "error", "words"), [
    (([1.0], [2.0]), {}, ValueError, "at least 2"),
    (([1.0, 2.0], [1.0, 2.0, 3.0]), {}, ValueError, "one value per seed"),
    (([1.0, float("nan")], [1.0, 2.0]), {}, ValueError, "a[1]"),
    (("12", [1.0, 2.0]), {}, TypeError, "a must be"),
    (([1.0, 2.0], [1.0, 2.5]), {"confidence": 1.0}, ValueError, "confidence"),
])
def test_compare_paired_bad_input(args, kwargs, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        compare_paired(*args, **kwargs)


def test_round_to_error_bad_input():
    with pytest.raises(ValueError, match="error must be"):
        round_to_error(1.0, -0.1)
    with pytest.raises(ValueError, match="resamples"):
        seed_interval([1.0, 2.0], resamples=5)


def test_fewer_than_five_pairs_give_a_hint_not_a_verdict():
    a, b = [0.90, 0.92, 0.91, 0.93], [0.80, 0.83, 0.81, 0.82]
    result = compare_paired(a, b, names=("large", "small"))
    assert result.clear
    assert result.verdict().startswith("large looks higher than small, but 4 seeds are too few for a verdict")
    assert "is higher" not in result.verdict(interval=False)
