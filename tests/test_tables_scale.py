"""The vectorised Table 1 / Table 2 code equals the straightforward pandas code it replaced.

``table1_long``, ``table1_tests``, ``table2_long``, ``table2_tests`` and ``module_frequency``
encode each column once and count with ``numpy.bincount`` (so that 10^6 patients take about
a second). Here the previous implementations (pandas ``crosstab`` / ``groupby`` on the
stacked table, ``compare_*`` on the DataFrame), kept below as references, run on generated
cohorts with missing values, unexpected levels, tiny groups, rows in random and in sorted
order, and the results must be *equal* (every float bit for bit; no tolerance).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from imr_analysis import constants as C
from imr_analysis import stats as st
from imr_analysis import table1 as t1
from imr_analysis import table2 as t2


# --------------------------------------------------------------------------------------
# a generated cohort (no patient loops)
# --------------------------------------------------------------------------------------
def generated(n: int = 3000, seed: int = 1, text: str = "string[pyarrow]", order: str = "random") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stype = rng.choice(["CMHC", "SerD"], n, p=[0.6, 0.4])
    stype[:2] = "EDP"                                        # a group of two patients
    units = {t: [u for u, v in C.SERVICE_UNITS.items() if v["service_type"] == t] for t in C.SERVICE_TYPES}
    unit = np.array([units[t][0] for t in stype], dtype=object)
    for t in ("CMHC", "SerD"):
        idx = np.flatnonzero(stype == t)
        unit[idx] = rng.choice(units[t][:-1] + ["Zeta unit"], len(idx))   # a unit outside the vocabulary
    df = pd.DataFrame({"patient_id": [f"g{i}" for i in range(n)], "service_type": stype, "service_unit": unit})
    df["sex"] = rng.choice(C.SEXES, n)
    df["age_at_imr_start"] = rng.integers(18, 75, n).astype("int64")
    df["age_at_first_treatment"] = (df["age_at_imr_start"] - rng.integers(0, 20, n)).astype("int64")
    df["residence_district"] = rng.choice(list(C.DISTRICTS), n)
    edu = pd.array(rng.integers(5, 19, n), dtype="Int64")
    edu[rng.random(n) < 0.08] = pd.NA
    df["education_years"] = edu
    for col, levels in [("marital_status", C.MARITAL_STATUS), ("living_condition", C.LIVING_CONDITION),
                        ("employment_status", C.EMPLOYMENT_STATUS)]:
        s = pd.Series(rng.choice(levels, n), dtype=object)
        s[rng.random(n) < 0.05] = None
        df[col] = s
    df.loc[rng.random(n) < 0.01, "employment_status"] = "zz_unexpected"       # kept after the canonical levels
    df["diagnosis_group"] = rng.choice(["schizophrenia_spectrum", "bipolar", "substance_use", "depressive"], n)
    days = rng.integers(0, 9000, n)
    illness = days / 365.25                                                  # floats with many ties
    illness[rng.random(n) < 0.03] = np.nan
    df["illness_duration_years"] = illness
    for c in ["med_antipsychotic", "med_antidepressant", "med_mood_stabilizer", "med_anxiolytic_sedative",
              "med_addiction"]:
        df[c] = rng.random(n) < 0.4
    df["med_none"] = ~df[["med_antipsychotic", "med_antidepressant", "med_mood_stabilizer",
                          "med_anxiolytic_sedative", "med_addiction"]].any(axis=1)
    maybe = pd.array(rng.random(n) < 0.3, dtype="boolean")                  # a nullable medication flag
    maybe[rng.random(n) < 0.02] = pd.NA
    df["med_addiction"] = maybe
    fmt = pd.Series(rng.choice(["group", "individual"], n, p=[0.7, 0.3]), dtype=object)
    fmt[rng.random(n) < 0.04] = None
    df["imr_format"] = fmt
    df["imr_duration_months"] = rng.integers(30, 1200, n) / (365.25 / 12)
    df["n_sessions"] = rng.integers(1, 60, n).astype("int64")
    for m in C.MODULE_COLUMNS:
        df[m] = rng.random(n) < rng.uniform(0.1, 0.9)
    df["n_modules"] = df[C.MODULE_COLUMNS].sum(axis=1).astype("int64")
    for c in ["patient_id", "service_type", "service_unit", "sex", "residence_district", "marital_status",
              "living_condition", "employment_status", "diagnosis_group", "imr_format"]:
        df[c] = df[c].astype(text)
    if order == "sorted":          # groups contiguous: pandas then sums with numpy.add.reduceat
        df = df.sort_values(["service_type", "service_unit"], kind="stable").reset_index(drop=True)
    return df


# --------------------------------------------------------------------------------------
# the previous implementations (references)
# --------------------------------------------------------------------------------------
def ref_table1_long(cohort, services=None):
    data, groups = t1.select_services(cohort, services)
    parts = []
    for var in t1.TABLE1_VARIABLES:
        col = data[var.column]
        if var.kind == "continuous":
            x = pd.to_numeric(col, errors="raise").astype("float64")
            both = pd.concat([pd.DataFrame({"group": data["service_type"], "x": x}),
                              pd.DataFrame({"group": t1.TOTAL, "x": x})], ignore_index=True)
            g = both.groupby("group", sort=False)["x"]
            summary = g.agg(n="count", mean="mean", sd="std", median="median", min="min", max="max")
            quart = g.quantile([0.25, 0.75]).unstack()
            summary["q1"], summary["q3"] = quart[0.25], quart[0.75]
            summary["n_missing"] = both["x"].isna().groupby(both["group"], sort=False).sum()
            summary = summary.reindex(groups + [t1.TOTAL])
            summary["n"] = summary["n"].fillna(0).astype("int64")
            summary["n_missing"] = summary["n_missing"].fillna(0).astype("int64")
            summary["denominator"] = summary["n"]
            long = summary.rename_axis("group").reset_index()
            long["variable"], long["level"], long["kind"], long["percent"] = var.column, "", "continuous", np.nan
        else:
            if var.kind == "binary":
                values = col.astype("boolean").map({True: "yes", False: "no"})
                shown = ["yes"]
            else:
                values = col.astype("str").where(col.notna())
                shown = list(var.levels) + sorted(set(values.dropna().unique()) - set(var.levels))
            group = data["service_type"]
            counts = pd.crosstab(values, group).reindex(columns=groups, fill_value=0)
            counts[t1.TOTAL] = counts.sum(axis=1)
            denominators = counts.sum(axis=0)
            counts = counts.reindex(index=shown, fill_value=0)
            missing = values.isna().groupby(group).sum().reindex(groups, fill_value=0)
            missing[t1.TOTAL] = missing.sum()
            long = counts.rename_axis(index="level", columns="group").stack().rename("n").reset_index()
            long["denominator"] = long["group"].map(denominators).astype("int64")
            long["n_missing"] = long["group"].map(missing).astype("int64")
            long["percent"] = 100 * long["n"] / long["denominator"].where(long["denominator"] > 0)
            long["variable"], long["kind"] = var.column, "categorical"
            long["_l"] = long["level"].map({lv: i for i, lv in enumerate(shown)})
            long["_g"] = long["group"].map({g: i for i, g in enumerate(groups + [t1.TOTAL])})
            long = long.sort_values(["_l", "_g"]).drop(columns=["_l", "_g"])
        parts.append(long)
    return t1.typed_long(pd.concat(parts, ignore_index=True))


def ref_tests(cohort, variables, services=None, **kw):
    data, groups = t1.select_services(cohort, services)
    comparisons = [(t1.ALL_SERVICES, groups)]
    if "CMHC" in groups and "SerD" in groups:
        comparisons.append(("CMHC vs SerD", ["CMHC", "SerD"]))
    rows = []
    for column, kind in variables:
        for label, levels in comparisons:
            if kind == "continuous":
                rows.append(st.compare_continuous(data, column, "service_type", levels=levels, comparison=label))
            else:
                rows.append(st.compare_categorical(data, column, "service_type", levels=levels,
                                                   comparison=label, **kw))
    return st.results_frame(rows)


def ref_table2_long(cohort, services=None):
    data, groups = t1.select_services(cohort, services)
    required = t2.REQUIRED
    known = [(u, v["service_type"]) for u, v in C.SERVICE_UNITS.items() if v["service_type"] in groups]
    observed = data[["service_unit", "service_type"]].drop_duplicates()
    extra = observed.loc[~observed["service_unit"].isin(C.SERVICE_UNITS)]
    units = []
    for g in groups:
        units += [k for k in known if k[1] == g]
        units += sorted((u, t) for u, t in extra.itertuples(index=False) if t == g)
    entities = pd.DataFrame([("unit", u, t) for u, t in units] + [("service_type", t2.ALL, t) for t in groups]
                            + [("total", t2.ALL, t2.ALL)], columns=["level", "unit", "service_type"])
    index = pd.MultiIndex.from_frame(entities)
    keys = pd.concat([
        pd.DataFrame({"level": "unit", "unit": data["service_unit"], "service_type": data["service_type"]}),
        pd.DataFrame({"level": "service_type", "unit": t2.ALL, "service_type": data["service_type"]}),
        pd.DataFrame({"level": "total", "unit": t2.ALL, "service_type": t2.ALL}, index=data.index),
    ], ignore_index=True)
    frame = pd.concat([keys, pd.concat([data[required[2:]]] * 3, ignore_index=True)], axis=1)
    by_keys = [frame["level"], frame["unit"], frame["service_type"]]
    patients = frame.groupby(by_keys, sort=False).size().reindex(index, fill_value=0).astype("float64")
    parts = []

    def block(measure, n, denominator, **extra_cols):
        out = entities.copy()
        out["measure"] = measure
        out["n"] = np.asarray(n, dtype="float64")
        out["denominator"] = np.asarray(denominator, dtype="float64")
        for k, v in extra_cols.items():
            out[k] = np.asarray(v, dtype="float64")
        return out

    parts.append(block("patients", patients, np.full(len(entities), float(len(data)))))
    fmt = frame["imr_format"]
    parts.append(block("group_format", fmt.eq("group").groupby(by_keys, sort=False).sum().reindex(index, fill_value=0),
                       fmt.notna().groupby(by_keys, sort=False).sum().reindex(index, fill_value=0)))
    for m in t2.CONTINUOUS_MEASURES:
        x = pd.to_numeric(frame[m], errors="raise").astype("float64")
        agg = x.groupby(by_keys, sort=False).agg(["count", "mean", "std", "median", "min", "max"]).reindex(index)
        count = agg["count"].fillna(0)
        parts.append(block(m, count, count, mean=agg["mean"], sd=agg["std"], median=agg["median"],
                           min=agg["min"], max=agg["max"]))
    mods = frame[C.MODULE_COLUMNS].astype("boolean").fillna(False).astype("int64")
    sums = mods.groupby(by_keys, sort=False).sum().reindex(index, fill_value=0)
    for c in C.MODULE_COLUMNS:
        parts.append(block(c, sums[c], patients))
    long = pd.concat(parts, ignore_index=True).reindex(columns=t2.LONG_COLUMNS)
    counted = ~long["measure"].isin(t2.CONTINUOUS_MEASURES)
    long["percent"] = (100 * long["n"] / long["denominator"].where(long["denominator"] > 0)).where(counted)
    long["_e"] = np.tile(np.arange(len(entities)), len(t2.MEASURES))
    long["_m"] = long["measure"].map({m: i for i, m in enumerate(t2.MEASURES)})
    long = long.sort_values(["_e", "_m"], kind="stable").drop(columns=["_e", "_m"]).reset_index(drop=True)
    for c in ["unit", "service_type", "level", "measure"]:
        long[c] = long[c].astype("str")
    return long


TABLE1_KINDS = [(v.column, v.kind) for v in t1.TABLE1_VARIABLES]
CASES = [dict(seed=1), dict(seed=2, order="sorted"), dict(seed=3, text="str"), dict(seed=4, n=400, text=object)]
SERVICES = [None, ["CMHC", "SerD"], ["EDP"], ["SerD", "EDP"]]


@pytest.fixture(scope="module", params=range(len(CASES)), ids=[str(c) for c in CASES])
def cohort(request):
    return generated(**CASES[request.param])


@pytest.mark.parametrize("services", SERVICES)
def test_table1_long_equals_the_groupby_implementation(cohort, services):
    pd.testing.assert_frame_equal(t1.table1_long(cohort, services), ref_table1_long(cohort, services),
                                  check_exact=True)


@pytest.mark.parametrize("services", [None, ["CMHC", "SerD"]])
def test_table1_tests_equal_the_dataframe_implementation(cohort, services):
    ours = t1.table1_tests(cohort, services, n_resamples=999)
    pd.testing.assert_frame_equal(ours, ref_tests(cohort, TABLE1_KINDS, services, n_resamples=999),
                                  check_exact=True)
    assert (ours["test"] == st.TEST_CHI2_MC).any() or services is not None   # the EDP pair forces Monte-Carlo


@pytest.mark.parametrize("services", SERVICES)
def test_table2_long_and_module_frequency_equal_the_groupby_implementation(cohort, services):
    ref = ref_table2_long(cohort, services)
    pd.testing.assert_frame_equal(t2.table2_long(cohort, services), ref, check_exact=True)
    pd.testing.assert_frame_equal(t2.module_frequency(cohort, services), t2.module_frequency_from_long(ref),
                                  check_exact=True)


def test_table2_tests_equal_the_dataframe_implementation(cohort):
    kinds = [(v, "continuous") for v in t2.TEST_VARIABLES]
    pd.testing.assert_frame_equal(t2.table2_tests(cohort), ref_tests(cohort, kinds), check_exact=True)


def test_continuous_tests_equal_scipy_on_the_raw_groups(cohort):
    """Independent of the encoding: every p-value is scipy's on the groups split by pandas."""
    tests = t1.table1_tests(cohort, variables=["illness_duration_years", "education_years"])
    for r in tests.itertuples(index=False):
        levels = r.groups.split(", ")
        x = pd.to_numeric(cohort[r.variable]).astype("float64")
        xs = [x[cohort["service_type"].eq(g)].dropna().to_numpy() for g in levels]
        if len(levels) == 2:
            assert r.p_nonparametric == sps.mannwhitneyu(*xs, alternative="two-sided").pvalue
            assert r.p_parametric == sps.ttest_ind(*xs, equal_var=bool(r.equal_variance)).pvalue
        else:
            assert r.p_nonparametric == sps.kruskal(*xs).pvalue
            assert r.p_parametric == sps.f_oneway(*xs).pvalue


