"""The fast paths of imr_analysis.agreement equal the straightforward computations.

The agreement stage was made fast at 10^6 patients (item codes built column by column,
5 x 5 tables from numpy.bincount, Wilcoxon inputs laid out by absolute value, Holm
from pingouin, Spearman on int16 copies). Each test recomputes the result the plain way
(float item matrix, scipy/statsmodels/pingouin called on the raw arrays) on generated
cohorts with missing items and small groups, and asserts equality: exact where the
fast path is exact by construction, to 1e-12 (relative) otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.multitest import multipletests

from imr_analysis import agreement as A
from imr_analysis.constants import IMRS_ITEMS, IMRS_PROVIDER_COLUMNS, IMRS_USER_COLUMNS
from test_agreement import random_cohort

ITEM_COLS = IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS


def generated_cohort(n=3000, seed=3, missing=0.03, services=("CMHC", "SerD", "EDP"),
                     p_services=(0.6, 0.38, 0.02)) -> pd.DataFrame:
    """Correlated 1-5 user/provider ratings, some missing (``test_agreement.random_cohort``),
    in services of very different sizes (a tiny EDP group)."""
    groups = np.random.default_rng(seed + 1).choice(list(services), n, p=list(p_services))
    return random_cohort(n=n, seed=seed, missing=missing, services=groups)


@pytest.fixture(scope="module", params=[(3000, 0.03), (3000, 0.0), (140, 0.05), (40, 0.02)],
                ids=["n3000-missing", "n3000-complete", "n140-missing", "n40-missing"])
def cohort(request):
    n, missing = request.param
    return generated_cohort(n=n, missing=missing)


def float_items(cohort, version):
    """The plain way: the whole frame to a float array (NaN = missing)."""
    cols = IMRS_USER_COLUMNS if version == "user" else IMRS_PROVIDER_COLUMNS
    return cohort[cols].to_numpy(dtype=float, na_value=np.nan)


def plain_scores(cohort, max_missing):
    out = {}
    for v in A.VERSIONS:
        a = float_items(cohort, v)
        answered = (~np.isnan(a)).sum(axis=1)
        ok = (answered > 0) & (15 - answered <= max_missing)
        total_raw = np.nansum(a, axis=1)
        mean = np.divide(total_raw, answered, out=np.full(len(a), np.nan), where=ok)
        total = np.where(answered == 15, total_raw, mean * 15)
        out[f"{v}_n_items"] = answered.astype("int64")
        out[f"{v}_total"] = np.where(ok, total, np.nan)
        out[f"{v}_mean"] = mean
    return pd.DataFrame(out)


def plain_wilcoxon(d):
    if d.size == 0 or not np.count_nonzero(d):
        return np.nan, np.nan
    res = stats.wilcoxon(d, zero_method="wilcox", method="auto")
    return float(res.statistic), float(res.pvalue)


def assert_close(a, b, rtol=1e-12):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=0,
                               equal_nan=True)


# --------------------------------------------------------------------------------------
# item codes and scores
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_missing", [0, 1, 3])
def test_scores_equal_the_float_computation(cohort, max_missing):
    got = A.imrs_scores(cohort, max_missing=max_missing)
    want = plain_scores(cohort, max_missing)
    pd.testing.assert_frame_equal(got.drop(columns=["patient_id", "service_type"]), want,
                                  check_exact=True)
    assert got["patient_id"].tolist() == cohort["patient_id"].tolist()
    assert got.index.equals(cohort.index)


def test_item_codes_equal_the_float_items(cohort):
    for v in A.VERSIONS:
        codes = A._item_codes(cohort, v)
        assert codes.dtype == np.int8 and codes.flags.f_contiguous
        np.testing.assert_array_equal(A._ratings(codes), float_items(cohort, v))


@pytest.mark.parametrize("dtype", ["Int64", "int64", "float64", "Int8", "object"])
def test_item_codes_accept_any_numeric_dtype(dtype):
    c = generated_cohort(n=30, missing=0.0 if dtype in ("int64", "Int8") else 0.1)
    ref = A.imrs_scores(c)
    c2 = c.astype({col: dtype for col in ITEM_COLS}) if dtype != "object" else \
        c.astype({col: object for col in ITEM_COLS})
    pd.testing.assert_frame_equal(A.imrs_scores(c2), ref, check_exact=True)


@pytest.mark.parametrize("bad, dtype", [(259, "Int64"), (-253, "Int64"), (70000, "Int64"),
                                        (0, "Int64"), (6, "float64"), (2.5, "float64"),
                                        (3 + 1e-9, "float64"), (2 ** 40, "Int64")])
def test_item_codes_refuse_values_that_wrap_or_round(bad, dtype):
    """Out-of-range values are refused even where int8 would wrap them into 1-5
    (259 -> 3) or float32 would round them."""
    c = generated_cohort(n=20, missing=0.0).astype({IMRS_PROVIDER_COLUMNS[6]: dtype})
    c.loc[7, IMRS_PROVIDER_COLUMNS[6]] = bad
    with pytest.raises(ValueError, match="imrs_provider_07: 1 value"):
        A.imrs_scores(c)
    with pytest.raises(ValueError, match="imrs_provider_07"):
        A.table3(c)


# --------------------------------------------------------------------------------------
# Wilcoxon: order of the differences, zeros
# --------------------------------------------------------------------------------------
def test_rank_order_is_a_permutation_sorted_by_absolute_value():
    rng = np.random.default_rng(5)
    for d in (rng.integers(-4, 5, 500).astype(float),
              rng.integers(-60, 61, 900) / 15.0 - rng.integers(-2, 3, 900) / 15.0,
              np.round(rng.normal(0, 1, 300), 1)):
        x = A._rank_order(d)
        np.testing.assert_array_equal(np.sort(x), np.sort(d))
        nz = np.count_nonzero(d)
        assert not x[nz:].any()                                   # zeros last
        # |d| in at most two increasing runs (scipy's stable sort merges them in one pass)
        assert (np.diff(np.abs(x[:nz])) < 0).sum() <= 1


@pytest.mark.parametrize("seed", range(3))
def test_wilcoxon_equals_the_plain_scipy_call(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for n in (5, 13, 40, 50, 51, 60, 120, 2000, 20_000):
        cases.append(rng.integers(-4, 5, n).astype(float))                 # item differences
        cases.append(rng.integers(-3, 4, n).astype(float) * (rng.random(n) < 0.3))  # many zeros
        cases.append(rng.integers(-20, 21, n) / 15.0)                        # item-mean metric
        cases.append(np.round(rng.normal(0.2, 1, n), 2))                    # few ties
    cases.append(np.r_[np.zeros(30), rng.integers(-2, 3, 45)].astype(float))  # nz around 50
    cases.append(np.r_[np.zeros(200), rng.choice([-1.0, 1.0], 51)])
    cases.append(np.zeros(80))
    for d in cases:
        d = rng.permutation(d)
        w, p, _ = A._wilcoxon(d)
        pw, pp = plain_wilcoxon(d)
        assert (w == pw) or (np.isnan(w) and np.isnan(pw))     # exact sums of ranks
        assert_close(p, pp)
        if d.size > 50 and np.count_nonzero(d) and d.min() >= -4 and d.max() <= 4 \
                and np.array_equal(d, np.round(d)):
            # the layout built from a 5 x 5 table is the one _rank_order gives
            table = np.zeros((5, 5), np.int64)
            for v, c in zip(*np.unique(d, return_counts=True)):
                table[max(0, int(v)), max(0, -int(v))] = c
            np.testing.assert_array_equal(A._differences_from_table(table), A._rank_order(d))


# --------------------------------------------------------------------------------------
# table3, item means, item profile
# --------------------------------------------------------------------------------------
def test_table3_equals_the_plain_computation(cohort):
    t3 = A.table3(cohort, alpha=0.1)
    U, P = float_items(cohort, "user"), float_items(cohort, "provider")
    p_w = []
    for j, item in enumerate(IMRS_ITEMS):
        ok = ~(np.isnan(U[:, j]) | np.isnan(P[:, j]))
        u, p = U[ok, j], P[ok, j]
        row = t3.iloc[j]
        assert row["item"] == item and row["n"] == u.size
        # means: exact (integer sums); SDs: numpy.std on the same array
        assert row["user_mean"] == u.mean() and row["provider_mean"] == p.mean()
        assert row["mean_difference"] == (u - p).mean()
        assert row["user_sd"] == np.std(u, ddof=1) and row["provider_sd"] == np.std(p, ddof=1)
        w, pw = plain_wilcoxon(u - p)
        assert row["wilcoxon_W"] == w
        assert_close(row["p_wilcoxon"], pw)
        p_w.append(pw)
        table = pd.crosstab(pd.Categorical(u, categories=range(1, 6)),
                            pd.Categorical(p, categories=range(1, 6)), dropna=False).to_numpy()
        kr = cohens_kappa(table, weights=np.arange(1.0, 6.0), wt="quadratic")
        assert row["kappa_quadratic"] == float(kr.kappa)
        lo, hi = kr.distribution_kappa.interval(0.9)
        assert (row["kappa_ci_low"], row["kappa_ci_high"]) == (float(lo), float(hi))
    assert_close(t3["p_holm"].iloc[:15],
                 multipletests(np.asarray(p_w), method="holm")[1])
    scores = plain_scores(cohort, 0)
    for i, on in ((15, "mean"), (16, "total")):
        u, p = scores[f"user_{on}"].to_numpy(), scores[f"provider_{on}"].to_numpy()
        ok = ~(np.isnan(u) | np.isnan(p))
        u, p = u[ok], p[ok]
        w, pw = plain_wilcoxon(u - p)
        assert t3.iloc[i]["n"] == u.size and t3.iloc[i]["wilcoxon_W"] == w
        assert_close(t3.iloc[i]["p_wilcoxon"], pw)
        assert t3.iloc[i]["user_sd"] == np.std(u, ddof=1)


def test_table3_item_with_too_few_pairs():
    c = generated_cohort(n=60, missing=0.0)
    c.loc[1:, IMRS_USER_COLUMNS[2]] = pd.NA          # item 3: a single pair
    t3 = A.table3(c)
    r = t3.iloc[2]
    u = float(c.loc[0, IMRS_USER_COLUMNS[2]])
    p = float(c.loc[0, IMRS_PROVIDER_COLUMNS[2]])
    assert r["n"] == 1 and np.isnan(r["user_sd"]) and np.isnan(r["kappa_quadratic"])
    assert r["user_mean"] == u and r["mean_difference"] == u - p
    w, pw = plain_wilcoxon(np.array([u - p]))
    assert_close([r["wilcoxon_W"], r["p_wilcoxon"]], [w, pw])
    assert r["note"].endswith("not estimable: 1 pair(s)")
    assert np.isnan(r["p_holm"]) == np.isnan(r["p_wilcoxon"])


def test_item_means_equal_the_plain_computation(cohort):
    im = A.item_means(cohort)
    U, P = float_items(cohort, "user"), float_items(cohort, "provider")
    for j in range(15):
        ok = ~(np.isnan(U[:, j]) | np.isnan(P[:, j]))
        assert im.loc[j, "n"] == ok.sum()
        assert im.loc[j, "user_mean"] == U[ok, j].mean()
        assert im.loc[j, "provider_mean"] == P[ok, j].mean()


# --------------------------------------------------------------------------------------
# patient level: ICC, Spearman, Holm, Cronbach's alpha
# --------------------------------------------------------------------------------------
def test_spearman_on_int16_copies_is_identical():
    rng = np.random.default_rng(2)
    u = rng.integers(15, 76, 5000).astype(float)
    p = np.clip(u + rng.integers(-10, 11, 5000), 15, 75).astype(float)
    ui, pi = A._small_integers(u, p)
    assert ui.dtype == np.int16
    a, b = stats.spearmanr(u, p), stats.spearmanr(ui, pi)
    assert (a.statistic, a.pvalue) == (b.statistic, b.pvalue)
    # non-integers, big integers and short arrays are passed through unchanged
    for x in (u / 15, u * 1000, u[:50]):
        assert A._small_integers(x, x)[0] is x


def test_holm_equals_statsmodels():
    rng = np.random.default_rng(4)
    for _ in range(25):       # statsmodels runs gc.collect() on every call: keep it short
        m = int(rng.integers(1, 20))
        p = rng.random(m) ** rng.integers(1, 30)
        p[rng.integers(0, m, 2)] = p[0]                   # ties
        np.testing.assert_array_equal(A.holm(p), multipletests(p, method="holm")[1])
    p = np.array([0.01, np.nan, 0.2, 0.03])
    np.testing.assert_array_equal(A.holm(p)[[0, 2, 3]],
                                  multipletests(p[[0, 2, 3]], method="holm")[1])


def test_internal_consistency_equals_pingouin_on_the_float_frame(cohort):
    got = A.internal_consistency(cohort, alpha=0.1).set_index("version")
    for v in A.VERSIONS:
        a = float_items(cohort, v)
        a = a[~np.isnan(a).any(axis=1)]
        with A._no_pandas4_warning():
            est, ci = pg.cronbach_alpha(pd.DataFrame(a), ci=0.9)
        assert got.loc[v, "n"] == len(a)
        assert_close(got.loc[v, "estimate"], est)
        assert (got.loc[v, "ci_low"], got.loc[v, "ci_high"]) == tuple(ci)


def test_by_service_and_summary_unchanged_by_a_tiny_group(cohort):
    by = A.agreement_by_service(cohort)
    s = A.imrs_scores(cohort)
    for svc in ("CMHC", "SerD", "EDP"):
        sub = s[s["service_type"] == svc]
        u, p = A._pairs(sub, "total")
        rows = by[by["service_type"] == svc].set_index("measure")
        w = rows.loc[A.WILCOXON]
        assert_close(w["p"], plain_wilcoxon(u - p)[1])
        assert w["n"] == u.size
