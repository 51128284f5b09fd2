"""Tests of imr_analysis.agreement: known answers and independent computations.

Every cohort here is hand-made (no dependency on data/processed/cohort.parquet).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.multitest import multipletests

from imr_analysis import agreement as A
from imr_analysis import disclosure as dc
from imr_analysis import publish
from imr_analysis.constants import IMRS_PROVIDER_COLUMNS, IMRS_USER_COLUMNS

ITEM_COLS = IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS


def protect(table, profile, name):
    """Disclosure control of an agreement table, its count rows (:data:`COUNT_MEASURES`) as counts."""
    return dc.apply_to_statistics(table, profile, name, A.COUNT_MEASURES)


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------
def make_cohort(user, provider, services=None) -> pd.DataFrame:
    """A cohort from (n x 15) user and provider item arrays (NaN = missing)."""
    user = np.asarray(user, dtype=float)
    provider = np.asarray(provider, dtype=float)
    df = pd.DataFrame(np.hstack([user, provider]), columns=ITEM_COLS).astype("Int64")
    df.insert(0, "patient_id", [f"EF{i:05d}" for i in range(len(df))])
    if services is not None:
        df.insert(1, "service_type", list(services))
    return df


def random_cohort(n=80, seed=7, missing=0.0, services=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.normal(3.5, 0.6, (n, 1)) + rng.normal(0, 0.4, (1, 15))
    u = np.clip(np.rint(base + rng.normal(0.15, 0.7, (n, 15))), 1, 5)
    p = np.clip(np.rint(base + rng.normal(0.0, 0.7, (n, 15))), 1, 5)
    if missing:
        u[rng.random(u.shape) < missing] = np.nan
        p[rng.random(p.shape) < missing] = np.nan
    if services is None:
        services = rng.choice(["CMHC", "SerD", "EDP"], n)
    return make_cohort(u, p, services)


@pytest.fixture(scope="module")
def cohort():
    return random_cohort()


@pytest.fixture(scope="module")
def cohort_missing():
    return random_cohort(n=120, seed=11, missing=0.03)


# --------------------------------------------------------------------------------------
# scores and missing items
# --------------------------------------------------------------------------------------
def test_imrs_scores_complete_and_prorated():
    u = np.full((3, 15), 4.0)
    u[1, 0] = np.nan                 # one item missing
    u[2, :3] = np.nan                # three items missing
    u[2, 3:] = 2.0
    p = np.tile(np.arange(1, 16) % 5 + 1, (3, 1)).astype(float)   # sum 45, complete
    c = make_cohort(u, p)
    s0 = A.patient_scores(c)
    assert s0["user_total"].tolist()[0] == 60.0
    assert np.isnan(s0["user_total"].iloc[1]) and np.isnan(s0["user_mean"].iloc[1])
    assert s0["user_n_items"].tolist() == [15, 14, 12]
    assert s0["provider_total"].tolist() == [45.0] * 3
    assert s0["provider_mean"].tolist() == [3.0] * 3
    s1 = A.patient_scores(c, max_missing=1)
    assert s1["user_total"].iloc[1] == pytest.approx(60.0)      # 56 / 14 * 15
    assert s1["user_mean"].iloc[1] == pytest.approx(4.0)
    assert np.isnan(s1["user_total"].iloc[2])                    # 3 missing > 1
    s3 = A.patient_scores(c, max_missing=3)
    assert s3["user_total"].iloc[2] == pytest.approx(30.0)      # mean 2 x 15
    # the item mean is always total / 15
    for s in (s0, s1, s3):
        np.testing.assert_allclose(s["user_total"], s["user_mean"] * 15)
    assert s0["patient_id"].tolist() == c["patient_id"].tolist()


def test_imrs_scores_prorated_total_differs_from_sum_of_available():
    u = np.full((1, 15), 3.0)
    u[0, 14] = np.nan
    c = make_cohort(u, np.full((1, 15), 3.0))
    s = A.patient_scores(c, max_missing=2)
    assert s["user_total"].iloc[0] == pytest.approx(45.0)       # not 42 (the raw sum)


def test_missing_items_change_n_used(cohort_missing):
    s0 = A.patient_scores(cohort_missing)
    s2 = A.patient_scores(cohort_missing, max_missing=2)
    complete = cohort_missing[IMRS_USER_COLUMNS].notna().all(axis=1)
    assert s0["user_total"].notna().sum() == complete.sum()
    assert s2["user_total"].notna().sum() > s0["user_total"].notna().sum()
    pla0 = A.patient_level_agreement(cohort_missing)
    pla2 = A.patient_level_agreement(cohort_missing, max_missing=2)
    both0 = (s0["user_total"].notna() & s0["provider_total"].notna()).sum()
    stat0 = pla0[pla0["measure"] != A.EXCLUDED]
    assert (stat0["n"] == both0).all()
    assert (pla2.loc[pla2["measure"] != A.EXCLUDED, "n"] > both0).all()
    # the excluded patients are counted
    excl0 = pla0.set_index("measure").loc[A.EXCLUDED]
    assert excl0["estimate"] == len(cohort_missing) - both0 == excl0["n"]


@pytest.mark.parametrize("bad", [0, 6, 2.5])
def test_invalid_item_values_are_refused(bad):
    u = np.full((2, 15), 3.0)
    c = make_cohort(u, u).astype({IMRS_USER_COLUMNS[4]: "float64"})
    c.loc[1, IMRS_USER_COLUMNS[4]] = bad
    with pytest.raises(ValueError, match="imrs_user_05"):
        A.patient_scores(c)


@pytest.mark.parametrize("dtype", ["Int64", "int64", "float64", "Int8", "object"])
def test_scores_do_not_depend_on_the_item_dtype(dtype):
    c = random_cohort(n=30, seed=3, missing=0.0 if dtype in ("int64", "Int8") else 0.1)
    ref = A.patient_scores(c)
    c2 = c.astype({col: dtype for col in ITEM_COLS})
    pd.testing.assert_frame_equal(A.patient_scores(c2), ref, check_exact=True)


@pytest.mark.parametrize("bad, dtype", [(259, "Int64"), (-253, "Int64"), (70000, "Int64"),
                                        (0, "Int64"), (6, "float64"), (2.5, "float64"),
                                        (3 + 1e-9, "float64"), (2 ** 40, "Int64")])
def test_invalid_items_are_refused_whatever_the_dtype(bad, dtype):
    """Out-of-range or non-integer ratings are refused, even values that a narrow integer
    type would wrap into 1-5 (259 -> 3) or a float32 would round."""
    c = random_cohort(n=20, seed=3).astype({IMRS_PROVIDER_COLUMNS[6]: dtype})
    c.loc[7, IMRS_PROVIDER_COLUMNS[6]] = bad
    with pytest.raises(ValueError, match="imrs_provider_07: 1 value"):
        A.patient_scores(c)
    with pytest.raises(ValueError, match="imrs_provider_07"):
        A.table3(c)


def test_argument_checks(cohort):
    with pytest.raises(ValueError, match="max_missing"):
        A.patient_scores(cohort, max_missing=15)
    with pytest.raises(ValueError, match="max_missing"):
        A.patient_scores(cohort, max_missing=-1)
    with pytest.raises(ValueError, match="on must be"):
        A.patient_level_agreement(cohort, on="sum")
    with pytest.raises(ValueError, match="alpha"):
        A.table3(cohort, alpha=1.5)
    with pytest.raises(ValueError, match="lacks"):
        A.patient_scores(cohort.drop(columns=IMRS_PROVIDER_COLUMNS[0]))
    with pytest.raises(ValueError, match="unknown service"):
        A.agreement_by_service(cohort, services=["CMHC", "Hospital"])


# --------------------------------------------------------------------------------------
# Holm
# --------------------------------------------------------------------------------------
def holm(p):
    """Holm's adjustment as Table 3 applies it (pingouin; NaN kept, not counted)."""
    return pg.multicomp(np.asarray(p, dtype=float), method="holm")[1]


