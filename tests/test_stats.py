"""Tests of imr_analysis.stats: test selection, known answers, independent cross-checks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from pandas.errors import Pandas4Warning
from scipy import stats as sps

from imr_analysis import stats as st


def _frame(groups: dict) -> pd.DataFrame:
    """Long frame from {group: values}."""
    return pd.DataFrame({
        "g": np.concatenate([[k] * len(v) for k, v in groups.items()]),
        "x": np.concatenate([np.asarray(v, dtype="float64") for v in groups.values()]),
    })


def _table_frame(table: dict) -> pd.DataFrame:
    """Patients from counts {group: {level: count}}."""
    rows = [(g, lv) for g, levels in table.items() for lv, n in levels.items() for _ in range(n)]
    return pd.DataFrame(rows, columns=["g", "v"])


def cat(df, var, group, levels=None, **kw):
    """compare_categorical on the patients of ``df``."""
    return st.compare_categorical(st.contingency_table(df, var, group, levels), var, **kw)


def cont(df, var, group, levels=None, **kw):
    """compare_continuous on the patients of ``df``."""
    return st.compare_continuous(st.group_samples(df, var, group, levels), var, **kw)


# --------------------------------------------------------------------------------------
# categorical
# --------------------------------------------------------------------------------------
def test_chi_square_known_answer_hand_computed():
    # [[20, 10], [10, 20]]: expected 15 everywhere, chi2 = 4 * 25 / 15 = 6.667, df 1
    df = _table_frame({"a": {"x": 20, "y": 10}, "b": {"x": 10, "y": 20}})
    row = cat(df, "v", "g")
    assert row["test"] == st.TEST_CHI2
    assert row["statistic"] == pytest.approx(20 / 3)
    assert row["df"] == 1
    assert row["p_value"] == pytest.approx(sps.chi2.sf(20 / 3, 1))
    assert row["p_value"] == pytest.approx(0.009823, abs=1e-6)
    assert row["significant"] is True
    assert row["n"] == 60
    assert row["n_per_group"] == "a=30; b=30"


def test_chi_square_without_continuity_correction_matches_scipy():
    counts = {"a": {"x": 30, "y": 12, "z": 15}, "b": {"x": 18, "y": 20, "z": 9}, "c": {"x": 10, "y": 12, "z": 14}}
    df = _table_frame(counts)
    row = cat(df, "v", "g")
    obs = np.array([[counts[g][lv] for g in "abc"] for lv in "xyz"])
    ref = sps.chi2_contingency(obs, correction=False)
    assert row["test"] == st.TEST_CHI2
    assert row["statistic"] == pytest.approx(ref.statistic)
    assert row["p_value"] == pytest.approx(ref.pvalue)
    assert row["df"] == 4
    assert row["n_cells_expected_lt5"] == 0


def test_fisher_for_small_two_by_two():
    df = _table_frame({"a": {"x": 8, "y": 2}, "b": {"x": 3, "y": 7}})
    row = cat(df, "v", "g")
    ref = sps.fisher_exact([[8, 3], [2, 7]])
    assert row["test"] == st.TEST_FISHER
    assert row["p_value"] == pytest.approx(ref.pvalue)
    assert row["p_value"] == pytest.approx(0.069779, abs=1e-6)  # R: fisher.test(matrix(c(8,2,3,7),2))
    assert row["statistic"] == pytest.approx(ref.statistic)
    assert np.isnan(row["df"])
    assert "Fisher" in row["note"] and "odds ratio" in row["note"]
    assert row["n_cells_expected_lt5"] > 0


def test_monte_carlo_for_small_larger_table_is_seeded_and_documented():
    counts = {"CMHC": {"x": 20, "y": 10, "z": 5}, "SerD": {"x": 5, "y": 15, "z": 6}, "EDP": {"x": 1, "y": 0, "z": 4}}
    df = _table_frame(counts).rename(columns={"g": "service_type"})
    row = cat(df, "v", "service_type", seed=3, n_resamples=4000)
    assert row["test"] == st.TEST_CHI2_MC
    assert "Monte-Carlo 4000 resamples, seed 3" in row["note"]
    assert row["n_resamples"] == 4000 and row["seed"] == 3
    # same statistic as the asymptotic test, same p as scipy called directly with the same rng
    obs = st.contingency_table(df, "v", "service_type").to_numpy()
    assert row["statistic"] == pytest.approx(sps.chi2_contingency(obs, correction=False).statistic)
    ref = sps.chi2_contingency(obs, correction=False,
                               method=sps.MonteCarloMethod(n_resamples=4000, rng=np.random.default_rng(3)))
    assert row["p_value"] == ref.pvalue
    # deterministic
    again = cat(df, "v", "service_type", seed=3, n_resamples=4000)
    assert again["p_value"] == row["p_value"]
    # p-values of a Monte-Carlo test are (k + 1) / (B + 1)
    k = row["p_value"] * 4001 - 1
    assert k == pytest.approx(round(k))


def test_monte_carlo_agrees_with_independent_label_permutation():
    counts = {"a": {"x": 6, "y": 3, "z": 1}, "b": {"x": 2, "y": 5, "z": 3}, "c": {"x": 1, "y": 1, "z": 4}}
    df = _table_frame(counts)
    row = cat(df, "v", "g", n_resamples=20000, seed=0)
    assert row["test"] == st.TEST_CHI2_MC
    codes_g = pd.factorize(df["g"])[0]
    codes_v = pd.factorize(df["v"])[0]

    def chi2(labels):
        table = np.zeros((3, 3))
        np.add.at(table, (codes_v, labels), 1)
        return sps.chi2_contingency(table, correction=False).statistic

    perm = sps.permutation_test((codes_g,), chi2, permutation_type="pairings", n_resamples=4000,
                                alternative="greater", rng=np.random.default_rng(1), vectorized=False)
    # two independent Monte-Carlo estimates of the same permutation p-value
    assert row["p_value"] == pytest.approx(perm.pvalue, abs=0.03)


def test_categorical_missing_values_and_empty_levels():
    df = _table_frame({"a": {"x": 20, "y": 10}, "b": {"x": 10, "y": 20}})
    df.loc[len(df)] = ["a", np.nan]
    df.loc[len(df)] = [np.nan, "x"]
    df["v"] = pd.Categorical(df["v"], categories=["x", "y", "never"])
    row = cat(df, "v", "g")
    assert row["n"] == 60
    assert row["n_cells"] == 4  # the unobserved level "never" is dropped
    assert row["statistic"] == pytest.approx(20 / 3)


def test_categorical_no_test_possible_is_reported_not_raised():
    df = pd.DataFrame({"g": ["a", "a", "b"], "v": ["x", "x", "x"]})
    row = cat(df, "v", "g")
    assert np.isnan(row["p_value"])
    assert "no test" in row["note"]
    row = cat(df, "v", "g", levels=["a", "zzz"])
    assert np.isnan(row["p_value"]) and "zzz" in row["note"]


def test_categorical_boolean_variable():
    df = pd.DataFrame({"g": ["a"] * 30 + ["b"] * 30, "v": [True] * 20 + [False] * 10 + [True] * 10 + [False] * 20})
    row = cat(df, "v", "g")
    assert row["statistic"] == pytest.approx(20 / 3)


def test_comparison_label_and_levels_subset():
    df = _table_frame({"a": {"x": 20, "y": 10}, "b": {"x": 10, "y": 20}, "c": {"x": 1, "y": 1}})
    row = cat(df, "v", "g", levels=["a", "b"])
    assert row["comparison"] == "a vs b"
    assert row["statistic"] == pytest.approx(20 / 3)
    assert cat(df, "v", "g")["comparison"] == "all groups"
    assert cat(df, "v", "g", comparison="all services")["comparison"] == "all services"


# --------------------------------------------------------------------------------------
# continuous
# --------------------------------------------------------------------------------------
def test_anova_known_answer_hand_computed():
    # SSB = 4 * (4 + 0 + 4) = 32, SSW = 3 * 5 = 15 -> F = (32 / 2) / (15 / 9) = 9.6 on (2, 9) df
    df = _frame({"a": [1, 2, 3, 4], "b": [3, 4, 5, 6], "c": [5, 6, 7, 8]})
    row = cont(df, "x", "g")
    assert row["reported_test"] == st.TEST_ANOVA == row["test"]
    assert row["statistic"] == pytest.approx(9.6)
    assert (row["df"], row["df2"]) == (2, 9)
    assert row["p_value"] == pytest.approx(sps.f.sf(9.6, 2, 9))
    assert row["p_nonparametric"] == pytest.approx(sps.kruskal([1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7, 8]).pvalue)
    assert row["normality_ok"] is True and row["equal_variance"] is True
    assert "one-way ANOVA" in row["reason"]


def test_two_groups_student_t_known_answer():
    # means 3.5 and 7.5, SD 1.8708 each, n 6: t = -4 / (1.8708 * sqrt(1/3)) = -3.7033 on 10 df
    df = _frame({"a": [1, 2, 3, 4, 5, 6], "b": [5, 6, 7, 8, 9, 10]})
    row = cont(df, "x", "g")
    assert row["test"] == st.TEST_STUDENT
    assert row["statistic"] == pytest.approx(-3.7033, abs=1e-4)
    assert row["df"] == 10
    assert row["p_value"] == pytest.approx(sps.ttest_ind(*[np.arange(1, 7), np.arange(5, 11)]).pvalue)
    mw = sps.mannwhitneyu(np.arange(1, 7), np.arange(5, 11), alternative="two-sided")
    assert row["p_nonparametric"] == pytest.approx(mw.pvalue)
    assert row["statistic_nonparametric"] == pytest.approx(mw.statistic)


def test_welch_when_variances_differ():
    q = sps.norm.ppf((np.arange(1, 31) - 0.5) / 30)  # perfectly normal shape
    a, b = q, 1 + 8 * q[:25]
    df = _frame({"a": a, "b": b})
    row = cont(df, "x", "g")
    assert row["normality_ok"] is True and row["equal_variance"] is False
    assert row["test_parametric"] == row["test"] == st.TEST_WELCH
    assert "Welch" in row["reason"]
    welch = sps.ttest_ind(a, b, equal_var=False)
    assert row["p_value"] == pytest.approx(welch.pvalue)
    assert row["df"] == pytest.approx(welch.df)
    assert row["levene_p"] == pytest.approx(sps.levene(a, b, center="median").pvalue)


def test_kruskal_reported_when_unequal_variances_in_three_groups():
    q = sps.norm.ppf((np.arange(1, 21) - 0.5) / 20)  # perfectly normal shape
    groups = {"a": q, "b": q + 0.5, "c": 10 * q}
    row = cont(_frame(groups), "x", "g")
    assert row["normality_ok"] is True and row["equal_variance"] is False
    assert row["test"] == st.TEST_KRUSKAL
    assert "Levene" in row["reason"]
    assert row["p_value"] == pytest.approx(sps.kruskal(*groups.values()).pvalue)
    assert row["df"] == 2


def test_kruskal_reported_when_not_normal():
    rng = np.random.default_rng(2)
    groups = {"a": rng.exponential(1, 50), "b": rng.exponential(2, 50), "c": rng.normal(3, 1, 50)}
    row = cont(_frame(groups), "x", "g")
    assert row["normality_ok"] is False
    assert row["test"] == st.TEST_KRUSKAL
    assert "Shapiro-Wilk rejects normality in a" in row["reason"]
    assert row["shapiro_p_min"] == pytest.approx(min(sps.shapiro(v).pvalue for v in groups.values()))
    assert row["p_parametric"] == pytest.approx(sps.f_oneway(*groups.values()).pvalue)


def test_mann_whitney_reported_for_two_non_normal_groups():
    rng = np.random.default_rng(3)
    a, b = rng.exponential(1, 40), rng.exponential(3, 40)
    row = cont(_frame({"a": a, "b": b}), "x", "g")
    assert row["test"] == st.TEST_MANN_WHITNEY
    assert row["p_value"] == pytest.approx(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def test_alpha_changes_the_decision():
    # Shapiro p for group "a" is between 0.01 and 0.05
    a = np.array([1, 1, 1, 2, 2, 3, 5, 8, 9, 9], dtype=float)
    p = sps.shapiro(a).pvalue
    assert 0.01 < p < 0.05
    df = _frame({"a": a, "b": a + 0.5, "c": a + 1.0})
    assert cont(df, "x", "g", alpha=0.05)["test"] == st.TEST_KRUSKAL
    assert cont(df, "x", "g", alpha=0.01)["test"] == st.TEST_ANOVA
    with pytest.raises(ValueError, match="alpha"):
        cont(df, "x", "g", alpha=0.5 * 3)


def test_small_and_degenerate_groups_never_raise_or_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # a group of 1 is skipped with a note
        df = _frame({"a": [1, 2, 3, 4], "b": [5, 6, 7, 9], "c": [4]})
        row = cont(df, "x", "g")
        assert "c (n=1)" in row["note"] and row["groups"] == "a, b"
        assert row["test"] in (st.TEST_STUDENT, st.TEST_WELCH)
        # a group of 2 cannot be checked for normality -> rank test
        row = cont(_frame({"a": [1, 2, 3, 4], "b": [5, 6, 7, 9], "c": [4, 5]}), "x", "g")
        assert row["test"] == st.TEST_KRUSKAL and "c has n=2" in row["reason"]
        # a constant group (EDP: every patient had the same two modules)
        row = cont(_frame({"a": [1, 2, 3, 4, 6], "b": [2, 3, 4, 5, 7], "c": [2, 2, 2, 2, 2]}),
                                    "x", "g")
        assert row["test"] == st.TEST_KRUSKAL and "c is constant" in row["reason"]
        assert row["p_value"] == pytest.approx(sps.kruskal([1, 2, 3, 4, 6], [2, 3, 4, 5, 7], [2] * 5).pvalue)
        # all values identical: no test
        row = cont(_frame({"a": [3, 3, 3], "b": [3, 3, 3]}), "x", "g")
        assert np.isnan(row["p_value"]) and "identical" in row["note"]
        # one group only
        row = cont(_frame({"a": [1, 2, 3], "b": [4]}), "x", "g")
        assert np.isnan(row["p_value"]) and "fewer than two groups" in row["note"]


def test_nullable_integers_with_missing_values():
    df = pd.DataFrame({"g": list("aaaabbbb"), "x": pd.array([1, 2, None, 3, 7, 8, 9, None], dtype="Int64")})
    row = cont(df, "x", "g")
    assert row["n"] == 6
    assert row["p_parametric"] == pytest.approx(sps.ttest_ind([1, 2, 3], [7, 8, 9]).pvalue)


def test_cross_check_with_pingouin():
    pg = pytest.importorskip("pingouin")
    rng = np.random.default_rng(4)
    groups = {"a": rng.normal(10, 2, 25), "b": rng.normal(11, 2, 20), "c": rng.normal(12, 2, 8)}
    df = _frame(groups)
    row = cont(df, "x", "g")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Pandas4Warning)
        aov = pg.anova(data=df, dv="x", between="g")
        kw = pg.kruskal(data=df, dv="x", between="g")
        two = df[df["g"].isin(["a", "b"])]
        tt = pg.ttest(groups["a"], groups["b"], correction=False)
        mwu = pg.mwu(groups["a"], groups["b"], alternative="two-sided")
    p_col = "p_unc" if "p_unc" in aov.columns else "p-unc"
    assert row["p_parametric"] == pytest.approx(float(aov[p_col].iloc[0]))
    assert row["statistic_parametric"] == pytest.approx(float(aov["F"].iloc[0]))
    assert row["p_nonparametric"] == pytest.approx(float(kw[p_col].iloc[0]))
    pair = cont(two, "x", "g")
    tt_p = "p_val" if "p_val" in tt.columns else "p-val"
    mw_p = "p_val" if "p_val" in mwu.columns else "p-val"
    assert pair["test_parametric"] == st.TEST_STUDENT
    assert pair["p_parametric"] == pytest.approx(float(tt[tt_p].iloc[0]))
    assert pair["p_nonparametric"] == pytest.approx(float(mwu[mw_p].iloc[0]))


def test_results_frame_stacks_both_kinds():
    df = _frame({"a": [1, 2, 3, 4], "b": [3, 4, 5, 6]})
    df["v"] = ["x", "y"] * 4
    frame = st.results_frame([cont(df, "x", "g"), cat(df, "v", "g")])
    assert list(frame.columns[: len(st.RESULT_COLUMNS)]) == st.RESULT_COLUMNS
    assert frame["kind"].tolist() == ["continuous", "categorical"]
    assert frame["p_value"].notna().all()


def test_group_levels_order():
    df = pd.DataFrame({"s": ["EDP", "SerD", "CMHC", None]})
    assert st.group_levels(df, "s") == ["CMHC", "SerD", "EDP"]
    assert st.group_levels(pd.DataFrame({"s": ["b", "a"]}), "s") == ["a", "b"]
    with pytest.raises(ValueError, match="duplicated"):
        st.group_levels(df, "s", ["CMHC", "CMHC"])
    with pytest.raises(KeyError, match="nope"):
        cont(df, "nope", "s")


def test_large_groups_get_a_note_not_a_warning():
    q = sps.norm.ppf((np.arange(1, 6001) - 0.5) / 6000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = cont(_frame({"a": q, "b": q + 0.1}), "x", "g", n_resamples=99)
    assert row["note"] == ("normality tested with D'Agostino-Pearson (scipy.stats.normaltest) instead of "
                           "Shapiro-Wilk for n > 5000 in a, b")
    assert row["test"] == st.TEST_STUDENT
    assert row["reason"].startswith("D'Agostino-Pearson p >= 0.05 in all groups")


def test_normality_rule_switches_to_dagostino_pearson_above_5000():
    """Shapiro-Wilk up to 5000 per group (unchanged), scipy.stats.normaltest above."""
    rng = np.random.default_rng(12)
    small = rng.normal(0, 1, 5000)           # exactly the limit: still Shapiro-Wilk
    large = rng.exponential(1.0, 5001)       # clearly skewed, above the limit
    row = cont(_frame({"a": small, "b": large}), "x", "g", n_resamples=99)
    p_small, p_large = sps.shapiro(small).pvalue, sps.normaltest(large).pvalue
    assert row["shapiro_p_min"] == min(p_small, p_large)
    assert p_large < 1e-10 and row["normality_ok"] is False
    assert row["test"] == st.TEST_MANN_WHITNEY
    assert row["reason"].startswith("Shapiro-Wilk (n <= 5000) / D'Agostino-Pearson (n > 5000) rejects normality in b")
    assert "instead of Shapiro-Wilk for n > 5000 in b" in row["note"]
    # below the limit nothing changes: the p-value is Shapiro-Wilk's and no note
    row = cont(_frame({"a": small[:300], "b": large[:300]}), "x", "g")
    assert row["shapiro_p_min"] == min(sps.shapiro(small[:300]).pvalue, sps.shapiro(large[:300]).pvalue)
    assert row["note"] == "" and row["reason"].startswith("Shapiro-Wilk rejects normality in b")


def test_three_large_groups_use_dagostino_pearson_for_the_anova_choice():
    rng = np.random.default_rng(3)
    groups = {"a": rng.normal(0, 1, 6000), "b": rng.normal(0.1, 1, 6000), "c": rng.normal(0.2, 1, 6000)}
    row = cont(_frame(groups), "x", "g", n_resamples=99)
    ps = [sps.normaltest(v).pvalue for v in groups.values()]
    assert row["shapiro_p_min"] == min(ps)
    assert (row["test"] == st.TEST_ANOVA) == (min(ps) >= 0.05 and row["levene_p"] >= 0.05)
    assert row["p_parametric"] == pytest.approx(sps.f_oneway(*groups.values()).pvalue, rel=1e-12)


# --------------------------------------------------------------------------------------
# the rank tests are scipy's, exactly
# --------------------------------------------------------------------------------------
def test_rank_tests_equal_scipy_on_the_raw_samples():
    rng = np.random.default_rng(9)
    for make in (lambda n: rng.integers(0, 30, n).astype(float), lambda n: np.round(rng.gamma(2, 2, n), 1),
                 lambda n: rng.normal(size=n)):
        xs = [make(n) for n in (700, 400, 90)]
        three = st.compare_continuous(dict(zip("abc", xs)), "x", n_resamples=99)
        h = sps.kruskal(*xs)
        assert three["statistic_nonparametric"] == float(h.statistic)
        assert three["p_nonparametric"] == float(h.pvalue)
        two = st.compare_continuous({"a": xs[0], "b": xs[1]}, "x", n_resamples=99)
        u = sps.mannwhitneyu(xs[0], xs[1], alternative="two-sided")
        assert two["statistic_nonparametric"] == float(u.statistic)
        assert two["p_nonparametric"] == float(u.pvalue)


# --------------------------------------------------------------------------------------
# effect sizes with CIs: known answers and independent cross-checks
# --------------------------------------------------------------------------------------
def _noncentrality_limits(dist_cdf, stat, tail=0.025):
    """The noncentrality where ``dist_cdf(stat, nc)`` is 1 - tail and tail, by root finding (0 if none)."""
    from scipy.optimize import brentq

    limits = []
    for q in (1 - tail, tail):
        f = lambda nc: dist_cdf(stat, nc) - q  # noqa: E731
        limits.append(0.0 if f(0.0) < 0 else brentq(f, 0.0, 10 * stat + 100, xtol=1e-12))
    return limits


def test_cramers_v_bias_corrected_by_hand_and_noncentral_ci_by_root_finding():
    # 2 x 2: chi2 = 50 (400 - 25)² / 25⁴ = 18; phi² - 1/49, over min(r~, k~) - 1 = 1 - 1/49
    v, low, high = st.cramers_v([[20, 5], [5, 20]])
    assert v == pytest.approx(np.sqrt((18 / 50 - 1 / 49) / (1 - 1 / 49)), rel=1e-12)
    lam = _noncentrality_limits(lambda x, nc: sps.ncx2.cdf(x, 1, nc), 18.0)
    assert (low, high) == pytest.approx([np.sqrt(lam[0] / 50), np.sqrt(lam[1] / 50)], rel=1e-6)
    # 3 x 4: phi² from the cells (no scipy chi-square), Bergsma's corrections; V = 0 and CI from 0 without association
    obs = np.array([[12, 7, 3, 9], [5, 14, 8, 2], [6, 6, 11, 10]])
    n = obs.sum()
    expected = np.outer(obs.sum(1), obs.sum(0)) / n
    phi2 = ((obs - expected) ** 2 / expected).sum() / n
    r_c, k_c = 3 - 4 / (n - 1), 4 - 9 / (n - 1)
    assert st.cramers_v(obs)[0] == pytest.approx(np.sqrt(max(0, phi2 - 6 / (n - 1)) / min(r_c - 1, k_c - 1)),
                                                  rel=1e-12)
    # the uncorrected V of scipy is larger; the corrected one is 0 where phi² < its bias
    flat = [[10, 11, 9], [10, 9, 11]]
    assert sps.contingency.association(np.array(flat), method="cramer") > 0
    assert st.cramers_v(flat)[:2] == (0.0, 0.0)
    assert st.cramers_v([[40, 0], [0, 40]])[2] == 1.0  # never above 1


def test_eta_squared_equals_pingouin_and_its_ci_the_noncentral_f_inverted():
    import pingouin as pg

    rng = np.random.default_rng(4)
    groups = {"a": rng.normal(0, 1, 20), "b": rng.normal(1.5, 1, 15), "c": rng.normal(0.5, 1, 12)}
    row = st.compare_continuous(groups, "x", n_resamples=99)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Pandas4Warning)
        aov = pg.anova(_frame(groups), dv="x", between="g").iloc[0]
    assert row["effect_size_parametric"] == st.EFFECT_ETA2
    assert row["effect_parametric"] == pytest.approx(aov["np2"], rel=1e-12)
    nc = _noncentrality_limits(lambda f, nc: sps.ncf.cdf(f, 2, 44, nc), aov["F"])
    assert nc[0] > 0
    assert [row["effect_ci_low_parametric"], row["effect_ci_high_parametric"]] == pytest.approx(
        [c / (c + 47) for c in nc], abs=1e-5)  # scipy's ncfdtrinc stops at cdf = 0.975 +- 5e-6
    # an F below its 97.5% quantile: the lower limit is 0
    assert st.eta_squared(1.0, 2, 44, 47)[1] == 0.0


def test_epsilon_squared_is_the_eta_squared_of_the_ranks():
    import pingouin as pg

    rng = np.random.default_rng(5)
    groups = {"a": rng.integers(0, 8, 25), "b": rng.integers(2, 10, 18), "c": rng.integers(1, 9, 9)}  # ties
    frame = _frame(groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Pandas4Warning)
        aov = pg.anova(frame.assign(x=sps.rankdata(frame["x"])), dv="x", between="g").iloc[0]
    h = sps.kruskal(*groups.values()).statistic
    assert st.epsilon_squared(*groups.values()) == pytest.approx(h / (len(frame) - 1), rel=1e-12)
    assert st.epsilon_squared(*groups.values()) == pytest.approx(aov["np2"], rel=1e-12)


def test_rank_biserial_counts_pairs_and_equals_pingouin():
    import pingouin as pg

    x, y = [1, 2, 3, 4.5, 6], [3, 4, 5, 9]
    pairs = [np.sign(a - b) for a in x for b in y]  # P(x > y) - P(x < y)
    assert st.rank_biserial(x, y) == pytest.approx(np.mean(pairs), rel=1e-12)
    u = sps.mannwhitneyu(x, y).statistic
    assert st.rank_biserial(x, y) == pytest.approx(2 * u / 20 - 1, rel=1e-12)
    assert st.rank_biserial(x, y) == pytest.approx(pg.mwu(x, y)["RBC"].iloc[0], rel=1e-12)


def test_hedges_g_and_its_ci_by_hand():
    x, y = np.array([3.0, 4, 6, 7, 5, 6, 7]), np.array([4.0, 6, 2, 3, 5, 1])
    nx, ny = len(x), len(y)
    sp = np.sqrt(((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / (nx + ny - 2))
    g = (x.mean() - y.mean()) / sp * (1 - 3 / (4 * (nx + ny) - 9))  # Hedges' small-sample correction
    se = np.sqrt((nx + ny) / (nx * ny) + g ** 2 / (2 * (nx + ny)))
    half = sps.t.ppf(0.975, nx + ny - 2) * se
    row = st.compare_continuous({"x": x, "y": y}, "v", n_resamples=99)
    assert row["effect_size_parametric"] == st.EFFECT_G
    assert [row["effect_parametric"], row["effect_ci_low_parametric"], row["effect_ci_high_parametric"]] == \
        pytest.approx([g, g - half, g + half], rel=1e-9)


def test_bootstrap_cis_are_seeded_and_agree_with_pingouin_bootci():
    import pingouin as pg

    rng = np.random.default_rng(6)
    x, y = rng.normal(0.5, 1, 40), rng.normal(0, 1, 35)
    a, b = (st.compare_continuous({"x": x, "y": y}, "v", seed=s, n_resamples=4000) for s in (1, 1))
    c = st.compare_continuous({"x": x, "y": y}, "v", seed=2, n_resamples=4000)
    ci = [a["effect_ci_low_nonparametric"], a["effect_ci_high_nonparametric"]]
    assert ci == [b["effect_ci_low_nonparametric"], b["effect_ci_high_nonparametric"]]
    assert ci != [c["effect_ci_low_nonparametric"], c["effect_ci_high_nonparametric"]]
    assert ci[0] < a["effect_nonparametric"] < ci[1] and (a["seed"], a["n_resamples"]) == (1, 4000)
    other = pg.compute_bootci(x, y, func=lambda u, v: st.rank_biserial(u, v), method="per", n_boot=4000, seed=3,
                              decimals=6)
    assert ci == pytest.approx(list(other), abs=0.03)


# --------------------------------------------------------------------------------------
# sensitivity: the equal-variance, Welch and rank tests side by side
# --------------------------------------------------------------------------------------
def test_welch_tests_equal_statsmodels():
    from statsmodels.stats.oneway import anova_oneway
    from statsmodels.stats.weightstats import ttest_ind

    rng = np.random.default_rng(7)
    groups = {"a": rng.normal(0, 1, 30), "b": rng.normal(0.5, 3, 20), "c": rng.normal(1, 0.5, 10)}
    row = st.compare_continuous(groups, "x", n_resamples=99)
    welch = anova_oneway(list(groups.values()), use_var="unequal")
    assert [row["statistic_welch"], row["df_welch"], row["df2_welch"], row["p_welch"]] == pytest.approx(
        [welch.statistic, *welch.df, welch.pvalue], rel=1e-9)
    assert row["p_equal_var"] == pytest.approx(anova_oneway(list(groups.values()), use_var="equal").pvalue, rel=1e-9)
    two = st.compare_continuous({"a": groups["a"], "b": groups["b"]}, "x", n_resamples=99)
    t, p, df = ttest_ind(groups["a"], groups["b"], usevar="unequal")
    assert [two["statistic_welch"], two["df_welch"], two["p_welch"]] == pytest.approx([t, df, p], rel=1e-9)
    assert two["p_equal_var"] == pytest.approx(ttest_ind(groups["a"], groups["b"])[1], rel=1e-9)


def test_conclusion_depends_on_test_where_anova_and_kruskal_wallis_disagree():
    a = np.arange(1, 21.0)
    c = a + 6
    c[-1] = 200  # one outlier inflates the variance: ANOVA misses what the rank test and Welch see
    row = st.compare_continuous({"a": a, "b": a + 6, "c": c}, "x", n_resamples=99)
    assert row["p_equal_var"] > 0.05 > max(row["p_welch"], row["p_nonparametric"])
    assert row["conclusion_depends_on_test"] is True
    assert row["effect_size"] == st.EFFECT_EPSILON2 and row["effect"] == row["effect_nonparametric"]
    agree = st.compare_continuous({"a": a, "b": a + 30}, "x", n_resamples=99)
    assert agree["conclusion_depends_on_test"] is False
    # no Welch's ANOVA with a constant group: the other two decide, and a note says why
    flat = st.compare_continuous({"a": a, "b": a + 30, "c": np.full(5, 3.0)}, "x", n_resamples=99)
    assert np.isnan(flat["p_welch"]) and "no Welch's ANOVA" in flat["note"]
    assert flat["conclusion_depends_on_test"] is False


def test_effect_sizes_are_public_and_counts_are_not():
    frame = st.results_frame([st.compare_continuous({"a": [1, 2, 4, 5], "b": [3, 5, 6, 8]}, "x", n_resamples=99),
                              cat(_table_frame({"a": {"x": 8, "y": 2}, "b": {"x": 3, "y": 7}}), "v", "g")])
    public = st.public_results(frame)
    assert {*st.EFFECT_COLUMNS, *st.EFFECT_BOTH_COLUMNS, "p_welch", "p_equal_var",
            "conclusion_depends_on_test"} <= set(public.columns)
    assert not {"n", "n_per_group", "df_welch", "df2_welch", "statistic_welch", "note"} & set(public.columns)
    assert public["effect_size"].tolist() == [st.EFFECT_G, st.EFFECT_V]
