"""IMRS scoring (imr_analysis.scores): known answers, proration, and the cohort's rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imr_analysis import scores
from imr_analysis.cohort import load_cohort


def items(*rows):
    return pd.DataFrame([list(r) for r in rows], dtype="Float64")


def test_known_answers():
    s = scores.imrs_scores(items([1] * 15, [5] * 15, [1, 2, 3, 4, 5] * 3))
    assert s["total"].tolist() == [15.0, 75.0, 45.0]
    assert s["mean"].tolist() == [1.0, 5.0, 3.0]
    assert s["n_items"].tolist() == [15, 15, 15]


def test_proration_up_to_max_missing():
    row = [2, 4] * 7 + [None]  # 14 answered, sum 42, mean 3
    two_missing = [3] * 13 + [None, None]
    s0 = scores.imrs_scores(items(row, two_missing))
    assert np.isnan(s0["total"]).all() and np.isnan(s0["mean"]).all()
    s1 = scores.imrs_scores(items(row, two_missing), max_missing=1)
    assert s1["total"].tolist()[0] == 45.0 and np.isnan(s1["total"].tolist()[1])
    s2 = scores.imrs_scores(items(row, two_missing), max_missing=2)
    assert s2["total"].tolist() == [45.0, 45.0] and s2["mean"].tolist() == [3.0, 3.0]


def test_nothing_answered_is_missing_whatever_the_rule():
    s = scores.imrs_scores(items([None] * 15), max_missing=15)
    assert s["n_items"].tolist() == [0] and np.isnan(s["total"][0]) and np.isnan(s["mean"][0])


def test_the_cohort_holds_its_rule():
    """Total of complete scales only; item mean of the items answered (notebook 01)."""
    cohort = load_cohort()
    for version, cols in scores.VERSIONS.items():
        s = scores.imrs_scores(cohort[cols], max_missing=0, mean_max_missing=14)
        pd.testing.assert_series_equal(s["total"], cohort[f"imrs_{version}_total"], check_names=False)
        pd.testing.assert_series_equal(s["mean"], cohort[f"imrs_{version}_mean"], check_names=False)


def test_against_a_row_by_row_computation():
    rng = np.random.default_rng(7)
    x = rng.integers(1, 6, (300, 15)).astype(float)
    x[rng.random((300, 15)) < 0.1] = np.nan
    s = scores.imrs_scores(pd.DataFrame(x), max_missing=2)
    for row, (_, got) in zip(x, s.iterrows()):
        answered = row[~np.isnan(row)]
        ok = 0 < len(answered) and 15 - len(answered) <= 2
        want_mean = answered.mean() if ok else np.nan
        want_total = (answered.sum() if len(answered) == 15 else want_mean * 15) if ok else np.nan
        assert got["n_items"] == len(answered)
        assert got["mean"] == pytest.approx(want_mean, nan_ok=True, rel=1e-15)
        assert got["total"] == pytest.approx(want_total, nan_ok=True, rel=1e-15)


def test_wrong_number_of_items_is_refused():
    with pytest.raises(ValueError, match="15 IMRS items"):
        scores.imrs_scores(pd.DataFrame([[1] * 14]))


def test_exact_restores_the_ties_division_splits():
    rng = np.random.default_rng(11)
    totals = rng.integers(15, 76, (400, 2)).astype(float)
    split = (totals[:, 0] / 15 - totals[:, 1] / 15)
    whole = totals[:, 0] - totals[:, 1]
    assert len(np.unique(split)) > len(np.unique(whole))  # division splits tied differences
    assert len(np.unique(scores.exact(split))) == len(np.unique(whole))
    np.testing.assert_array_equal(scores.exact(split), whole * scores.GRID / 15)
    # a prorated mean (14 items answered) is on the grid too
    assert scores.exact(43 / 14) == 43 * scores.GRID / 14 and scores.GRID == 360360