def test_holm_hand_computed_and_as_statsmodels():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # capped at 1, NaN kept and not counted in m
    out = holm([0.5, np.nan, 0.4])
    np.testing.assert_allclose(out, [0.8, np.nan, 0.8])
    rng = np.random.default_rng(4)
    for _ in range(25):
        m = int(rng.integers(1, 20))
        p = rng.random(m) ** rng.integers(1, 30)
        p[rng.integers(0, m, 2)] = p[0]                   # ties
        np.testing.assert_array_equal(holm(p), multipletests(p, method="holm")[1])


# --------------------------------------------------------------------------------------
# weighted kappa
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quadratic_kappa_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 6, 60)
    b = np.clip(a + rng.integers(-1, 2, 60), 1, 5)
    ours = A.weighted_kappa(a, b)
    ref = cohen_kappa_score(a, b, weights="quadratic", labels=[1, 2, 3, 4, 5])
    assert ours["kappa"] == pytest.approx(ref, abs=1e-12)
    assert ours["ci_low"] < ours["kappa"] < ours["ci_high"]
    assert ours["n"] == 60


@pytest.mark.parametrize("weights, sk", [("quadratic", "quadratic"), ("linear", "linear"), ("unweighted", None)])
def test_kappa_weights_match_sklearn(weights, sk):
    rng = np.random.default_rng(4)
    a = rng.integers(1, 6, 80)
    b = np.clip(a + rng.integers(-2, 3, 80), 1, 5)
    b[:5] = 3  # some pairs far apart
    ours = A.weighted_kappa(a, b, weights=weights)
    assert ours["kappa"] == pytest.approx(cohen_kappa_score(a, b, weights=sk, labels=[1, 2, 3, 4, 5]), abs=1e-12)
    assert ours["ci_low"] < ours["kappa"] < ours["ci_high"] and 0 <= ours["p"] <= 1
    with pytest.raises(ValueError, match="weights must be"):
        A.weighted_kappa(a, b, weights="cubic")


def test_table3_kappas_and_pratt_against_sklearn_and_scipy(cohort_missing):
    t3 = A.table3(cohort_missing)
    for j in (0, 6, 11):
        u = cohort_missing[IMRS_USER_COLUMNS[j]].astype(float)
        p = cohort_missing[IMRS_PROVIDER_COLUMNS[j]].astype(float)
        ok = u.notna() & p.notna()
        for w, sk in (("quadratic", "quadratic"), ("linear", "linear"), ("unweighted", None)):
            ref = cohen_kappa_score(u[ok].astype(int), p[ok].astype(int), weights=sk, labels=[1, 2, 3, 4, 5])
            assert t3.loc[j, f"kappa_{w}"] == pytest.approx(ref, abs=1e-12)
        pratt = stats.wilcoxon(u[ok], p[ok], zero_method="pratt")
        assert t3.loc[j, "wilcoxon_W_pratt"] == pratt.statistic
        assert t3.loc[j, "p_pratt"] == pytest.approx(pratt.pvalue, rel=1e-12)
    np.testing.assert_allclose(t3["p_holm_pratt"].iloc[:15], multipletests(t3["p_pratt"].iloc[:15], method="holm")[1])


