"""A battery of messy and bad raw exports, each with its exact outcome.

Three kinds of case, one parametrised test each:

- *tolerated*: what real exports legitimately look like (Italian Excel, cp1252, BOM,
  other date formats, letter case, Italian wording ...). The cohort is built and the
  normalised value is checked.
- *fatal*: what cannot be fixed. ``RawDataError`` is raised and its problems name the
  file, the line (as a text editor numbers it: line 1 is the marker, line 2 the header)
  and the column, with the rule's message.
- *excluded*: valid records outside the study. They are in the cohort flow with their
  reason, and the flow balances.

The rules are those of the table in ``data/raw/README.md``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import rawfactory as rf
from imr_analysis import constants as C
from imr_analysis.cohort import (REASON_FORM_EXCLUDED, REASON_INCLUDED, REASON_NO_EHR, REASON_NO_FORM,
                                 REASON_OUTSIDE_PERIOD, REASON_REPEAT, STUDY_END, STUDY_START, clean_raw)
from imr_analysis.sources import (HEADER_ALIASES, IMRS_GRID_WORDS, RawDataError, canonical_field, detect_data_mode,
                                  ehr_schema, form_schema, read_raw, validate)

TODAY = "2024-01-01"  # fixed reference date for "in the future"
EF, SD, FORM = "efeso_extract.csv", "sister_extract.csv", "imr_summary_form.csv"
CONTRACT = Path(__file__).resolve().parents[1] / "data" / "raw" / "README.md"
OUTSIDE = f"{REASON_OUTSIDE_PERIOD} ({STUDY_START} to {STUDY_END})"


def sd_form(**kw):
    """The default SerD form row (patient SD00001)."""
    kw.setdefault("code", "SD00001")
    kw.setdefault("unit", "SerD Cento")
    kw.setdefault("modules", "M6. Drug and Alcohol Use")
    kw.setdefault("timestamp", "06/12/2019 10:00:00")
    return rf.form_row(**kw)


def clean(folder):
    return clean_raw(folder, today=TODAY)


def texts(**kw):
    """The default exports as text, with keyword overrides of rawfactory.write_exports' rows."""
    efeso = kw.get("efeso", [rf.efeso_row()])
    sister = kw.get("sister", [rf.sister_row()])
    form = kw.get("form", [rf.form_row(), sd_form()])
    return {
        "EFESO": rf.to_csv(kw.get("efeso_header", rf.efeso_header()), efeso, ";"),
        "Sister": rf.to_csv(kw.get("sister_header", rf.sister_header()), sister, ","),
        "form": rf.to_csv(kw.get("form_header", rf.form_header()), form, ","),
    }


def renamed(header, old, new):
    return [new if h == old else h for h in header]


# ======================================================================================
# Tolerated: the cohort is built and the value is normalised
# ======================================================================================
def _w(**kw):
    return lambda folder: rf.write_exports(folder, **kw)


def _t(transform, **kw):
    """Write the default texts after applying ``transform`` to {source: text}."""
    def write(folder):
        t = texts(**kw)
        return rf.write_texts(folder, transform(t))
    return write


def _latin1(folder):
    t = texts(efeso_header=rf.efeso_header() + ["NOTE"], efeso=[rf.efeso_row() + ["\u00bf"]])
    rf.write_texts(folder, {k: v for k, v in t.items() if k != "EFESO"})
    # byte 0x81 is undefined in cp1252: the reader falls back to latin-1
    (folder / EF).write_bytes(t["EFESO"].replace("\u00bf", "x\x81").encode("latin-1"))
    return folder


def _utf16_tab(folder):
    efeso = rf.to_csv(rf.efeso_header(), [rf.efeso_row()], "\t")
    t = texts()
    rf.write_texts(folder, {"Sister": t["Sister"], "form": t["form"]})
    (folder / EF).write_bytes(efeso.encode("utf-16"))  # Excel "Unicode text": UTF-16 with BOM, tabs
    return folder


ITALIAN_FORM_HEADER = (["Informazioni cronologiche", "Codice paziente", "Servizio", "Data inizio IMR", "Data fine IMR",
                        "Formato IMR", "Versione del manuale", "Numero di sessioni", "Moduli somministrati"]
                       + [f"Utente IMRS [{k}. voce {k}]" for k in C.IMRS_ITEMS]
                       + [f"Operatore IMRS [{k}. voce {k}]" for k in C.IMRS_ITEMS])

