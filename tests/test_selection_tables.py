"""Tables, Figure 1 and the agreement summary on slices of the shipped cohort: they follow the service
types left in the selection (no empty column, one comparison for two groups, none for one), and their
counts equal plain pandas masks."""

from __future__ import annotations

import pandas as pd
import pytest

from imr_analysis import agreement, figure1, table1, table2
from imr_analysis.cohort import load_cohort
from imr_analysis.selection import select

N = 99  # resamples: the tests look at the layout and the counts, not at the bootstrap CIs


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return load_cohort()


def _tables(sel):
    t1_tests = table1.table1_tests(sel.cohort, services=sel.services, n_resamples=N)
    t2_tests = table2.table2_tests(sel.cohort, services=sel.services, n_resamples=N)
    return (table1.format_table1(table1.table1_long(sel.cohort, services=sel.services), t1_tests), t1_tests,
            table2.format_table2(table2.table2_long(sel.cohort, services=sel.services, all_units=False), t2_tests),
            t2_tests)


def test_three_services_keep_the_papers_two_comparisons(cohort):
    t1, t1_tests, t2, _ = _tables(select(cohort))
    assert list(pd.unique(t1_tests["comparison"])) == ["all services", "CMHC vs SerD"]
    assert list(t1.columns[2:]) == ["CMHC (n=69)", "SerD (n=52)", "EDP (n=5)", "Total (n=126)", "p", "Test",
                                    "Effect (95% CI)", "p (CMHC vs SerD)", "Test (CMHC vs SerD)",
                                    "Effect (95% CI) (CMHC vs SerD)"]
    assert t2["Service type"].tolist()[-4:] == ["p (all services)", "Effect (all services)", "p (CMHC vs SerD)",
                                                "Effect (CMHC vs SerD)"]


def test_two_services_are_compared_once_and_the_headers_say_which(cohort):
    sel = select(cohort, services=["SerD", "CMHC"])
    t1, t1_tests, t2, t2_tests = _tables(sel)
    assert set(t1_tests["comparison"]) == set(t2_tests["comparison"]) == {"CMHC vs SerD"}
    assert len(t1_tests) == len(table1.TABLE1_VARIABLES) and len(t2_tests) == len(table2.TEST_VARIABLES)
    assert list(t1.columns[2:]) == ["CMHC (n=69)", "SerD (n=52)", "Total (n=121)", "p (CMHC vs SerD)",
                                    "Test (CMHC vs SerD)", "Effect (95% CI) (CMHC vs SerD)"]
    assert t2["Service type"].tolist()[-2:] == ["p (CMHC vs SerD)", "Effect (CMHC vs SerD)"]
    assert "EDP" not in set(t2["Service type"]) and not t2["Service unit"].str.startswith("EDP").any()
    # the p-values are those of the paper's CMHC vs SerD comparison on the whole cohort
    whole = table1.table1_tests(cohort, n_resamples=N).query("comparison == 'CMHC vs SerD'")
    pd.testing.assert_series_equal(t1_tests["p_value"].reset_index(drop=True), whole["p_value"].reset_index(drop=True))
    edp = select(cohort, services=["CMHC", "EDP"])
    assert table1.describe_comparisons(edp.services) == "Comparisons: 'CMHC vs EDP' compares CMHC with EDP."


def test_one_service_has_no_test_and_says_so(cohort):
    sel = select(cohort, services=["SerD"])
    t1, t1_tests, t2, t2_tests = _tables(sel)
    assert len(t1_tests) == len(t2_tests) == 0
    assert list(t1.columns) == ["Characteristic", "Level", "SerD (n=52)", "Total (n=52)"]
    assert t2["Service type"].tolist() == ["SerD"] * 5 + ["Total"]  # four units, the type, the total
    assert table1.table1_notes(t1_tests)[0] == table2.table2_notes(t2_tests)[-1] == \
        "No between-service test: the selection holds one service type."
    assert table1.describe_comparisons(sel.services) == "One service type (SerD): no between-service test."
    assert "Test" not in " ".join(table1.table1_notes(None))  # the numbers' own notes do not mention tests


def test_a_service_left_without_patients_has_no_column(cohort):
    sel = select(cohort, diagnosis_groups=["substance_use", "depressive"], services=["CMHC", "SerD", "EDP"])
    assert "EDP" not in sel.services and "EDP dropped: no patient in the selection" in sel.notes
    t1, _, t2, _ = _tables(sel)
    assert not any(c.startswith("EDP") for c in t1.columns) and "EDP" not in set(t2["Service type"])
    data = figure1.figure1_data(sel.cohort, services=sel.services)
    assert list(pd.unique(data["service_type"])) == sel.services
    summary = agreement.agreement_summary(sel.cohort, services=sel.services)
    assert {s.split(",")[0] for s in summary["section"] if s.startswith("by service")} == \
        {f"by service: {s}" for s in sel.services}


def test_counts_equal_the_mask_of_a_diagnosis_and_period_filter(cohort):
    mask = cohort["diagnosis_group"].isin(["schizophrenia_spectrum", "bipolar"]) & \
        cohort["imr_start"].between("2017-06-01", "2019-12-31")
    sel = select(cohort, diagnosis_groups=["bipolar", "schizophrenia_spectrum"], imr_start_from="2017-06-01",
                 imr_start_to="2019-12-31")
    assert len(sel.cohort) == mask.sum() > 10
    long1 = table1.table1_long(sel.cohort, services=sel.services)
    sizes = long1.query("variable == 'sex'").groupby("group")["denominator"].first()  # sex is never missing
    expected = cohort.loc[mask, "service_type"].astype(str).value_counts()
    assert sizes["Total"] == mask.sum()
    assert sizes.drop("Total").to_dict() == expected[expected > 0].to_dict()
    long2 = table2.table2_long(sel.cohort, services=sel.services, all_units=False)
    patients = long2.query("measure == 'patients'").set_index(["level", "unit"])["n"]
    assert patients[("total", "All")] == mask.sum()
    units = cohort.loc[mask, "service_unit"].astype(str).value_counts()
    assert patients.xs("unit").to_dict() == units[units > 0].astype(float).to_dict()
    table = table1.format_table1(long1)
    assert f"Total (n={mask.sum()})" in table.columns


def test_table2_keeps_every_codebook_unit_unless_asked(cohort):
    sel = select(cohort, service_units=["CMHC Ferrara", "SerD Cento"])
    every = table2.table2_long(sel.cohort, services=sel.services).query("level == 'unit'")["unit"].unique()
    some = table2.table2_long(sel.cohort, services=sel.services, all_units=False).query("level == 'unit'")["unit"]
    assert len(every) == 9 and list(some.unique()) == ["CMHC Ferrara", "SerD Cento"]
