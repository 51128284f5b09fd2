"""Tests of imr_analysis.table1 on hand-made cohorts (known answers, tableone/scipy cross-checks)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from pandas.errors import Pandas4Warning
from scipy import stats as sps

from imr_analysis import constants as C
from imr_analysis import stats as st
from imr_analysis import table1 as t1

MED_COLS = [f"med_{c}" for c in C.MEDICATION_CLASSES] + ["med_none"]


@pytest.fixture
def tiny() -> pd.DataFrame:
    """Ten patients: CMHC 5, SerD 3, EDP 2, with hand-checkable values."""
    df = pd.DataFrame({
        "patient_id": [f"p{i}" for i in range(10)],
        "service_type": ["CMHC"] * 5 + ["SerD"] * 3 + ["EDP"] * 2,
        "sex": ["M", "M", "F", "M", "F", "M", "M", "M", "F", "F"],
        "age_at_imr_start": np.array([20, 30, 40, 50, 60, 25, 35, 45, 17, 18], dtype="int64"),
        "age_at_first_treatment": np.array([18, 25, 30, 45, 40, 20, 30, 40, 15, 17], dtype="int64"),
        "residence_district": ["Centro-Nord", "Ovest", "Centro-Nord", "Sud-Est", "Centro-Nord",
                               "Ovest", "Ovest", "Centro-Nord", "Centro-Nord", "Sud-Est"],
        "education_years": pd.array([8, 13, None, 18, 13, 8, 8, None, 10, 11], dtype="Int64"),
        "marital_status": pd.Series(["never_married", "married_cohabiting", None, "never_married", "widowed",
                                     "never_married", "separated_divorced", "never_married", "never_married",
                                     "never_married"], dtype="str"),
        "living_condition": pd.Series(["alone", "family_of_origin", "partner_children", "alone", "other",
                                       "family_of_origin", "alone", "supported_housing", "family_of_origin",
                                       "family_of_origin"], dtype="str"),
        "employment_status": pd.Series(["employed", "unemployed", "pensioner", "employed", "pensioner",
                                        "unemployed", "unemployed", None, "student", "student"], dtype="str"),
        "diagnosis_group": ["schizophrenia_spectrum", "bipolar", "depressive", "substance_use",
                            "schizophrenia_spectrum", "substance_use", "substance_use", "substance_use",
                            "eating", "eating"],
        "illness_duration_years": [2.0, 5.0, 10.0, 5.0, 20.0, 5.0, 5.0, 5.0, 2.0, 1.0],
    })
    meds = {
        "med_antipsychotic": [1, 1, 0, 0, 1, 0, 0, 0, 0, 0],
        "med_antidepressant": [0, 0, 1, 0, 1, 0, 0, 1, 1, 0],
        "med_mood_stabilizer": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        "med_anxiolytic_sedative": [1, 0, 1, 0, 0, 1, 0, 1, 0, 0],
        "med_addiction": [0, 0, 0, 0, 0, 1, 1, 0, 0, 0],
    }
    for c, v in meds.items():
        df[c] = np.array(v, dtype=bool)
    df["med_none"] = ~df[list(meds)].any(axis=1)
    return df


def random_cohort(sizes=(60, 50, 30), seed=7) -> pd.DataFrame:
    """A larger seeded cohort for cross-checks (no patient loops)."""
    rng = np.random.default_rng(seed)
    st_ = np.repeat(["CMHC", "SerD", "EDP"], sizes)
    n = len(st_)
    df = pd.DataFrame({"patient_id": [f"r{i}" for i in range(n)], "service_type": st_})
    df["sex"] = rng.choice(["M", "F"], n)
    df["age_at_imr_start"] = rng.integers(18, 70, n).astype("int64")
    df["age_at_first_treatment"] = (df["age_at_imr_start"] - rng.integers(0, 15, n)).astype("int64")
    df["residence_district"] = rng.choice(["Centro-Nord", "Ovest", "Sud-Est"], n)
    edu = pd.array(rng.integers(5, 18, n), dtype="Int64")
    edu[rng.random(n) < 0.1] = pd.NA
    df["education_years"] = edu
    for col, levels in [("marital_status", C.MARITAL_STATUS), ("living_condition", C.LIVING_CONDITION),
                        ("employment_status", C.EMPLOYMENT_STATUS)]:
        s = pd.Series(rng.choice(levels, n), dtype="str")
        s[rng.random(n) < 0.05] = np.nan
        df[col] = s
    df["diagnosis_group"] = rng.choice(["schizophrenia_spectrum", "bipolar", "substance_use"], n)
    df["illness_duration_years"] = rng.gamma(2.0, 4.0, n) + np.where(st_ == "SerD", 3.0, 0.0)
    for c in MED_COLS[:-1]:
        df[c] = rng.random(n) < 0.4
    df["med_none"] = ~df[MED_COLS[:-1]].any(axis=1)
    return df


def _cell(long, variable, group, level=""):
    rows = long[(long["variable"] == variable) & (long["group"] == group) & (long["level"] == level)]
    assert len(rows) == 1, (variable, group, level)
    return rows.iloc[0]


# --------------------------------------------------------------------------------------
# table1_long
# --------------------------------------------------------------------------------------
def test_long_shape_columns_and_groups(tiny):
    long = t1.table1_long(tiny)
    assert list(long.columns) == t1.LONG_COLUMNS
    assert list(pd.unique(long["group"])) == ["CMHC", "SerD", "EDP", "Total"]
    assert set(long["kind"]) == {"categorical", "continuous"}
    assert list(pd.unique(long["variable"])) == [v.column for v in t1.TABLE1_VARIABLES]
    assert long["n"].dtype == "int64" and long["percent"].dtype == "float64"


def test_categorical_known_answers(tiny):
    long = t1.table1_long(tiny)
    m = _cell(long, "sex", "Total", "M")
    assert (m["n"], m["denominator"], m["n_missing"]) == (6, 10, 0)
    assert m["percent"] == pytest.approx(60.0)
    assert _cell(long, "sex", "SerD", "M")["percent"] == pytest.approx(100.0)
    assert _cell(long, "sex", "EDP", "M")["n"] == 0
    # levels in canonical order, unobserved ones kept with n = 0
    sex_levels = long.loc[(long["variable"] == "sex") & (long["group"] == "Total"), "level"].tolist()
    assert sex_levels == ["M", "F"]
    dx = long.loc[(long["variable"] == "diagnosis_group") & (long["group"] == "Total")]
    assert dx["level"].tolist() == list(C.DIAGNOSIS_GROUPS)
    assert dx["n"].tolist() == [2, 1, 1, 4, 2, 0]
    # missing values: excluded from the denominator, counted in n_missing
    ms = _cell(long, "marital_status", "CMHC", "never_married")
    assert (ms["n"], ms["denominator"], ms["n_missing"]) == (2, 4, 1)
    assert ms["percent"] == pytest.approx(50.0)
    emp = _cell(long, "employment_status", "Total", "unemployed")
    assert (emp["n"], emp["denominator"], emp["n_missing"]) == (3, 9, 1)


def test_total_is_the_sum_of_the_groups(tiny):
    long = t1.table1_long(tiny)
    cat = long[long["kind"] == "categorical"]
    by_group = cat[cat["group"] != "Total"].groupby(["variable", "level"], sort=False)[["n", "denominator", "n_missing"]].sum()
    total = cat[cat["group"] == "Total"].set_index(["variable", "level"])[["n", "denominator", "n_missing"]]
    pd.testing.assert_frame_equal(by_group, total)
    # every (variable, group) has denominator + missing = patients in the group
    sizes = tiny["service_type"].value_counts().to_dict() | {"Total": len(tiny)}
    assert ((long["denominator"] + long["n_missing"]) == long["group"].map(sizes)).all()


def test_medications_are_yes_rows(tiny):
    long = t1.table1_long(tiny)
    meds = long[long["variable"].isin(MED_COLS)]
    assert set(meds["level"]) == {"yes"}
    ap = _cell(long, "med_antipsychotic", "Total", "yes")
    assert (ap["n"], ap["denominator"]) == (3, 10)
    none = _cell(long, "med_none", "Total", "yes")
    assert none["n"] == 2  # p3 (CMHC) and p9 (EDP)
    assert _cell(long, "med_none", "EDP", "yes")["n"] == 1


def test_continuous_known_answers(tiny):
    long = t1.table1_long(tiny)
    age = _cell(long, "age_at_imr_start", "CMHC")
    assert age["n"] == 5 and age["n_missing"] == 0
    assert age["mean"] == pytest.approx(40.0)
    assert age["sd"] == pytest.approx(np.sqrt(250.0))  # deviations 20,10,0,10,20 -> 1000 / 4
    # SPSS's quartiles (the default): the (n + 1)p = 1.5th and 4.5th of 20, 30, 40, 50, 60
    assert (age["median"], age["q1"], age["q3"], age["min"], age["max"]) == (40, 25, 55, 20, 60)
    edp = _cell(long, "age_at_imr_start", "EDP")
    assert edp["mean"] == pytest.approx(17.5) and edp["q1"] == 17  # (2 + 1) / 4 = 0.75th: the smallest value
    linear = t1.table1_long(tiny, quantile_method="linear")
    assert (_cell(linear, "age_at_imr_start", "CMHC")[["q1", "q3"]].tolist()) == [30, 50]  # the 2nd and 4th
    assert _cell(linear, "age_at_imr_start", "EDP")["q1"] == pytest.approx(17.25)  # linear interpolation
    bands = long[(long["variable"] == "age_at_imr_start") & (long["kind"] == "categorical")]
    assert bands["level"].unique().tolist() == list(t1.AGE_BANDS)
    assert bands.set_index(["level", "group"])["n"].loc[[("under_18", "EDP"), ("18", "EDP"), ("over_18", "Total"),
                                                         ("18", "CMHC")]].tolist() == [1, 1, 8, 0]
    assert (bands["denominator"] == bands["group"].map({"CMHC": 5, "SerD": 3, "EDP": 2, "Total": 10})).all()
    shown = t1.format_table1(long[long["kind"].eq("continuous") | long["variable"].ne("age_at_imr_start")])
    assert t1.format_table1(long).equals(shown)  # the display table shows the age summary only
    edu = _cell(long, "education_years", "CMHC")
    assert (edu["n"], edu["denominator"], edu["n_missing"]) == (4, 4, 1)
    assert edu["mean"] == pytest.approx(13.0)
    assert edu["median"] == pytest.approx(13.0)
    tot = _cell(long, "education_years", "Total")
    assert (tot["n"], tot["n_missing"]) == (8, 2)
    assert tot["mean"] == pytest.approx(np.mean([8, 13, 18, 13, 8, 8, 10, 11]))
    assert tot["sd"] == pytest.approx(np.std([8, 13, 18, 13, 8, 8, 10, 11], ddof=1))


def test_unexpected_levels_are_kept_after_canonical_ones(tiny):
    cohort = tiny.copy()
    cohort.loc[0, "marital_status"] = "civil_union"
    long = t1.table1_long(cohort, variables=["marital_status"])
    levels = long.loc[long["group"] == "Total", "level"].tolist()
    assert levels == list(C.MARITAL_STATUS) + ["civil_union"]


def test_services_selection(tiny):
    long = t1.table1_long(tiny, services=["SerD", "CMHC"])
    assert list(pd.unique(long["group"])) == ["CMHC", "SerD", "Total"]
    assert _cell(long, "sex", "Total", "M")["denominator"] == 8
    with pytest.raises(ValueError, match="unknown service"):
        t1.table1_long(tiny, services=["CMHC", "Psychiatry"])
    bad = tiny.copy()
    bad.loc[0, "service_type"] = "XYZ"
    with pytest.raises(ValueError, match="XYZ"):
        t1.table1_long(bad)
    with pytest.raises(KeyError, match="sex"):
        t1.table1_long(tiny.drop(columns="sex"))


def test_long_cross_checked_with_tableone():
    tableone = pytest.importorskip("tableone")
    cohort = random_cohort()
    long = t1.table1_long(cohort, quantile_method="linear")  # tableone's quartiles are pandas' (linear)
    data = cohort.copy()
    data["education_years"] = data["education_years"].astype("float64")
    cont = ["age_at_imr_start", "education_years", "illness_duration_years"]
    cat = ["sex", "residence_district", "diagnosis_group"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Pandas4Warning)
        tab = tableone.TableOne(data, columns=cont + cat, categorical=cat, groupby="service_type", pval=True,
                                htest_name=True)
    cd = tab.cont_describe
    for var in cont:
        for g in ["CMHC", "SerD", "EDP"]:
            ours = _cell(long, var, g)
            assert ours["n"] == cd.loc[var, ("count", g)]
            assert ours["mean"] == pytest.approx(cd.loc[var, ("mean", g)])
            assert ours["sd"] == pytest.approx(cd.loc[var, ("std", g)])
            assert ours["median"] == pytest.approx(cd.loc[var, ("median", g)])
            assert ours["q1"] == pytest.approx(cd.loc[var, ("q25", g)])
            assert ours["q3"] == pytest.approx(cd.loc[var, ("q75", g)])
    kd = tab.cat_describe
    for var in cat:
        for g in ["CMHC", "SerD", "EDP"]:
            for level in cohort[var].unique():
                ours = _cell(long, var, g, level)
                assert ours["n"] == kd.loc[(var, level), ("freq", g)]
                assert ours["percent"] == pytest.approx(kd.loc[(var, level), ("percent", g)])
    # p-values: tableone's ANOVA and (3-group, df > 1) chi-square equal ours
    tests = t1.table1_tests(cohort)
    allsvc = tests[tests["comparison"] == "all services"].set_index("variable")
    ht = tab.htest_table
    assert allsvc.loc["age_at_imr_start", "p_parametric"] == pytest.approx(ht.loc["age_at_imr_start", "P-Value"])
    for var in ["sex", "residence_district", "diagnosis_group"]:
        assert allsvc.loc[var, "test"] == st.TEST_CHI2  # expected counts >= 5 in this cohort
        assert allsvc.loc[var, "p_value"] == pytest.approx(ht.loc[var, "P-Value"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Pandas4Warning)
        tab_nn = tableone.TableOne(data, columns=cont, groupby="service_type", pval=True, nonnormal=cont)
    for var in cont:
        assert allsvc.loc[var, "p_nonparametric"] == pytest.approx(tab_nn.htest_table.loc[var, "P-Value"])


# --------------------------------------------------------------------------------------
# table1_tests
# --------------------------------------------------------------------------------------
def test_tests_rows_and_direct_scipy_cross_check(tiny):
    tests = t1.table1_tests(tiny)
    n_vars = len(t1.TABLE1_VARIABLES)
    assert len(tests) == 2 * n_vars
    assert tests["comparison"].value_counts().to_dict() == {"all services": n_vars, "CMHC vs SerD": n_vars}
    row = tests[(tests["variable"] == "age_at_imr_start") & (tests["comparison"] == "CMHC vs SerD")].iloc[0]
    cm = tiny.loc[tiny["service_type"] == "CMHC", "age_at_imr_start"]
    sd = tiny.loc[tiny["service_type"] == "SerD", "age_at_imr_start"]
    assert row["p_nonparametric"] == pytest.approx(sps.mannwhitneyu(cm, sd, alternative="two-sided").pvalue)
    assert row["p_parametric"] == pytest.approx(sps.ttest_ind(cm, sd, equal_var=bool(row["equal_variance"])).pvalue)
    row = tests[(tests["variable"] == "illness_duration_years") & (tests["comparison"] == "all services")].iloc[0]
    samples = [tiny.loc[tiny["service_type"] == g, "illness_duration_years"] for g in ["CMHC", "SerD", "EDP"]]
    assert row["p_nonparametric"] == pytest.approx(sps.kruskal(*samples).pvalue)
    assert row["p_parametric"] == pytest.approx(sps.f_oneway(*samples).pvalue)
    # SerD illness duration is constant (5, 5, 5): normality not assessable -> Kruskal-Wallis
    assert row["test"] == st.TEST_KRUSKAL and "SerD is constant" in row["reason"]


def test_tests_switch_to_exact_and_monte_carlo(tiny):
    tests = t1.table1_tests(tiny, seed=11, n_resamples=2000).set_index(["variable", "comparison"])
    # 2 x 3 with EDP n=2: Monte-Carlo; 2 x 2 CMHC vs SerD with small counts: Fisher
    assert tests.loc[("sex", "all services"), "test"] == st.TEST_CHI2_MC
    assert "Monte-Carlo 2000 resamples, seed 11" in tests.loc[("sex", "all services"), "note"]
    assert tests.loc[("sex", "CMHC vs SerD"), "test"] == st.TEST_FISHER
    obs = [[3, 2], [3, 0]]  # rows CMHC/SerD x M/F
    assert tests.loc[("sex", "CMHC vs SerD"), "p_value"] == pytest.approx(sps.fisher_exact(obs).pvalue)
    again = t1.table1_tests(tiny, seed=11, n_resamples=2000).set_index(["variable", "comparison"])
    pd.testing.assert_series_equal(tests["p_value"], again["p_value"])


def test_tests_with_one_service_pair_only(tiny):
    tests = t1.table1_tests(tiny, services=["SerD", "EDP"], variables=["sex"])
    assert tests["comparison"].tolist() == ["SerD vs EDP"]  # two groups: one comparison, named by them
    assert tests["groups"].iloc[0] == "SerD, EDP"


# --------------------------------------------------------------------------------------
# format_table1
# --------------------------------------------------------------------------------------
def test_format_cells_and_headers(tiny):
    long = t1.table1_long(tiny, quantile_method="linear")
    tests = t1.table1_tests(tiny, n_resamples=500)
    table = t1.format_table1(long, tests)
    assert list(table.columns) == ["Characteristic", "Level", "CMHC (n=5)", "SerD (n=3)", "EDP (n=2)",
                                   "Total (n=10)", "p", "Test", "Effect (95% CI)", "p (CMHC vs SerD)",
                                   "Test (CMHC vs SerD)", "Effect (95% CI) (CMHC vs SerD)"]
    male = table[table["Level"] == "Male"].iloc[0]
    assert male["Total (n=10)"] == "6 (60.0%)" and male["SerD (n=3)"] == "3 (100.0%)"
    i = table.index[table["Characteristic"] == "Age at IMR start, years"][0]
    assert table.loc[i + 1, "Level"] == "Mean (SD)"
    assert table.loc[i + 1, "CMHC (n=5)"] == f"40.00 ({np.sqrt(250):.2f})"
    assert table.loc[i + 2, "CMHC (n=5)"] == "40 [30-50]; 20-60"
    assert table.loc[i + 2, "EDP (n=2)"] == "17.5 [17.2-17.8]; 17-18"
    spss = t1.format_table1(t1.table1_long(tiny), tests).loc[i + 2]
    assert (spss["CMHC (n=5)"], spss["EDP (n=2)"]) == ("40 [25-55]; 20-60", "17.5 [17.0-18.0]; 17-18")
    assert table.loc[i, "Test"] in {"ANOVA", "KW"} and table.loc[i, "p"] != ""
    # a Missing row only where values are missing
    j = table.index[table["Characteristic"] == "Education, years"][0]
    assert table.loc[j + 3, "Level"] == "Missing"
    assert table.loc[j + 3, "CMHC (n=5)"] == "1 (20.0%)"
    k = table.index[table["Characteristic"] == "Sex, n (%)"][0]
    assert "Missing" not in table.loc[k + 1:k + 2, "Level"].tolist()
    # medications: one section header, one row per class with its own p
    meds = table[table["Level"].isin([C.MEDICATION_CLASS_LABELS[c] for c in C.MEDICATION_CLASS_LABELS])]
    assert len(meds) == 6 and (meds["p"] != "").all()
    assert (table["Characteristic"] == "Psychotropic medication at IMR start, n (%)").sum() == 1


def test_format_tolerates_disclosure_control(tiny):
    long = t1.table1_long(tiny).astype({"n": "object", "n_missing": "object"})
    long = long.drop(columns=["min", "max"])
    small = long["kind"].eq("categorical") & long["n"].lt(3) & long["n"].gt(0)
    long.loc[small, "n"] = "[REDACTED]"
    long.loc[small, "percent"] = np.nan
    long.loc[long["variable"].eq("sex") & long["group"].eq("Total") & long["level"].eq("M"), "n"] = np.nan
    table = t1.format_table1(long)
    assert "EDP (n=2)" in table.columns
    female = table[table["Level"] == "Female"].iloc[0]
    assert female["EDP (n=2)"] == "[REDACTED]"
    male = table[table["Level"] == "Male"].iloc[0]
    assert male["Total (n=10)"] == "[REDACTED]"
    i = table.index[table["Characteristic"] == "Age at IMR start, years"][0]
    assert table.loc[i + 2, "CMHC (n=5)"] == "40 [25-55]"  # SPSS quartiles; no range once min/max are dropped
    assert table.loc[i + 2, "Level"] == "Median [IQR]"
    tilde = t1.format_table1(t1.table1_long(tiny), na_rep="~")
    assert isinstance(tilde, pd.DataFrame)


def test_format_helpers():
    assert t1.format_p(0.0004) == "<0.001"
    assert t1.format_p(0.05) == "0.050"
    assert t1.format_p("[REDACTED]") == "[REDACTED]"
    assert t1.format_count_percent(77, 61.11111) == "77 (61.1%)"
    assert t1.format_count_percent(75.0, 59.5) == "75 (59.5%)"  # rounded counts arrive as floats
    assert t1.format_count_percent(np.nan, np.nan) == "[REDACTED]"
    assert t1.format_mean_sd(40.1428, 12.9213) == "40.14 (12.92)"
    assert t1.format_median_iqr(40, 29, 50, 18, 70) == "40 [29-50]; 18-70"
    assert t1.format_median_iqr(2.5, 1.0, 4.0) == "2.5 [1.0-4.0]"


def test_no_warnings_on_the_whole_pipeline(tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t1.format_table1(t1.table1_long(tiny), t1.table1_tests(tiny, n_resamples=200))


def test_format_after_disclosure_module():
    from imr_analysis import disclosure

    cohort = random_cohort()
    safe, report = disclosure.apply_to_long(t1.table1_long(cohort), "opensafely", "table1")
    table = t1.format_table1(disclosure.mark_redacted(safe), st.public_results(t1.table1_tests(cohort)))
    # group sizes are rounded to 5 in the headers; no raw "nan" anywhere
    assert [c for c in table.columns if "(n=" in c] == ["CMHC (n=60)", "SerD (n=50)", "EDP (n=30)",
                                                        "Total (n=140)"]
    assert not table.apply(lambda col: col.str.contains("nan")).any().any()
    # minima/maxima removed: no range in any cell, and the row label says so
    assert table["Level"].eq("Median [IQR]").sum() == 4 and not table["Level"].eq("Median [IQR]; range").any()
    groups = [c for c in table.columns if "(n=" in c]
    assert not table[groups].apply(lambda col: col.str.contains(r"\]; ")).any().any()


def test_group_size_header_uses_the_most_common_total():
    long = pd.DataFrame({
        "variable": ["a", "b", "c"], "level": ["", "", ""], "group": ["Total"] * 3, "kind": ["continuous"] * 3,
        "n": [125, 125, 115], "denominator": [125, 125, 115], "n_missing": [0, 0, 15],
        "mean": [1.0, 2.0, 3.0], "sd": [1.0, 1.0, 1.0], "median": [1.0, 2.0, 3.0], "q1": [0.0] * 3,
        "q3": [2.0] * 3})
    assert list(t1.format_table1(long).columns)[2] == "Total (n=125)"


def test_public_results_reveal_no_counts(tiny):
    public = st.public_results(t1.table1_tests(tiny, n_resamples=200))
    assert not {"n", "n_per_group", "df", "df2", "statistic", "reason", "note"} & set(public.columns)
    assert {"variable", "comparison", "test", "p_value"} <= set(public.columns)


@pytest.fixture(scope="module")
def generated_cohort(tmp_path_factory):
    """A generated 10^3-patient cohort, cleaned from its written exports."""
    from imr_analysis.cohort import clean_raw
    from imr_synth.generator import write_exports

    folder = tmp_path_factory.mktemp("raw1000")
    write_exports(folder, seed=11, n_patients=1000)
    return clean_raw(folder, today="2025-01-01").cohort


def test_every_table1_number_equals_tableone_on_a_generated_cohort(generated_cohort):
    """All Table 1 variables in every service type: counts, percentages, mean, SD,
    median and quartiles equal tableone's (the benchmark times the same call)."""
    tableone = pytest.importorskip("tableone")
    cohort = generated_cohort
    assert len(cohort) >= 900
    long = t1.table1_long(cohort, quantile_method="linear")  # tableone's quartiles are pandas' (linear)
    cont = [v.column for v in t1.TABLE1_VARIABLES if v.kind == "continuous"]
    cat = [v.column for v in t1.TABLE1_VARIABLES if v.kind != "continuous"]
    data = cohort[cont + cat + ["service_type"]].copy()
    data["education_years"] = data["education_years"].astype("float64")
    for c in cat + ["service_type"]:
        data[c] = data[c].astype(object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Pandas4Warning)
        tab = tableone.TableOne(data, columns=cont + cat, categorical=cat, groupby="service_type", pval=True)
    groups = {g: g for g in C.SERVICE_TYPES}
    cd, kd = tab.cont_describe, tab.cat_describe
    checked = 0
    for var in cont:
        for ours_g, their_g in groups.items():
            ours = _cell(long, var, ours_g)
            assert ours["n"] == cd.loc[var, ("count", their_g)]
            for mine, theirs in (("mean", "mean"), ("sd", "std"), ("median", "median"), ("q1", "q25"),
                                 ("q3", "q75"), ("min", "min"), ("max", "max")):
                assert ours[mine] == pytest.approx(cd.loc[var, (theirs, their_g)], rel=1e-12), (var, ours_g, mine)
                checked += 1
    for var in cat:
        binary = t1.VARIABLES_BY_COLUMN[var].kind == "binary"
        for ours_g, their_g in groups.items():
            levels = [True] if binary else data[var].dropna().unique()
            for level in levels:
                ours = _cell(long, var, ours_g, "yes" if binary else level)
                theirs = kd.loc[(var, "True" if binary else level), :]
                assert ours["n"] == theirs[("freq", their_g)], (var, ours_g, level)
                # tableone's percent counts missing values in the denominator, ours does not
                n_all = ours["denominator"] + ours["n_missing"]
                assert 100 * ours["n"] / n_all == pytest.approx(theirs[("percent", their_g)], rel=1e-12), (var, level)
                assert ours["percent"] == pytest.approx(100 * ours["n"] / ours["denominator"], rel=1e-12)
                checked += 1
    assert checked > 150