TOLERATED = [
    # (id, writer, patient, cohort column, expected normalised value)
    ("italian-excel-semicolon-decimal-comma",
     _w(form=[rf.form_row(sessions="20,0", user=["4,0"] * 15), sd_form()], form_delimiter=";",
        sister_delimiter=";"), "EF00001", "n_sessions", 20),
    ("decimal-comma-imrs-total", _w(form=[rf.form_row(user=["4,0"] * 15), sd_form()], form_delimiter=";"),
     "EF00001", "imrs_user_total", 60.0),
    ("cp1252-accented-italian-module", _w(form=[rf.form_row(modules="Il modello stress-vulnerabilità"), sd_form()],
                                          encoding="cp1252"), "EF00001", "module_03", True),
    ("latin1-undefined-cp1252-byte", _latin1, "EF00001", "diagnosis_icd10", "F20.0"),
    ("utf8-bom", _w(bom=True), "EF00001", "birth_year", 1980),
    ("utf16-tab-delimited", _utf16_tab, "EF00001", "sex", "M"),
    ("windows-line-ends", _w(line_ending="\r\n"), "SD00001", "first_treatment_date", pd.Timestamp("2015-06-01")),
    ("sister-dates-dd-mm-yyyy", _w(sister=[rf.sister_row(first_access="01/06/2015")]),
     "SD00001", "first_treatment_date", pd.Timestamp("2015-06-01")),
    ("efeso-dates-iso", _w(efeso=[rf.efeso_row(first_access="2010-03-15")]),
     "EF00001", "first_treatment_date", pd.Timestamp("2010-03-15")),
    ("excel-serial-date", _w(form=[rf.form_row(start="43525"), sd_form()]), "EF00001", "imr_start",
     pd.Timestamp("2019-03-01")),
    ("excel-serial-date-decimal-comma", _w(form=[rf.form_row(stop="43800,0"), sd_form()]), "EF00001", "imr_end",
     pd.Timestamp("2019-12-01")),
    ("date-with-midnight-time", _w(efeso=[rf.efeso_row(first_access="15/03/2010 00:00:00")]),
     "EF00001", "first_treatment_date", pd.Timestamp("2010-03-15")),
    ("two-digit-year-00-is-2000", _w(efeso=[rf.efeso_row(first_access="01/01/00")]),
     "EF00001", "first_treatment_date", pd.Timestamp("2000-01-01")),
    ("two-digit-year-69-is-1969", _w(efeso=[rf.efeso_row(birth_year="1950", first_access="01/01/69")]),
     "EF00001", "first_treatment_date", pd.Timestamp("1969-01-01")),
    ("two-digit-year-99-is-1999", _w(sister=[rf.sister_row(birth_year="1975", first_access="31/12/99")]),
     "SD00001", "first_treatment_date", pd.Timestamp("1999-12-31")),
    ("dotted-and-slashed-iso-dates", _w(form=[rf.form_row(start="01.03.2019", stop="2019/12/01"), sd_form()]),
     "EF00001", "imr_duration_months", 275 / (365.25 / 12)),
    ("dashed-dates", _w(form=[rf.form_row(start="01-03-2019", stop="01-12-2019"), sd_form(start="01-03-2019")]),
     "EF00001", "imr_duration_months", 275 / (365.25 / 12)),
    ("code-lower-case-and-spaces", _w(form=[rf.form_row(code="  ef00001 "), sd_form()]),
     "EF00001", "source_ehr", "EFESO"),
    ("excel-leading-zero-wrapper", _w(efeso=[rf.efeso_row(code='="EF00001"')]), "EF00001", "birth_year", 1980),
    ("sex-lower-case", _w(efeso=[rf.efeso_row(sex=" f ")]), "EF00001", "sex", "F"),
    ("sister-sex-with-spaces", _w(sister=[rf.sister_row(sex=" 2 ")]), "SD00001", "sex", "F"),
    ("category-case-and-spaces", _w(efeso=[rf.efeso_row(marital="  CONIUGATO/A ")]),
     "EF00001", "marital_status", "married_cohabiting"),
    ("sister-numeric-code-from-spreadsheet", _w(sister=[rf.sister_row(marital="5,0")]),
     "SD00001", "marital_status", "widowed"),
    ("icd10-without-dot", _w(efeso=[rf.efeso_row(diagnosis="F200")]), "EF00001", "diagnosis_icd10", "F20.0"),
    ("icd10-with-dot-in-sister", _w(sister=[rf.sister_row(diagnosis="f11.2")]), "SD00001", "diagnosis_icd10",
     "F11.2"),
    ("atc-lower-case", _w(efeso=[rf.efeso_row(meds="n05ah03; n06ab06")]), "EF00001", "atc_codes",
     "N05AH03;N06AB06"),
    ("no-medication-is-none", _w(efeso=[rf.efeso_row(meds="")]), "EF00001", "med_none", True),
    ("module-extra-spaces-and-case", _w(form=[rf.form_row(modules="  M1.   Recovery   Strategies ; m8.coping WITH"
                                                                  " stress "), sd_form()]),
     "EF00001", "n_modules", 2),
    ("module-italian-wording", _w(form=[rf.form_row(modules="Strategie di recovery;Modulo 8 - Affrontare lo stress"),
                                        sd_form()]), "EF00001", "module_08", True),
    ("modules-joined-by-comma", _w(form=[rf.form_row(modules="M1. Recovery Strategies, M11. Healthy Lifestyles"),
                                         sd_form()]), "EF00001", "module_11", True),
    ("header-case-accents-spaces",
     _w(efeso_header_=renamed(renamed(rf.efeso_header(), "COD_PAZIENTE", " cod paziente "), "ANNI_SCOLARITA",
                              "Anni di scolarità")), "EF00001", "education_years", 13),
    ("italian-google-forms-headers", _w(form_header_=ITALIAN_FORM_HEADER), "SD00001", "imrs_provider_total", 45.0),
    ("service-unit-italian-name", _w(form=[rf.form_row(unit="csm  ferrara"), sd_form(unit="Ser.D. Cento")]),
     "SD00001", "service_unit", "SerD Cento"),
    ("imr-format-italian", _w(form=[rf.form_row(fmt="individuale"), sd_form(fmt="Gruppo")]),
     "EF00001", "imr_format", "individual"),
    ("manual-version-case-spacing", _w(form=[rf.form_row(manual="  original  toolkit (samhsa 2009)"), sd_form()]),
     "EF00001", "manual_version", "Original toolkit (SAMHSA 2009)"),
    ("excel-sep-line", _t(lambda t: {**t, "EFESO": t["EFESO"].replace(rf.MARKER + "\n", rf.MARKER + "\nsep=;\n")}),
     "EF00001", "first_treatment_date", pd.Timestamp("2010-03-15")),
    ("trailing-delimiters", _t(lambda t: {**t, "EFESO": t["EFESO"].replace("\n", ";\n")}),
     "EF00001", "employment_status", "unemployed"),
    ("missing-social-variables-kept", _w(efeso=[rf.efeso_row(education="", living="", employment="")]),
     "EF00001", "living_condition", pd.NA),
]


