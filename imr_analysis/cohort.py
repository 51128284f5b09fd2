"""The study cohort: harmonise the EHRs and the form, link them within the observation period,
derive the analysis variables and account for every raw record (:func:`harmonise`,
:func:`link`, :func:`derive`, :func:`cohort_flow`; rules: ``data/raw/README.md``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from imr_analysis import constants as C
from imr_analysis import export, paths
from imr_analysis.scores import imrs_scores
from imr_analysis.selection import select
from imr_analysis.sources import (ProblemLog, RawTable, canonical_manual_version,
                                  canonical_municipality, detect_data_mode, ehr_schema, form_schema, map_codes,
                                  normalise_code, normalise_icd10, normalise_service_unit, on_categories,
                                  parse_dates, parse_integers, parse_modules, parse_timestamps, read_exports,
                                  split_atc, text_key, validate)

#: The paper's observation period: programmes started and completed from April 2017 to July 2021.
STUDY_START = "2017-04-01"
STUDY_END = "2021-07-31"

COHORT_FILE = "cohort.parquet"
FLOW_FILE = "cohort_flow.csv"

REASON_INCLUDED = "included"
REASON_OUTSIDE_PERIOD = "programme completed outside the observation period"
REASON_NO_EHR = "no EFESO or Sister record for this patient code"
REASON_REPEAT = ("further programme of a patient already included (the first programme completed within the "
                 "observation period is analysed)")
REASON_NO_FORM = "no IMR summary form row for this patient (programme not completed or not reported)"
REASON_FORM_EXCLUDED = "the patient's only IMR summary form row(s) were excluded"

#: A form row's exclusion reasons in the order checked (it is logged with the first that applies):
#: a programme outside the period or without an EHR record never makes another "further".
FORM_EXCLUSION_ORDER = (REASON_OUTSIDE_PERIOD, REASON_NO_EHR, REASON_REPEAT)

#: The programme analysed among a patient's eligible rows: the first completed (as in the paper),
#: then the first begun, then the first submitted (form line; unique, so the row order never matters).
FIRST_PROGRAMME_ORDER = ("imr_end", "imr_start", "_line")


# Harmonise ------------------------------------------------------------------------------
def _dates(table: RawTable, fld: str, preferred: str, today, log: ProblemLog) -> pd.Series:
    """One date column parsed; malformed, future and pre-1900 dates reported."""
    r = on_categories(table.data[fld], lambda s: parse_dates(s, preferred, latest=today))
    log.flag(table, fld, r["bad"], "not a date (expected dd/mm/yyyy or yyyy-mm-dd)")
    log.flag(table, fld, r["too_late"], "date is in the future")
    log.flag(table, fld, r["too_early"], "date is before 1900")
    return r["date"]


def harmonise_ehr(table: RawTable, log: ProblemLog, today) -> pd.DataFrame:
    """The typed, canonical records of one EHR extract; unusable values go to ``log``."""
    raw, src = table.data, table.source
    code = on_categories(raw["patient_code"], normalise_code)
    log.flag(table, "patient_code", code == "", "patient code is missing")
    birth = on_categories(raw["birth_year"], lambda s: parse_integers(s, lo=1900, hi=today.year))
    log.flag(table, "birth_year", birth["bad"], f"birth year must be a year between 1900 and {today.year}")
    log.flag(table, "birth_year", birth["value"].isna() & ~birth["bad"], "birth year is missing")
    out = {"_line": raw["_line"], "source_ehr": pd.Series(src, index=raw.index, dtype="category"),
           "patient_code": code, "birth_year": birth["value"]}
    for fld in ("sex", "marital_status", "living_condition", "employment_status"):
        coding = C.EHR_CODINGS[src][fld]
        r = on_categories(raw[fld], lambda s: map_codes(s, coding))
        log.flag(table, fld, r["bad"], f"unknown code; {src} uses {', '.join(repr(k) for k in coding)}")
        out[fld] = r["value"]
    log.flag(table, "sex", out["sex"].isna() & (raw["sex"] == ""), "sex is missing")
    out["municipality"] = on_categories(raw["municipality"], canonical_municipality)
    log.flag(table, "municipality", raw["municipality"] == "",
             "municipality of residence is missing (needed for the health district)")
    for fld in ("first_access_date", "programme_start_date"):
        out[fld] = _dates(table, fld, C.EHR_FORMATS[src]["date_format"], today, log)
    log.flag(table, "first_access_date", raw["first_access_date"] == "", "date of first access is missing")
    log.flag(table, "first_access_date", (out["first_access_date"].dt.year < out["birth_year"]).fillna(False),
             f"first access is before the year of birth ({table.headers['birth_year']})")
    icd = on_categories(raw["diagnosis"], normalise_icd10)
    log.flag(table, "diagnosis", icd["bad"], "malformed ICD-10 code (expected e.g. F20.0 or F200)")
    log.flag(table, "diagnosis", icd["code"].isna() & ~icd["bad"], "ICD-10 diagnosis is missing")
    atc = on_categories(raw["medications"], split_atc)
    log.flag(table, "medications", atc["malformed"] != "", "malformed ATC code (expected e.g. N05AH03)",
             values=atc["malformed"])
    education = on_categories(raw["education_years"], lambda s: parse_integers(s, lo=0, hi=30))
    log.flag(table, "education_years", education["bad"], "years of education must be a whole number between 0 and 30")
    return pd.DataFrame(out | {"diagnosis_icd10": icd["code"], "atc_codes": atc["codes"],
                               "education_years": education["value"]})


def harmonise_form(table: RawTable, log: ProblemLog, today) -> pd.DataFrame:
    """The typed, canonical rows of the IMR summary form, one per completed programme; the
    service type is that of the unit delivering it, not of the EHR holding the code."""
    raw, h = table.data, table.headers
    stamps = on_categories(raw["timestamp"], parse_timestamps)
    log.warn_lines(table.file, raw["_line"][stamps["bad"]], h["timestamp"],
                   "timestamp not understood; kept as missing (it is not used in the analysis)")
    code = on_categories(raw["patient_code"], normalise_code)
    log.flag(table, "patient_code", code == "", "patient code is missing")
    unit = on_categories(raw["service_unit"], normalise_service_unit)
    log.flag(table, "service_unit", unit["bad"], "unknown service unit; expected one of: " + ", ".join(C.SERVICE_UNITS))
    log.flag(table, "service_unit", unit["unit"].isna() & ~unit["bad"], "service unit is missing")
    out = {"_line": raw["_line"], "timestamp": stamps["timestamp"], "patient_code": code,
           "service_unit": unit["unit"], "service_type": unit["service_type"]}
    for fld, col, what in (("start_date", "imr_start", "IMR start"), ("stop_date", "imr_end", "IMR stop")):
        out[col] = _dates(table, fld, C.FORM_DATE_FORMAT, today, log)
        log.flag(table, fld, raw[fld] == "", f"{what} date is missing")
    log.flag(table, "stop_date", out["imr_end"] < out["imr_start"], "stop date is before start date")
    imr_format = on_categories(raw["format"], lambda s: map_codes(s, C.IMR_FORMAT_CODING))
    log.flag(table, "format", imr_format["bad"] | imr_format["value"].isna(), "IMR format must be Group or Individual")
    out["imr_format"] = imr_format["value"]
    out["manual_version"] = on_categories(raw["manual_version"], canonical_manual_version)
    sessions = on_categories(raw["n_sessions"], lambda s: parse_integers(s, lo=1))
    log.flag(table, "n_sessions", sessions["bad"], "number of sessions must be a whole number of at least 1")
    log.flag(table, "n_sessions", sessions["value"].isna() & ~sessions["bad"], "number of sessions is missing")
    out["n_sessions"] = sessions["value"]
    modules = on_categories(raw["modules"], parse_modules)
    log.flag(table, "modules", modules["unknown"] != "",
             "unknown module title (expected e.g. 'M1. Recovery Strategies')", values=modules["unknown"])
    log.flag(table, "modules", ~modules[C.MODULE_COLUMNS].any(axis=1) & (modules["unknown"] == ""), "no module ticked")
    items = C.IMRS_USER_COLUMNS + C.IMRS_PROVIDER_COLUMNS  # parsed together: one column after the other
    scores = on_categories(pd.Series(union_categoricals([raw[c] for c in items])),
                           lambda s: parse_integers(s, lo=C.IMRS_MIN, hi=C.IMRS_MAX))
    for k, col in enumerate(items):
        item = scores.iloc[k * len(raw):(k + 1) * len(raw)].set_axis(raw.index)
        log.flag(table, col, item["bad"], "IMRS items are scored 1 to 5 (whole numbers)")
        out[col] = item["value"]
    return pd.DataFrame(out | {col: modules[col] for col in C.MODULE_COLUMNS})


def harmonise(tables: dict[str, RawTable], log: ProblemLog | None = None,
              today=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(form, ehr)``: the form rows and the EHR records (EFESO, then Sister) typed and checked.

    Problems are raised as one :class:`RawDataError` in two rounds: every unusable value and
    every patient code held twice in the EHRs; then the schemas and each IMR start against
    the first access of the record it links to. ``today`` dates "in the future" (default:
    today); warnings go to ``log``.
    """
    log = ProblemLog() if log is None else log
    today = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today)
    efeso, sister = (harmonise_ehr(tables[s], log, today) for s in ("EFESO", "Sister"))
    form = harmonise_form(tables["form"], log, today)
    codes = [t["patient_code"].cat.categories for t in (efeso, sister, form)]
    codes = codes[0].union(codes[1]).union(codes[2])  # sorted
    for t in (efeso, sister, form):  # shared categories: joins and sorts on the patient code run on its codes
        t["patient_code"] = t["patient_code"].cat.set_categories(codes)
    ehr = pd.concat([efeso, sister], ignore_index=True)
    check_unique_codes(ehr, tables, log)
    log.raise_if_any()
    for t, part in ((tables["EFESO"], efeso), (tables["Sister"], sister)):
        log.problems += validate(ehr_schema(today.year), part.astype({"patient_code": "string"}), t.file,
                                 t.headers | {"diagnosis_icd10": t.headers["diagnosis"]})
    h = tables["form"].headers
    log.problems += validate(form_schema(), form.astype({"patient_code": "string"}), tables["form"].file,
                             h | {"imr_start": h["start_date"], "imr_end": h["stop_date"], "imr_format": h["format"]})
    check_imr_start(form, ehr, tables["form"], log)
    log.raise_if_any()
    return form, ehr