def test_wilcoxon_on_the_item_mean_is_the_test_on_the_total():
    """Item mean = total / 15: the same ranks, W and p, although division splits tied differences."""
    rng = np.random.default_rng(8)
    u = rng.integers(2, 6, (60, 15)).astype(float)
    p = np.clip(u + rng.integers(-1, 2, (60, 15)), 1, 5)
    c = make_cohort(u, p)
    s = A.patient_scores(c)
    d_total = (s["user_total"] - s["provider_total"]).to_numpy()
    d_mean = (s["user_mean"] - s["provider_mean"]).to_numpy()
    assert len(np.unique(np.abs(d_mean))) > len(np.unique(np.abs(d_total)))  # the trap: ties split
    ref = stats.wilcoxon(d_total.astype(int), zero_method="wilcox")  # scipy on the integer differences
    t3 = A.table3(c).set_index("label")
    for label in ("Item mean (1-5)", "Total (15-75)"):
        assert t3.loc[label, "wilcoxon_W"] == ref.statistic
        assert t3.loc[label, "p_wilcoxon"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert stats.wilcoxon(d_mean).statistic != ref.statistic  # what ranking the rounded means gave
    for on in ("total", "mean"):
        row = A.patient_level_agreement(c, on=on).set_index("measure").loc[A.WILCOXON]
        assert row["p"] == pytest.approx(ref.pvalue, rel=1e-12) and f"W = {ref.statistic:g};" in row["note"]


def test_sensitivity_flags_a_changed_conclusion():
    t3 = pd.DataFrame({"p_wilcoxon": [0.04, 0.04, np.nan], "p_pratt": [0.06, 0.03, 0.01],
                       "p_holm": [0.6, 0.04, np.nan], "p_holm_pratt": [0.9, 0.06, np.nan],
                       "kappa_quadratic_p": [0.01, 0.01, np.nan], "kappa_linear_p": [0.02, 0.01, np.nan],
                       "kappa_unweighted_p": [0.2, 0.001, np.nan]})
    assert A.sensitivity(t3).tolist() == ["Wilcoxon zeros (unadjusted p); kappa weights",
                                          "Wilcoxon zeros (Holm p)", ""]
    assert A.sensitivity(t3, alpha=0.7).tolist() == ["Wilcoxon zeros (Holm p)", "", ""]


def test_quadratic_kappa_uses_the_full_scale():
    # categories {1, 2, 5}: spacing matters, so the unused 3 and 4 must count
    a = np.array([1, 2, 5, 5, 1, 2, 5, 1])
    b = np.array([1, 1, 5, 2, 2, 2, 5, 1])
    ours = A.weighted_kappa(a, b)["kappa"]
    assert ours == pytest.approx(cohen_kappa_score(a, b, weights="quadratic", labels=[1, 2, 3, 4, 5]))
    assert ours != pytest.approx(cohen_kappa_score(a, b, weights="quadratic"))


def test_quadratic_kappa_degenerate_and_missing():
    res = A.weighted_kappa([3, 3, 3], [3, 3, 3])
    assert np.isnan(res["kappa"]) and "single" in res["note"]
    res = A.weighted_kappa([1, np.nan, 3, 4], [1, 2, np.nan, 4])
    assert res["n"] == 2
    with pytest.raises(ValueError, match="categories"):
        A.weighted_kappa([1, 7], [1, 2])


def test_table3_item_kappas_match_sklearn(cohort_missing):
    t3 = A.table3(cohort_missing)
    for j in range(15):
        u = cohort_missing[IMRS_USER_COLUMNS[j]]
        p = cohort_missing[IMRS_PROVIDER_COLUMNS[j]]
        ok = u.notna() & p.notna()
        ref = cohen_kappa_score(u[ok].astype(int), p[ok].astype(int), weights="quadratic",
                                labels=[1, 2, 3, 4, 5])
        assert t3.loc[j, "kappa_quadratic"] == pytest.approx(ref, abs=1e-12)


# --------------------------------------------------------------------------------------
# Table 3
# --------------------------------------------------------------------------------------
def test_table3_against_direct_computation(cohort_missing):
    c = cohort_missing
    t3 = A.table3(c)
    assert len(t3) == 17
    assert t3["item"].tolist()[:15] == list(range(1, 16))
    assert t3["item"].isna().tolist()[15:] == [True, True]
    raw_p = []
    for j in range(15):
        u = c[IMRS_USER_COLUMNS[j]].astype(float)
        p = c[IMRS_PROVIDER_COLUMNS[j]].astype(float)
        ok = u.notna() & p.notna()
        row = t3.loc[j]
        assert row["n"] == ok.sum()
        assert row["user_mean"] == pytest.approx(u[ok].mean())
        assert row["user_sd"] == pytest.approx(u[ok].std(ddof=1))
        assert row["provider_sd"] == pytest.approx(p[ok].std(ddof=1))
        assert row["mean_difference"] == pytest.approx((u[ok] - p[ok]).mean())
        w = stats.wilcoxon(u[ok], p[ok])
        assert row["p_wilcoxon"] == pytest.approx(w.pvalue)
        raw_p.append(w.pvalue)
    np.testing.assert_allclose(t3["p_holm"].iloc[:15], holm(raw_p))
    assert (t3["p_holm"].iloc[:15] >= t3["p_wilcoxon"].iloc[:15] - 1e-15).all()
    s = A.patient_scores(c)
    both = s["user_total"].notna() & s["provider_total"].notna()
    tot = t3.iloc[16]
    assert tot["label"] == "Total (15-75)" and tot["n"] == both.sum()
    assert tot["user_mean"] == pytest.approx(s.loc[both, "user_total"].mean())
    assert tot["provider_sd"] == pytest.approx(s.loc[both, "provider_total"].std(ddof=1))
    mean_row = t3.iloc[15]
    assert mean_row["user_mean"] * 15 == pytest.approx(tot["user_mean"])
    assert mean_row["user_sd"] * 15 == pytest.approx(tot["user_sd"])


def test_table3_all_zero_differences_item():
    rng = np.random.default_rng(3)
    u = rng.integers(1, 6, (20, 15)).astype(float)
    p = u.copy()
    p[:, 1:] = np.clip(p[:, 1:] + rng.integers(-1, 2, (20, 14)), 1, 5)
    t3 = A.table3(make_cohort(u, p))
    first = t3.iloc[0]
    assert np.isnan(first["p_wilcoxon"]) and np.isnan(first["p_holm"])
    assert "all differences are zero" in first["note"]
    assert first["kappa_quadratic"] == pytest.approx(1.0)
    # Holm over the 14 testable items only
    np.testing.assert_allclose(t3["p_holm"].iloc[1:15], holm(t3["p_wilcoxon"].iloc[1:15]))


def test_table3_item_with_too_few_pairs():
    c = random_cohort(n=60, seed=3)
    c.loc[1:, IMRS_USER_COLUMNS[2]] = pd.NA          # item 3: a single pair
    r = A.table3(c).iloc[2]
    u = float(c.loc[0, IMRS_USER_COLUMNS[2]])
    p = float(c.loc[0, IMRS_PROVIDER_COLUMNS[2]])
    assert r["n"] == 1 and np.isnan(r["user_sd"]) and np.isnan(r["kappa_quadratic"])
    assert r["user_mean"] == u and r["mean_difference"] == u - p
    if u != p:
        w = stats.wilcoxon([u - p], zero_method="wilcox", method="auto")
        np.testing.assert_allclose([r["wilcoxon_W"], r["p_wilcoxon"]], [w.statistic, w.pvalue], equal_nan=True)
    else:
        assert np.isnan(r["wilcoxon_W"]) and np.isnan(r["p_wilcoxon"])
    assert r["note"].endswith("not estimable: 1 pair(s)")
    assert np.isnan(r["p_holm"]) == np.isnan(r["p_wilcoxon"])


def test_format_table3(cohort):
    f = A.format_table3(A.table3(cohort))
    assert list(f.columns) == ["Item", "n", "User, mean (SD)", "Provider, mean (SD)",
                               "Difference (user - provider)", "Wilcoxon p (Holm)", "Wilcoxon-Pratt p (Holm)",
                               "Quadratic-weighted kappa, primary (95% CI)", "Linear-weighted kappa",
                               "Unweighted kappa", "Conclusion at alpha = 0.05 changes with"]
    assert f["Item"].iloc[0] == "1. Progress towards personal goals"
    assert f["User, mean (SD)"].str.fullmatch(r"\d+\.\d{2} \(\d+\.\d{2}\)").all()
    assert f["Wilcoxon p (Holm)"].iloc[-1].endswith("(unadjusted)")


# --------------------------------------------------------------------------------------
# Table 3 as a long table of numbers
# --------------------------------------------------------------------------------------
def _p_text(p) -> str:
    return "" if pd.isna(p) else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _format_from_long(long: pd.DataFrame) -> pd.DataFrame:
    """The published Table 3 rebuilt from the long table alone, at display precision."""
    rows = []
    for (item, label), g in long.groupby([long["item"].astype("Float64"), "item_label"], sort=False, dropna=False):
        m = g.set_index("measure")

        def get(measure, col, m=m):
            return m.at[measure, col] if measure in m.index else np.nan

        def ms(who):
            mean, sd = get(who, "mean"), get(who, "sd")
            return "" if pd.isna(mean) else (f"{mean:.2f}" if pd.isna(sd) else f"{mean:.2f} ({sd:.2f})")
        n = m["n"].iloc[0]

        def p_text(measure):
            p_holm, p_raw = get(measure, "p_holm"), get(measure, "p_value")
            return _p_text(p_holm) if not pd.isna(p_holm) else (
                f"{_p_text(p_raw)} (unadjusted)" if not pd.isna(p_raw) else "")

        def k_text(w):
            return "" if pd.isna(k := get(A.KAPPAS[w], "kappa")) else f"{k:.2f}"

        def differ(ps):  # significance at 0.05 differs among the known p-values
            return len({p < 0.05 for p in ps if not pd.isna(p)}) > 1
        kappa = get(A.T3_KAPPA, "kappa")
        lo, hi = get(A.T3_KAPPA, "ci_low"), get(A.T3_KAPPA, "ci_high")
        diff = get(A.T3_DIFFERENCE, "mean")
        flags = [name for name, ps in (
            ("Wilcoxon zeros (unadjusted p)", [get(A.T3_WILCOXON, "p_value"), get(A.T3_PRATT, "p_value")]),
            ("Wilcoxon zeros (Holm p)", [get(A.T3_WILCOXON, "p_holm"), get(A.T3_PRATT, "p_holm")]),
            ("kappa weights", [get(name, "p_value") for name in A.KAPPAS.values()])) if differ(ps)]
        cells = {
            "Item": label if pd.isna(item) else f"{int(item)}. {label}",
            "n": "" if pd.isna(n) else str(int(n)),
            "User, mean (SD)": ms(A.T3_USER),
            "Provider, mean (SD)": ms(A.T3_PROVIDER),
            "Difference (user - provider)": "" if pd.isna(diff) else f"{diff:.2f}",
            "Wilcoxon p (Holm)": p_text(A.T3_WILCOXON), "Wilcoxon-Pratt p (Holm)": p_text(A.T3_PRATT),
            "Quadratic-weighted kappa, primary (95% CI)": "" if pd.isna(kappa) else
            f"{kappa:.2f}" + ("" if pd.isna(lo) else f" ({lo:.2f} to {hi:.2f})"),
            "Linear-weighted kappa": k_text("linear"), "Unweighted kappa": k_text("unweighted"),
            "Conclusion at alpha = 0.05 changes with": "; ".join(flags),
        }
        if "redacted" in g.columns and g["redacted"].any():
            cells = {k: (v if k == "Item" else "[REDACTED]") if (k != "n" or v == "") else v
                     for k, v in cells.items()}
        rows.append(cells)
    return pd.DataFrame(rows)


def test_table3_long_structure(cohort_missing):
    t3 = A.table3(cohort_missing)
    long = A.table3_long(t3)
    assert list(long.columns) == A.TABLE3_LONG_COLUMNS
    assert len(long) == 15 * 8 + 2 * 5  # no kappa for the item mean and the total
    assert long["measure"].iloc[:8].tolist() == A.TABLE3_MEASURES
    assert long.loc[long["item"].notna(), "item"].drop_duplicates().tolist() == list(range(1, 16))
    num = ["mean", "sd", "statistic", "p_value", "p_holm", "kappa", "ci_low", "ci_high"]
    assert (long[num].dtypes == np.float64).all() and long["n"].dtype == np.int64
    assert long["item"].dtype == "Int64"
    # each measure carries only its own statistics
    filled = long[num].notna().groupby(long["measure"]).any()
    assert filled.loc[A.T3_USER].tolist() == [True, True] + [False] * 6
    assert filled.loc[A.T3_DIFFERENCE].tolist() == [True] + [False] * 7
    for measure in (A.T3_WILCOXON, A.T3_PRATT):
        assert filled.loc[measure].tolist() == [False, False, True, True, True, False, False, False]
    for measure in A.KAPPAS.values():
        assert filled.loc[measure].tolist() == [False, False, False, True, False, True, True, True]
    # the same numbers as the wide table3, bit for bit
    items = long[long["item"].notna()]
    k = items[items["measure"] == A.T3_KAPPA]
    np.testing.assert_array_equal(k["kappa"].to_numpy(), t3["kappa_quadratic"].iloc[:15].to_numpy())
    w = long[long["measure"] == A.T3_WILCOXON]
    np.testing.assert_array_equal(w["p_value"].to_numpy(), t3["p_wilcoxon"].to_numpy())
    np.testing.assert_array_equal(w["statistic"].to_numpy(), t3["wilcoxon_W"].to_numpy())
    with pytest.raises(ValueError, match="protect the long table"):
        A.table3_long(protect(t3, "opensafely", "table3")[0])


def test_table3_long_formats_to_the_published_table3(cohort_missing):
    t3 = A.table3(cohort_missing)
    pd.testing.assert_frame_equal(_format_from_long(A.table3_long(t3)), A.format_table3(t3))
    # and in private mode: the protected long table gives the protected Table 3
    rng = np.random.default_rng(5)
    u = rng.integers(1, 6, (12, 15)).astype(float)
    p = np.clip(u + rng.integers(-1, 2, (12, 15)), 1, 5)
    u[:6, :3] = np.nan  # items 1-3: 6 pairs; the others 12, the totals 6
    small_t3 = A.table3(make_cohort(u, p))
    assert (small_t3["n"] <= 7).any() and (small_t3["n"] > 7).any()
    for profile in ("opensafely", "sistan_min3"):
        long_safe, _ = protect(A.table3_long(small_t3), profile, "table3_imrs_long")
        t3_safe, _ = protect(small_t3, profile, "table3_imrs")
        pd.testing.assert_frame_equal(_format_from_long(long_safe), A.format_table3(t3_safe))


def test_table3_long_recomputed_independently(cohort_missing):
    c = cohort_missing
    long = A.table3_long(A.table3(c))
    j = 4  # item 5
    u = c[IMRS_USER_COLUMNS[j]].astype(float)
    p = c[IMRS_PROVIDER_COLUMNS[j]].astype(float)
    ok = u.notna() & p.notna()
    rows = long[long["item"] == j + 1].set_index("measure")
    assert (rows["n"] == ok.sum()).all()
    assert rows.at[A.T3_USER, "mean"] == pytest.approx(u[ok].mean(), abs=1e-12)
    assert rows.at[A.T3_PROVIDER, "sd"] == pytest.approx(np.std(p[ok], ddof=1), abs=1e-12)
    assert rows.at[A.T3_DIFFERENCE, "mean"] == pytest.approx((u[ok] - p[ok]).mean(), abs=1e-12)
    w = stats.wilcoxon(u[ok].to_numpy(), p[ok].to_numpy(), zero_method="wilcox")
    assert rows.at[A.T3_WILCOXON, "statistic"] == w.statistic
    assert rows.at[A.T3_WILCOXON, "p_value"] == pytest.approx(w.pvalue, rel=1e-12)
    # kappa: sklearn, and the textbook formula 1 - sum(w O) / sum(w E), w = (i - j)^2
    ref = cohen_kappa_score(u[ok].astype(int), p[ok].astype(int), weights="quadratic", labels=[1, 2, 3, 4, 5])
    assert rows.at[A.T3_KAPPA, "kappa"] == pytest.approx(ref, abs=1e-12)
    O = pd.crosstab(u[ok].astype(int), p[ok].astype(int)).reindex(index=range(1, 6), columns=range(1, 6),
                                                                  fill_value=0).to_numpy(float)
    E = np.outer(O.sum(1), O.sum(0)) / O.sum()
    wq = (np.arange(5)[:, None] - np.arange(5)[None, :]) ** 2
    assert rows.at[A.T3_KAPPA, "kappa"] == pytest.approx(1 - (wq * O).sum() / (wq * E).sum(), abs=1e-12)
    lo, hi, kap = rows.at[A.T3_KAPPA, "ci_low"], rows.at[A.T3_KAPPA, "ci_high"], rows.at[A.T3_KAPPA, "kappa"]
    assert lo < kap < hi and (kap - lo) == pytest.approx(hi - kap, rel=1e-9)  # symmetric Wald interval
    # Holm over the 15 items: statsmodels on the raw p-values
    wil = long[(long["measure"] == A.T3_WILCOXON) & long["item"].notna()]
    np.testing.assert_allclose(wil["p_holm"], multipletests(wil["p_value"], method="holm")[1], rtol=1e-12)


def test_table3_long_private_mode_redacts_small_items():
    c = _services_cohort((("CMHC", 6),))  # 6 pairs per item: every statistic is of <= 7 patients
    long = A.table3_long(A.table3(c))
    safe, report = protect(long, "opensafely", "table3_imrs_long")
    num = ["mean", "sd", "statistic", "p_value", "p_holm", "kappa", "ci_low", "ci_high"]
    assert (safe[num].dtypes == np.float64).all() and safe[num].isna().all().all()
    assert safe["n"].isna().all() and safe["redacted"].all() and safe["note"].eq("[REDACTED]").all()
    assert set(report["action"]) == {"redacted"}
    assert report["row_key"].iloc[0] == "item=1|item_label=Progress towards personal goals|measure=user"
    # a larger cohort: published, n rounded to 5, the statistics untouched
    big = A.table3_long(A.table3(random_cohort(n=43, seed=2)))
    safe_big, _ = protect(big, "opensafely", "table3_imrs_long")
    assert not safe_big["redacted"].any()
    assert (safe_big["n"] % 5 == 0).all() and safe_big["n"].iloc[0] == 45  # 43 pairs
    np.testing.assert_array_equal(safe_big["mean"].to_numpy(), big["mean"].to_numpy())


# --------------------------------------------------------------------------------------
# the paper's item-profile correlation
# --------------------------------------------------------------------------------------
def test_item_profile_r_against_numpy(cohort_missing):
    c = cohort_missing
    um, pm = [], []
    for j in range(15):
        u = c[IMRS_USER_COLUMNS[j]].astype(float)
        p = c[IMRS_PROVIDER_COLUMNS[j]].astype(float)
        ok = u.notna() & p.notna()
        um.append(u[ok].mean())
        pm.append(p[ok].mean())
    res = A.item_profile_correlation(c, n_resamples=199).set_index("measure")
    assert (res["n"].drop(A.PEARSON_BOOTSTRAP) == 15).all()
    r = np.corrcoef(um, pm)[0, 1]
    assert res.loc["Pearson r", "estimate"] == pytest.approx(r, abs=1e-12)
    rho = np.corrcoef(stats.rankdata(um), stats.rankdata(pm))[0, 1]
    assert res.loc["Spearman rho", "estimate"] == pytest.approx(rho, abs=1e-12)
    # Fisher z CI, computed by hand
    z, se = np.arctanh(r), 1 / np.sqrt(15 - 3)
    lo, hi = np.tanh(z + np.array([-1, 1]) * stats.norm.ppf(0.975) * se)
    assert res.loc["Pearson r", "ci_low"] == pytest.approx(lo, abs=1e-9)
    assert res.loc["Pearson r", "ci_high"] == pytest.approx(hi, abs=1e-9)
    # p of r with n = 15: t = r sqrt(13) / sqrt(1 - r^2)
    t = r * np.sqrt(13) / np.sqrt(1 - r**2)
    assert res.loc["Pearson r", "p"] == pytest.approx(2 * stats.t.sf(abs(t), 13), rel=1e-9)
    assert (res["analysis"] == A.ITEM_PROFILE_SECTION).all()


def test_item_profile_bootstrap_resamples_patients(cohort_missing):
    c = cohort_missing
    res = A.item_profile_correlation(c, n_resamples=499, seed=3).set_index("measure")
    boot = res.loc[A.PEARSON_BOOTSTRAP]
    r = res.loc[A.PEARSON, "estimate"]
    assert boot["estimate"] == r and boot["ci_low"] < boot["ci_high"] and np.isnan(boot["p"])
    assert boot["n"] == len(c) and "seed 3" in boot["note"]
    # reproducible with the seed, another seed another interval
    again = A.item_profile_correlation(c, n_resamples=499, seed=3).set_index("measure")
    assert again.loc[A.PEARSON_BOOTSTRAP, ["ci_low", "ci_high"]].tolist() == boot[["ci_low", "ci_high"]].tolist()
    other = A.item_profile_correlation(c, n_resamples=499, seed=4).set_index("measure")
    assert other.loc[A.PEARSON_BOOTSTRAP, "ci_low"] != boot["ci_low"]
    # the same interval from a statistic written independently (pandas item means of the resampled rows)
    u = c[IMRS_USER_COLUMNS].astype(float).to_numpy()
    p = c[IMRS_PROVIDER_COLUMNS].astype(float).to_numpy()
    both = ~(np.isnan(u) | np.isnan(p))
    u, p = np.where(both, u, np.nan), np.where(both, p, np.nan)

    def profile_r(rows):
        means = pd.DataFrame({"u": pd.DataFrame(u[rows]).mean(), "p": pd.DataFrame(p[rows]).mean()}).dropna()
        return stats.pearsonr(means["u"], means["p"]).statistic
    ref = stats.bootstrap((np.arange(len(u)),), profile_r, vectorized=False, n_resamples=499, method="percentile",
                          rng=np.random.default_rng(3)).confidence_interval
    assert boot["ci_low"] == pytest.approx(ref.low, rel=1e-12) and boot["ci_high"] == pytest.approx(ref.high, rel=1e-12)
    # and a plain seeded loop of resamples: its 2.5th and 97.5th percentiles, up to Monte-Carlo error
    rng = np.random.default_rng(0)
    rs = [profile_r(rng.integers(0, len(u), len(u))) for _ in range(2000)]
    np.testing.assert_allclose(np.percentile(rs, [2.5, 97.5]), boot[["ci_low", "ci_high"]].tolist(), atol=0.005)
    median = float(re.search(r"their median (-?[\d.]+)", boot["note"]).group(1))
    assert median == pytest.approx(np.median(rs), abs=0.005) and median < r


def test_item_profile_bootstrap_contains_r_when_the_items_differ():
    rng = np.random.default_rng(5)
    profile = np.linspace(2, 4.5, 15)
    u = np.clip(np.rint(profile + rng.normal(0, 0.8, (150, 15))), 1, 5)
    p = np.clip(np.rint(profile + rng.normal(0, 0.8, (150, 15))), 1, 5)
    res = A.item_profile_correlation(make_cohort(u, p), n_resamples=999).set_index("measure")
    r, (lo, hi) = res.loc[A.PEARSON, "estimate"], res.loc[A.PEARSON_BOOTSTRAP, ["ci_low", "ci_high"]]
    assert lo < r < hi


def test_item_profile_is_not_patient_agreement():
    """High item-profile r with no patient-level agreement: the two are different things."""
    rng = np.random.default_rng(5)
    n = 200
    profile = np.linspace(2, 4.5, 15)
    u = np.clip(np.rint(profile + rng.normal(0, 0.8, (n, 15))), 1, 5)
    p = np.clip(np.rint(profile + rng.normal(0, 0.8, (n, 15))), 1, 5)   # independent of u
    c = make_cohort(u, p)
    prof = A.item_profile_correlation(c).set_index("measure")
    pla = A.patient_level_agreement(c).set_index("measure")
    assert prof.loc["Pearson r", "estimate"] > 0.9
    assert abs(pla.loc[A.ICC_A1, "estimate"]) < 0.25
    assert abs(pla.loc[A.PEARSON, "estimate"]) < 0.25


def test_describe_item_profile(cohort):
    text = A.describe_item_profile(A.item_profile_correlation(cohort))
    assert "n = 15 items" in text
    assert "does not measure whether a given provider agrees with a given patient" in text
    assert "items that users as a group rate high" in text
    assert "resampling the patients instead, the bootstrap 95% CI is" in text


# --------------------------------------------------------------------------------------
# ICC: Shrout & Fleiss (1979) textbook example
# --------------------------------------------------------------------------------------
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9],
                          [6, 2, 4, 7]], dtype=float)


