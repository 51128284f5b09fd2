"""Known-answer tests of imr_analysis.sources: the value parsers, the reader's line numbers, the schemas."""

import pandas as pd
import pandera.pandas as pa
import pytest

import rawfactory as rf
from imr_analysis import constants as C
from imr_analysis import identifiers as ID
from imr_analysis import sources as S
from imr_analysis.cohort import diagnosis_group, medication_classes, residence_district


def dates(values, **kw):
    return S.parse_dates(pd.Series(values, dtype="str"), **kw)


def test_both_ehr_date_formats_and_excel_serials():
    r = dates(["04/03/2019", "2019-03-04", "43528", "04.03.2019", ""])
    assert r["date"].dt.strftime("%Y-%m-%d").tolist()[:4] == ["2019-03-04"] * 4
    assert pd.isna(r["date"].iloc[4])
    assert r["bad"].tolist() == [False] * 5


@pytest.mark.parametrize("value", ["31/02/2019", "2019-13-01", "yesterday", "03/04/19x"])
def test_invalid_dates_are_flagged(value):
    assert dates([value])["bad"].tolist() == [True]


def test_day_first_is_never_month_first():
    assert dates(["03/04/2019"])["date"].iloc[0] == pd.Timestamp("2019-04-03")


@pytest.mark.parametrize("raw,expected", [
    ("F20.0", "F20.0"), ("F200", "F20.0"), ("f20.0", "F20.0"), (" F31 ", "F31"), ("F102", "F10.2"),
    ("F10.2", "F10.2"), ("F1020", "F10.20"), ("F50.0", "F50.0"),
])
def test_icd10_normalisation(raw, expected):
    r = S.normalise_icd10(pd.Series([raw], dtype="str"))
    assert r["code"].iloc[0] == expected and not r["bad"].iloc[0]


@pytest.mark.parametrize("raw", ["20.0", "FF20", "F2", "schizophrenia", "F20.000"])
def test_malformed_icd10(raw):
    assert S.normalise_icd10(pd.Series([raw], dtype="str"))["bad"].iloc[0]


@pytest.mark.parametrize("code,group", [
    ("F20.0", "schizophrenia_spectrum"), ("F22.0", "schizophrenia_spectrum"), ("F25.1", "schizophrenia_spectrum"),
    ("F29", "schizophrenia_spectrum"), ("F30.1", "bipolar"), ("F31.3", "bipolar"), ("F32.2", "depressive"),
    ("F33.1", "depressive"), ("F34.1", "depressive"), ("F10.2", "substance_use"), ("F19.2", "substance_use"),
    ("F50.0", "eating"), ("F50.2", "eating"), ("F41.1", "other"), ("F60.3", "other"), ("G40.9", "other"),
])
def test_icd10_grouping(code, group):
    assert diagnosis_group(pd.Series([code])).iloc[0] == group


def test_atc_classes_known_answers():
    atc = S.split_atc(pd.Series([
        "N05AN01",            # lithium: mood stabiliser, not antipsychotic
        "N05AH03, N07BC02",   # olanzapine + methadone
        "n06ab06;n05ba12",    # lower case, other separator
        "N03AG01|N05CF02",    # valproate + zolpidem
        "A02BC01",            # omeprazole: not psychotropic
        "",
    ], dtype="str"))
    assert (atc["malformed"] == "").all()
    got = medication_classes(atc["codes"]).astype(int).to_numpy().tolist()
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
    assert S.split_atc(pd.Series(["N05AH03, olanzapina", "N0"], dtype="str"))["malformed"].tolist() == \
        ["OLANZAPINA", "N0"]


def test_module_parsing_english_italian_and_spacing():
    frame = S.parse_modules(pd.Series([
        "M1. Recovery Strategies;M6. Drug and Alcohol Use",
        "  m3.   the stress-vulnerability model ; M8. Coping with Stress",
        "Strategie di recovery;Affrontare lo stress",
        "M10. Getting Your Needs Met in the Behavioral Health System, M11. Healthy Lifestyles",
        "M2. Something else;M99. Nope",
    ], dtype="str"))
    ticked = frame[C.MODULE_COLUMNS]
    got = [[int(c.split("_")[1]) for c in ticked.columns[ticked.loc[i]]] for i in ticked.index]
    assert got == [[1, 6], [3, 8], [1, 8], [10, 11], []]
    assert frame["unknown"].tolist() == ["", "", "", "", "M2. Something else; M99. Nope"]


def test_integers_decimal_comma_and_range():
    r = S.parse_integers(pd.Series(["5", "3,0", "6", "0", "x", ""], dtype="str"), lo=1, hi=5)
    assert r["value"].tolist()[:2] == [5, 3]
    assert r["bad"].tolist() == [False, False, True, True, True, False]