# -- quartile definition and footnotes --------------------------------------------------------
def test_quartiles_follow_numpy_methods_and_spss_by_default():
    from imr_analysis.cohort import load_cohort

    cohort = load_cohort()
    age = _cell(t1.table1_long(cohort), "age_at_imr_start", "Total")
    assert (age["q1"], age["q3"]) == (30.75, 50.0)  # SPSS's IQR of the shipped cohort (pandas' is 31.0-49.75)
    values = cohort["age_at_imr_start"].astype("float64")
    for method in ("weibull", "linear", "hazen", "median_unbiased", "nearest"):
        ours = _cell(t1.table1_long(cohort, variables=["age_at_imr_start"], quantile_method=method),
                     "age_at_imr_start", "SerD")
        serd = values[cohort["service_type"].eq("SerD")]
        assert [ours["q1"], ours["q3"]] == pytest.approx(np.quantile(serd, [0.25, 0.75], method=method), rel=1e-12)
    assert _cell(t1.table1_long(cohort, quantile_method="linear"), "age_at_imr_start", "Total")[["q1", "q3"]] \
        .tolist() == [31.0, 49.75]
    with pytest.raises(ValueError, match=r"unknown quantile_method 'spss'; choose from weibull, linear, .*nearest"):
        t1.table1_long(cohort, quantile_method="spss")


def test_table1_notes_name_every_test_shown_and_the_settings(tiny):
    tests = t1.table1_tests(tiny, n_resamples=200, seed=7)
    table = t1.format_table1(t1.table1_long(tiny), tests)
    notes = t1.table1_notes(tests, "linear", n_resamples=200, seed=7, alpha=0.01)
    legend = notes[0]
    shown = set(table.filter(like="Test").to_numpy().ravel()) - {""}
    assert shown and all(f"{abbr}: " in legend for abbr in shown)
    assert set(st.TEST_ABBREVIATIONS[t] for t in tests["test"].dropna()) == shown
    assert st.TEST_CHI2_MC in set(tests["test"]) and "200 resampled tables, seed 7" in legend
    text = " ".join(notes)
    assert "not adjusted for multiple comparisons" in text and "Holm" in text and "alpha = 0.01" in text
    assert "known value" in text and "Missing: n (%) of all the patients of the group" in text
    assert 'numpy.quantile method "linear"' in text and "R's default, type 7" in text
    assert "SPSS's default" in " ".join(t1.table1_notes(tests))
    assert t1.table1_notes(None, "weibull")[0].startswith("n (%)")  # the numbers alone: no test notes
