"""Slices of the cohort (imr_analysis.selection): counts on the shipped cohort against plain pandas
masks, the service types kept and dropped, and every error naming the parameter, the value and the choices."""

from __future__ import annotations

import datetime
import doctest

import pandas as pd
import pytest

from imr_analysis import constants as C
from imr_analysis import selection
from imr_analysis.cohort import load_cohort
from imr_analysis.selection import EmptySelectionError, select


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return load_cohort()


def test_choices_are_the_values_present_in_canonical_order(cohort):
    got = selection.choices(cohort)
    assert got["services"] == ["CMHC", "SerD", "EDP"]
    assert got["service_units"] == list(C.SERVICE_UNITS)  # all ten units delivered IMR
    assert got["diagnosis_groups"] == ["schizophrenia_spectrum", "bipolar", "depressive", "substance_use", "eating"]
    assert got["sex"] == ["M", "F"] and got["imr_formats"] == ["group", "individual"]
    assert got["imr_start"] == (f"{cohort['imr_start'].min():%Y-%m-%d}", f"{cohort['imr_start'].max():%Y-%m-%d}")
    assert set(got) == {*selection.FILTERS, "imr_start"}
    assert all(set(values) <= set(selection.LABELS[name]) for name, values in got.items() if name in selection.LABELS)


def test_no_filter_keeps_everyone(cohort):
    sel = select(cohort)
    assert len(sel.cohort) == len(cohort) == 126
    assert sel.services == ["CMHC", "SerD", "EDP"] and sel.notes == [] and sel.filters == {}
    assert sel.describe() == "all patients"
    assert len(select(cohort, services=[], sex=None, imr_start_from="  ").cohort) == 126  # empty = no filter


def test_a_filter_naming_every_value_is_no_filter(cohort):
    sel = select(cohort, services=["CMHC", "SerD", "EDP"], sex=["M", "F"])
    assert len(sel.cohort) == 126 and sel.filters == {} and sel.describe() == "all patients"
    assert sel.caption("Table 1. Characteristics") == "Table 1. Characteristics"
    sel = select(cohort, services=["SerD", "CMHC"], imr_formats=["group", "individual"])
    assert sel.filters == {"services": ["CMHC", "SerD"]} and sel.services == ["CMHC", "SerD"]
    assert sel.caption("Table 1") == "Table 1 (selection: service type CMHC or SerD)"


@pytest.mark.parametrize("name, column, values", [
    ("services", "service_type", ["SerD"]),
    ("services", "service_type", ["EDP", "CMHC"]),
    ("service_units", "service_unit", ["CMHC Ferrara", "SerD Cento"]),
    ("diagnosis_groups", "diagnosis_group", ["depressive", "bipolar"]),
    ("sex", "sex", ["F"]),
    ("imr_formats", "imr_format", ["individual"]),
])
def test_each_list_filter_counts_as_a_pandas_mask(cohort, name, column, values):
    mask = cohort[column].astype(str).isin(values)
    sel = select(cohort, **{name: values})
    assert len(sel.cohort) == mask.sum() > 0
    assert sel.cohort["patient_id"].tolist() == cohort.loc[mask, "patient_id"].tolist()
    assert sel.services == [s for s in C.SERVICE_TYPES if s in set(cohort.loc[mask, "service_type"])]
    for col in C.COHORT_CATEGORICAL_COLUMNS:  # unused categories removed
        assert list(sel.cohort[col].cat.categories) == sorted(sel.cohort[col].dropna().unique()), col


def test_known_counts_of_the_shipped_cohort(cohort):
    assert len(select(cohort, sex="F").cohort) == 49
    assert len(select(cohort, imr_formats=["group"]).cohort) == 104
    assert len(select(cohort, service_units=["CMHC Ferrara", "SerD Ferrara", "EDP Ferrara"]).cohort) == 24 + 22 + 5
    assert len(select(cohort, diagnosis_groups=["substance_use"], services=["SerD", "CMHC"]).cohort) == \
        ((cohort["diagnosis_group"] == "substance_use") & cohort["service_type"].isin(["SerD", "CMHC"])).sum()


def test_the_period_includes_both_ends(cohort):
    start = cohort["imr_start"]
    first, last = start.min(), start.max()
    assert len(select(cohort, imr_start_from=f"{first:%Y-%m-%d}", imr_start_to=f"{last:%Y-%m-%d}").cohort) == 126
    one = start.sort_values().iloc[40]
    day = f"{one:%Y-%m-%d}"
    assert len(select(cohort, imr_start_from=day, imr_start_to=day).cohort) == (start == one).sum() >= 1
    assert len(select(cohort, imr_start_from="2018-01-01").cohort) == (start >= "2018-01-01").sum()
    assert len(select(cohort, imr_start_to=datetime.date(2018, 12, 31)).cohort) == (start <= "2018-12-31").sum()