def check_unique_codes(ehr: pd.DataFrame, tables: dict[str, RawTable], log: ProblemLog) -> None:
    """Report every patient code held by more than one EHR record (the linkage would be ambiguous),
    saying whether sex and birth year agree (one patient twice) or not (two sharing a code)."""
    dup = ehr[ehr["patient_code"].duplicated(keep=False) & (ehr["patient_code"] != "")]
    for code, grp in dup.groupby("patient_code", sort=True):
        files = [C.RAW_FILES[s] for s in grp["source_ehr"]]
        values = {"sex": grp["sex"].astype("string"), "birth year": grp["birth_year"]}
        values = {what: [str(x) for x in xs] for what, xs in values.items()}
        agree = {what: xs[0] for what, xs in values.items() if len(set(xs)) == 1}
        detail = (f"sex and birth year agree ({', '.join(agree.values())}): probably one patient recorded twice; keep "
                  "one record" if len(agree) == 2 else " and ".join(
                      [f"{what} disagrees ({' / '.join(xs)})" for what, xs in values.items() if what not in agree]
                      + [f"{what} agrees ({x})" for what, x in agree.items()])
                  + ": probably different patients sharing a code")
        scope = "in both EHRs" if len(set(files)) > 1 else f"within {files[0]}"
        where = "; ".join(f"{f} line {ln}" for f, ln in zip(files, grp["_line"]))
        for source, line in zip(grp["source_ehr"], grp["_line"]):
            log.error(C.RAW_FILES[source], int(line), tables[source].headers["patient_code"], code,
                      f"patient code appears more than once in the EHR extracts, {scope} ({where}); linkage would be "
                      f"ambiguous; {detail}")


