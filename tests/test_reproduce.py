"""The reproduction audit on a tiny hand-made cohort with known answers, and on the committed tables.

The audit reads the tables notebooks 02-05 write; for a cohort made here they are made in memory by
the same calls (conftest.audit_outputs)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from imr_analysis import constants as C
from imr_analysis import reproduce
from imr_analysis.reproduce import (CHECK_COLUMNS, check_published, print_value, read_metrics, read_outputs,
                                       summary_line)

from conftest import audit_outputs

# six patients: id, service, unit, sex, age, age at first treatment, ICD-10, group, format, sessions, modules,
# medication classes, IMR start, IMR end, first treatment
_ROWS = [
    ("EF00001", "CMHC", "CMHC Ferrara", "M", 40, 30, "F20.0", "schizophrenia_spectrum", "group", 10,
     (1, 2, 9), ("antipsychotic",), "2019-01-07", "2019-07-08", "2009-03-01"),
    ("EF00002", "CMHC", "CMHC Cento", "F", 50, 35, "F10.2", "substance_use", "group", 70,
     (1, 6), ("anxiolytic_sedative", "antidepressant"), "2018-02-05", "2021-03-29", "2003-06-15"),
    ("SD00003", "SerD", "SerD Ferrara", "M", 30, 25, "F11.2", "substance_use", "group", 1,
     (1, 6, 7), ("addiction", "anxiolytic_sedative"), "2019-09-02", "2019-11-04", "2014-05-20"),
    ("SD00004", "SerD", "SerD Cento", "M", 35, 33, "F10.2", "substance_use", "individual", 5,
     (6,), (), "2020-01-13", "2020-04-06", "2018-02-01"),
    ("EF00005", "EDP", "EDP Ferrara", "F", 18, 18, "F50.0", "eating", "individual", 8,
     (3, 8), (), "2020-10-05", "2021-01-11", "2020-06-10"),
    ("EF00006", "CMHC", "CMHC Copparo", "F", 25, 20, "F31.1", "bipolar", "group", 20,
     (1, 10), ("antipsychotic", "mood_stabilizer"), "2017-04-03", "2017-12-18", "2012-09-09"),
]

#: user and provider IMRS items (6 patients x 15 items)
_USER = np.array([
    [4, 4, 3, 3, 3, 4, 4, 4, 3, 5, 4, 2, 4, 5, 5],
    [3, 4, 3, 3, 2, 3, 3, 4, 3, 4, 3, 3, 4, 3, 4],
    [4, 4, 4, 3, 3, 4, 4, 4, 4, 5, 4, 3, 4, 4, 3],
    [3, 3, 3, 2, 3, 3, 3, 3, 3, 5, 3, 3, 3, 3, 4],
    [4, 4, 4, 4, 4, 3, 4, 4, 4, 5, 4, 2, 5, 5, 5],
    [5, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 4, 5, 5],
])
_PROV = np.array([
    [4, 3, 3, 3, 3, 4, 3, 4, 3, 5, 4, 2, 4, 5, 5],
    [3, 3, 3, 2, 2, 3, 3, 3, 3, 4, 3, 2, 4, 3, 4],
    [4, 4, 3, 3, 3, 4, 4, 4, 4, 4, 4, 3, 4, 4, 3],
    [3, 3, 3, 3, 3, 3, 3, 3, 3, 5, 3, 3, 3, 2, 3],
    [4, 4, 4, 4, 4, 3, 4, 4, 4, 5, 4, 2, 5, 5, 5],
    [4, 4, 4, 4, 4, 4, 4, 4, 3, 4, 4, 3, 4, 5, 5],
])


def tiny_cohort() -> pd.DataFrame:
    """Six hand-made patients with every canonical cohort column."""
    recs = []
    for i, (pid, svc, unit, sex, age, first, icd, grp, fmt, ses, mods, meds, start, end, ftd) in enumerate(_ROWS):
        start_t, end_t, ftd_t = pd.Timestamp(start), pd.Timestamp(end), pd.Timestamp(ftd)
        rec = {
            "patient_id": pid, "source_ehr": "Sister" if svc == "SerD" else "EFESO", "service_type": svc,
            "service_unit": unit, "sex": sex, "birth_year": start_t.year - age, "age_at_imr_start": age,
            "age_at_first_treatment": first, "residence_municipality": "Ferrara",
            "residence_district": "Centro-Nord", "education_years": 13, "marital_status": "never_married",
            "living_condition": "alone", "employment_status": "employed", "first_treatment_date": ftd_t,
            "programme_start_date": start_t - pd.Timedelta(days=30), "diagnosis_icd10": icd,
            "diagnosis_group": grp, "atc_codes": "",
            "imr_start": start_t, "imr_end": end_t,
            "imr_duration_months": (end_t - start_t).days / C.DAYS_PER_MONTH,
            "illness_duration_years": (start_t - ftd_t).days / C.DAYS_PER_YEAR,
            "imr_format": fmt, "manual_version": C.MANUAL_VERSIONS[0], "n_sessions": ses,
        }
        for c in C.MEDICATION_CLASSES:
            rec[f"med_{c}"] = c in meds
        rec["med_none"] = not meds
        for k, col in enumerate(C.MODULE_COLUMNS, start=1):
            rec[col] = k in mods
        rec["n_modules"] = len(mods)
        for k in range(15):
            rec[C.IMRS_USER_COLUMNS[k]] = int(_USER[i, k])
            rec[C.IMRS_PROVIDER_COLUMNS[k]] = int(_PROV[i, k])
        rec["imrs_user_total"] = float(_USER[i].sum())
        rec["imrs_provider_total"] = float(_PROV[i].sum())
        rec["imrs_user_mean"] = float(_USER[i].mean())
        rec["imrs_provider_mean"] = float(_PROV[i].mean())
        recs.append(rec)
    df = pd.DataFrame(recs)[C.COHORT_COLUMNS]
    for col in C.IMRS_USER_COLUMNS + C.IMRS_PROVIDER_COLUMNS:
        df[col] = df[col].astype("Int64")
    df["education_years"] = df["education_years"].astype("Int64")
    return df


@pytest.fixture(scope="module")
def metrics():
    return read_metrics(audit_outputs(tiny_cohort()))


def test_counts_and_percentages(metrics):
    m = metrics
    assert m["n_patients"] == 6
    assert (m["n_cmhc"], m["n_serd"], m["n_edp"]) == (3, 2, 1)
    assert m["pct_cmhc"] == pytest.approx(50.0) and m["pct_edp"] == pytest.approx(100 / 6)
    assert m["n_units"] == 6 and m["n_units_cmhc"] == 3 and m["n_service_types"] == 3
    assert m["n_men"] == 3 and m["pct_men"] == pytest.approx(50.0)
    assert m["n_age_18"] == 1 and m["n_age_under_18"] == 0
    assert m["pct_group"] == pytest.approx(400 / 6)
    assert m["n_sud_cmhc"] == 1 and m["pct_dx_substance_use"] == pytest.approx(50.0)
    assert m["dx_substance_use_most_frequent"] == 1.0


def test_means_and_sds(metrics):
    m = metrics
    assert m["age_imr_mean"] == pytest.approx(33.0)
    # deviations -2, 1... : sum of squares of (40,50,30,35,18,25) about 33 = 49+289+9+4+225+64 = 640
    assert m["age_imr_sd"] == pytest.approx(math.sqrt(640 / 5))
    assert m["sessions_mean"] == pytest.approx(19.0)
    assert m["sessions_sd"] == pytest.approx(math.sqrt(3324 / 5))
    assert (m["sessions_min"], m["sessions_max"]) == (1, 70)
    assert m["sessions_min_unique_serd"] == 1.0 and m["sessions_max_unique_cmhc"] == 1.0
    assert m["imrs_user_total_mean"] == pytest.approx(_USER.sum(axis=1).mean())
    assert m["imrs_provider_total_sd"] == pytest.approx(_PROV.sum(axis=1).std(ddof=1))
    assert m["imrs_user_item_mean_sd"] == pytest.approx(_USER.mean(axis=1).std(ddof=1))


def test_medications(metrics):
    m = metrics
    assert (m["n_med_antipsychotic"], m["n_med_anxiolytic_sedative"], m["n_med_none"]) == (2, 2, 2)
    assert m["pct_med_none"] == pytest.approx(100 / 3)
    assert m["med_top2_antipsychotic_anxiolytic"] == 1.0  # 2 and 2 vs antidepressant/mood/addiction 1 each


def test_modules(metrics):
    m = metrics
    assert m["n_module_01"] == 4 and m["pct_module_01"] == pytest.approx(400 / 6)
    assert m["module_01_most_frequent"] == 1.0
    assert m["modules_09_10_least"] == 0.0  # M4, M5, M11 were never given: 0 < 1
    assert m["pct_module_06_serd"] == 100.0 and m["n_module_06_cmhc"] == 1 and m["n_module_06_edp"] == 0
    assert m["module_06_most_frequent_serd"] == 1.0
    assert m["edp_only_m3_m8"] == 1.0
    assert m["no_patient_all_11"] == 1.0 and m["no_service_all_11"] == 1.0
    assert (m["n_modules_min"], m["n_modules_max"]) == (1, 3)


def test_flags_can_fail():
    df = tiny_cohort()
    df.loc[4, "module_01"] = True  # the EDP patient gets M1 too
    df.loc[0, C.MODULE_COLUMNS] = True  # and one patient all 11
    df.loc[0, "n_modules"] = 11
    m = read_metrics(audit_outputs(df))
    assert m["edp_only_m3_m8"] == 0.0
    assert m["no_patient_all_11"] == 0.0 and m["no_service_all_11"] == 0.0
    df2 = tiny_cohort()
    df2.loc[5, "n_sessions"] = 1  # a second patient with a single session, at a CMHC
    assert read_metrics(audit_outputs(df2))["sessions_min_unique_serd"] == 0.0


def test_illness_duration_tests_cross_checked(metrics):
    df = tiny_cohort()  # Table 1 leaves out a group of one patient: a second EDP patient makes three groups
    df = pd.concat([df, df.iloc[[4]].assign(patient_id="EF00007", illness_duration_years=0.9)], ignore_index=True)
    groups = [df.loc[df["service_type"] == s, "illness_duration_years"].to_numpy() for s in C.SERVICE_TYPES]
    kw, an = stats.kruskal(*groups).pvalue, stats.f_oneway(*groups).pvalue
    m = read_metrics(audit_outputs(df))
    assert m["illness_duration_service_kruskal_p"] == pytest.approx(kw)
    assert m["illness_duration_service_anova_p"] == pytest.approx(an)
    assert m["illness_duration_service_p"] == pytest.approx(max(kw, an))
    assert metrics["illness_duration_min_at_edp"] == 1.0
    assert metrics["illness_duration_min"] == pytest.approx((pd.Timestamp("2020-10-05") - pd.Timestamp("2020-06-10")).days
                                                            / 365.25)


def test_item_profile_correlation_cross_checked(metrics):
    u, p = _USER.mean(axis=0), _PROV.mean(axis=0)
    assert metrics["imrs_item_profile_n"] == 15
    assert metrics["imrs_item_profile_pearson_r"] == pytest.approx(np.corrcoef(u, p)[0, 1])
    # p of Pearson's r from the t distribution, independently
    r = np.corrcoef(u, p)[0, 1]
    t = r * math.sqrt(13) / math.sqrt(1 - r**2)
    assert metrics["imrs_item_profile_pearson_p"] == pytest.approx(2 * stats.t.sf(abs(t), 13), rel=1e-6)
    ranks_r = np.corrcoef(stats.rankdata(u), stats.rankdata(p))[0, 1]
    assert metrics["imrs_item_profile_spearman_r"] == pytest.approx(ranks_r)


def test_observation_period_flag(metrics):
    assert metrics["imr_within_observation_period"] == 1.0
    df = tiny_cohort()
    df.loc[0, "imr_end"] = pd.Timestamp("2021-08-02")
    assert read_metrics(audit_outputs(df))["imr_within_observation_period"] == 0.0


def test_print_value_rounds_half_away_from_zero():
    assert print_value(0.125, 2) == "0.13"
    assert print_value(2.5, 0) == "3"
    assert print_value(40.142857, 2) == "40.14"
    assert print_value(-0.0001, 2) == "0.00"
    assert print_value(float("nan"), 1) == "nan"


def _published(rows):
    base = {"section": "Results", "quote": "q", "comparator": "=", "honoured": True, "reason": ""}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_check_published_statuses():
    pub = _published([
        {"id": "a_match", "metric": "n_patients", "value": 6.0, "decimals": 0, "kind": "count",
         "verdict": "consistent"},
        {"id": "b_mismatch", "metric": "pct_men", "value": 61.1, "decimals": 1, "kind": "percent",
         "verdict": "consistent"},
        {"id": "c_inconsistent", "metric": "n_patients", "value": 6.0, "decimals": 0, "kind": "count",
         "verdict": "paper-inconsistent", "reason": "because"},
        {"id": "d_statement", "metric": None, "value": float("nan"), "decimals": 0, "kind": "statement",
         "verdict": "consistent"},
        {"id": "e_less", "metric": "illness_duration_min", "value": 1.0, "decimals": 0, "kind": "min",
         "verdict": "consistent", "comparator": "<"},
        {"id": "f_less_fails", "metric": "illness_duration_max", "value": 1.0, "decimals": 0, "kind": "max",
         "verdict": "consistent", "comparator": "<"},
        {"id": "g_rounding", "metric": "age_imr_mean", "value": 33.0, "decimals": 2, "kind": "mean",
         "verdict": "consistent"},
    ])
    check = check_published(audit_outputs(tiny_cohort()), pub)
    assert list(check.columns) == CHECK_COLUMNS
    status = dict(zip(check["id"], check["status"]))
    assert status == {"a_match": "match", "b_mismatch": "mismatch", "c_inconsistent": "paper-inconsistent",
                      "d_statement": "not-recomputable", "e_less": "match", "f_less_fails": "mismatch",
                      "g_rounding": "match"}
    row = check.set_index("id").loc["b_mismatch"]
    assert row["recomputed_printed"] == "50.0" and "61.1" in row["reason"]
    assert check.set_index("id").loc["c_inconsistent", "reason"] == "because"
    assert check.set_index("id").loc["c_inconsistent", "recomputed"] == 6.0
    assert summary_line(check) == "3 matched, 2 mismatched, 1 paper-inconsistent, 1 not recomputable"


def test_check_published_unknown_metric_is_a_clear_error():
    pub = _published([{"id": "x", "metric": "no_such_metric", "value": 1.0, "decimals": 0, "kind": "count",
                       "verdict": "consistent"}])
    with pytest.raises(KeyError, match="no_such_metric"):
        check_published(audit_outputs(tiny_cohort()), pub)


def test_check_published_default_yaml_on_tiny_cohort():
    check = check_published(audit_outputs(tiny_cohort()))
    assert set(check["status"]) <= {"match", "mismatch", "paper-inconsistent", "not-recomputable"}
    # the tiny cohort is not the paper's: N = 6 must be reported as a mismatch, not hidden
    assert check.set_index("id").loc["res_n_completed", "status"] == "mismatch"
    assert (check["status"] == "paper-inconsistent").sum() == 8


# --------------------------------------------------------------------------- the audit reads the outputs
@pytest.fixture(scope="module")
def committed():
    return read_outputs()


def test_the_audit_reads_the_published_tables(committed):
    base = check_published(committed).set_index("id")["status"]
    assert summary_line(base.to_frame()) == "85 matched, 0 mismatched, 8 paper-inconsistent, 20 not recomputable"
    outputs = {k: v.copy() for k, v in committed.items()}
    men = outputs["table1_long"].eval("variable == 'sex' and level == 'M' and group == 'Total'")
    outputs["table1_long"].loc[men, "percent"] = 62.0  # Table 1 says 62.0% men
    outputs["module_frequency_values"].loc[outputs["module_frequency_values"]["module"].eq(2), "n"] = 100
    check = check_published(outputs).set_index("id")
    changed = check.index[check["status"] != base]
    assert sorted(changed) == ["abs_men_pct", "res_m1_most_frequent", "res_men_pct"]
    assert check.loc["res_men_pct", "recomputed_printed"] == "62.0" and "61.1" in check.loc["res_men_pct", "reason"]
    assert check.loc["res_m1_most_frequent", "recomputed"] == 0.0


def test_a_redacted_value_gives_no_verdict(committed):
    outputs = dict(committed, module_frequency_values=committed["module_frequency_values"].assign(n=np.nan))
    m = read_metrics(outputs, ["module_01_most_frequent", "modules_09_10_least", "n_patients"])
    assert math.isnan(m["module_01_most_frequent"]) and math.isnan(m["modules_09_10_least"])
    assert m["n_patients"] == 126


def test_the_new_rows_hold_the_figures_the_tables_lacked(committed):
    m = read_metrics(committed, ["n_age_18", "n_age_under_18", "sessions_min_unique_serd", "sessions_max_unique_cmhc",
                                 "imr_within_observation_period", "imrs_item_profile_spearman_r"])
    assert (m["n_age_18"], m["n_age_under_18"]) == (5, 0)
    assert m["sessions_min_unique_serd"] == m["sessions_max_unique_cmhc"] == m["imr_within_observation_period"] == 1
    assert m["imrs_item_profile_spearman_r"] == pytest.approx(0.925)


def test_missing_outputs_and_cells_are_clear_errors(tmp_path, committed):
    with pytest.raises(FileNotFoundError, match="table1_long.csv does not exist: run notebook 02"):
        read_outputs(tmp_path)
    with pytest.raises(LookupError, match="0 row"):
        read_metrics(dict(committed, table1_long=committed["table1_long"].iloc[:0]), ["pct_men"])
    with pytest.raises(KeyError, match="table3_imrs_long"):
        read_metrics({}, ["imrs_user_total_mean"])


def test_the_audit_computes_no_statistic():
    import inspect

    source = inspect.getsource(reproduce)
    assert not any(word in source for word in ("scipy", "statsmodels", "pingouin", ".mean(", ".std(", "cohort."))