@pytest.mark.parametrize("writer,patient,column,expected", [c[1:] for c in TOLERATED],
                         ids=[c[0] for c in TOLERATED])
def test_tolerated_input_gives_the_normalised_value(tmp_path, writer, patient, column, expected):
    result = clean(writer(tmp_path))
    assert sorted(result.cohort["patient_id"]) == ["EF00001", "SD00001"]  # nobody lost
    got = result.cohort.set_index("patient_id").at[patient, column]
    if expected is pd.NA:
        assert pd.isna(got)
    elif isinstance(expected, float):
        assert got == pytest.approx(expected)
    else:
        assert got == expected
    assert (result.flow["status"] == "included").all() and len(result.flow) == 4


def test_dashed_dates_are_not_taken_for_phone_numbers(tmp_path):
    """dd-mm-yyyy dates look like Italian landline numbers (0xx-xxxx); the identifier guard must not refuse them."""
    result = clean(rf.write_exports(tmp_path, form=[rf.form_row(stop="01-12-2019"), sd_form()]))
    assert result.cohort.set_index("patient_id").at["EF00001", "imr_end"] == pd.Timestamp("2019-12-01")


def test_data_mode_is_read_through_any_encoding(tmp_path):
    assert detect_data_mode(rf.write_exports(tmp_path / "a", bom=True)) == "synthetic"
    assert detect_data_mode(rf.write_exports(tmp_path / "b", encoding="utf-16")) == "synthetic"
    assert detect_data_mode(rf.write_exports(tmp_path / "c", encoding="utf-16", marker=None)) == "private"


def test_schema_safety_net_names_file_line_and_header():
    """The pandera schemas behind the explicit checks report one problem per failing record
    (the harmonised text columns are categorical, as harmonise_ehr makes them)."""
    df = pd.DataFrame({
        "_line": [3, 4], "patient_code": pd.array(["A", "B"], dtype="string"),
        "birth_year": pd.array([1980, 1990], dtype="Int64"), "sex": pd.Categorical(["M", "F"]),
        "municipality": pd.Categorical(["Ferrara", "Cento"]),
        "first_access_date": pd.to_datetime(["2000-01-01", "1970-01-01"]).astype("datetime64[ns]"),
        "diagnosis_icd10": pd.Categorical(["F20.0", "F2O.0"]),
        "programme_start_date": pd.to_datetime(["2000-01-01", None]).astype("datetime64[ns]"),
        "education_years": pd.array([1, 40], dtype="Int64"),
        "marital_status": pd.Categorical(["married_cohabiting", "engaged"]),
        **{c: pd.Categorical([None, None]) for c in ("living_condition", "employment_status")},
    })
    problems = sorted(str(p) for p in validate(ehr_schema(2024), df, EF, {"first_access_date": "DATA_PRIMO_ACCESSO",
                                                                           "education_years": "ANNI_SCOLARITA",
                                                                           "marital_status": "STATO_CIVILE"}))
    assert problems == [
        f"{EF}, line 4, column 'ANNI_SCOLARITA': value out of the allowed range (0, 30) (value: '40')",
        f"{EF}, line 4, column 'DATA_PRIMO_ACCESSO': first access is before the year of birth "
        "(value: '1970-01-01 00:00:00')",
        f"{EF}, line 4, column 'STATO_CIVILE': value is not one of the allowed categories (value: 'engaged')",
        f"{EF}, line 4, column 'diagnosis_icd10': value does not have the expected format (value: 'F2O.0')",
    ]


def test_harmonised_text_must_be_categorical():
    """A harmonised frame whose text is not categorical is a bug in the cleaner, reported as such."""
    df = pd.DataFrame({"_line": [3], "patient_code": pd.array(["A"], dtype="string"),
                       "service_unit": pd.array(["CMHC Ferrara"], dtype="string")})
    problems = [str(p) for p in validate(form_schema(), df, "form.csv") if "service_unit" in str(p)]
    assert problems and all("dtype('category')" in p for p in problems)


def test_encodings_are_reported(tmp_path):
    assert read_raw(_latin1(tmp_path / "a") / EF, "EFESO").encoding == "latin-1"
    assert read_raw(rf.write_exports(tmp_path / "b", bom=True) / EF, "EFESO").encoding == "utf-8-sig"
    assert read_raw(rf.write_exports(tmp_path / "c", encoding="cp1252",
                                     efeso=[rf.efeso_row(municipality="Jolanda di Savoia è")]) / EF,
                    "EFESO").encoding == "cp1252"
    t = read_raw(_utf16_tab(tmp_path / "d") / EF, "EFESO")
    assert (t.encoding, t.delimiter) == ("utf-16", "\t")


def test_unknown_columns_are_kept_aside_with_a_warning(tmp_path):
    header = rf.efeso_header() + ["MEDICO_CURANTE_ID"]
    result = clean(rf.write_exports(tmp_path, efeso_header_=header, efeso=[rf.efeso_row() + ["D17"]]))
    assert len(result.cohort) == 2
    assert result.extra_columns == {EF: ["MEDICO_CURANTE_ID"]}
    assert (f"{EF}, line 2, column 'MEDICO_CURANTE_ID': column not part of the raw-data contract; kept aside, "
            "not used") in result.warnings


def test_empty_rows_are_skipped_with_a_warning(tmp_path):
    folder = _t(lambda t: {**t, "form": t["form"] + ",,,\n\n"})(tmp_path)
    result = clean(folder)
    assert len(result.cohort) == 2
    assert any(w.startswith(f"{FORM}, line 5: 2 row(s) without any content skipped (line(s) 5, 6)")
               for w in result.warnings)


