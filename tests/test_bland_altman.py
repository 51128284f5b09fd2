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
    assert one["n"].tolist() == [1, 1, 1, 1] and one["ci_low"].isna().all()
    assert "at least 2" in one.loc[0, "note"]
    same = BA.limits_of_agreement([1.0, 1.0, 1.0]).set_index("measure")
    assert same.loc[BA.LOA_UPPER, "estimate"] == 1.0 and np.isnan(same.loc[BA.BIAS, "ci_low"])
    with pytest.raises(ValueError, match="loa_ci"):
        BA.limits_of_agreement(d, loa_ci="bootstrap")


def test_proportional_bias_against_numpy_and_scipy():
    mean, d = (WRIGHT + MINI_WRIGHT) / 2, WRIGHT - MINI_WRIGHT
    row = BA.limits_of_agreement(d, means=mean).set_index("measure").loc[BA.PROPORTIONAL]
    slope, intercept = np.polyfit(mean, d, 1)
    lr = stats.linregress(mean, d)
    assert row["estimate"] == pytest.approx(slope, rel=1e-10) == pytest.approx(lr.slope, rel=1e-10)
    assert row["p"] == pytest.approx(lr.pvalue, rel=1e-10) and row["n"] == 17
    half = stats.t.ppf(0.975, 15) * lr.stderr
    assert [row["ci_low"], row["ci_high"]] == pytest.approx([lr.slope - half, lr.slope + half], rel=1e-10)
    assert f"difference = {intercept:.4g} " in row["note"]
    # no means, no row; too few pairs or one mean, not estimable
    assert BA.PROPORTIONAL not in BA.limits_of_agreement(d)["measure"].tolist()
    assert np.isnan(BA.proportional_bias([1.0, 1.0, 1.0], [0.0, 1.0, 2.0])["estimate"].iloc[0])


def test_share_inside_the_limits_by_direct_count():
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(9)
    d = np.round(rng.standard_t(3, 90), 1)  # heavy tails: more outside than 5%
    res = BA.limits_of_agreement(d).set_index("measure")
    lo, hi = res.loc[BA.LOA_LOWER, "estimate"], res.loc[BA.LOA_UPPER, "estimate"]
    inside = sum(lo <= x <= hi for x in d)
    assert inside < 90 and res.loc[BA.LOA_INSIDE, "estimate"] == pytest.approx(100 * inside / 90)
    ci = proportion_confint(inside, 90, alpha=0.05, method="beta")  # Clopper-Pearson
    assert res.loc[BA.LOA_INSIDE, ["ci_low", "ci_high"]].tolist() == pytest.approx([100 * ci[0], 100 * ci[1]])
    assert BA.limits_of_agreement([1.0, 1.0, 1.0]).set_index("measure").loc[BA.LOA_INSIDE, "estimate"] == 100


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
    scaled = mean_data.stats.set_index("measure")["estimate"] * [15, 15, 15, 1, 1]  # share and slope: no unit
    assert scaled.to_numpy() == pytest.approx(data.stats["estimate"].to_numpy())
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


def test_plot_draws_proportional_bias_and_the_share(cohort):
    import matplotlib.pyplot as plt

    data = A.bland_altman_data(cohort)
    st = data.stats.set_index("measure")
    fig = BA.plot_bland_altman(data)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[1] == f"{st.loc[BA.LOA_INSIDE, 'estimate']:.1f}% of differences inside the limits of agreement"
    assert texts[0].startswith("OLS: difference = ") and f"{st.loc[BA.PROPORTIONAL, 'p']:.3f}" in texts[0]
    line = next(h for h in ax.get_lines() if h.get_label() == texts[0])
    (x0, x1), (y0, y1) = line.get_xdata(), line.get_ydata()
    assert (y1 - y0) / (x1 - x0) == pytest.approx(st.loc[BA.PROPORTIONAL, "estimate"])
    s = A.patient_scores(cohort)
    slope, intercept = np.polyfit((s["user_total"] + s["provider_total"]) / 2, s["user_total"] - s["provider_total"], 1)
    assert y0 == pytest.approx(intercept + slope * x0)
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
