"""Tests of the Bland-Altman analysis: direct arithmetic, published values, figure bytes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from imr_analysis import agreement as A
from imr_analysis import bland_altman as BA
from imr_analysis.constants import IMRS_PROVIDER_COLUMNS, IMRS_USER_COLUMNS
from imr_analysis.figio import save_figure

# Bland & Altman (1986), Lancet, Table 1: peak expiratory flow rate (l/min), first
# reading with the Wright and with the mini Wright meter, 17 subjects.
WRIGHT = np.array([494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178,
                   423, 427], dtype=float)
MINI_WRIGHT = np.array([512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477,
                        259, 350, 451], dtype=float)


def make_cohort(user, provider, services=None) -> pd.DataFrame:
    df = pd.DataFrame(np.hstack([np.asarray(user, float), np.asarray(provider, float)]),
                      columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS).astype("Int64")
    if services is not None:
        df["service_type"] = services
    return df


@pytest.fixture(scope="module")
def cohort():
    rng = np.random.default_rng(21)
    n = 60
    base = rng.normal(3.6, 0.5, (n, 1))
    u = np.clip(np.rint(base + rng.normal(0.1, 0.6, (n, 15))), 1, 5)
    p = np.clip(np.rint(base + rng.normal(0.0, 0.6, (n, 15))), 1, 5)
    return make_cohort(u, p)


def test_direct_arithmetic():
    rng = np.random.default_rng(0)
    d = rng.normal(1.0, 3.0, 25)
    res = BA.limits_of_agreement(d).set_index("measure")
    mean, sd, n = d.mean(), d.std(ddof=1), d.size
    z = 1.959963984540054
    assert res.loc[BA.BIAS, "estimate"] == pytest.approx(mean)
    assert res.loc[BA.LOA_LOWER, "estimate"] == pytest.approx(mean - z * sd)
    assert res.loc[BA.LOA_UPPER, "estimate"] == pytest.approx(mean + z * sd)
    t = stats.t.ppf(0.975, n - 1)
    assert res.loc[BA.BIAS, "ci_low"] == pytest.approx(mean - t * sd / np.sqrt(n))
    assert res.loc[BA.BIAS, "ci_high"] == pytest.approx(mean + t * sd / np.sqrt(n))
    assert res.loc[BA.BIAS, "p"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert (res["n"] == n).all()


def test_approximate_ci_bland_altman_1999():
    rng = np.random.default_rng(1)
    d = rng.normal(-2.0, 5.0, 40)
    res = BA.limits_of_agreement(d, loa_ci="approximate").set_index("measure")
    m, s, n = d.mean(), d.std(ddof=1), d.size
    z, t = stats.norm.ppf(0.975), stats.t.ppf(0.975, n - 1)
    se = s * np.sqrt(1 / n + z**2 / (2 * (n - 1)))
    assert res.loc[BA.LOA_UPPER, "ci_low"] == pytest.approx(m + z * s - t * se)
    assert res.loc[BA.LOA_UPPER, "ci_high"] == pytest.approx(m + z * s + t * se)
    assert res.loc[BA.LOA_LOWER, "ci_low"] == pytest.approx(m - z * s - t * se)
    # ~ sqrt(3 s^2 / n), the rule of thumb of Bland & Altman (1986)
    assert se == pytest.approx(np.sqrt(3 * s**2 / n), rel=0.02)


@pytest.mark.parametrize("n, k", [(10, 2.911), (20, 2.396)])
def test_exact_ci_equals_one_sided_tolerance_factor(n, k):
    """Carkeet's exact upper bound of the upper limit equals the one-sided normal tolerance
    factor of the tables (95th percentile, 95% confidence: 2.911 for n = 10, 2.396 for
    n = 20). Limits covering 90% sit at the 5th/95th percentiles; a two-sided 90% CI has
    a one-sided 95% upper bound."""
    x = np.arange(n, dtype=float)
    d = (x - x.mean()) / x.std(ddof=1)          # mean 0, SD 1 exactly
    res = BA.limits_of_agreement(d, alpha=0.10, coverage=0.90,
                                 loa_ci="exact").set_index("measure")
    assert res.loc[BA.LOA_UPPER, "ci_high"] == pytest.approx(k, abs=5e-4)
    assert res.loc[BA.LOA_LOWER, "ci_low"] == pytest.approx(-k, abs=5e-4)
    # the exact interval is wider than the approximate one for small n
    approx = BA.limits_of_agreement(d, alpha=0.10, coverage=0.90,
                                    loa_ci="approximate").set_index("measure")
    assert res.loc[BA.LOA_UPPER, "ci_high"] > approx.loc[BA.LOA_UPPER, "ci_high"]


def test_published_pefr_example():
    """Bland & Altman (1986): mean difference -2.1 l/min, SD 38.8 l/min."""
    res = BA.limits_of_agreement(WRIGHT - MINI_WRIGHT).set_index("measure")
    assert round(res.loc[BA.BIAS, "estimate"], 1) == -2.1
    half_width = res.loc[BA.LOA_UPPER, "estimate"] - res.loc[BA.BIAS, "estimate"]
    assert round(half_width / stats.norm.ppf(0.975), 1) == 38.8
    assert round(res.loc[BA.LOA_LOWER, "estimate"], 1) == -78.1
    assert round(res.loc[BA.LOA_UPPER, "estimate"], 1) == 73.9


def test_symmetry_and_degenerate_inputs():
    rng = np.random.default_rng(3)
    d = rng.normal(0.5, 2.0, 15)
    a = BA.limits_of_agreement(d).set_index("measure")
    b = BA.limits_of_agreement(-d).set_index("measure")
    assert a.loc[BA.LOA_UPPER, "ci_high"] == pytest.approx(-b.loc[BA.LOA_LOWER, "ci_low"])
    one = BA.limits_of_agreement([2.0, np.nan])
    assert one["n"].tolist() == [1, 1, 1] and one["ci_low"].isna().all()
    assert "at least 2" in one.loc[0, "note"]
    same = BA.limits_of_agreement([1.0, 1.0, 1.0]).set_index("measure")
    assert same.loc[BA.LOA_UPPER, "estimate"] == 1.0 and np.isnan(same.loc[BA.BIAS, "ci_low"])
    with pytest.raises(ValueError, match="loa_ci"):
        BA.limits_of_agreement(d, loa_ci="bootstrap")


def test_bland_altman_data(cohort):
    data = A.bland_altman_data(cohort)
    s = A.patient_scores(cohort)
    d = (s["user_total"] - s["provider_total"]).to_numpy()
    assert data.n == len(cohort)
    assert data.points["count"].sum() == data.n
    assert data.points["difference"].repeat(data.points["count"]).sum() == pytest.approx(d.sum())
    assert not data.points.duplicated(["mean", "difference"]).any()
    assert data.stats.set_index("measure").loc[BA.BIAS, "estimate"] == pytest.approx(d.mean())
    mean_data = A.bland_altman_data(cohort, on="mean")
    assert mean_data.stats["estimate"].to_numpy() * 15 == pytest.approx(
        data.stats["estimate"].to_numpy())
    with pytest.raises(ValueError, match="on must be"):
        A.bland_altman_data(cohort, on="median")


def test_plot_points_and_private_mode(cohort):
    import matplotlib.pyplot as plt
    from matplotlib.collections import PathCollection

    data = A.bland_altman_data(cohort)
    fig = BA.plot_bland_altman(data)
    scat = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)
            and len(c.get_offsets())]
    assert len(scat) == 1
    np.testing.assert_allclose(scat[0].get_sizes(), 18.0 * data.points["count"].to_numpy())
    plt.close(fig)
    fig = BA.plot_bland_altman(data, show_points=False)
    ax = fig.axes[0]
    assert not [c for c in ax.collections if len(getattr(c, "get_offsets", lambda: [])())]
    assert ax.get_xlim() == (15.0, 75.0)
    assert f"n = {data.n}" in ax.get_title()
    plt.close(fig)
    fig = BA.plot_bland_altman(data, show_points=False, show_n=False)
    ax = fig.axes[0]
    assert "n =" not in ax.get_title()
    # bias and limits drawn as lines, their CIs as three bands
    assert len(ax.patches) == 3
    plt.close(fig)


def test_figure_is_byte_stable(cohort, tmp_path):
    import matplotlib.pyplot as plt

    outputs = []
    for run in ("a", "b"):
        fig = BA.plot_bland_altman(A.bland_altman_data(cohort))
        outputs.append(save_figure(fig, tmp_path / run, "figure2_bland_altman", dpi=100))
        plt.close(fig)
    for first, second in zip(*outputs):
        assert first.name == second.name
        assert first.read_bytes() == second.read_bytes(), first.suffix