@pytest.mark.parametrize("stamp", ["05/12/2019 10.00.00", "2019/12/05 10:00:00 AM GMT+1", "05/12/2019 10:00",
                                   "2019-12-05T10:00:00"])
def test_google_forms_timestamps_in_any_locale_give_no_warning(tmp_path, stamp):
    result = clean(rf.write_exports(tmp_path, form=[rf.form_row(timestamp=stamp), sd_form()]))
    assert not [w for w in result.warnings if "timestamp" in w]


def test_unreadable_timestamp_is_a_warning(tmp_path):
    result = clean(rf.write_exports(tmp_path, form=[rf.form_row(timestamp="ieri sera"), sd_form()]))
    assert len(result.cohort) == 2
    assert (f"{FORM}, line 3, column 'Timestamp': timestamp not understood; kept as missing (it is not used in the "
            "analysis) (1 row(s): line(s) 3)") in result.warnings


# ======================================================================================
# Fatal: RawDataError naming file, line and column
# ======================================================================================
def _efeso_file(content: bytes):
    def write(folder):
        rf.write_exports(folder)
        (folder / EF).write_bytes(content)
        return folder
    return write


DUP_SAME = _w(efeso=[rf.efeso_row(), rf.efeso_row(code="ef00001 ")])
DUP_ACROSS = _w(sister=[rf.sister_row(code="EF00001", sex="2", birth_year="1990")], form=[rf.form_row()])
DUP_ACROSS_AGREE = _w(sister=[rf.sister_row(code="EF00001", sex="1", birth_year="1980")], form=[rf.form_row()])