def check_imr_start(form: pd.DataFrame, ehr: pd.DataFrame, form_table: RawTable, log: ProblemLog) -> None:
    """Report every linked form row whose IMR start is before the first access of its EHR record
    (whatever :func:`link` decides: an exclusion must not hide an error in the data)."""
    pairs = form[["patient_code", "imr_start"]].reset_index().merge(
        ehr[["patient_code", "first_access_date", "_line", "source_ehr"]], on="patient_code", validate="many_to_one")
    for row in pairs[pairs["imr_start"] < pairs["first_access_date"]].to_dict("records"):
        log.error(form_table.file, int(form_table.data["_line"].iloc[row["index"]]), form_table.headers["start_date"],
                  form_table.data["start_date"].iloc[row["index"]],
                  f"IMR start is before the patient's first access in the EHR ({row['first_access_date']:%d/%m/%Y}, "
                  f"{C.RAW_FILES[row['source_ehr']]} line {row['_line']}); check both dates")


# Link within the study period -------------------------------------------------------------
def link(form: pd.DataFrame, ehr: pd.DataFrame, study_start: str = STUDY_START,
         study_end: str = STUDY_END) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``form`` and ``ehr`` with a ``reason``, ``"included"`` or why not; ``form`` also with
    ``found_in``, the EHR holding its patient code.

    A form row gets the first reason of :data:`FORM_EXCLUSION_ORDER` that applies: the
    programme is not within ``study_start`` to ``study_end``; its code is in neither EHR;
    another eligible row of the patient comes first in :data:`FIRST_PROGRAMME_ORDER`. An
    EHR record is included when a form row of its patient is.
    """
    start, end = pd.Timestamp(study_start), pd.Timestamp(study_end)
    outside = (form["imr_start"] < start) | (form["imr_end"] < start) | (form["imr_end"] > end)
    found_in = form[["patient_code"]].merge(ehr[["patient_code", "source_ehr"]], how="left",
                                            validate="many_to_one")["source_ehr"].astype("str").to_numpy()
    linked = pd.notna(found_in)
    eligible = form[~outside & linked]
    first = eligible.sort_values(list(FIRST_PROGRAMME_ORDER)).drop_duplicates("patient_code").index
    applies = {REASON_OUTSIDE_PERIOD: outside, REASON_NO_EHR: ~linked, REASON_REPEAT: ~form.index.isin(first)}
    named = {REASON_OUTSIDE_PERIOD: f"{REASON_OUTSIDE_PERIOD} ({study_start} to {study_end})"}
    form = form.assign(reason=_first_reason(form.index, [applies[r] for r in FORM_EXCLUSION_ORDER],
                                            [named.get(r, r) for r in FORM_EXCLUSION_ORDER]),
                       found_in=found_in)
    analysed = ehr["patient_code"].map(form["reason"].eq(REASON_INCLUDED).groupby(form["patient_code"]).any())
    return form, ehr.assign(reason=_first_reason(ehr.index, [analysed.isna(), analysed.isin([False])],
                                                 [REASON_NO_FORM, REASON_FORM_EXCLUDED]))


def _first_reason(index: pd.Index, conditions: list, reasons: list[str]) -> pd.Series:
    """Each row's first reason whose condition holds, else ``"included"`` (text)."""
    first = np.select(conditions, range(1, len(reasons) + 1), 0)
    return pd.Series(pd.Categorical.from_codes(first, [REASON_INCLUDED, *reasons]), index=index).astype("str")