def test_categories_ignore_case_accents_and_spaces():
    r = S.map_codes(pd.Series(["  CONIUGATO/A ", "vedovo/a", "married"], dtype="str"),
                    {"Coniugato/a": "married_cohabiting", "Vedovo/a": "widowed"})
    assert r["value"].tolist()[:2] == ["married_cohabiting", "widowed"] and pd.isna(r["value"].iloc[2])
    assert r["bad"].tolist() == [False, False, True]


def test_municipality_district():
    got = residence_district(pd.Series(["Ferrara", "CODIGORO", "vigarano mainarda", "Rovigo", ""]))
    assert got.tolist() == ["Centro-Nord", "Sud-Est", "Ovest", "outside", "outside"]


def test_google_forms_timestamps():
    r = S.parse_timestamps(pd.Series(["15/07/2021 10:32:11", "15/07/2021 10.32.11", "2021/07/15 2:05:00 PM GMT+2",
                                      "not a time"], dtype="str"))
    assert r["timestamp"].dt.strftime("%Y-%m-%d %H:%M").tolist()[:3] == ["2021-07-15 10:32", "2021-07-15 10:32",
                                                                         "2021-07-15 14:05"]
    assert r["bad"].tolist() == [False, False, False, True]


def test_impossible_timestamps_are_not_understood():
    odd = ["31/02/2021 10:00:00", "1/2/2021 10:00:00", "29/02/2020 23:59:59", "29/02/2021 23:59:59",
           "01/01/2021 24:00:00", "01/01/2021 23:60:00", "01/01/2021 23:59:60", "", "15/07/2021 10.32.11",
           "2021/07/15 10:32:11 AM GMT+2", "2021-07-15T10:32:11", "00/01/2021 10:00:00", "01/00/2021 10:00:00"]
    r = S.parse_timestamps(pd.Series(odd, dtype="str"))
    assert r["bad"].sum() == 6  # 31/02, 29/02/2021, 24:00:00, 23:60:00, 00/01, 01/00
    assert r["timestamp"].iloc[6] == pd.Timestamp("2021-01-02 00:00:00")  # second 60, as pandas reads it


@pytest.mark.parametrize("raw,expected", [
    ("01/01/00", "2000-01-01"),  # the first year of the 20xx range
    ("31/12/68", "2068-12-31"),  # the last year read as 20xx
    ("01/01/69", "1969-01-01"),  # the first year read as 19xx (the pivot)
    ("31/12/99", "1999-12-31"),  # the last year of the 19xx range
    ("15/03/10 00:00", "2010-03-15"),  # with a time of day, dropped
])
def test_two_digit_years_follow_the_fixed_pivot_of_the_contract(raw, expected):
    r = dates([raw])
    assert r["date"].dt.strftime("%Y-%m-%d").tolist() == [expected] and not r["bad"].iloc[0]


def test_the_two_digit_year_pivot_is_69_and_a_20xx_year_after_today_is_in_the_future():
    pivot = S.TWO_DIGIT_YEAR_PIVOT
    assert pivot == 69  # quoted in data/raw/README.md
    below, at = dates([f"01/01/{pivot - 1:02d}", f"01/01/{pivot:02d}"])["date"].dt.year.tolist()
    assert (below, at) == (2000 + pivot - 1, 1900 + pivot)
    r = dates(["31/12/23", "01/01/24", "02/01/24", "01/01/65"], latest="2024-01-01")
    assert r["too_late"].tolist() == [False, False, True, True]  # 65 is 2065, never 1965
    assert r["bad"].tolist() == [False] * 4


def test_parsers_run_once_per_category_and_spread_to_the_rows():
    column = pd.Series(["15/03/2010", "x", "15/03/2010", "2010-03-15"], dtype="category")
    r = S.on_categories(column, S.parse_dates)
    assert r["date"].isna().tolist() == [False, True, False, False] and r["date"].nunique() == 1
    assert r["bad"].tolist() == [False, True, False, False]
    assert S.on_categories(column, lambda s: s.str.upper()).dtype == "category"