FATAL = [
    # (id, writer, expected problem texts (each must appear), number of problems)
    ("empty-file", _efeso_file(b""), [f"{EF}: the file is empty (no header line)"], 1),
    ("marker-only", _efeso_file((rf.MARKER + "\n\n").encode()), [f"{EF}: the file is empty (no header line)"], 1),
    ("form-header-only", _w(form=[]), [f"{FORM}: the file has a header but no records"], 1),
    ("excel-workbook-named-csv", _efeso_file(b"PK\x03\x04\x14\x00\x06\x00"),
     [f"{EF}: this is an Excel workbook (.xlsx) or another zip archive, not a CSV text file"], 1),
    ("missing-required-column", _w(efeso_header_=renamed(rf.efeso_header(), "SESSO", "GENDER_X")),
     [f"{EF}, line 2, column 'SESSO': required column is missing from the header; columns not recognised: "
      "'GENDER_X'"], 1),
    ("two-columns-same-field", _w(form_header_=renamed(rf.form_header(), "Manual version", "IMR START DATE")),
     [f"{FORM}, line 2, column 'IMR START DATE': two columns, 'IMR start date' and 'IMR START DATE', both hold "
      "'IMR start date'", f"{FORM}, line 2, column 'Manual version': required column is missing"], 2),
    ("row-with-extra-field", _w(efeso=[rf.efeso_row() + ["x"]]),
     [f"{EF}, line 3: the row has 13 fields but the header has 12; check the delimiter (semicolon detected)"], 1),
    ("row-with-missing-field", _w(efeso=[rf.efeso_row()[:-1]]),
     [f"{EF}, line 3: the row has 11 fields but the header has 12"], 1),
    ("unclosed-quote", _t(lambda t: {**t, "EFESO": t["EFESO"].replace(";Ferrara;", ';"Ferrara;') + "\n".join(
        ["EF00009;1980;M;Ferrara;15/03/2010;F20.0;;;;;;", ""])}),
     [f"{EF}, line 3: the row has 4 fields but the header has 12; check the delimiter (semicolon detected) and the "
      "quoting (the record runs from line 3 to line 4: a quote is probably not closed)"], 1),
    ("duplicate-code-within-efeso", DUP_SAME,
     [f"{EF}, line 3, column 'COD_PAZIENTE': patient code appears more than once in the EHR extracts, within {EF} "
      f"({EF} line 3; {EF} line 4); linkage would be ambiguous; sex and birth year agree (M, 1980): probably one "
      "patient recorded twice; keep one record (value: 'EF00001')",
      f"{EF}, line 4, column 'COD_PAZIENTE'"], 2),
    ("duplicate-code-across-ehrs-disagreeing", DUP_ACROSS,
     [f"{SD}, line 3, column 'id_paziente': patient code appears more than once in the EHR extracts, in both EHRs "
      f"({EF} line 3; {SD} line 3); linkage would be ambiguous; sex disagrees (M / F) and birth year disagrees "
      "(1980 / 1990): probably different patients sharing a code"], 2),
    ("duplicate-code-across-ehrs-agreeing", DUP_ACROSS_AGREE,
     [f"{EF}, line 3, column 'COD_PAZIENTE': patient code appears more than once in the EHR extracts, in both "
      "EHRs", "sex and birth year agree (M, 1980): probably one patient recorded twice"], 2),
    ("stop-before-start", _w(form=[rf.form_row(start="01/06/2019", stop="01/05/2019"), sd_form()]),
     [f"{FORM}, line 3, column 'IMR stop date': stop date is before start date (value: '01/05/2019')"], 1),
    ("date-in-the-future", _w(form=[rf.form_row(), sd_form(stop="01/01/2030")]),
     [f"{FORM}, line 4, column 'IMR stop date': date is in the future (value: '01/01/2030')"], 1),
    ("date-before-1900", _w(efeso=[rf.efeso_row(first_access="01/01/1650")]),
     [f"{EF}, line 3, column 'DATA_PRIMO_ACCESSO': date is before 1900 (value: '01/01/1650')"], 1),
    ("malformed-date", _w(sister=[rf.sister_row(first_access="2015-02-30")]),
     [f"{SD}, line 3, column 'data_primo_contatto': not a date (expected dd/mm/yyyy or yyyy-mm-dd)"], 1),
    ("year-is-not-a-date", _w(sister=[rf.sister_row(programme_start="2018")]),
     [f"{SD}, line 3, column 'data_inizio_pt': not a date"], 1),
    ("missing-start-date", _w(form=[rf.form_row(start=""), sd_form()]),
     [f"{FORM}, line 3, column 'IMR start date': IMR start date is missing"], 1),
    ("sessions-zero", _w(form=[rf.form_row(sessions="0"), sd_form()]),
     [f"{FORM}, line 3, column 'Number of sessions': number of sessions must be a whole number of at least 1 "
      "(value: '0')"], 1),
    ("sessions-negative", _w(form=[rf.form_row(), sd_form(sessions="-4")]),
     [f"{FORM}, line 4, column 'Number of sessions': number of sessions must be a whole number"], 1),
    ("sessions-not-numeric", _w(form=[rf.form_row(sessions="venti"), sd_form()]),
     [f"{FORM}, line 3, column 'Number of sessions': number of sessions must be a whole number of at least 1 "
      "(value: 'venti')"], 1),
    ("sessions-fractional", _w(form=[rf.form_row(sessions="12,5"), sd_form()]),
     [f"{FORM}, line 3, column 'Number of sessions'"], 1),
    ("sessions-infinite", _w(form=[rf.form_row(sessions="inf"), sd_form()]),
     [f"{FORM}, line 3, column 'Number of sessions'"], 1),
    ("imrs-above-5", _w(form=[rf.form_row(user=["4"] * 14 + ["6"]), sd_form()]),
     [f"{FORM}, line 3, column 'User IMRS [15. Functioning affected by drug use]': IMRS items are scored 1 to 5 "
      "(whole numbers) (value: '6')"], 1),
    ("imrs-zero", _w(form=[rf.form_row(), sd_form(provider=["0"] + ["3"] * 14)]),
     [f"{FORM}, line 4, column 'Provider IMRS [1. Progress towards personal goals]': IMRS items are scored 1 to 5"],
     1),
    ("imrs-not-numeric", _w(form=[rf.form_row(user=["4"] * 5 + ["tre"] + ["4"] * 9), sd_form()]),
     [f"{FORM}, line 3, column 'User IMRS [6. Symptom distress]': IMRS items are scored 1 to 5 (whole numbers) "
      "(value: 'tre')"], 1),
    ("imrs-half-point", _w(form=[rf.form_row(user=["3,5"] + ["4"] * 14), sd_form()]),
     [f"{FORM}, line 3, column 'User IMRS [1. Progress towards personal goals]'"], 1),
    ("unknown-module", _w(form=[rf.form_row(modules="M1. Recovery Strategies;M12. Mindfulness"), sd_form()]),
     [f"{FORM}, line 3, column 'Modules administered': unknown module title (expected e.g. 'M1. Recovery "
      "Strategies') (value: 'M12. Mindfulness')"], 1),
    ("module-number-and-title-disagree", _w(form=[rf.form_row(modules="M2. Coping with Stress"), sd_form()]),
     [f"{FORM}, line 3, column 'Modules administered': unknown module title"], 1),
    ("no-module-ticked", _w(form=[rf.form_row(modules=""), sd_form()]),
     [f"{FORM}, line 3, column 'Modules administered': no module ticked"], 1),
    ("unknown-service-unit", _w(form=[rf.form_row(unit="CMHC Bologna"), sd_form()]),
     [f"{FORM}, line 3, column 'Service unit': unknown service unit; expected one of: CMHC Cento"], 1),
    ("missing-service-unit", _w(form=[rf.form_row(unit=" "), sd_form()]),
     [f"{FORM}, line 3, column 'Service unit': service unit is missing"], 1),
    ("malformed-icd10", _w(efeso=[rf.efeso_row(diagnosis="F2O.0")]),
     [f"{EF}, line 3, column 'DIAGNOSI_ICD10': malformed ICD-10 code (expected e.g. F20.0 or F200) "
      "(value: 'F2O.0')"], 1),
    ("missing-icd10", _w(sister=[rf.sister_row(diagnosis="")]),
     [f"{SD}, line 3, column 'diagnosi_principale': ICD-10 diagnosis is missing"], 1),
    ("malformed-atc", _w(sister=[rf.sister_row(meds="N07BC02|metadone")]),
     [f"{SD}, line 3, column 'terapia_atc': malformed ATC code (expected e.g. N05AH03) (value: 'METADONE')"], 1),
    ("birth-year-before-1900", _w(efeso=[rf.efeso_row(birth_year="1850", first_access="15/03/1870")]),
     [f"{EF}, line 3, column 'ANNO_NASCITA': birth year must be a year between 1900 and 2024",
      f"{EF}, line 3, column 'DATA_PRIMO_ACCESSO': date is before 1900"], 2),
    ("birth-year-full-date-is-an-identifier", _w(sister=[rf.sister_row(birth_year="12/05/1990")]),
     [f"{SD}, line 3, column 'anno_nascita': direct identifier: full dates of birth"], 1),
    ("names-are-identifiers", _w(efeso_header_=rf.efeso_header() + ["NOME"],
                                 efeso=[rf.efeso_row() + ["Mario Rossi"]]),
     [f"{EF}, line 3, column 'NOME': direct identifier: person names", "(value: 'M**** R****')"], 1),
    ("birth-year-not-a-year", _w(sister=[rf.sister_row(birth_year="19900")]),
     [f"{SD}, line 3, column 'anno_nascita': birth year must be a year between 1900 and 2024 (value: '19900')"],
     1),
    ("unknown-sex-code", _w(sister=[rf.sister_row(sex="3")]),
     [f"{SD}, line 3, column 'sesso': unknown code; Sister uses '1', '2' (value: '3')"], 1),
    ("unknown-category", _w(efeso=[rf.efeso_row(employment="Casalinga")]),
     [f"{EF}, line 3, column 'CONDIZIONE_LAVORATIVA': unknown code; EFESO uses"], 1),
    ("missing-municipality", _w(efeso=[rf.efeso_row(municipality="")]),
     [f"{EF}, line 3, column 'COMUNE_RESIDENZA': municipality of residence is missing"], 1),
    ("missing-patient-code", _w(form=[rf.form_row(code=""), sd_form()]),
     [f"{FORM}, line 3, column 'Patient code': patient code is missing"], 1),
    ("first-access-before-birth", _w(efeso=[rf.efeso_row(first_access="15/03/1975")]),
     [f"{EF}, line 3, column 'DATA_PRIMO_ACCESSO': first access is before the year of birth (ANNO_NASCITA)"], 1),
    ("imr-before-first-access", _w(efeso=[rf.efeso_row(first_access="15/03/2019")]),
     [f"{FORM}, line 3, column 'IMR start date': IMR start is before the patient's first access in the EHR"], 1),
    # checked on every linked form row, also on rows the flow would exclude
    ("imr-before-first-access-on-a-row-outside-the-period",
     _w(form=[rf.form_row(), sd_form(), rf.form_row(start="01/01/2009", stop="01/06/2009")]),
     [f"{FORM}, line 5, column 'IMR start date': IMR start is before the patient's first access in the EHR "
      f"(15/03/2010, {EF} line 3); check both dates (value: '01/01/2009')"], 1),
    ("imr-before-first-access-on-a-further-programme",
     _w(efeso=[rf.efeso_row(first_access="15/03/2018")],
        form=[rf.form_row(start="01/04/2018", stop="01/12/2019"), sd_form(),
              rf.form_row(start="01/05/2017", stop="01/06/2020")]),
     [f"{FORM}, line 5, column 'IMR start date': IMR start is before the patient's first access in the EHR "
      f"(15/03/2018, {EF} line 3); check both dates (value: '01/05/2017')"], 1),
    ("imr-before-first-access-on-a-sister-record-outside-the-period",
     _w(form=[rf.form_row(), sd_form(start="2015-01-10", stop="2016-02-01")]),
     [f"{FORM}, line 4, column 'IMR start date': IMR start is before the patient's first access in the EHR "
      f"(01/06/2015, {SD} line 3); check both dates (value: '2015-01-10')"], 1),
    # two-digit years: 00-68 are 20xx, so 68 is 2068 (in the future), never 1968
    ("two-digit-year-68-is-2068", _w(efeso=[rf.efeso_row(birth_year="1950", first_access="31/12/68")]),
     [f"{EF}, line 3, column 'DATA_PRIMO_ACCESSO': date is in the future (value: '31/12/68')"], 1),
]