def test_filters_combine_with_and(cohort):
    mask = (cohort["diagnosis_group"].isin(["depressive", "eating"]) & (cohort["imr_start"] >= "2018-01-01")
            & (cohort["imr_start"] <= "2019-12-31") & cohort["sex"].eq("F"))
    sel = select(cohort, diagnosis_groups=["eating", "depressive"], imr_start_from="2018-01-01",
                 imr_start_to="2019-12-31", sex=["F"])
    assert sel.cohort["patient_id"].tolist() == cohort.loc[mask, "patient_id"].tolist()
    assert sel.filters == {"diagnosis_groups": ["depressive", "eating"], "sex": ["F"],
                           "imr_start_from": "2018-01-01", "imr_start_to": "2019-12-31"}
    assert sel.describe() == ("diagnosis group depressive or eating; sex F; IMR start from 2018-01-01 to "
                              "2019-12-31")


def test_a_service_without_patients_is_dropped_with_a_note(cohort):
    sel = select(cohort, services=["CMHC", "SerD", "EDP"], diagnosis_groups=["substance_use"])
    present = [s for s in C.SERVICE_TYPES if s in set(cohort.loc[cohort["diagnosis_group"].eq("substance_use"),
                                                                 "service_type"])]
    assert sel.services == present and "EDP" not in present
    assert "EDP dropped: no patient in the selection" in sel.notes
    sel = select(cohort, service_units=["EDP Ferrara", "CMHC Cento"], sex="M")
    assert sel.notes == [f"{s} dropped: no patient in the selection" for s in ["SerD", "EDP"]
                         if s not in sel.services] + \
        (["service unit EDP Ferrara: no patient in the selection"] if "EDP" not in sel.services else [])


@pytest.mark.parametrize("kwargs, message", [
    (dict(services=["CMHC", "Hospital"]), "services: unknown value(s) ['Hospital']; choose from ['CMHC', 'SerD', 'EDP']"),
    (dict(service_units="CMHC Bologna"), "service_units: unknown value(s) ['CMHC Bologna']; choose from ['CMHC Cento'"),
    (dict(diagnosis_groups=["F20"]), "diagnosis_groups: unknown value(s) ['F20']; choose from ['schizophrenia_spectrum'"),
    (dict(sex=["X"]), "sex: unknown value(s) ['X']; choose from ['M', 'F']"),
    (dict(imr_formats=["Group"]), "imr_formats: unknown value(s) ['Group']; choose from ['group', 'individual']"),
    (dict(imr_start_from="01/02/2018"), "imr_start_from: '01/02/2018' is not a date; expected yyyy-mm-dd"),
    (dict(imr_start_to="2018-02-30"), "imr_start_to: '2018-02-30' is not a date; expected yyyy-mm-dd"),
    (dict(imr_start_to=2018), "imr_start_to: 2018 is not a date; expected yyyy-mm-dd"),
    (dict(imr_start_from="2019-01-01", imr_start_to="2018-12-31"),
     "imr_start_from 2019-01-01 is after imr_start_to 2018-12-31"),
])
def test_bad_filters_name_the_parameter_the_value_and_the_choices(cohort, kwargs, message):
    with pytest.raises(ValueError) as err:
        select(cohort, **kwargs)
    assert str(err.value).startswith(message) and not isinstance(err.value, EmptySelectionError)


def test_an_empty_selection_says_what_was_selected(cohort):
    with pytest.raises(EmptySelectionError, match=r"^no patient in the selection \(service type EDP; sex M; "
                                                  r"IMR start to 2017-05-01\): widen a filter$"):
        select(cohort, services=["EDP"], sex=["M"], imr_start_to="2017-05-01")
    assert issubclass(EmptySelectionError, ValueError)
    with pytest.raises(EmptySelectionError):
        select(cohort, service_units=["EDP Ferrara"], services=["CMHC"])


def test_load_cohort_filters_services_through_select(cohort):
    assert load_cohort(services=["SerD", "EDP"]).equals(select(cohort, services=["SerD", "EDP"]).cohort)
    with pytest.raises(ValueError, match=r"services: unknown value\(s\) \['serd'\]"):
        load_cohort(services=["serd"])


def test_docstring_examples():
    result = doctest.testmod(selection)
    assert result.attempted > 0 and result.failed == 0