def test_icc_shrout_fleiss_known_values():
    res = A.intraclass_correlations(SHROUT_FLEISS).set_index("shrout_fleiss")
    # Shrout & Fleiss (1979), Table 4: single-rater and 4-rater ICCs
    expected = {"ICC1": 0.17, "ICC2": 0.29, "ICC3": 0.71, "ICC1k": 0.44, "ICC2k": 0.62,
                "ICC3k": 0.91}
    for key, value in expected.items():
        assert round(res.loc[key, "icc"], 2) == value
    assert res.loc["ICC2", "type"] == "ICC(A,1)" and res.loc["ICC3", "type"] == "ICC(C,1)"
    # unrounded CIs (pingouin rounds CI95 to 2 decimals by default)
    assert res.loc["ICC2", "ci_low"] != round(res.loc["ICC2", "ci_low"], 2)
    assert res.loc["ICC2", "ci_low"] < res.loc["ICC2", "icc"] < res.loc["ICC2", "ci_high"]


def _icc_mcgraw_wong(x):
    """ICC(A,1) and ICC(C,1) from two-way ANOVA mean squares (McGraw & Wong 1996)."""
    n, k = x.shape
    g = x.mean()
    ssr = k * ((x.mean(axis=1) - g) ** 2).sum()
    ssc = n * ((x.mean(axis=0) - g) ** 2).sum()
    sse = ((x - g) ** 2).sum() - ssr - ssc
    msr, msc, mse = ssr / (n - 1), ssc / (k - 1), sse / ((n - 1) * (k - 1))
    icc_a = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    icc_c = (msr - mse) / (msr + (k - 1) * mse)
    return icc_a, icc_c