def linkage_warnings(form: pd.DataFrame, ehr: pd.DataFrame, form_table: RawTable, log: ProblemLog) -> None:
    """Warn about form rows that look wrong but are usable: a service unit keeping its records in
    the other EHR than the one holding the code (the patient's data come from the record found,
    the service type from the unit), a code without an EHR record that matches one but for
    leading zeros, which a spreadsheet may have dropped (the row stays excluded)."""
    file, h, found = form_table.file, form_table.headers, form["found_in"]
    expected = form["service_unit"].map({u: info["ehr"] for u, info in C.SERVICE_UNITS.items()}).astype("str")
    mismatch = found.notna() & expected.notna() & (found != expected)
    for (exp, fnd), lines in form["_line"][mismatch].groupby([expected[mismatch], found[mismatch]], sort=True):
        log.warn_lines(file, lines, h["service_unit"],
                       f"the service unit keeps its records in {exp} but the patient code is in {fnd}; kept (the "
                       f"patient's data come from the {fnd} record, the service type from the service unit), check "
                       "the code")
    strip = lambda codes: codes.str.replace(r"^([A-Z]*)0+(\d)", r"\1\2", regex=True)  # noqa: E731
    unpadded = pd.Series(ehr["patient_code"].to_numpy(), index=strip(ehr["patient_code"].astype("str")).to_numpy())
    no_ehr = form[form["reason"] == REASON_NO_EHR]
    near = strip(no_ehr["patient_code"].astype("str")).map(unpadded[~unpadded.index.duplicated()])
    for line, code, match in zip(no_ehr["_line"], no_ehr["patient_code"], near):
        if pd.notna(match):
            log.warn(file, int(line), h["patient_code"], code,
                     f"no EHR record has this code, but {match!r} differs only in leading zeros (a spreadsheet may "
                     "have dropped them); the row is excluded until the code is fixed")


