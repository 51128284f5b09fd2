"""Property-based tests of ingestion and cleaning (hypothesis).

Random *valid* exports (1-8 patients) written in random legitimate styles (delimiters,
encodings, BOM, line ends, date formats, letter case, ICD-10 with or without the dot,
ATC case and separators, English or Italian module titles, decimal commas, header
spellings, extra columns) must be cleaned without loss: every form row included, the
cohort as large as the form, every value equal to the one generated. Random
*corruptions* of them must be rejected naming the right file, line and column, or
excluded with the right reason; the cohort flow must always balance.

Settings are modest and deterministic (``derandomize=True``) so that CI is repeatable.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import rawfactory as rf
from imr_analysis import constants as C
from imr_analysis.cohort import (REASON_FORM_EXCLUDED, REASON_INCLUDED, REASON_NO_EHR, REASON_NO_FORM,
                                 REASON_OUTSIDE_PERIOD, REASON_REPEAT, clean_raw)
from imr_analysis.sources import RawDataError, read_raw

#: Deterministic and modest. Shrinking is off: a clean takes about a second, and shrinking a
#: failure can take minutes; the failing example hypothesis prints is small already (1-8 patients).
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TODAY = "2024-01-01"
FILES = {s: C.RAW_FILES[s] for s in ("EFESO", "Sister", "form")}

# --------------------------------------------------------------------------------------
# The generated truth: one completed programme per patient
# --------------------------------------------------------------------------------------
ICD = {"F20.0": "F200", "F25.1": "F251", "F31.1": "F311", "F32.2": "F322", "F10.2": "F102", "F11.2": "F112",
       "F50.0": "F500", "F41.1": "F411", "F60.3": "F603"}
ATC = ["N05AH03", "N05AX08", "N06AB06", "N05AN01", "N03AG01", "N05BA12", "N05CF02", "N07BC02", "A02BC01"]
MUNICIPALITIES = list(C.MUNICIPALITY_DISTRICT) + ["Bologna"]


@dataclass
class Patient:
    ehr: str
    code: str
    unit: str
    birth_year: int
    sex: str  # M / F
    municipality: str
    first_access: date
    programme_start: date | None
    icd: str  # dotted
    atc: list
    education: int | None
    marital: str  # a source coding key or ""
    living: str
    employment: str
    start: date
    stop: date
    fmt: str  # Group / Individual
    sessions: int
    modules: list
    user: list  # 15 ints or None
    provider: list


@dataclass
class Style:
    delimiters: dict
    encoding: str
    bom: bool
    line_ending: str
    date_styles: dict  # source -> "dmy" | "iso" | "dot" | "dash" | "serial"
    code_noise: bool
    icd_dotted: dict  # source -> bool
    atc_lower: bool
    atc_sep: str
    module_style: str  # "label" | "italian" | "loose"
    module_sep: str
    decimal_comma: bool
    header_style: str  # "canonical" | "loose" | "italian"
    extra_column: bool
    timestamp_style: str


@st.composite
def patients(draw, min_size=1, max_size=8):
    n = draw(st.integers(min_size, max_size))
    out = []
    for i in range(n):
        ehr = draw(st.sampled_from(["EFESO", "Sister"]))
        units = [u for u, info in C.SERVICE_UNITS.items() if info["ehr"] == ehr]
        birth_year = draw(st.integers(1940, 2003))
        first_access = date(birth_year + draw(st.integers(12, 13)), 1, 1) + timedelta(days=draw(st.integers(0, 900)))
        first_access = min(first_access, date(2017, 3, 1))
        start = date(2017, 4, 1) + timedelta(days=draw(st.integers(0, 1200)))
        stop = min(start + timedelta(days=draw(st.integers(0, 500))), date(2021, 7, 31))
        codings = C.EHR_CODINGS[ehr]

        def maybe(key):
            return draw(st.sampled_from([""] + list(codings[key])))

        items = st.lists(st.one_of(st.integers(1, 5), st.none()), min_size=15, max_size=15)
        out.append(Patient(
            ehr=ehr, code=f"{'EF' if ehr == 'EFESO' else 'SD'}{i:05d}", unit=draw(st.sampled_from(units)),
            birth_year=birth_year, sex=draw(st.sampled_from(["M", "F"])),
            municipality=draw(st.sampled_from(MUNICIPALITIES)), first_access=first_access,
            programme_start=draw(st.one_of(st.none(), st.just(first_access + timedelta(days=30)))),
            icd=draw(st.sampled_from(sorted(ICD))), atc=draw(st.lists(st.sampled_from(ATC), max_size=3, unique=True)),
            education=draw(st.one_of(st.none(), st.integers(0, 25))),
            marital=maybe("marital_status"), living=maybe("living_condition"), employment=maybe("employment_status"),
            start=start, stop=stop, fmt=draw(st.sampled_from(["Group", "Individual"])),
            sessions=draw(st.integers(1, 70)),
            modules=draw(st.lists(st.integers(1, C.N_MODULES), min_size=1, max_size=6, unique=True)),
            user=draw(items), provider=draw(items),
        ))
    return out


styles = st.builds(
    Style,
    delimiters=st.fixed_dictionaries({s: st.sampled_from([",", ";", "\t"]) for s in FILES}),
    encoding=st.sampled_from(["utf-8", "cp1252", "utf-16"]),
    bom=st.booleans(),
    line_ending=st.sampled_from(["\n", "\r\n"]),
    date_styles=st.fixed_dictionaries({s: st.sampled_from(["dmy", "iso", "dot", "dash", "serial"]) for s in FILES}),
    code_noise=st.booleans(),
    icd_dotted=st.fixed_dictionaries({s: st.booleans() for s in ("EFESO", "Sister")}),
    atc_lower=st.booleans(),
    atc_sep=st.sampled_from([", ", ";", "|", " / "]),
    module_style=st.sampled_from(["label", "italian", "loose"]),
    module_sep=st.sampled_from([";", ", "]),
    decimal_comma=st.booleans(),
    header_style=st.sampled_from(["canonical", "loose", "italian"]),
    extra_column=st.booleans(),
    timestamp_style=st.sampled_from(["it", "en", "iso"]),
)

CANONICAL = Style(delimiters={"EFESO": ";", "Sister": ",", "form": ","}, encoding="utf-8", bom=False,
                  line_ending="\n", date_styles={"EFESO": "dmy", "Sister": "iso", "form": "dmy"}, code_noise=False,
                  icd_dotted={"EFESO": True, "Sister": False}, atc_lower=False, atc_sep=", ", module_style="label",
                  module_sep=";", decimal_comma=False, header_style="canonical", extra_column=False,
                  timestamp_style="it")


# --------------------------------------------------------------------------------------
# Rendering the truth as raw exports in a style
# --------------------------------------------------------------------------------------
def fmt_date(d: date | None, style: str) -> str:
    if d is None:
        return ""
    if style == "iso":
        return d.isoformat()
    if style == "dot":
        return d.strftime("%d.%m.%Y")
    if style == "dash":
        return d.strftime("%d-%m-%Y")
    if style == "serial":
        return str((d - date(1899, 12, 30)).days)
    return d.strftime("%d/%m/%Y")


def fmt_int(x, style: Style) -> str:
    if x is None:
        return ""
    return f"{x},0" if style.decimal_comma else str(x)


def fmt_code(code: str, style: Style, salt: int) -> str:
    if not style.code_noise:
        return code
    return [f" {code.lower()} ", f"{code} ", code.lower()][salt % 3]


def module_text(modules, style: Style) -> str:
    labels = []
    for k in modules:
        if style.module_style == "italian":
            labels.append(C.MODULE_ITALIAN_TITLES[k])
        elif style.module_style == "loose":
            labels.append(f"  m{k}.  {C.MODULES[k].upper()} ")
        else:
            labels.append(C.MODULE_FORM_LABELS[k])
    return style.module_sep.join(labels)


def timestamp_text(d: date, style: Style) -> str:
    if style.timestamp_style == "en":
        return f"{d:%Y/%m/%d} 2:05:09 PM GMT+2"
    if style.timestamp_style == "iso":
        return f"{d:%Y-%m-%d} 14:05:09"
    return f"{d:%d/%m/%Y} 14.05.09"


def ehr_header(source: str, style: Style) -> list:
    header = list(C.EHR_COLUMNS[source].values())
    if style.header_style in ("loose", "italian"):
        header = [f" {h.lower().replace('_', ' ')} " for h in header]
    return header + (["NOTE_INTERNE"] if style.extra_column else [])


def form_header(style: Style) -> list:
    header = rf.form_header()
    if style.header_style == "loose":
        header = [h.upper() if not h.startswith(("User", "Provider")) else h.lower() for h in header]
    elif style.header_style == "italian":
        it = {"Timestamp": "Informazioni cronologiche", "Patient code": "Codice paziente", "Service unit": "Servizio",
              "IMR start date": "Data inizio IMR", "IMR stop date": "Data fine IMR", "IMR format": "Formato IMR",
              "Manual version": "Versione del manuale", "Number of sessions": "Numero di sessioni",
              "Modules administered": "Moduli somministrati"}
        header = [it.get(h, h.replace("User IMRS", "Utente IMRS").replace("Provider IMRS", "Operatore IMRS"))
                  for h in header]
    return header + (["Commenti"] if style.extra_column else [])


def ehr_row(p: Patient, style: Style, salt: int) -> list:
    src = p.ehr
    dates = style.date_styles[src]
    icd = p.icd if style.icd_dotted[src] else ICD[p.icd]
    atc = [a.lower() for a in p.atc] if style.atc_lower else p.atc
    sex = p.sex if src == "EFESO" else {"M": "1", "F": "2"}[p.sex]
    make = rf.efeso_row if src == "EFESO" else rf.sister_row
    row = make(code=fmt_code(p.code, style, salt), birth_year=str(p.birth_year), sex=sex,
               municipality=p.municipality, first_access=fmt_date(p.first_access, dates), diagnosis=icd,
               meds=style.atc_sep.join(atc), programme_start=fmt_date(p.programme_start, dates),
               education=fmt_int(p.education, style), marital=p.marital, living=p.living, employment=p.employment)
    return row + (["nota"] if style.extra_column else [])


def form_row_of(p: Patient, style: Style, salt: int) -> list:
    dates = style.date_styles["form"]
    items = lambda xs: [fmt_int(x, style) for x in xs]  # noqa: E731
    row = rf.form_row(code=fmt_code(p.code, style, salt + 1), unit=p.unit, start=fmt_date(p.start, dates),
                      stop=fmt_date(p.stop, dates), fmt=p.fmt, sessions=fmt_int(p.sessions, style),
                      modules=module_text(p.modules, style), user=items(p.user), provider=items(p.provider),
                      timestamp=timestamp_text(p.stop, style))
    return row + ([""] if style.extra_column else [])


@dataclass
class Exports:
    """Rows of the three files before rendering; lines are 3, 4, ... (marker, header first)."""

    efeso: list = field(default_factory=list)
    sister: list = field(default_factory=list)
    form: list = field(default_factory=list)


def build(ps: list, style: Style) -> Exports:
    ex = Exports()
    for i, p in enumerate(ps):
        (ex.efeso if p.ehr == "EFESO" else ex.sister).append(ehr_row(p, style, i))
        ex.form.append(form_row_of(p, style, i))
    return ex


def write(folder: Path, ex: Exports, style: Style) -> Path:
    texts = {
        "EFESO": rf.to_csv(ehr_header("EFESO", style), ex.efeso, style.delimiters["EFESO"]),
        "Sister": rf.to_csv(ehr_header("Sister", style), ex.sister, style.delimiters["Sister"]),
        "form": rf.to_csv(form_header(style), ex.form, style.delimiters["form"]),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for source, text in texts.items():
        data = text.replace("\n", style.line_ending)
        if style.encoding == "utf-16":
            raw = data.encode("utf-16")  # with its BOM
        else:
            raw = (b"\xef\xbb\xbf" if style.bom and style.encoding == "utf-8" else b"") + data.encode(style.encoding)
        (folder / FILES[source]).write_bytes(raw)
    return folder


def n_records(folder: Path) -> dict:
    return {s: read_raw(folder / FILES[s], s).n_records for s in FILES}


def assert_flow_balances(result, folder: Path) -> None:
    flow = result.flow
    counts = n_records(folder)
    assert flow.groupby("source").size().reindex(list(FILES), fill_value=0).to_dict() == counts
    assert not flow.duplicated(["source", "line"]).any()
    for s, n in counts.items():
        assert sorted(flow.loc[flow["source"] == s, "line"]) == list(range(3, 3 + n))
    included = flow[flow["status"] == "included"]
    assert (included["reason"] == REASON_INCLUDED).all()
    assert sorted(included.loc[included["source"] == "form", "patient_id"]) == sorted(result.cohort["patient_id"])
    assert sorted(included.loc[included["source"] != "form", "patient_id"]) == sorted(result.cohort["patient_id"])


def assert_cohort_is_the_truth(cohort: pd.DataFrame, ps: list) -> None:
    c = cohort.set_index("patient_id")
    assert sorted(c.index) == sorted(p.code for p in ps)
    for p in ps:
        r = c.loc[p.code]
        assert (r.source_ehr, r.service_unit, r.sex, r.birth_year) == (p.ehr, p.unit, p.sex, p.birth_year)
        assert r.service_type == C.SERVICE_UNITS[p.unit]["service_type"]
        assert r.residence_municipality == p.municipality
        assert (r.first_treatment_date, r.imr_start, r.imr_end) == tuple(
            pd.Timestamp(d) for d in (p.first_access, p.start, p.stop))
        assert (pd.isna(r.programme_start_date) if p.programme_start is None
                else r.programme_start_date == pd.Timestamp(p.programme_start))
        assert r.diagnosis_icd10 == p.icd and r.atc_codes == ";".join(p.atc)
        assert bool(r.med_none) == (not any(a.startswith(("N05", "N06A", "N03A", "N07B")) for a in p.atc))
        assert (pd.isna(r.education_years) if p.education is None else r.education_years == p.education)
        assert r.imr_format == p.fmt.lower() and r.n_sessions == p.sessions
        assert {k for k in C.MODULES if r[f"module_{k:02d}"]} == set(p.modules) and r.n_modules == len(p.modules)
        for who, items in (("user", p.user), ("provider", p.provider)):
            got = [r[f"imrs_{who}_{k:02d}"] for k in C.IMRS_ITEMS]
            assert [None if pd.isna(g) else int(g) for g in got] == items
            total = r[f"imrs_{who}_total"]
            assert (pd.isna(total) if None in items else total == sum(items))


# --------------------------------------------------------------------------------------
# Valid exports: nothing lost, whatever the style
# --------------------------------------------------------------------------------------
@settings(max_examples=50, **SETTINGS)
@given(ps=patients(), style=styles)
def test_valid_exports_are_cleaned_without_loss(ps, style):
    with tempfile.TemporaryDirectory() as tmp:
        folder = write(Path(tmp), build(ps, style), style)
        result = clean_raw(folder, today=TODAY)
        assert len(result.cohort) == len(ps)
        form = result.flow[result.flow["source"] == "form"]
        assert len(form) == len(ps) and (form["status"] == "included").all()
        assert_cohort_is_the_truth(result.cohort, ps)
        assert_flow_balances(result, folder)
        allowed = ("not part of the raw-data contract", "the file has a header but no records")
        assert not [w for w in result.warnings if not any(a in w for a in allowed)]


@settings(max_examples=15, **SETTINGS)
@given(ps=patients(max_size=5), style=styles)
def test_style_does_not_change_the_cohort(ps, style):
    with tempfile.TemporaryDirectory() as tmp:
        plain = clean_raw(write(Path(tmp) / "a", build(ps, CANONICAL), CANONICAL), today=TODAY)
        styled = clean_raw(write(Path(tmp) / "b", build(ps, style), style), today=TODAY)
        pd.testing.assert_frame_equal(styled.cohort, plain.cohort)
        pd.testing.assert_frame_equal(styled.flow, plain.flow)


# --------------------------------------------------------------------------------------
# Corruptions: rejected at the right place, or excluded with the right reason
# --------------------------------------------------------------------------------------
FORM_COL = {"sessions": 7, "modules": 8, "unit": 2, "start": 3, "stop": 4, "user1": 9}

#: name -> (file, column as the canonical header names it, message fragment, how to corrupt)
FATAL = {
    "sessions-zero": ("form", "Number of sessions", "number of sessions must be a whole number", "sessions", "0"),
    "sessions-negative": ("form", "Number of sessions", "number of sessions must be a whole number", "sessions",
                          "-3"),
    "sessions-text": ("form", "Number of sessions", "number of sessions must be a whole number", "sessions", "tanti"),
    "sessions-fraction": ("form", "Number of sessions", "number of sessions must be a whole number", "sessions",
                          "7,5"),
    "imrs-six": ("form", "User IMRS [1. Progress towards personal goals]", "IMRS items are scored 1 to 5", "user1",
                 "6"),
    "imrs-text": ("form", "User IMRS [1. Progress towards personal goals]", "IMRS items are scored 1 to 5", "user1",
                  "buono"),
    "unknown-module": ("form", "Modules administered", "unknown module title", "modules", "M13. Mindfulness"),
    "no-module": ("form", "Modules administered", "no module ticked", "modules", ""),
    "unknown-unit": ("form", "Service unit", "unknown service unit", "unit", "CMHC Bologna"),
    "malformed-start": ("form", "IMR start date", "not a date", "start", "31/02/2019"),
    "stop-in-future": ("form", "IMR stop date", "date is in the future", "stop", "01/01/2031"),
    "stop-before-start": ("form", "IMR stop date", "stop date is before start date", "stop", "01/01/2017"),
    "bad-icd": ("ehr", "diagnosis", "malformed ICD-10 code", "diagnosis", "F2X.0"),
    "bad-atc": ("ehr", "medications", "malformed ATC code", "medications", "N05AH03, aloperidolo"),
    "birth-year-1850": ("ehr", "birth_year", "birth year must be a year between 1900", "birth_year", "1850"),
    "birth-year-text": ("ehr", "birth_year", "birth year must be a year between 1900", "birth_year", "ottanta"),
    "sex-unknown": ("ehr", "sex", "unknown code", "sex", "X"),
    "first-access-before-1900": ("ehr", "first_access_date", "date is before 1900", "first_access_date",
                                 "01/01/1899"),
    "first-access-malformed": ("ehr", "first_access_date", "not a date", "first_access_date", "32/01/2010"),
}
EHR_FIELDS = list(C.EHR_COLUMNS["EFESO"])
EXCLUSIONS = ["unknown-code", "outside-period", "extra-ehr-record", "repeat-programme"]


def ehr_rows_of(ex: Exports, ehr: str) -> list:
    return ex.efeso if ehr == "EFESO" else ex.sister


def line_of(ps: list, i: int, in_form: bool) -> int:
    if in_form:
        return 3 + i
    return 3 + sum(1 for p in ps[:i] if p.ehr == ps[i].ehr)


@settings(max_examples=50, **SETTINGS)
@given(ps=patients(), style=styles, kind=st.sampled_from(sorted(FATAL)), data=st.data())
def test_corrupted_values_are_rejected_naming_file_line_and_column(ps, style, kind, data):
    i = data.draw(st.integers(0, len(ps) - 1), label="patient")
    where, column, message, target, value = FATAL[kind]
    ex = build(ps, style)
    if where == "form":
        ex.form[i][FORM_COL[target]] = value
        file, line = FILES["form"], line_of(ps, i, True)
        header = form_header(style)[rf.form_header().index(column)]
    else:
        ehr = ps[i].ehr
        rows = ehr_rows_of(ex, ehr)
        j = line_of(ps, i, False) - 3
        rows[j][EHR_FIELDS.index(target)] = value if not (target == "sex" and ehr == "Sister") else "9"
        file, line = FILES[ehr], line_of(ps, i, False)
        header = ehr_header(ehr, style)[EHR_FIELDS.index(target)].strip()
    with tempfile.TemporaryDirectory() as tmp:
        folder = write(Path(tmp), ex, style)
        with pytest.raises(RawDataError) as err:
            clean_raw(folder, today=TODAY)
    hits = [p for p in err.value.problems if (p.file, p.line, p.column) == (file, line, header)]
    assert hits and any(message in p.message for p in hits), (kind, file, line, header, err.value.problems)
    assert all(p.file == file and p.line == line for p in err.value.problems), err.value.problems
    assert f"{file}, line {line}, column '{header}'" in str(err.value)


@settings(max_examples=20, **SETTINGS)
@given(ps=patients(), style=styles, data=st.data())
def test_duplicate_codes_in_the_ehrs_are_rejected_on_both_lines(ps, style, data):
    i = data.draw(st.integers(0, len(ps) - 1), label="patient")
    target = data.draw(st.sampled_from(["EFESO", "Sister"]), label="copied into")
    ex = build(ps, style)
    copy = replace(ps[i], ehr=target, marital="", living="", employment="")  # codings differ
    ehr_rows_of(ex, target).append(ehr_row(copy, style, i))
    n_target = len(ehr_rows_of(ex, target))
    with tempfile.TemporaryDirectory() as tmp:
        folder = write(Path(tmp), ex, style)
        with pytest.raises(RawDataError) as err:
            clean_raw(folder, today=TODAY)
    places = sorted((p.file, p.line) for p in err.value.problems)
    expected = sorted([(FILES[ps[i].ehr], line_of(ps, i, False)), (FILES[target], 2 + n_target)])
    assert places == expected
    scope = "in both EHRs" if target != ps[i].ehr else f"within {FILES[target]}"
    assert all(f"patient code appears more than once in the EHR extracts, {scope}" in p.message
               and "sex and birth year agree" in p.message for p in err.value.problems)


@settings(max_examples=20, **SETTINGS)
@given(ps=patients(), style=styles, data=st.data())
def test_a_further_row_starting_before_the_first_access_is_rejected_though_it_would_be_excluded(ps, style, data):
    # an extra programme of patient i that starts before the first access (so before the
    # period too): excluded if it were valid, but the pair of dates is impossible
    i = data.draw(st.integers(0, len(ps) - 1), label="patient")
    days = data.draw(st.integers(1, 400), label="days before the first access")
    early = replace(ps[i], start=ps[i].first_access - timedelta(days=days), stop=ps[i].first_access)
    ex = build(ps, style)
    ex.form.append(form_row_of(early, style, i))
    line = 2 + len(ex.form)
    header = form_header(style)[rf.form_header().index("IMR start date")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = write(Path(tmp), ex, style)
        with pytest.raises(RawDataError) as err:
            clean_raw(folder, today=TODAY)
    where = [(p.file, p.line, p.column) for p in err.value.problems]
    assert where == [(FILES["form"], line, header)], err.value.problems
    ehr_file, ehr_line = FILES[ps[i].ehr], line_of(ps, i, False)
    assert err.value.problems[0].message == (
        f"IMR start is before the patient's first access in the EHR ({ps[i].first_access:%d/%m/%Y}, {ehr_file} "
        f"line {ehr_line}); check both dates")


@settings(max_examples=40, **SETTINGS)
@given(ps=patients(), style=styles, kind=st.sampled_from(EXCLUSIONS), data=st.data())
def test_records_outside_the_study_are_excluded_and_the_flow_balances(ps, style, kind, data):
    i = data.draw(st.integers(0, len(ps) - 1), label="patient")
    ex = build(ps, style)
    dates = style.date_styles["form"]
    expect = {}  # (source, line) -> reason prefix
    cohort = {p.code for p in ps}
    ehr_line = ("EFESO" if ps[i].ehr == "EFESO" else "Sister", line_of(ps, i, False))
    if kind == "unknown-code":
        ex.form[i][1] = "ZZ99999"
        expect[("form", 3 + i)] = REASON_NO_EHR
        expect[ehr_line] = REASON_NO_FORM
        cohort.discard(ps[i].code)
    elif kind == "outside-period":
        # before the period (but not before the first access: that is an error on any linked
        # row, excluded or not) or after it
        if data.draw(st.booleans(), label="before the period"):
            start = ps[i].first_access  # on or before 2017-03-01
            span = (start, start + timedelta(days=data.draw(st.integers(0, 200), label="days")))
        else:
            span = (date(2021, 5, 3), date(2021, 9, 30))
        ex.form[i][3], ex.form[i][4] = fmt_date(span[0], dates), fmt_date(span[1], dates)
        expect[("form", 3 + i)] = REASON_OUTSIDE_PERIOD
        expect[ehr_line] = REASON_FORM_EXCLUDED
        cohort.discard(ps[i].code)
    elif kind == "extra-ehr-record":
        extra = replace(ps[i], code="XX00001")
        rows = ehr_rows_of(ex, ps[i].ehr)
        rows.append(ehr_row(extra, style, i))
        expect[(ehr_line[0], 2 + len(rows))] = REASON_NO_FORM
    else:  # a second, later programme of the same patient
        later = replace(ps[i], start=ps[i].stop, stop=ps[i].stop)
        ex.form.append(form_row_of(later, style, i))
        expect[("form", 2 + len(ex.form))] = REASON_REPEAT
    with tempfile.TemporaryDirectory() as tmp:
        folder = write(Path(tmp), ex, style)
        result = clean_raw(folder, today=TODAY)
        assert set(result.cohort["patient_id"]) == cohort and len(result.cohort) == len(cohort)
        reasons = result.flow.set_index(["source", "line"])["reason"]
        for place, reason in expect.items():
            assert reasons[place].startswith(reason), (place, reasons[place])
        assert int((result.flow["status"] == "excluded").sum()) == len(expect)
        assert_flow_balances(result, folder)