def test_icc_against_anova_formula():
    a, c = _icc_mcgraw_wong(SHROUT_FLEISS)
    res = A.intraclass_correlations(SHROUT_FLEISS).set_index("type")
    assert res.loc["ICC(A,1)", "icc"] == pytest.approx(a)
    assert res.loc["ICC(C,1)", "icc"] == pytest.approx(c)


def test_patient_level_icc_two_raters(cohort):
    s = A.patient_scores(cohort)
    x = s[["user_total", "provider_total"]].dropna().to_numpy()
    a, c = _icc_mcgraw_wong(x)
    pla = A.patient_level_agreement(cohort).set_index("measure")
    assert pla.loc[A.ICC_A1, "estimate"] == pytest.approx(a)
    assert pla.loc[A.ICC_C1, "estimate"] == pytest.approx(c)
    assert pla.loc[A.ICC_A1, "ci_low"] < a < pla.loc[A.ICC_A1, "ci_high"]


def test_icc_other_alpha_gives_no_ci():
    res = A.intraclass_correlations(SHROUT_FLEISS, alpha=0.1)
    assert res["ci_low"].isna().all() and res["icc"].notna().all()
    with pytest.raises(ValueError, match="missing"):
        A.intraclass_correlations([[1, np.nan], [2, 3]])