# Derive the analysis variables ----------------------------------------------------------
def _per_value(values: pd.Series, func) -> pd.Series | pd.DataFrame:
    """``func`` of each distinct value of ``values``, spread to the rows (:func:`on_categories`)."""
    return on_categories(values.astype("str").astype("category"), lambda s: s.map(func))


def residence_district(municipality: pd.Series) -> pd.Series:
    """The health district of the municipality of residence ("outside" beyond the province)."""
    lookup = {text_key(k): v for k, v in C.MUNICIPALITY_DISTRICT.items()}
    return _per_value(municipality, lambda m: lookup.get(text_key(m), "outside"))


def diagnosis_group(icd10: pd.Series) -> pd.Series:
    """The diagnosis group of an ICD-10 code (:data:`constants.DIAGNOSIS_GROUP_CODES`; else "other").

    Examples
    --------
    >>> diagnosis_group(pd.Series(["F20.0", "F31.1", "F32.2", "F10.2", "F50.0", "F41.1", "G40.9"])).tolist()
    ['schizophrenia_spectrum', 'bipolar', 'depressive', 'substance_use', 'eating', 'other', 'other']
    """
    def group(code):
        number = int(code[1:3]) if code[:1] == "F" and code[1:3].isdigit() else None
        return next((g for g, numbers in C.DIAGNOSIS_GROUP_CODES.items() if number in numbers), "other")

    return _per_value(icd10, group)


def medication_classes(atc_codes: pd.Series) -> pd.DataFrame:
    """One boolean column per medication class, and ``med_none``, from ATC codes joined by ``;``
    (a code's class: its first prefix in :data:`constants.ATC_CLASS_PREFIXES`).
    """
    def classes(codes):
        found = {next((c for prefix, c in C.ATC_CLASS_PREFIXES if code.startswith(prefix)), None)
                 for code in codes.split(";") if code}
        return [c in found for c in C.MEDICATION_CLASSES] + [not found & set(C.MEDICATION_CLASSES)]

    return on_categories(atc_codes.astype("str").astype("category"),
                         lambda s: pd.DataFrame(s.map(classes).tolist(), index=s.index, columns=C.MEDICATION_COLUMNS,
                                                dtype=bool))