@pytest.mark.parametrize("writer,expected,n_problems", [c[1:] for c in FATAL], ids=[c[0] for c in FATAL])
def test_unusable_input_is_reported_by_file_line_and_column(tmp_path, writer, expected, n_problems):
    folder = writer(tmp_path)
    with pytest.raises(RawDataError) as err:
        clean(folder)
    problems = [str(p) for p in err.value.problems]
    for text in expected:
        assert any(p.startswith(text) or text in p for p in problems), (text, problems)
        assert text in str(err.value)  # the message a notebook shows is the same list
    assert len(problems) == n_problems, problems
    assert str(err.value).endswith("data/raw/README.md.")


def test_all_problems_are_reported_at_once_in_reading_order(tmp_path):
    folder = rf.write_exports(tmp_path, efeso=[rf.efeso_row(diagnosis="X"), rf.efeso_row(code="EF2", sex="?")],
                              form=[rf.form_row(sessions="0"), sd_form(unit="Nowhere")])
    with pytest.raises(RawDataError) as err:
        clean(folder)
    where = [(p.file, p.line, p.column) for p in err.value.problems]
    assert where == [(EF, 3, "DIAGNOSI_ICD10"), (EF, 4, "SESSO"), (FORM, 3, "Number of sessions"),
                     (FORM, 4, "Service unit")]


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(RawDataError, match="raw data folder does not exist"):
        clean(tmp_path / "nowhere")
    folder = rf.write_exports(tmp_path / "raw")
    (folder / SD).unlink()
    with pytest.raises(RawDataError, match=f"{SD}: file not found at"):
        clean(folder)


# ======================================================================================
# Excluded: logged in the cohort flow with the reason
# ======================================================================================
EXCLUDED = [
    # (id, writer, source, line, reason, cohort)
    ("form-row-without-ehr-record", _w(form=[rf.form_row(), sd_form(), rf.form_row(code="XX00042")]),
     "form", 5, REASON_NO_EHR, ["EF00001", "SD00001"]),
    ("ehr-record-without-form-row", _w(efeso=[rf.efeso_row(), rf.efeso_row(code="EF00002")]),
     "EFESO", 4, REASON_NO_FORM, ["EF00001", "SD00001"]),
    ("programme-outside-period", _w(form=[rf.form_row(), sd_form(start="01/01/2021", stop="15/09/2021")]),
     "form", 4, REASON_OUTSIDE_PERIOD, ["EF00001"]),
    ("ehr-record-whose-form-row-was-excluded",
     _w(form=[rf.form_row(), sd_form(start="01/01/2016", stop="15/09/2016")]),
     "Sister", 3, REASON_FORM_EXCLUDED, ["EF00001"]),
    ("further-programme", _w(form=[rf.form_row(start="01/01/2020", stop="01/06/2020"), sd_form(), rf.form_row()]),
     "form", 3, REASON_REPEAT, ["EF00001", "SD00001"]),
]