# --------------------------------------------------------------------------------------
# Lin's CCC
# --------------------------------------------------------------------------------------
def _ccc_closed_form(x, y):
    """CCC = 2 cov / (var_x + var_y + (mean_x - mean_y)^2), population moments."""
    cov = np.cov(x, y, ddof=0)
    return 2 * cov[0, 1] / (cov[0, 0] + cov[1, 1] + (np.mean(x) - np.mean(y)) ** 2)


def _ccc_epir_style(x, y, conf=0.95):
    """Independent transcription of the asymptotic-then-Fisher-z interval (as in epiR):
    variance of rho_c first, then delta method to z = atanh(rho_c)."""
    k = len(x)
    sx2, sy2 = np.var(x, ddof=1) * (k - 1) / k, np.var(y, ddof=1) * (k - 1) / k
    r = np.corrcoef(x, y)[0, 1]
    sxy = r * np.sqrt(sx2 * sy2)
    p = 2 * sxy / (sx2 + sy2 + (np.mean(y) - np.mean(x)) ** 2)
    u = (np.mean(y) - np.mean(x)) / (sx2 * sy2) ** 0.25
    sep = np.sqrt(((1 - r**2) * p**2 * (1 - p**2) / r**2 + 2 * p**3 * (1 - p) * u**2 / r
                   - 0.5 * p**4 * u**4 / r**2) / (k - 2))
    t = np.log((1 + p) / (1 - p)) / 2
    set_ = sep / (1 - p**2)
    zv = stats.norm.ppf(1 - (1 - conf) / 2)
    return p, np.tanh(t - zv * set_), np.tanh(t + zv * set_)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ccc_closed_form_and_independent_implementation(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 8, 40)
    y = 0.9 * x + rng.normal(4, 4, 40)
    res = A.concordance_correlation(x, y)
    assert res["ccc"] == pytest.approx(_ccc_closed_form(x, y), abs=1e-12)
    # decomposition rho_c = r * C_b, C_b = 2 / (v + 1/v + u^2)
    r = np.corrcoef(x, y)[0, 1]
    v = np.std(x) / np.std(y)
    u = (np.mean(x) - np.mean(y)) / np.sqrt(np.std(x) * np.std(y))
    assert res["ccc"] == pytest.approx(r * 2 / (v + 1 / v + u**2), abs=1e-12)
    assert res["bias_correction"] == pytest.approx(2 / (v + 1 / v + u**2))
    est, lo, hi = _ccc_epir_style(x, y)
    assert res["ccc"] == pytest.approx(est, abs=1e-12)
    assert res["ci_low"] == pytest.approx(lo, abs=1e-10)
    assert res["ci_high"] == pytest.approx(hi, abs=1e-10)
    # symmetric in x and y
    swapped = A.concordance_correlation(y, x)
    assert swapped["ccc"] == pytest.approx(res["ccc"])
    assert swapped["ci_low"] == pytest.approx(res["ci_low"])


def test_ccc_properties():
    x = np.array([1.0, 2, 3, 4, 5])
    assert A.concordance_correlation(x, x)["ccc"] == 1.0
    assert np.isnan(A.concordance_correlation(x, x)["ci_low"])           # perfect: no CI
    assert A.concordance_correlation(x, x + 1)["ccc"] == pytest.approx(0.8)  # 2*2/(2+2+1)
    assert A.concordance_correlation(x, 2 * x)["ccc"] == pytest.approx(
        2 * 4 / (2 + 8 + 9))                                                   # 0.421
    assert A.concordance_correlation(x, -x)["ccc"] == pytest.approx(-0.1)  # 2*(-2)/(2+2+36)
    assert np.isnan(A.concordance_correlation([3, 3], [3, 3])["ccc"])
    assert A.concordance_correlation([1, 2, np.nan], [1, 2, 3])["n"] == 2


def test_ccc_close_to_icc_a1_for_large_n():
    rng = np.random.default_rng(42)
    x = rng.normal(55, 7.5, 2000)
    y = x + rng.normal(-1.0, 4.0, 2000)
    ccc = A.concordance_correlation(x, y)["ccc"]
    icc_a, _ = _icc_mcgraw_wong(np.column_stack([x, y]))
    assert abs(ccc - icc_a) < 0.005


def test_ccc_standard_error_matches_simulation():
    """The Fisher-z SE of Lin (1989, 2000) matches the spread of atanh(rho_c) in repeated
    samples (deterministic seed)."""
    rng = np.random.default_rng(2023)
    n, reps = 150, 1500
    cov = [[64.0, 48.0], [48.0, 56.0]]
    zs, ses = np.empty(reps), np.empty(reps)
    for i in range(reps):
        xy = rng.multivariate_normal([55.0, 53.0], cov, size=n)
        res = A.concordance_correlation(xy[:, 0], xy[:, 1])
        zs[i], ses[i] = np.arctanh(res["ccc"]), res["se_z"]
    assert ses.mean() == pytest.approx(zs.std(ddof=1), rel=0.08)


# --------------------------------------------------------------------------------------
# patient level
# --------------------------------------------------------------------------------------
def test_patient_level_against_scipy(cohort):
    s = A.patient_scores(cohort)
    both = s["user_total"].notna() & s["provider_total"].notna()
    u = s.loc[both, "user_total"].to_numpy()
    p = s.loc[both, "provider_total"].to_numpy()
    res = A.patient_level_agreement(cohort)
    assert res["measure"].tolist() == A.PATIENT_MEASURES
    assert list(res.columns) == A.RESULT_COLUMNS
    r = res.set_index("measure")
    pr = stats.pearsonr(u, p)
    assert r.loc[A.PEARSON, "estimate"] == pytest.approx(pr.statistic)
    assert r.loc[A.PEARSON, "p"] == pytest.approx(pr.pvalue)
    assert r.loc[A.SPEARMAN, "estimate"] == pytest.approx(stats.spearmanr(u, p).statistic)
    tt = stats.ttest_rel(u, p)
    assert r.loc[A.PAIRED_T, "p"] == pytest.approx(tt.pvalue)
    assert r.loc[A.PAIRED_T, "estimate"] == pytest.approx((u - p).mean())
    assert r.loc[A.WILCOXON, "p"] == pytest.approx(stats.wilcoxon(u - p).pvalue)
    assert r.loc[A.WILCOXON, "estimate"] == pytest.approx(np.median(u - p))
    assert r.loc[A.USER_MEAN, "estimate"] == pytest.approx(u.mean())
    assert r.loc[A.CCC, "estimate"] == pytest.approx(_ccc_closed_form(u, p))
    bias = r.loc["Bland-Altman bias (user - provider)"]
    assert bias["estimate"] == pytest.approx((u - p).mean())
    assert bias["ci_low"] == pytest.approx(r.loc[A.PAIRED_T, "ci_low"])
    assert (res.loc[res["measure"] != A.EXCLUDED, "n"] == both.sum()).all()
    assert r.loc[A.EXCLUDED, "estimate"] == (~both).sum()


def test_patient_level_mean_vs_total(cohort):
    tot = A.patient_level_agreement(cohort, on="total").set_index("measure")
    mean = A.patient_level_agreement(cohort, on="mean").set_index("measure")
    scale_free = [A.PEARSON, A.SPEARMAN, A.ICC_A1, A.ICC_C1, A.CCC]
    np.testing.assert_allclose(mean.loc[scale_free, "estimate"], tot.loc[scale_free, "estimate"])
    dep = ["user mean", "Bland-Altman bias (user - provider)",
           "Bland-Altman upper limit of agreement"]
    np.testing.assert_allclose(mean.loc[dep, ["estimate", "ci_low", "ci_high"]] * 15,
                               tot.loc[dep, ["estimate", "ci_low", "ci_high"]])
    assert mean.loc[A.PAIRED_T, "p"] == pytest.approx(tot.loc[A.PAIRED_T, "p"])