# The reader: each record on the line a text editor shows --------------------------------
def test_records_keep_their_lines_across_blank_rows_quoted_line_breaks_and_carriage_returns(tmp_path):
    header = rf.efeso_header() + ["NOTE"]
    rows = [rf.efeso_row(code=f"EF{i}") + [""] for i in range(1, 6)]
    rows[1][-1] = "two\nlines"  # a quoted field spanning lines 4-5
    text = rf.to_csv(header, rows, ";")
    lines = text.split("\n")
    lines.insert(5, ";;;;")  # no content: skipped
    lines.insert(7, "")  # a blank line
    text = "\n".join(lines)
    path = rf.write_texts(tmp_path, {"EFESO": text.replace("\nEF5;", "\rEF5;")}) / C.RAW_FILES["EFESO"]  # a lone CR
    log = S.ProblemLog()
    t = S.read_raw(path, "EFESO", log)
    assert t.data["patient_code"].tolist() == ["EF1", "EF2", "EF3", "EF4", "EF5"]
    assert t.data["_line"].tolist() == [3, 4, 7, 9, 10]
    assert t.extra["NOTE"].tolist()[1] == "two\nlines"
    assert [str(w) for w in log.warnings][-1] == ("efeso_extract.csv, line 6: 2 row(s) without any content skipped "
                                                  "(line(s) 6, 8)")


def test_quoted_fields_and_excel_wrappers_are_read_as_written(tmp_path):
    efeso = [rf.efeso_row(code="EF90001", municipality='Porto "Garibaldi", FE'),
             rf.efeso_row(code='="EF00007"', education='="08"')]
    t = S.read_raw(rf.write_exports(tmp_path, efeso=efeso) / C.RAW_FILES["EFESO"], "EFESO")
    assert t.data["municipality"].tolist() == ['Porto "Garibaldi", FE', "Ferrara"]
    assert t.data["patient_code"].tolist() == ["EF90001", "EF00007"] and t.data["education_years"].tolist()[1] == "08"
    assert isinstance(t.data["sex"].dtype, pd.CategoricalDtype)


def test_extra_empty_fields_on_some_rows_are_ignored(tmp_path):
    text = rf.to_csv(rf.efeso_header(), [rf.efeso_row(), rf.efeso_row(code="EF2")], ";")
    folder = rf.write_texts(tmp_path, {"EFESO": text.rstrip("\n") + ";;\n"})  # on the last row
    t = S.read_raw(folder / C.RAW_FILES["EFESO"], "EFESO")
    assert t.data["patient_code"].tolist() == ["EF00001", "EF2"] and t.data["_line"].tolist() == [3, 4]
    assert t.data["employment_status"].tolist() == ["Disoccupato/a"] * 2


# Schemas ------------------------------------------------------------------------------------
def test_code_check_reports_white_space():
    form = pd.DataFrame({"_line": [2, 3], "patient_code": pd.array(["EF1", "EF 2"], dtype="string")})
    problems = S.validate(S.form_schema(), form, "form.csv", {"patient_code": "Patient code"})
    mine = [p for p in problems if p.column == "Patient code"]
    assert [(p.line, p.value, p.message) for p in mine] == [(3, "EF 2", "value does not have the expected format")]


def test_validation_leaves_the_frame_as_it_was():
    df = pd.DataFrame({"_line": [3, 4], "n": pd.array([2, 0], dtype="Int64")})
    before = df.copy()
    problems = S.validate(pa.DataFrameSchema({"n": pa.Column("Int64", pa.Check.ge(1))}), df, "form.csv")
    assert [p.line for p in problems] == [4]
    pd.testing.assert_frame_equal(df, before)
    text = pd.DataFrame({"_line": [3, 4], "n": ["2", "0"]})
    problems = S.validate(pa.DataFrameSchema({"n": pa.Column("Int64", pa.Check.ge(1), coerce=True)}), text, "form.csv")
    assert [p.line for p in problems] == [4]
    assert text["n"].tolist() == ["2", "0"] and text["n"].dtype != "Int64"


def test_guard_finds_nothing_in_code_shaped_values_but_still_finds_identifiers():
    codes = [f"EF{i:08d}" for i in range(5000)]
    assert ID.find_identifier_columns(pd.DataFrame({"COD": pd.Series(codes, dtype="str")}), "x.csv") == []
    stamps = ["15/07/2021 10:32:11", "03/06/2017 03:33:33", "00/00/3939 39:39:39"]
    # no check finds anything in code-shaped values and timestamps
    full = ID.find_identifier_columns(pd.DataFrame({"NOTE": pd.Series(codes[:50] + stamps, dtype="str")}), "x.csv")
    assert full == []
    with_phone = pd.Series(codes + ["tel 333 1234567"], dtype="str")
    found = ID.find_identifier_columns(pd.DataFrame({"NOTE": with_phone}), "x.csv")
    assert [(f.kind, f.row) for f in found] == [("phone", 5001)]
    with_cf = pd.Series(codes + ["RSSMRA80A01H501U"], dtype="str")
    found = ID.find_identifier_columns(pd.DataFrame({"NOTE": with_cf}), "x.csv")
    assert [(f.kind, f.row) for f in found] == [("fiscal_code", 5001)]