def derive(form: pd.DataFrame, ehr: pd.DataFrame) -> pd.DataFrame:
    """The cohort (:data:`constants.COHORT_COLUMNS`): each included programme of the linked
    ``form`` joined to its patient's EHR record, one row per patient in patient-code order.

    Ages in years from the birth year (the only date of birth recorded); the IMR duration in
    average months (:data:`constants.DAYS_PER_MONTH`); the illness duration in years from the
    first access to the IMR start; IMRS totals of complete scales and item means of the items
    answered (:func:`imr_analysis.scores.imrs_scores`). Text is categorical (the values
    present, sorted), the patient code ``string``.
    """
    programmes = form[form["reason"] == REASON_INCLUDED].drop(columns=["_line", "timestamp", "reason", "found_in"])
    records = ehr[ehr["reason"] == REASON_INCLUDED].drop(columns=["_line", "reason"])
    df = programmes.merge(records, on="patient_code", how="left", validate="one_to_one", indicator=True)
    if (df["_merge"] != "both").any():
        raise ValueError("an included form row has no included EHR record")
    df = df.rename(columns={"patient_code": "patient_id", "first_access_date": "first_treatment_date",
                            "municipality": "residence_municipality"}).sort_values("patient_id", ignore_index=True)
    df["age_at_imr_start"] = df["imr_start"].dt.year - df["birth_year"]
    df["age_at_first_treatment"] = df["first_treatment_date"].dt.year - df["birth_year"]
    df["imr_duration_months"] = (df["imr_end"] - df["imr_start"]).dt.days / C.DAYS_PER_MONTH
    df["illness_duration_years"] = (df["imr_start"] - df["first_treatment_date"]).dt.days / C.DAYS_PER_YEAR
    df["residence_district"] = residence_district(df["residence_municipality"])
    df["diagnosis_group"] = diagnosis_group(df["diagnosis_icd10"])
    df[C.MEDICATION_COLUMNS] = medication_classes(df["atc_codes"])
    df["n_modules"] = df[C.MODULE_COLUMNS].sum(axis=1)
    for version, items in (("user", C.IMRS_USER_COLUMNS), ("provider", C.IMRS_PROVIDER_COLUMNS)):
        scores = imrs_scores(df[items], max_missing=0, mean_max_missing=14)
        df[f"imrs_{version}_total"], df[f"imrs_{version}_mean"] = scores["total"], scores["mean"]
    for col in C.COHORT_CATEGORICAL_COLUMNS:  # categories: the values present, sorted
        values = df[col].astype("category").cat.remove_unused_categories()
        df[col] = values.cat.set_categories(pd.Index(sorted(values.cat.categories), dtype="str"))
    integers = ["birth_year", "age_at_imr_start", "age_at_first_treatment", "n_sessions", "n_modules"]
    return df.astype(dict.fromkeys(integers, "int64") | {"patient_id": "string"})[C.COHORT_COLUMNS]


# The cohort flow ----------------------------------------------------------------------------
def cohort_flow(form: pd.DataFrame, ehr: pd.DataFrame) -> pd.DataFrame:
    """Every record of every raw file once, included or excluded with its reason."""
    columns = ["_line", "patient_code", "reason"]
    records = pd.concat([form[columns].assign(source="form"), ehr[columns].assign(source=ehr["source_ehr"])],
                        ignore_index=True)
    source, included = records["source"].astype("str"), records["reason"] == REASON_INCLUDED
    return pd.DataFrame({"source": source, "file": source.map(C.RAW_FILES).astype("str"),
                         "line": records["_line"].astype("int64"), "patient_id": records["patient_code"].astype("string"),
                         "status": pd.array(np.where(included, "included", "excluded"), dtype="str"),
                         "reason": records["reason"]})


def flow_summary(flow: pd.DataFrame) -> pd.DataFrame:
    """Records by source, status and reason."""
    return flow.groupby(["source", "status", "reason"], sort=True).size().rename("records").reset_index()


def check_flow(flow: pd.DataFrame, tables: dict[str, RawTable], cohort: pd.DataFrame) -> None:
    """Check that the flow lists every record of every file once and that its included rows are
    the cohort; else raise AssertionError (a bug in the cleaner, not in the data)."""
    for source, t in tables.items():
        lines = flow.loc[flow["source"] == source, "line"].to_numpy()
        if len(lines) != t.n_records:
            raise AssertionError(f"cohort flow for {t.file} has {len(lines)} rows but the file has {t.n_records} "
                                 "records")
        if not np.array_equal(np.sort(lines), np.sort(t.data["_line"].to_numpy())):
            raise AssertionError(f"cohort flow for {t.file} does not list the file's records line by line")
    if flow.duplicated(["source", "line"]).any():
        raise AssertionError("a record appears twice in the cohort flow")
    if ((flow["status"] == "excluded") & (flow["reason"].isna() | (flow["reason"] == REASON_INCLUDED))).any():
        raise AssertionError("an excluded record has no reason in the cohort flow")
    ids = cohort["patient_id"].sort_values(ignore_index=True)
    if ids.duplicated().any():
        raise AssertionError("a patient appears twice in the cohort")
    included = flow[flow["status"] == "included"]
    for rows, what in ((included["source"] == "form", "form rows"), (included["source"] != "form", "EHR records")):
        if not included.loc[rows, "patient_id"].sort_values(ignore_index=True).equals(ids):
            raise AssertionError(f"{int(rows.sum())} included {what} but {len(cohort)} patients in the cohort")