def test_patient_level_small_n_gives_nan_with_reason():
    u = np.array([[4] * 15, [3] * 15], dtype=float)
    p = np.array([[3] * 15, [3] * 15], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = A.patient_level_agreement(make_cohort(u, p)).set_index("measure")
    for m in (A.PEARSON, A.SPEARMAN, A.ICC_A1, A.ICC_C1):
        assert np.isnan(res.loc[m, "estimate"])
        assert "at least 3" in res.loc[m, "note"]
    assert res.loc["Bland-Altman bias (user - provider)", "estimate"] == 7.5
    assert (res.drop(index=A.EXCLUDED)["n"] == 2).all()


def test_patient_level_constant_and_perfect_agreement_no_warnings():
    u = np.tile(np.array([[1], [2], [3], [4], [5]], dtype=float), (1, 15))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        perfect = A.patient_level_agreement(make_cohort(u, u)).set_index("measure")
        const = A.patient_level_agreement(make_cohort(np.full((5, 15), 3.0),
                                                      np.full((5, 15), 3.0))).set_index("measure")
    assert perfect.loc[A.CCC, "estimate"] == 1.0
    assert perfect.loc[A.ICC_A1, "estimate"] == pytest.approx(1.0)
    assert perfect.loc["Bland-Altman bias (user - provider)", "estimate"] == 0.0
    assert "all differences are zero" in perfect.loc[A.WILCOXON, "note"]
    assert np.isnan(const.loc[A.PEARSON, "estimate"]) and "constant" in const.loc[A.PEARSON, "note"]
    assert np.isnan(const.loc[A.ICC_A1, "estimate"])


# --------------------------------------------------------------------------------------
# internal consistency
# --------------------------------------------------------------------------------------
def test_cronbach_alpha_against_pingouin_and_formula(cohort_missing):
    res = A.internal_consistency(cohort_missing).set_index("version")
    for v, cols in (("user", IMRS_USER_COLUMNS), ("provider", IMRS_PROVIDER_COLUMNS)):
        x = cohort_missing[cols].astype(float).dropna()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=pd.errors.Pandas4Warning)
            ref, ci = pg.cronbach_alpha(data=x, nan_policy="listwise")
        assert res.loc[v, "estimate"] == pytest.approx(ref)
        np.testing.assert_allclose(res.loc[v, ["ci_low", "ci_high"]].astype(float), ci)
        k = x.shape[1]
        by_hand = k / (k - 1) * (1 - x.var(ddof=1).sum() / x.sum(axis=1).var(ddof=1))
        assert res.loc[v, "estimate"] == pytest.approx(by_hand)
        assert res.loc[v, "n"] == len(x)


# --------------------------------------------------------------------------------------
# by service and summary
# --------------------------------------------------------------------------------------
def test_agreement_by_service_caveats():
    rng = np.random.default_rng(9)
    n_cmhc, n_serd, n_edp = 40, 12, 5
    n = n_cmhc + n_serd + n_edp
    base = rng.integers(2, 5, (n, 1)).astype(float)
    u = np.clip(base + rng.integers(-1, 2, (n, 15)), 1, 5)
    p = np.clip(base + rng.integers(-1, 2, (n, 15)), 1, 5)
    services = ["CMHC"] * n_cmhc + ["SerD"] * n_serd + ["EDP"] * n_edp
    c = make_cohort(u, p, services)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = A.agreement_by_service(c)
    assert res["service_type"].unique().tolist() == ["CMHC", "SerD", "EDP"]
    cav = res.groupby("service_type", sort=False)["caveat"].first()
    assert cav["CMHC"] == ""
    assert "< 30" in cav["SerD"]
    assert "< 10" in cav["EDP"]
    edp = res[res["service_type"] == "EDP"].set_index("measure")
    assert (edp.drop(index=A.EXCLUDED)["n"] == 5).all()
    assert np.isfinite(edp.loc[A.PEARSON, "estimate"])
    # the same numbers as the overall function on the subset
    sub = A.patient_level_agreement(c[c["service_type"] == "SerD"])
    serd = res[res["service_type"] == "SerD"].reset_index(drop=True)
    np.testing.assert_allclose(serd["estimate"], sub["estimate"])


def test_agreement_by_service_tiny_and_empty_groups():
    u = np.full((3, 15), 4.0)
    p = np.full((3, 15), 3.0)
    p[0] = 4.0
    c = make_cohort(u, p, ["CMHC", "CMHC", "EDP"])
    res = A.agreement_by_service(c)
    serd = res[res["service_type"] == "SerD"].set_index("measure").drop(index=A.EXCLUDED)
    assert (serd["n"] == 0).all() and serd["estimate"].isna().all()
    edp = res[res["service_type"] == "EDP"].set_index("measure")
    assert "not estimable" in edp.loc[A.PEARSON, "note"]
    assert edp["caveat"].iloc[0].startswith("n < 3")


def test_agreement_summary_structure(cohort):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = A.agreement_summary(cohort)
    assert list(s.columns) == A.SUMMARY_COLUMNS
    sections = s["section"].unique().tolist()
    assert sections[0] == A.ITEM_PROFILE_SECTION
    assert "patient level: IMRS total (15-75)" in sections
    assert "item level" in sections and "internal consistency" in sections
    assert [x for x in sections if x.startswith("by service")] == [
        f"by service: {k}, IMRS total (15-75)" for k in ("CMHC", "SerD", "EDP")]
    assert (s["section"] == "item level").sum() == 15 * 4  # three kappas and the difference
    mean_sec = s[s["section"] == "patient level: IMRS item mean (1-5)"]
    assert set(mean_sec["measure"]) == set(A.SCALE_DEPENDENT)
    assert s["n"].dtype == np.int64
    # deterministic
    pd.testing.assert_frame_equal(s, A.agreement_summary(cohort))


def test_analysis_code_does_not_know_the_data_are_synthetic():
    import ast

    pkg = Path(A.__file__).parent
    for name in ("agreement.py", "bland_altman.py"):
        tree = ast.parse((pkg / name).read_text(encoding="utf-8"))
        imported = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                imported += [f"{node.module or ''}.{a.name}" for a in node.names]
                imported.append(node.module or "")
        assert not [m for m in imported if "synth" in m or "published" in m], name
        if name == "bland_altman.py":  # Bland-Altman sits below agreement: no import cycle
            assert not [m for m in imported if "agreement" in m], imported


# --------------------------------------------------------------------------------------
# disclosure control
# --------------------------------------------------------------------------------------
def _services_cohort(sizes=(("CMHC", 40), ("SerD", 20), ("EDP", 5)), seed=4):
    rng = np.random.default_rng(seed)
    services = [s for s, k in sizes for _ in range(k)]
    n = len(services)
    base = rng.integers(2, 5, (n, 1)).astype(float)
    u = np.clip(base + rng.integers(-1, 2, (n, 15)), 1, 5)
    p = np.clip(base + rng.integers(-1, 2, (n, 15)), 1, 5)
    u[:3, 0] = np.nan                                   # 3 CMHC patients without a total
    return make_cohort(u, p, services)


def test_disclosure_none_changes_nothing():
    summary = A.agreement_summary(_services_cohort())
    safe, report = protect(summary, "none", "imrs_agreement")
    pd.testing.assert_frame_equal(safe, summary)
    assert len(report) == 0


