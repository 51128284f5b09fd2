"""Known-answer tests of the value parsers used by the cleaner."""

import pandas as pd
import pytest

from imr_analysis import normalise as N


def test_both_ehr_date_formats_and_excel_serials():
    d, bad = N.parse_dates(pd.Series(["04/03/2019", "2019-03-04", "43528", "04.03.2019", ""]))
    assert d.dt.strftime("%Y-%m-%d").tolist()[:4] == ["2019-03-04"] * 4
    assert pd.isna(d.iloc[4])
    assert bad.tolist() == [False] * 5


@pytest.mark.parametrize("value", ["31/02/2019", "2019-13-01", "yesterday", "03/04/19x"])
def test_invalid_dates_are_flagged(value):
    _, bad = N.parse_dates(pd.Series([value]))
    assert bad.tolist() == [True]


def test_day_first_is_never_month_first():
    d, _ = N.parse_dates(pd.Series(["03/04/2019"]))
    assert d.iloc[0] == pd.Timestamp("2019-04-03")


@pytest.mark.parametrize("raw,expected", [
    ("F20.0", "F20.0"), ("F200", "F20.0"), ("f20.0", "F20.0"), (" F31 ", "F31"), ("F102", "F10.2"),
    ("F10.2", "F10.2"), ("F1020", "F10.20"), ("F50.0", "F50.0"),
])
def test_icd10_normalisation(raw, expected):
    codes, bad = N.normalise_icd10(pd.Series([raw]))
    assert codes.iloc[0] == expected and not bad.iloc[0]


@pytest.mark.parametrize("raw", ["20.0", "FF20", "F2", "schizophrenia", "F20.000"])
def test_malformed_icd10(raw):
    _, bad = N.normalise_icd10(pd.Series([raw]))
    assert bad.iloc[0]


@pytest.mark.parametrize("code,group", [
    ("F20.0", "schizophrenia_spectrum"), ("F22.0", "schizophrenia_spectrum"), ("F25.1", "schizophrenia_spectrum"),
    ("F29", "schizophrenia_spectrum"), ("F30.1", "bipolar"), ("F31.3", "bipolar"), ("F32.2", "depressive"),
    ("F33.1", "depressive"), ("F34.1", "depressive"), ("F10.2", "substance_use"), ("F19.2", "substance_use"),
    ("F50.0", "eating"), ("F50.2", "eating"), ("F41.1", "other"), ("F60.3", "other"), ("G40.9", "other"),
])
def test_icd10_grouping(code, group):
    assert N.diagnosis_group(pd.Series([code])).iloc[0] == group


def test_atc_classes_known_answers():
    codes, bad = N.split_atc(pd.Series([
        "N05AN01",            # lithium: mood stabiliser, not antipsychotic
        "N05AH03, N07BC02",   # olanzapine + methadone
        "n06ab06;n05ba12",    # lower case, other separator
        "N03AG01|N05CF02",    # valproate + zolpidem
        "A02BC01",            # omeprazole: not psychotropic
        "",
    ]))
    assert not any(bad.map(len))
    classes = N.atc_classes(codes)
    got = classes.astype(int).to_numpy().tolist()
    # antipsychotic, antidepressant, mood_stabilizer, anxiolytic_sedative, addiction, none
    assert got == [
        [0, 0, 1, 0, 0, 0],
        [1, 0, 0, 0, 1, 0],
        [0, 1, 0, 1, 0, 0],
        [0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 1],
    ]


def test_malformed_atc_tokens_reported():
    _, bad = N.split_atc(pd.Series(["N05AH03, olanzapina", "N0"]))
    assert bad.tolist() == [("OLANZAPINA",), ("N0",)]


def test_module_parsing_english_italian_and_spacing():
    frame, unknown = N.parse_modules(pd.Series([
        "M1. Recovery Strategies;M6. Drug and Alcohol Use",
        "  m3.   the stress-vulnerability model ; M8. Coping with Stress",
        "Strategie di recovery;Affrontare lo stress",
        "M10. Getting Your Needs Met in the Behavioral Health System, M11. Healthy Lifestyles",
        "M2. Something else;M99. Nope",
    ]))
    got = [[int(c.split("_")[1]) for c in frame.columns[frame.loc[i]]] for i in frame.index]
    assert got == [[1, 6], [3, 8], [1, 8], [10, 11], []]
    assert unknown.tolist() == [(), (), (), (), ("M2. Something else", "M99. Nope")]


def test_integers_decimal_comma_and_range():
    v, bad = N.parse_integers(pd.Series(["5", "3,0", "6", "0", "x", ""]), lo=1, hi=5)
    assert v.tolist()[:2] == [5, 3]
    assert bad.tolist() == [False, False, True, True, True, False]


def test_categories_ignore_case_accents_and_spaces():
    v, bad = N.map_categories(pd.Series(["  CONIUGATO/A ", "vedovo/a", "married"]),
                              {"Coniugato/a": "married_cohabiting", "Vedovo/a": "widowed"})
    assert v.tolist() == ["married_cohabiting", "widowed", pd.NA]
    assert bad.tolist() == [False, False, True]


def test_municipality_district():
    got = N.municipality_district(pd.Series(["Ferrara", "CODIGORO", "vigarano mainarda", "Rovigo", None]))
    assert got.tolist() == ["Centro-Nord", "Sud-Est", "Ovest", "outside", "outside"]


def test_google_forms_timestamps():
    t, bad = N.parse_timestamps(pd.Series(["15/07/2021 10:32:11", "15/07/2021 10.32.11",
                                           "2021/07/15 2:05:00 PM GMT+2", "not a time"]))
    assert t.dt.strftime("%Y-%m-%d %H:%M").tolist()[:3] == ["2021-07-15 10:32", "2021-07-15 10:32",
                                                             "2021-07-15 14:05"]
    assert bad.tolist() == [False, False, False, True]


@pytest.mark.parametrize("raw,expected", [
    ("01/01/00", "2000-01-01"),  # the first year of the 20xx range
    ("31/12/68", "2068-12-31"),  # the last year read as 20xx
    ("01/01/69", "1969-01-01"),  # the first year read as 19xx (the pivot)
    ("31/12/99", "1999-12-31"),  # the last year of the 19xx range
    ("15/03/10 00:00", "2010-03-15"),  # with a time of day, dropped
])
def test_two_digit_years_follow_the_fixed_pivot_of_the_contract(raw, expected):
    d, bad = N.parse_dates(pd.Series([raw]))
    assert d.dt.strftime("%Y-%m-%d").tolist() == [expected] and not bad.iloc[0]


def test_the_two_digit_year_pivot_is_69_and_a_20xx_year_after_today_is_in_the_future():
    pivot = N.TWO_DIGIT_YEAR_PIVOT
    assert pivot == 69  # quoted in data/raw/README.md
    below, at = N.parse_dates(pd.Series([f"01/01/{pivot - 1:02d}", f"01/01/{pivot:02d}"]))[0].dt.year.tolist()
    assert (below, at) == (2000 + pivot - 1, 1900 + pivot)
    r = N.parse_date_column(pd.Series(["31/12/23", "01/01/24", "02/01/24", "01/01/65"]), latest="2024-01-01")
    assert r.too_late.tolist() == [False, False, True, True]  # 65 is 2065, never 1965
    assert r.bad.tolist() == [False] * 4