# The whole cleaning, its outputs and its command -------------------------------------------
@dataclass
class CleanResult:
    """What :func:`clean_raw` returns."""

    cohort: pd.DataFrame  # one row per patient
    flow: pd.DataFrame  # one row per raw record
    data_mode: str  # "synthetic" or "private"
    warnings: list = field(default_factory=list)
    extra_columns: dict = field(default_factory=dict)  # file -> columns kept aside


def clean_raw(raw_dir=None, study_start: str = STUDY_START, study_end: str = STUDY_END, today=None) -> CleanResult:
    """Read, validate, harmonise and link the exports in ``raw_dir`` (``None``: ``data/raw``);
    derive the cohort and its flow. Raises :class:`RawDataError` listing every unusable value.

    Examples
    --------
    >>> result = clean_raw()  # doctest: +SKIP
    >>> len(result.cohort), result.flow["status"].value_counts().to_dict()  # doctest: +SKIP
    (126, {'included': 252, 'excluded': 7})
    """
    raw_dir = paths.resolve(raw_dir, paths.raw_dir())
    log = ProblemLog()
    tables = read_exports(raw_dir, log)
    form, ehr = link(*harmonise(tables, log, today), study_start, study_end)
    linkage_warnings(form, ehr, tables["form"], log)
    cohort = derive(form, ehr)
    flow = cohort_flow(form, ehr)
    check_flow(flow, tables, cohort)
    extra = {t.file: list(t.extra.columns) for t in tables.values() if len(t.extra.columns)}
    return CleanResult(cohort, flow, detect_data_mode(raw_dir), [str(w) for w in log.warnings], extra)


def load_cohort(processed_dir: str | Path | None = None, services=None) -> pd.DataFrame:
    """The cleaned cohort written by notebook 01, one row per patient, from ``processed_dir``
    (``None`` or ``""``: ``data/processed``); only ``services`` (service types), if given
    (:func:`imr_analysis.selection.select`; other filters: call it).
    """
    path = paths.resolve(processed_dir, paths.processed_dir()) / COHORT_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run notebooks/01_clean_cohort.ipynb (or 'make reproduce') "
                                "first")
    cohort = pd.read_parquet(path)
    return cohort if services is None else select(cohort, services=services).cohort


def write_outputs(cohort: pd.DataFrame, flow: pd.DataFrame, processed_dir=None) -> list[Path]:
    """Write ``cohort.parquet`` and ``cohort_flow.csv`` (sorted by source and line) into ``processed_dir``."""
    out = paths.resolve(processed_dir, paths.processed_dir())
    out.mkdir(parents=True, exist_ok=True)
    cohort.to_parquet(out / COHORT_FILE, index=False, engine="pyarrow", compression="snappy")
    export.write_csv(flow.sort_values(["source", "line"], kind="stable"), out / FLOW_FILE)
    return [out / COHORT_FILE, out / FLOW_FILE]


def cohort_overview(cohort: pd.DataFrame) -> pd.DataFrame:
    """Type, non-missing and missing counts and distinct values of each column (no record shown)."""
    return pd.DataFrame({"column": cohort.columns, "dtype": [str(t) for t in cohort.dtypes],
                         "non_missing": cohort.notna().sum().to_numpy(), "missing": cohort.isna().sum().to_numpy(),
                         "distinct": cohort.nunique(dropna=True).to_numpy()})
