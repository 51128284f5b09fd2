"""Tests of imr_analysis.table2 on a hand-made cohort."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from imr_analysis import constants as C
from imr_analysis import stats as st
from imr_analysis import table2 as t2


def _modules(*received):
    return {f"module_{k:02d}": [k in r for r in received] for k in C.MODULES}


@pytest.fixture
def tiny() -> pd.DataFrame:
    """Eight patients in four units (CMHC Cento 3, CMHC Ferrara 1, SerD Ferrara 2, EDP Ferrara 2)."""
    received = [(1, 2, 3), (1, 5), (1, 2, 3, 4, 5, 6, 7), (1,), (6, 7), (1, 6), (3, 8), (3, 8)]
    df = pd.DataFrame({
        "patient_id": [f"p{i}" for i in range(8)],
        "service_type": ["CMHC"] * 4 + ["SerD"] * 2 + ["EDP"] * 2,
        "service_unit": ["CMHC Cento"] * 3 + ["CMHC Ferrara"] + ["SerD Ferrara"] * 2 + ["EDP Ferrara"] * 2,
        "imr_format": ["group", "group", "individual", "group", "group", "individual", "group", None],
        "imr_duration_months": [3.0, 6.0, 9.0, 12.0, 2.0, 4.0, 5.0, 7.0],
        "n_sessions": np.array([10, 20, 30, 40, 1, 9, 12, 14], dtype="int64"),
        **_modules(*received),
    })
    df["n_modules"] = np.array([len(r) for r in received], dtype="int64")
    return df


def _get(long, measure, unit="All", service_type="All"):
    rows = long[(long["measure"] == measure) & (long["unit"] == unit) & (long["service_type"] == service_type)]
    assert len(rows) == 1, (measure, unit, service_type)
    return rows.iloc[0]


def test_long_structure(tiny):
    long = t2.table2_long(tiny)
    assert list(long.columns) == t2.LONG_COLUMNS
    units = long.loc[long["level"] == "unit", "unit"].unique().tolist()
    assert units == list(C.SERVICE_UNITS)  # all ten units, canonical order, empty ones included
    assert long.loc[long["level"] == "service_type", "service_type"].unique().tolist() == ["CMHC", "SerD", "EDP"]
    assert len(long) == (10 + 3 + 1) * len(t2.MEASURES) + len(t2.EXTREME_MEASURES)  # no dates in tiny
    assert long["level"].iloc[-1] == "total"


def test_total_extremes_and_dates(tiny):
    long = t2.table2_long(tiny)
    low, high = _get(long, "n_sessions_at_min"), _get(long, "n_sessions_at_max")
    assert (low["n"], low["denominator"], high["n"]) == (1, 8, 1) and low["percent"] == pytest.approx(12.5)
    tiny.loc[4, "n_sessions"] = 40  # a second patient with the most sessions
    dated = tiny.assign(imr_start=pd.to_datetime(["2017-04-03"] + ["2019-01-01"] * 7),
                        imr_end=pd.to_datetime(["2021-07-30"] + ["2019-06-01"] * 7))
    long = t2.table2_long(dated)
    assert _get(long, "n_sessions_at_max")["n"] == 2
    start, end = _get(long, "imr_start"), _get(long, "imr_end")
    assert (start["n"], start["min"], start["max"], end["max"]) == (8, 20170403, 20190101, 20210730)
    assert np.isnan(start["percent"]) and np.isnan(start["mean"])


def test_long_known_answers(tiny):
    long = t2.table2_long(tiny)
    p = _get(long, "patients", "CMHC Cento", "CMHC")
    assert (p["n"], p["denominator"]) == (3, 8) and p["percent"] == pytest.approx(37.5)
    assert _get(long, "patients", "SerD Cento", "SerD")["n"] == 0
    assert _get(long, "patients")["n"] == 8
    gf = _get(long, "group_format", "All", "EDP")
    assert (gf["n"], gf["denominator"], gf["percent"]) == (1, 1, 100.0)  # one format missing
    gf = _get(long, "group_format")
    assert (gf["n"], gf["denominator"]) == (5, 7)
    s = _get(long, "n_sessions", "All", "CMHC")
    assert (s["n"], s["mean"], s["min"], s["max"], s["median"]) == (4, 25.0, 10, 40, 25.0)
    assert s["sd"] == pytest.approx(np.std([10, 20, 30, 40], ddof=1))
    assert np.isnan(s["percent"])
    tot = _get(long, "n_sessions")
    assert tot["mean"] == pytest.approx(np.mean([10, 20, 30, 40, 1, 9, 12, 14]))
    assert (tot["min"], tot["max"]) == (1, 40)
    d = _get(long, "imr_duration_months", "CMHC Ferrara", "CMHC")
    assert (d["n"], d["mean"]) == (1, 12.0) and np.isnan(d["sd"])
    nm = _get(long, "n_modules", "All", "EDP")
    assert (nm["mean"], nm["sd"], nm["min"], nm["max"]) == (2.0, 0.0, 2, 2)
    m1 = _get(long, "module_01")
    assert (m1["n"], m1["denominator"], m1["percent"]) == (5, 8, 62.5)
    m6 = _get(long, "module_06", "All", "SerD")
    assert (m6["n"], m6["percent"]) == (2, 100.0)
    empty = _get(long, "n_sessions", "SerD Cento", "SerD")
    assert empty["n"] == 0 and np.isnan(empty["mean"])


def test_aggregates_are_consistent_with_units(tiny):
    long = t2.table2_long(tiny)
    counts = long[long["measure"].isin(["patients", "group_format", *C.MODULE_COLUMNS])]
    units = counts[counts["level"] == "unit"].groupby(["service_type", "measure"])["n"].sum()
    types = counts[counts["level"] == "service_type"].set_index(["service_type", "measure"])["n"]
    pd.testing.assert_series_equal(units.sort_index(), types.sort_index(), check_names=False)
    total = counts[counts["level"] == "total"].set_index("measure")["n"]
    pd.testing.assert_series_equal(types.groupby("measure").sum().sort_index(), total.sort_index(),
                                   check_names=False)


def test_services_and_errors(tiny):
    long = t2.table2_long(tiny, services=["EDP"])
    assert long.loc[long["level"] == "unit", "unit"].unique().tolist() == ["EDP Ferrara"]
    assert _get(long, "patients")["n"] == 2
    bad = tiny.copy()
    bad.loc[0, "service_unit"] = "SerD Cento"  # unit of another service type
    with pytest.raises(ValueError, match="disagree"):
        t2.table2_long(bad)
    with pytest.raises(KeyError, match="n_sessions"):
        t2.table2_long(tiny.drop(columns="n_sessions"))


def test_a_unit_under_another_type_is_named_with_categorical_columns(tiny):
    # the cohort's text is categorical; after selecting rows the type may keep a category
    # the units no longer map to, and categoricals with different categories cannot be compared
    bad = tiny.astype({"service_unit": "category", "service_type": "category"})
    bad = bad[bad["service_unit"].isin(["CMHC Ferrara", "SerD Ferrara"])].reset_index(drop=True)
    bad["service_unit"] = bad["service_unit"].cat.remove_unused_categories()
    assert "EDP" in bad["service_type"].cat.categories
    bad.loc[bad["service_type"] == "CMHC", "service_unit"] = "SerD Ferrara"
    with pytest.raises(ValueError, match="service_unit and service_type disagree.*'SerD Ferrara'.*'CMHC'"):
        t2.table2_long(bad)


def test_tests_cross_checked_with_scipy(tiny):
    tests = t2.table2_tests(tiny).set_index(["variable", "comparison"])
    assert set(tests.index) == {(v, c) for v in t2.TEST_VARIABLES for c in ["all services", "CMHC vs SerD"]}
    by = {g: tiny.loc[tiny["service_type"] == g, "n_sessions"].to_numpy() for g in ["CMHC", "SerD", "EDP"]}
    row = tests.loc[("n_sessions", "all services")]
    assert row["p_parametric"] == pytest.approx(sps.f_oneway(*by.values()).pvalue)
    assert row["p_nonparametric"] == pytest.approx(sps.kruskal(*by.values()).pvalue)
    assert row["test"] == st.TEST_KRUSKAL and "SerD has n=2" in row["reason"]
    pair = tests.loc[("n_sessions", "CMHC vs SerD")]
    assert pair["p_nonparametric"] == pytest.approx(
        sps.mannwhitneyu(by["CMHC"], by["SerD"], alternative="two-sided").pvalue)
    assert pair["test"] == st.TEST_MANN_WHITNEY
    # EDP modules per patient are constant: normality not assessable -> Kruskal-Wallis
    assert tests.loc[("n_modules", "all services"), "test"] == st.TEST_KRUSKAL


def test_module_frequency(tiny):
    mf = t2.module_frequency(tiny)
    assert mf["label"].tolist()[:3] == ["M1", "M3", "M6"]
    top = mf.iloc[0]
    assert (top["module"], top["n"], top["percent"], top["rank"]) == (1, 5, 62.5, 1)
    assert top["title"] == "Recovery Strategies"
    # ties share the lowest rank: M3 4 patients, M6 3, M2/M5/M7/M8 2 each, M4 1, M9-M11 none
    ranks = mf.set_index("label")["rank"]
    assert ranks["M3"] == 2 and ranks["M6"] == 3
    assert ranks["M2"] == ranks["M5"] == ranks["M7"] == ranks["M8"] == 4
    assert ranks["M4"] == 8
    assert ranks["M9"] == ranks["M10"] == ranks["M11"] == 9
    per = mf.set_index("label")
    assert (per.loc["M6", "n_SerD"], per.loc["M6", "percent_SerD"], per.loc["M6", "rank_SerD"]) == (2, 100.0, 1)
    assert (per.loc["M3", "n_EDP"], per.loc["M8", "percent_EDP"]) == (2, 100.0)
    assert per.loc["M1", "rank_CMHC"] == 1


def test_format_table2(tiny):
    long = t2.table2_long(tiny)
    table = t2.format_table2(long, t2.table2_tests(tiny))
    assert table.columns[:2].tolist() == ["Service type", "Service unit"]
    assert table["Service unit"].tolist()[:10] == list(C.SERVICE_UNITS)
    assert table["Service unit"].tolist()[10:13] == ["All CMHC units", "All SerD units", "All EDP units"]
    assert table["Service type"].tolist()[13:] == ["Total", "p (all services)", "Effect (all services)",
                                                   "p (CMHC vs SerD)", "Effect (CMHC vs SerD)"]
    total = table.iloc[13]
    assert total["Patients, n (%)"] == "8 (100.0%)"
    assert total["Sessions, mean (SD) [range]"] == f"{np.mean([10, 20, 30, 40, 1, 9, 12, 14]):.1f} " \
        f"({np.std([10, 20, 30, 40, 1, 9, 12, 14], ddof=1):.1f}) [1-40]"
    assert total["M1, n (%)"] == "5 (62.5%)"
    assert table.iloc[1]["Sessions, mean (SD) [range]"] == "–"  # CMHC Codigoro: no patient
    assert table.iloc[14]["Sessions, mean (SD) [range]"].endswith("(KW)")
    assert table.iloc[15]["Sessions, mean (SD) [range]"].startswith("ε² ")
    assert table.iloc[16]["Sessions, mean (SD) [range]"].endswith("(MWU)")
    assert table.iloc[17]["Sessions, mean (SD) [range]"].startswith("r_rb ")


def test_format_table2_tolerates_redaction(tiny):
    long = t2.table2_long(tiny).drop(columns=["min", "max"]).astype({"n": "object"})
    long.loc[long["measure"].eq("patients") & long["n"].lt(3), "n"] = "<3"
    table = t2.format_table2(long)
    assert table.iloc[3]["Patients, n (%)"] == "<3"  # CMHC Ferrara
    assert table.iloc[13]["IMR duration, months, mean (SD) [range]"].count("[") == 0


def test_no_warnings(tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t2.format_table2(t2.table2_long(tiny), t2.table2_tests(tiny))
        t2.module_frequency(tiny)


def test_module_frequency_from_protected_long(tiny):
    long = t2.table2_long(tiny)
    hidden = long["measure"].eq("module_03") & long["level"].isin(["total", "service_type"])
    long.loc[hidden, ["n", "percent"]] = np.nan  # as disclosure control leaves a redacted cell
    mf = t2.module_frequency_from_long(long).set_index("label")
    assert pd.isna(mf.loc["M3", "n"])
    assert mf["rank"].isna().all() and mf["rank_CMHC"].isna().all()  # no partial ranking
    assert mf.index.tolist() == [f"M{k}" for k in C.MODULES]  # unranked: module order
    assert mf.loc["M1", "n_CMHC"] == 4 and mf.loc["M1", "n"] == 5


def test_format_table2_after_disclosure_module(tiny):
    from imr_analysis import disclosure

    safe, _ = disclosure.apply_to_long(t2.table2_long(tiny), "opensafely", "table2")
    table = t2.format_table2(disclosure.mark_redacted(safe))
    assert table.iloc[3]["Patients, n (%)"] == "[REDACTED]"  # CMHC Ferrara: 1 patient
    assert table.iloc[13]["Patients, n (%)"].startswith("10 ")  # 8 rounded to the nearest 5
    assert not table.apply(lambda col: col.str.contains("nan")).any().any()


def test_format_module_frequency(tiny):
    table = t2.format_module_frequency(t2.module_frequency(tiny))
    assert table.columns.tolist() == ["Module", "All services, n (%)", "Rank", "CMHC, n (%)", "Rank in CMHC",
                                      "SerD, n (%)", "Rank in SerD", "EDP, n (%)", "Rank in EDP"]
    assert table.iloc[0].tolist()[:5] == ["M1 Recovery Strategies", "5 (62.5%)", "1", "4 (100.0%)", "1"]
    long = t2.table2_long(tiny)
    long.loc[long["measure"].eq("module_01") & long["level"].eq("total"), ["n", "percent"]] = np.nan
    redacted = t2.format_module_frequency(t2.module_frequency_from_long(long)).set_index("Module")
    assert redacted.loc["M1 Recovery Strategies", ["All services, n (%)", "Rank"]].tolist() == ["[REDACTED]", "–"]
    assert redacted.loc["M1 Recovery Strategies", "Rank in CMHC"] == "1"  # CMHC counts are all published


def test_table2_notes_name_every_test_shown(tiny):
    tests = t2.table2_tests(tiny)
    table = t2.format_table2(t2.table2_long(tiny), tests)
    p_rows = table[table["Service type"].str.startswith("p (")]
    assert len(p_rows) == 2  # all services, CMHC vs SerD (each followed by its effect sizes)
    shown = {cell.rsplit("(", 1)[1].rstrip(")").rstrip(" †") for cell in p_rows.iloc[:, 2:].to_numpy().ravel() if cell}
    notes = t2.table2_notes(tests, alpha=0.01)
    assert shown and all(f"{abbr}: " in notes[2] for abbr in shown) and notes[2].startswith("Tests: ")
    assert "% of the patients whose format is known" in notes[0] and "alpha = 0.01" in notes[3]
    assert "Monte-Carlo" not in " ".join(notes)  # no categorical test here
    assert len(t2.table2_notes(None)) == 2