def test_disclosure_opensafely_redacts_small_service_only():
    summary = A.agreement_summary(_services_cohort())
    safe, report = protect(summary, "opensafely", "imrs_agreement")
    stat = safe["measure"] != A.EXCLUDED
    edp = safe["section"].str.startswith("by service: EDP") & stat
    serd = safe["section"].str.startswith("by service: SerD") & stat
    cmhc = safe["section"].str.startswith("by service: CMHC")
    stats_cols = ["estimate", "ci_low", "ci_high", "p"]
    # EDP (5 patients) redacted; no secondary suppression under a rounding profile: SerD
    # (20 patients) is published, its n rounded
    assert safe.loc[edp, stats_cols].isna().all().all()
    assert safe.loc[edp, "note"].eq("[REDACTED]").all()
    assert safe.loc[edp, "n"].isna().all()
    sd = safe[serd].set_index("measure")
    assert np.isfinite(sd.loc[A.PEARSON, "estimate"]) and sd.loc[A.PEARSON, "n"] == 20
    assert not safe.loc[serd, "redacted"].any()
    assert "redacted-secondary" not in set(report["action"])
    # CMHC published; its excluded-patient count (3) redacted as a count of 1..7
    cm = safe[cmhc].set_index("measure")
    assert np.isfinite(cm.loc[A.PEARSON, "estimate"]) and cm.loc[A.PEARSON, "n"] == 35  # 37 pairs
    assert np.isnan(cm.loc[A.EXCLUDED, "estimate"]) and pd.isna(cm.loc[A.EXCLUDED, "n"])
    # counts rounded to 5; a count row's estimate is published exactly as its n
    published_n = safe["n"].dropna().astype(int)
    assert (published_n % 5 == 0).all()
    counts = safe[safe["measure"] == A.EXCLUDED]
    np.testing.assert_array_equal(counts["estimate"].to_numpy(float),
                                  counts["n"].astype("Float64").to_numpy(float, na_value=np.nan))
    assert set(report["action"]) <= {"redacted", "rounded"}
    assert {"output", "row_key", "column", "kind", "action", "rule"} == set(report.columns)
    # the report never holds values
    assert not report.apply(lambda col: col.astype(str).str.fullmatch(r"-?\d+(\.\d+)?")).any().any()


def test_disclosure_keeps_numeric_columns_numeric():
    """Redacted statistics are NaN in float columns (n: NA in Int64), flagged by
    ``redacted`` / ``redacted_columns``; never the text ``[REDACTED]``."""
    summary = A.agreement_summary(_services_cohort())
    for profile in ("opensafely", "sistan_min3", "opensafely_midpoint6"):
        safe, _ = protect(summary, profile, "imrs_agreement")
        for col in ("estimate", "ci_low", "ci_high", "p"):
            assert safe[col].dtype == np.float64, (profile, col)
        assert safe["n"].dtype == "Int64" and safe["redacted"].dtype == bool
        numeric = safe.select_dtypes("number")
        assert not numeric.astype(str).eq("[REDACTED]").any().any()
    safe, _ = protect(summary, "opensafely", "imrs_agreement")
    edp = safe["section"].str.startswith("by service: EDP") & (safe["measure"] == A.PEARSON)
    row = safe[edp].iloc[0]
    assert np.isnan(row["estimate"]) and np.isnan(row["ci_low"]) and pd.isna(row["n"])
    assert row["redacted"] and set(row["redacted_columns"].split(";")) == {"estimate", "ci_low", "ci_high", "p", "n"}
    # unredacted rows: same numbers as the unprotected table
    keep = ~safe["redacted"]
    np.testing.assert_array_equal(safe.loc[keep, "estimate"].to_numpy(), summary.loc[keep, "estimate"].to_numpy())
    # Table 3 too
    t3_safe, _ = protect(A.table3(_services_cohort((("CMHC", 6),))), "opensafely", "table3")
    assert (t3_safe[["user_mean", "kappa_quadratic", "p_holm"]].dtypes == np.float64).all()
    assert t3_safe["user_mean"].isna().all() and t3_safe["redacted"].all()


def _run(tmp_path, profile):
    """A notebook run on private data writing to ``tmp_path`` (what publish.setup returns)."""
    return publish.Run("05_imrs_agreement", tmp_path, tmp_path, tmp_path, tmp_path, "private",
                       dc.get_profile(profile), dc.figure_policy(profile))


def test_published_agreement_table_csv_numeric_display_marked(tmp_path):
    summary = A.agreement_summary(_services_cohort())
    safe, _ = protect(summary, "opensafely", "imrs_agreement")
    run = _run(tmp_path, "opensafely")
    shown = run.publish(summary, "imrs_agreement", formats=["csv", "md", "tex", "html"], caption="Agreement",
                        kind="statistics", counts=A.COUNT_MEASURES)
    paths = [tmp_path / f"imrs_agreement.{f}" for f in ("csv", "md", "tex", "html")]
    assert all(p.exists() for p in paths)
    pd.testing.assert_frame_equal(shown, dc.mark_redacted(safe))
    back = pd.read_csv(paths[0], keep_default_na=True)
    for col in ("estimate", "ci_low", "ci_high", "n", "p"):
        assert back[col].dtype == np.float64, col           # numbers (or empty), never text
    assert back["redacted"].dtype == bool
    raw = pd.read_csv(paths[0], dtype=str, keep_default_na=False)
    assert raw.columns[raw.eq("[REDACTED]").any()].tolist() == ["note"]  # text only
    red = back["redacted"].to_numpy()
    assert red.any() and back.loc[red, "estimate"].isna().all()
    np.testing.assert_allclose(back.loc[~red, "estimate"].to_numpy(), safe.loc[~red, "estimate"].to_numpy(),
                               rtol=1e-8, equal_nan=True)
    assert back.loc[red, "note"].eq("[REDACTED]").all()
    # the human-facing formats show the marker in the redacted cells
    md = paths[1].read_text(encoding="utf-8")
    assert md.startswith("**Agreement**") and md.count("[REDACTED]") > red.sum()
    # profile none: the table as computed, no companion columns
    _run(tmp_path / "none", "none").publish(summary, "t", kind="statistics", counts=A.COUNT_MEASURES)
    assert "redacted" not in pd.read_csv(tmp_path / "none" / "t.csv").columns


def test_disclosure_sistan_min3_no_rounding():
    t = A.agreement_by_service(_services_cohort((("CMHC", 30), ("SerD", 12), ("EDP", 2))))
    safe, report = protect(t, "sistan_min3", "imrs_by_service")
    edp = safe[(safe["service_type"] == "EDP") & (safe["measure"] != A.EXCLUDED)]
    serd = safe[safe["service_type"] == "SerD"].set_index("measure")
    assert edp["estimate"].isna().all()
    assert np.isnan(serd.loc[A.PEARSON, "estimate"])          # secondary
    cm = safe[safe["service_type"] == "CMHC"].set_index("measure")
    assert cm.loc[A.PEARSON, "n"] == 27                       # not rounded (30 - 3 excluded)
    assert "rounded" not in set(report["action"])


def test_disclosure_table3_format_shows_marker():
    c = _services_cohort((("CMHC", 6),))
    safe, _ = protect(A.table3(c), "opensafely", "table3")
    f = A.format_table3(safe)
    assert (f["User, mean (SD)"] == "[REDACTED]").all()
    assert (f["n"] == "[REDACTED]").all()


def test_mark_redacted_marks_only_redacted_cells():
    summary = A.agreement_summary(_services_cohort())
    safe, _ = protect(summary, "opensafely", "imrs_agreement")
    shown = dc.mark_redacted(safe)
    assert "redacted" not in shown.columns and "disclosure_note" in shown.columns
    red = safe["redacted"].to_numpy()
    assert (shown.loc[red, "n"] == "[REDACTED]").any()
    assert not (shown.loc[~red, ["estimate", "n"]] == "[REDACTED]").any().any()
    # profile none: unchanged
    pd.testing.assert_frame_equal(dc.mark_redacted(summary), summary)


def test_agreement_and_table3_notes_state_weights_adjustment_and_ci():
    t3 = " ".join(A.table3_notes(alpha=0.1, max_missing=2))
    assert "quadratic weights" in t3 and "Holm-adjusted over the family of the 15 items" in t3
    assert "90% CI" in t3 and "at most 2 missing item(s) per version (total prorated)" in t3
    assert "complete scale in both versions" in A.table3_notes()[0]
    summary = " ".join(A.agreement_notes(alpha=0.01))
    assert "99% confidence interval" in summary and "quadratic weights" in summary and "Holm" in summary