def test_quantile_rule_equals_pandas_groupby():
    rng = np.random.default_rng(0)
    for n in [1, 2, 3, 4, 5, 10, 37, 200]:
        for _ in range(20):
            x = rng.gamma(2.0, 3.0, n) * rng.choice([1e-3, 1.0, 1e4])
            s = np.sort(x)
            key = np.zeros(n, dtype=int)
            q = pd.Series(x).groupby(key).quantile([0.25, 0.75]).to_numpy()
            assert [t1._quantile_sorted(s, 0.25), t1._quantile_sorted(s, 0.75)] == q.tolist()
            assert t1._median_sorted(s) == pd.Series(x).groupby(key).median().iloc[0]
    assert np.isnan(t1._quantile_sorted(np.empty(0), 0.25)) and np.isnan(t1._median_sorted(np.empty(0)))


def test_stacked_mean_sd_equals_pandas_on_both_summation_paths():
    """pandas sums a group with numpy.add.reduceat when the groups are contiguous and there is
    no NaN, else with its compensated loop; the stacked helper gives the same floats in both."""
    rng = np.random.default_rng(8)
    x = rng.integers(0, 4000, 5000) / 365.25
    for codes in (rng.integers(0, 3, 5000), np.sort(rng.integers(0, 3, 5000))):
        for values in (x, np.where(rng.random(5000) < 0.1, np.nan, x)):
            out = t1.stacked_mean_sd({"v": values}, [codes, np.zeros(5000, dtype=int)], [3, 1])["v"]
            stacked = pd.DataFrame({"k": np.r_[codes, np.full(5000, 9)], "v": np.r_[values, values]})
            by = stacked.groupby("k", sort=False)["v"]
            assert out[0][0].tolist() == by.mean().reindex([0, 1, 2]).tolist()
            assert out[0][1].tolist() == by.std().reindex([0, 1, 2]).tolist()
            assert out[1][0].tolist() == [by.mean()[9]] and out[1][1].tolist() == [by.std()[9]]


def test_errors_are_unchanged():
    df = generated(n=200, seed=5)
    bad = df.copy()
    bad.loc[bad.index[5], "service_unit"] = "SerD Cento"
    bad.loc[bad.index[5], "service_type"] = "CMHC"
    with pytest.raises(ValueError, match="service_unit and service_type disagree"):
        t2.table2_long(bad)
    odd = df.copy()
    odd.loc[odd.index[0], "service_type"] = "Hospital"
    for f in (t1.table1_long, t1.table1_tests, t2.table2_long, t2.table2_tests, t2.module_frequency):
        with pytest.raises(ValueError, match="unknown service type"):
            f(odd)
    with pytest.raises(ValueError, match="unknown service type"):
        t1.table1_long(df, ["Hospital"])
