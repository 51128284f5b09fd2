"""Table 1 and Table 2 on generated cohorts with missing values, unexpected levels, a unit outside
the codebook, tiny groups and text stored in every dtype the cohort may use: the numbers add up,
agree with pandas and scipy on the raw groups, and do not depend on the storage or row order.
"""

from __future__ import annotations

import doctest

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


CASES = [dict(seed=1), dict(seed=2, order="sorted"), dict(seed=3, text="str"), dict(seed=4, n=400, text=object),
         dict(seed=5, text="category")]
SERVICES = [None, ["CMHC", "SerD"], ["EDP"], ["SerD", "EDP"]]


@pytest.fixture(scope="module", params=range(len(CASES)), ids=[str(c) for c in CASES])
def cohort(request):
    return generated(**CASES[request.param])


@pytest.mark.parametrize("services", SERVICES)
def test_table1_long_adds_up_and_agrees_with_pandas(cohort, services):
    long = t1.table1_long(cohort, services)
    data, groups = t1.select_services(cohort, services)
    sizes = data["service_type"].astype(str).value_counts().reindex(groups, fill_value=0).to_dict()
    sizes["Total"] = len(data)
    assert list(pd.unique(long["group"])) == groups + ["Total"]
    assert (long["denominator"] + long["n_missing"]).eq(long["group"].map(sizes)).all()
    cat = long[long["kind"].eq("categorical")]
    by_group = cat[cat["group"] != "Total"].groupby(["variable", "level"], sort=False)[["n", "denominator"]].sum()
    total = cat[cat["group"] == "Total"].set_index(["variable", "level"])[["n", "denominator"]]
    pd.testing.assert_frame_equal(by_group, total)
    assert np.allclose(cat["percent"], 100 * cat["n"] / cat["denominator"], equal_nan=True)
    employment = cat.loc[cat["variable"].eq("employment_status") & cat["group"].eq("Total"), "level"].tolist()
    unexpected = data["employment_status"].astype(object).eq("zz_unexpected").any()
    assert employment == list(C.EMPLOYMENT_STATUS) + (["zz_unexpected"] if unexpected else [])
    addiction = cat.loc[cat["variable"].eq("med_addiction") & cat["group"].eq("Total")].iloc[0]
    flags = data["med_addiction"].astype("boolean")
    assert (addiction["n"], addiction["denominator"]) == (flags.sum(), flags.notna().sum())
    for var in ["illness_duration_years", "education_years"]:
        x = pd.to_numeric(data[var]).astype("float64")
        for g in groups + ["Total"]:
            values = (x if g == "Total" else x[data["service_type"].astype(str).eq(g)]).dropna()
            row = long[long["variable"].eq(var) & long["group"].eq(g)].iloc[0]
            assert row["n"] == len(values)
            if len(values):
                assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)
                assert row["median"] == pytest.approx(values.median(), rel=1e-12)
                assert [row["q1"], row["q3"]] == pytest.approx(  # SPSS's definition, by default
                    np.quantile(values, [0.25, 0.75], method=t1.QUANTILE_METHOD), rel=1e-12)
                assert (row["min"], row["max"]) == (values.min(), values.max())


def test_tables_do_not_depend_on_text_dtype_or_row_order():
    base = generated(n=1500, seed=6)
    shuffled = base.sample(frac=1, random_state=0)
    for other in (generated(n=1500, seed=6, text=object), generated(n=1500, seed=6, text="category"), shuffled):
        pd.testing.assert_frame_equal(t1.table1_long(other), t1.table1_long(base), rtol=1e-12)
        pd.testing.assert_frame_equal(t1.table1_tests(other, n_resamples=999), t1.table1_tests(base, n_resamples=999),
                                      rtol=1e-9)
        pd.testing.assert_frame_equal(t2.table2_long(other), t2.table2_long(base), rtol=1e-12)


@pytest.mark.parametrize("services", SERVICES)
def test_table2_long_adds_up(cohort, services):
    long = t2.table2_long(cohort, services)
    counts = long[long["measure"].isin(t2.MEASURES) & ~long["measure"].isin(t2.CONTINUOUS_MEASURES)]  # per entity
    units = counts[counts["level"] == "unit"].groupby(["service_type", "measure"])["n"].sum()
    types = counts[counts["level"] == "service_type"].set_index(["service_type", "measure"])["n"]
    pd.testing.assert_series_equal(units.sort_index(), types.sort_index(), check_names=False)
    total = counts[counts["level"] == "total"].set_index("measure")["n"]
    pd.testing.assert_series_equal(types.groupby("measure").sum().sort_index(), total.sort_index(), check_names=False)
    zeta = long.loc[long["unit"].eq("Zeta unit") & long["measure"].eq("patients"), "service_type"].tolist()
    _, groups = t1.select_services(cohort, services)
    assert zeta == [g for g in groups if g in ("CMHC", "SerD")]
    freq = t2.module_frequency_from_long(long)
    assert freq["n"].tolist() == sorted(freq["n"].tolist(), reverse=True)


def test_table1_tests_use_monte_carlo_with_a_group_of_two(cohort):
    tests = t1.table1_tests(cohort, n_resamples=999)
    assert (tests["test"] == st.TEST_CHI2_MC).any()   # the EDP pair forces Monte-Carlo


def test_continuous_tests_equal_scipy_on_the_raw_groups(cohort):
    # p-values do not depend on the bootstrap of the effect sizes' CIs: few resamples keep the test quick
    tests = pd.concat([t1.table1_tests(cohort, variables=["illness_duration_years", "education_years"], n_resamples=99),
                       t2.table2_tests(cohort, n_resamples=99)])
    for r in tests.itertuples(index=False):
        levels = r.groups.split(", ")
        x = pd.to_numeric(cohort[r.variable]).astype("float64")
        xs = [x[cohort["service_type"].astype(str).eq(g)].dropna().to_numpy() for g in levels]
        if len(levels) == 2:
            assert r.p_nonparametric == sps.mannwhitneyu(*xs, alternative="two-sided").pvalue
            assert r.p_parametric == sps.ttest_ind(*xs, equal_var=bool(r.equal_variance)).pvalue
        else:
            assert r.p_nonparametric == sps.kruskal(*xs).pvalue
            assert r.p_parametric == sps.f_oneway(*xs).pvalue


def test_errors_name_the_problem():
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


@pytest.mark.parametrize("module", [st, t1, t2], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