@pytest.mark.parametrize("writer,source,line,reason,cohort", [c[1:] for c in EXCLUDED],
                         ids=[c[0] for c in EXCLUDED])
def test_records_outside_the_study_are_excluded_with_their_reason(tmp_path, writer, source, line, reason, cohort):
    folder = writer(tmp_path)
    result = clean(folder)
    assert sorted(result.cohort["patient_id"]) == cohort
    row = result.flow[(result.flow["source"] == source) & (result.flow["line"] == line)]
    assert len(row) == 1 and row["status"].iloc[0] == "excluded" and row["reason"].iloc[0].startswith(reason)
    n_records = {s: read_raw(folder / C.RAW_FILES[s], s).n_records for s in C.RAW_FILES}
    assert result.flow.groupby("source").size().to_dict() == n_records
    assert int((result.flow["status"] == "included").sum()) == 2 * len(result.cohort)


def test_leading_zeros_lost_by_a_spreadsheet_are_pointed_out(tmp_path):
    folder = rf.write_exports(tmp_path, efeso=[rf.efeso_row(code="00123")],
                              form=[rf.form_row(code="123"), sd_form()])
    result = clean(folder)
    assert sorted(result.cohort["patient_id"]) == ["SD00001"]
    reasons = result.flow.set_index(["source", "line"])["reason"]
    assert reasons[("form", 3)] == REASON_NO_EHR and reasons[("EFESO", 3)] == REASON_NO_FORM
    assert (f"{FORM}, line 3, column 'Patient code': no EHR record has this code, but '00123' differs only in "
            "leading zeros (a spreadsheet may have dropped them); the row is excluded until the code is fixed "
            "(value: '123')") in result.warnings


# ======================================================================================
# Which reason, which programme, which service (data/raw/README.md, last section)
# ======================================================================================
def _reasons(result):
    return result.flow.set_index(["source", "line"])["reason"]


@pytest.mark.parametrize("outside_first", [False, True], ids=["included-row-first", "outside-rows-first"])
def test_a_row_outside_the_period_is_logged_as_outside_even_for_an_included_patient(tmp_path, outside_first):
    """Outside the period AND a further programme of an included patient: the period is logged.

    The 2021 row stops after the included one (a "further programme" too); the 2016 row
    stops before it, and would be the "first completed" one if it competed. Neither does,
    in either order of the rows in the file.
    """
    included = rf.form_row()  # 01/03/2019 - 01/12/2019
    after = rf.form_row(start="01/05/2021", stop="30/09/2021", sessions="11")
    before = rf.form_row(start="01/02/2016", stop="01/10/2016", sessions="12")
    rows = [after, before, included] if outside_first else [included, after, before]
    result = clean(rf.write_exports(tmp_path, form=rows + [sd_form()]))
    line = {id(r): 3 + i for i, r in enumerate(rows)}
    reasons = _reasons(result)
    assert reasons[("form", line[id(after)])] == OUTSIDE
    assert reasons[("form", line[id(before)])] == OUTSIDE
    assert reasons[("form", line[id(included)])] == REASON_INCLUDED
    assert REASON_REPEAT not in set(reasons)
    ef = result.cohort.set_index("patient_id").loc["EF00001"]
    assert (ef.imr_start, ef.imr_end, ef.n_sessions) == (pd.Timestamp("2019-03-01"), pd.Timestamp("2019-12-01"), 20)


def test_a_row_outside_the_period_without_an_ehr_record_is_logged_as_outside(tmp_path):
    result = clean(rf.write_exports(tmp_path, form=[rf.form_row(), sd_form(),
                                                    rf.form_row(code="XX00042", start="01/05/2021", stop="30/09/2021"),
                                                    rf.form_row(code="XX00042")]))
    reasons = _reasons(result)
    assert (reasons[("form", 5)], reasons[("form", 6)]) == (OUTSIDE, REASON_NO_EHR)


@pytest.mark.parametrize("earlier_start_first", [True, False], ids=["earlier-start-on-first-line",
                                                                      "earlier-start-on-later-line"])
def test_same_stop_date_the_programme_started_first_is_analysed(tmp_path, earlier_start_first):
    longer = rf.form_row(start="01/03/2019", stop="01/12/2019", sessions="30")
    shorter = rf.form_row(start="01/06/2019", stop="01/12/2019", sessions="10")
    rows = [longer, shorter] if earlier_start_first else [shorter, longer]
    result = clean(rf.write_exports(tmp_path, form=rows + [sd_form()]))
    longer_line, shorter_line = (3, 4) if earlier_start_first else (4, 3)
    reasons = _reasons(result)
    assert reasons[("form", longer_line)] == REASON_INCLUDED
    assert reasons[("form", shorter_line)] == REASON_REPEAT
    ef = result.cohort.set_index("patient_id").loc["EF00001"]
    assert (ef.imr_start, ef.n_sessions) == (pd.Timestamp("2019-03-01"), 30)


def test_same_start_and_stop_dates_the_earlier_line_is_analysed(tmp_path):
    rows = [rf.form_row(sessions="30"), rf.form_row(sessions="10"), sd_form()]  # the same dates twice
    result = clean(rf.write_exports(tmp_path, form=rows))
    reasons = _reasons(result)
    assert (reasons[("form", 3)], reasons[("form", 4)]) == (REASON_INCLUDED, REASON_REPEAT)
    assert result.cohort.set_index("patient_id").at["EF00001", "n_sessions"] == 30


def test_an_earlier_stop_date_wins_over_an_earlier_start_and_line(tmp_path):
    rows = [rf.form_row(start="01/05/2017", stop="01/06/2020", sessions="40"),  # began first, stopped later
            rf.form_row(start="01/03/2019", stop="01/12/2019", sessions="20"), sd_form()]
    result = clean(rf.write_exports(tmp_path, form=rows))
    reasons = _reasons(result)
    assert (reasons[("form", 3)], reasons[("form", 4)]) == (REASON_REPEAT, REASON_INCLUDED)
    assert result.cohort.set_index("patient_id").at["EF00001", "imr_end"] == pd.Timestamp("2019-12-01")


@pytest.mark.parametrize("unit,code,ehr,expected_type,warned", [
    ("SerD Ferrara", "EF00001", "EFESO", "SerD", True),   # a SerD unit, an EFESO record
    ("CMHC Cento", "SD00001", "Sister", "CMHC", True),    # a CMHC, a Sister record
    ("EDP Ferrara", "EF00001", "EFESO", "EDP", False),    # the EDP keeps its records in EFESO
])
def test_the_service_type_is_the_service_units_not_the_ehrs(tmp_path, unit, code, ehr, expected_type, warned):
    if code == "EF00001":
        form, line = [rf.form_row(unit=unit), sd_form()], 3
    else:
        form, line = [rf.form_row(), sd_form(unit=unit)], 4
    result = clean(rf.write_exports(tmp_path, form=form))
    row = result.cohort.set_index("patient_id").loc[code]
    assert (row.service_type, row.service_unit, row.source_ehr) == (expected_type, unit, ehr)
    unit_ehr = C.SERVICE_UNITS[unit]["ehr"]
    message = (f"{FORM}, line {line}, column 'Service unit': the service unit keeps its records in {unit_ehr} but "
               f"the patient code is in {ehr}; kept (the patient's data come from the {ehr} record, the service "
               f"type from the service unit), check the code (1 row(s): line(s) {line})")
    assert (message in result.warnings) is warned
    assert not [w for w in result.warnings if "service unit keeps its records" in w and w != message]


def _contract_alias_rows():
    """The rows of the contract's table "Accepted header names": (file, field) -> (headers, aliases)."""
    text = CONTRACT.read_text(encoding="utf-8")
    section = text.split("### Accepted header names", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in ("EFESO", "Sister", "form"):
            field = re.findall(r"`([^`]+)`", cells[1])[0]
            assert (cells[0], field) not in rows, f"{cells[0]} {field} is listed twice"
            rows[(cells[0], field)] = (re.findall(r"`([^`]+)`", cells[2]), re.findall(r"`([^`]+)`", cells[3]))
    return rows


def test_the_contract_lists_exactly_the_header_aliases_the_reader_accepts():
    rows = _contract_alias_rows()
    for source, fields in HEADER_ALIASES.items():
        for fld, aliases in fields.items():
            assert (source, fld) in rows, f"data/raw/README.md does not list the aliases of {source} {fld}"
            headers, listed = rows.pop((source, fld))
            contract_name = C.EHR_COLUMNS[source][fld] if source in C.EHR_COLUMNS else C.FORM_COLUMNS[fld]
            assert headers == [contract_name], (source, fld)
            assert listed == list(aliases), (source, fld)
            assert all(canonical_field(source, a) == fld for a in listed), (source, fld)
    for version, words in IMRS_GRID_WORDS.items():
        headers, listed = rows.pop(("form", f"imrs_{version}_k"))
        assert {t for t in listed if "k" not in t} == set(words), version  # the respondent words
        examples = headers + [t for t in listed if "k" in t]
        assert len(examples) >= 1 + len(words)
        for k in (1, 15):
            assert {canonical_field("form", e.replace("k", str(k))) for e in examples} == {f"imrs_{version}_{k:02d}"}
    assert not rows, f"the contract lists aliases the reader does not accept: {sorted(rows)}"


def test_an_italian_provider_grid_header_is_read_as_the_provider_item(tmp_path):
    header = rf.form_header()[:9 + 15] + [f"Operatore IMRS [{k}. Voce {k} in italiano]" for k in C.IMRS_ITEMS]
    provider = [str(1 + k % 5) for k in range(15)]
    result = clean(rf.write_exports(tmp_path, form=[rf.form_row(provider=provider), sd_form()], form_header_=header))
    ef = result.cohort.set_index("patient_id").loc["EF00001"]
    assert [ef[f"imrs_provider_{k:02d}"] for k in C.IMRS_ITEMS] == [int(v) for v in provider]
    assert not [w for w in result.warnings if "Operatore" in w]


# ======================================================================================
# The command line: a message and where to look, never a traceback
# ======================================================================================
def test_command_line_prints_the_problems_and_exits_1(tmp_path):
    folder = rf.write_exports(tmp_path / "raw", form=[rf.form_row(sessions="0"), sd_form()])
    proc = subprocess.run([sys.executable, "-m", "imr_analysis", "clean", "--raw-dir", str(folder),
                           "--processed-dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"{FORM}, line 3, column 'Number of sessions': number of sessions must be a whole number" in proc.stderr
    assert "data/raw/README.md" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_command_line_writes_the_cohort(tmp_path):
    folder = rf.write_exports(tmp_path / "raw")
    proc = subprocess.run([sys.executable, "-m", "imr_analysis", "clean", "--raw-dir", str(folder),
                           "--processed-dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("2 patients; cohort flow: included 4")
    assert (tmp_path / "out" / "cohort.parquet").exists()
