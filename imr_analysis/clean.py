"""From raw exports to the analysis cohort: validate, harmonise, link, derive, account.

:func:`clean_raw` reads the EFESO and Sister EHR extracts and the IMR summary form,
harmonises the two EHRs (column names, date formats, ICD-10 and ATC formatting,
codings), links each completed programme to its patient's EHR record by the
pseudonymous patient code, derives the analysis variables and returns the cohort (one
row per patient) with the *cohort flow*: every input record of every source, once,
as included or excluded with its reason.

Rules (documented in ``data/raw/README.md``):

- Problems that make a value unusable (a malformed date, code or number, an unknown
  service unit or module, an IMRS item outside 1-5, a stop date before the start, a
  date in the future or before 1900, a duplicated patient code in the EHRs) are fatal:
  all of them are collected and raised together as :class:`RawDataError`, each naming
  file, line and column.
- Records that are valid but outside the study are excluded and logged in the flow:
  a form row completed outside the observation period; a form row with no EHR record;
  a further programme of a patient already included; an EHR record with no form row.
- Missing social variables and missing IMRS items are kept (missing) and counted.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import constants as C
from . import normalise as N
from .ingest import RawTable, detect_data_mode, read_exports
from .problems import ProblemLog, RawDataError

#: The paper's observation period: programmes completed from April 2017 to July 2021.
STUDY_START = "2017-04-01"
STUDY_END = "2021-07-31"

FLOW_COLUMNS = ["source", "file", "line", "patient_id", "status", "reason"]

REASON_INCLUDED = "included"
REASON_OUTSIDE_PERIOD = "programme completed outside the observation period"
REASON_NO_EHR = "no EFESO or Sister record for this patient code"
REASON_REPEAT = "further programme of a patient already included (the first completed one is analysed)"
REASON_NO_FORM = "no IMR summary form row for this patient (programme not completed or not reported)"
REASON_FORM_EXCLUDED = "the patient's only IMR summary form row(s) were excluded"


@dataclass
class CleanResult:
    """What :func:`clean_raw` returns."""

    cohort: "object"  # pandas.DataFrame, one row per patient
    flow: "object"  # pandas.DataFrame, one row per input record
    data_mode: str  # "synthetic" or "private"
    warnings: list = field(default_factory=list)
    extra_columns: dict = field(default_factory=dict)

    def flow_summary(self):
        """Counts of records by source, status and reason."""
        return (self.flow.groupby(["source", "status", "reason"], sort=True).size()
                .rename("records").reset_index())


# --------------------------------------------------------------------------------------
# Harmonisation of each source
# --------------------------------------------------------------------------------------
def _today():
    import pandas as pd

    return pd.Timestamp.today().normalize()


def _date_checks(log, file, lines, column, dates, today):
    import pandas as pd

    log.errors_from_mask(file, lines, column, dates.dt.strftime("%Y-%m-%d").tolist(),
                         (dates > today).fillna(False), "date is in the future")
    log.errors_from_mask(file, lines, column, dates.dt.strftime("%Y-%m-%d").tolist(),
                         (dates < pd.Timestamp("1900-01-01")).fillna(False), "date is before 1900")


def harmonise_ehr(table: RawTable, log: ProblemLog, today=None):
    """Typed, canonical version of one EHR extract (EFESO or Sister).

    Columns: patient_code, birth_year, sex, municipality, first_access_date,
    diagnosis_icd10, atc_codes (tuple), programme_start_date, education_years,
    marital_status, living_condition, employment_status, source_ehr, _line.
    """
    import pandas as pd

    today = today or _today()
    src, file = table.source, table.file
    raw = table.data
    lines = raw["_line"].to_numpy()
    fmt = C.EHR_FORMATS[src]
    heads = C.EHR_COLUMNS[src]
    out = pd.DataFrame(index=raw.index)
    out["_line"] = raw["_line"]
    out["source_ehr"] = src

    code = N.normalise_code(raw["patient_code"])
    log.errors_from_mask(file, lines, table.headers["patient_code"], raw["patient_code"].tolist(),
                         code.isna() | (code == ""), "patient code is missing")
    out["patient_code"] = code.astype("string")

    by, bad = N.parse_integers(raw["birth_year"], lo=1900, hi=today.year)
    log.errors_from_mask(file, lines, table.headers["birth_year"], raw["birth_year"].tolist(),
                         bad | by.isna(), "birth year must be a year between 1900 and this year")
    out["birth_year"] = by

    for fld in ("sex", "marital_status", "living_condition", "employment_status"):
        vals, bad = N.map_categories(raw[fld], C.EHR_CODINGS[src][fld])
        allowed = ", ".join(repr(k) for k in C.EHR_CODINGS[src][fld])
        log.errors_from_mask(file, lines, table.headers[fld], raw[fld].tolist(), bad,
                             f"unknown code; {src} uses {allowed}")
        out[fld] = vals.astype("string")
    log.errors_from_mask(file, lines, table.headers["sex"], raw["sex"].tolist(),
                         out["sex"].isna() & ~_bad_any(raw["sex"]), "sex is missing")

    out["municipality"] = N.canonical_municipality(raw["municipality"])

    for fld in ("first_access_date", "programme_start_date"):
        d, bad = N.parse_dates(raw[fld], preferred=fmt["date_format"])
        log.errors_from_mask(file, lines, table.headers[fld], raw[fld].tolist(), bad,
                             "not a date (expected dd/mm/yyyy or yyyy-mm-dd)")
        _date_checks(log, file, lines, table.headers[fld], d, today)
        out[fld] = d
    log.errors_from_mask(file, lines, table.headers["first_access_date"], raw["first_access_date"].tolist(),
                         out["first_access_date"].isna() & ~_bad_any(raw["first_access_date"]),
                         "date of first access is missing")

    icd, bad = N.normalise_icd10(raw["diagnosis"])
    log.errors_from_mask(file, lines, table.headers["diagnosis"], raw["diagnosis"].tolist(), bad,
                         "malformed ICD-10 code (expected e.g. F20.0 or F200)")
    log.errors_from_mask(file, lines, table.headers["diagnosis"], raw["diagnosis"].tolist(),
                         icd.isna() & ~bad, "ICD-10 diagnosis is missing")
    out["diagnosis_icd10"] = icd

    codes, bad_codes = N.split_atc(raw["medications"])
    has_bad = bad_codes.map(len) > 0
    log.errors_from_mask(file, lines, table.headers["medications"],
                         bad_codes.map(lambda t: ", ".join(t)).tolist(), has_bad,
                         "malformed ATC code (expected e.g. N05AH03)")
    out["atc_codes"] = codes

    edu, bad = N.parse_integers(raw["education_years"], lo=0, hi=30)
    log.errors_from_mask(file, lines, table.headers["education_years"], raw["education_years"].tolist(), bad,
                         "years of education must be a whole number between 0 and 30")
    out["education_years"] = edu
    return out


def _bad_any(s):
    """True where the raw cell is non-empty (used to avoid double reports)."""
    return s.astype("string").fillna("").str.strip() != ""


def harmonise_form(table: RawTable, log: ProblemLog, today=None):
    """Typed, canonical version of the IMR summary form, one row per completed programme."""
    import pandas as pd

    today = today or _today()
    file = table.file
    raw = table.data
    lines = raw["_line"].to_numpy()
    h = table.headers
    out = pd.DataFrame(index=raw.index)
    out["_line"] = raw["_line"]

    ts, bad = N.parse_timestamps(raw["timestamp"])
    for i in bad[bad].index:
        log.warn(file, int(raw.at[i, "_line"]), h["timestamp"], raw.at[i, "timestamp"],
                 "timestamp not understood; kept as missing (it is not used in the analysis)")
    out["timestamp"] = ts

    code = N.normalise_code(raw["patient_code"])
    log.errors_from_mask(file, lines, h["patient_code"], raw["patient_code"].tolist(),
                         code.isna() | (code == ""), "patient code is missing")
    out["patient_code"] = code.astype("string")

    units = {N.text_key(u): u for u in C.SERVICE_UNITS}
    unit = raw["service_unit"].astype("string").fillna("").map(N.text_key).map(units)
    log.errors_from_mask(file, lines, h["service_unit"], raw["service_unit"].tolist(), unit.isna(),
                         "unknown service unit; expected one of: " + ", ".join(C.SERVICE_UNITS))
    out["service_unit"] = unit.astype("string")
    out["service_type"] = unit.map(lambda u: C.SERVICE_UNITS[u]["service_type"] if isinstance(u, str) else None
                                   ).astype("string")

    for fld, col in (("start_date", "imr_start"), ("stop_date", "imr_end")):
        d, bad = N.parse_dates(raw[fld], preferred=C.FORM_DATE_FORMAT)
        log.errors_from_mask(file, lines, h[fld], raw[fld].tolist(), bad | d.isna(),
                             "missing or not a date (expected dd/mm/yyyy)")
        _date_checks(log, file, lines, h[fld], d, today)
        out[col] = d
    back = (out["imr_end"] < out["imr_start"]).fillna(False)
    log.errors_from_mask(file, lines, h["stop_date"], raw["stop_date"].tolist(), back,
                         "stop date is before start date")

    fmt, bad = N.map_categories(raw["format"], {**C.FORM_FORMATS, "Gruppo": "group", "Individuale": "individual"})
    log.errors_from_mask(file, lines, h["format"], raw["format"].tolist(), bad | fmt.isna(),
                         "IMR format must be Group or Individual")
    out["imr_format"] = fmt.astype("string")
    out["manual_version"] = raw["manual_version"].astype("string").str.strip()

    ses, bad = N.parse_integers(raw["n_sessions"], lo=1)
    log.errors_from_mask(file, lines, h["n_sessions"], raw["n_sessions"].tolist(), bad | ses.isna(),
                         "number of sessions must be a whole number of at least 1")
    out["n_sessions"] = ses

    mods, unknown = N.parse_modules(raw["modules"])
    has_unknown = unknown.map(len) > 0
    log.errors_from_mask(file, lines, h["modules"], unknown.map(lambda t: "; ".join(t)).tolist(), has_unknown,
                         "unknown module title (expected e.g. 'M1. Recovery Strategies')")
    none = ~mods.any(axis=1) & ~has_unknown
    log.errors_from_mask(file, lines, h["modules"], raw["modules"].tolist(), none, "no module ticked")
    for col in C.MODULE_COLUMNS:
        out[col] = mods[col]

    for col in C.IMRS_USER_COLUMNS + C.IMRS_PROVIDER_COLUMNS:
        vals, bad = N.parse_integers(raw[col], lo=C.IMRS_MIN, hi=C.IMRS_MAX)
        log.errors_from_mask(file, lines, h[col], raw[col].tolist(), bad,
                             "IMRS items are scored 1 to 5 (whole numbers)")
        out[col] = vals
    return out


# --------------------------------------------------------------------------------------
# Linkage and the cohort flow
# --------------------------------------------------------------------------------------
def _duplicate_codes(ehrs, log):
    import pandas as pd

    both = pd.concat([e[["patient_code", "source_ehr", "_line"]].assign(file=f) for f, e in ehrs], ignore_index=True)
    both = both[both["patient_code"].notna()]
    dup = both[both.duplicated("patient_code", keep=False)]
    for code, grp in dup.groupby("patient_code", sort=True):
        recs = grp.to_dict("records")
        where = "; ".join(f"{r['file']} line {r['_line']}" for r in recs)
        for r in recs:
            log.error(r["file"], int(r["_line"]), "patient code", code,
                      f"patient code appears more than once in the EHR extracts ({where}); linkage would be ambiguous")


def link(form, ehr, study_start=STUDY_START, study_end=STUDY_END):
    """Decide, for every form row and EHR record, whether it enters the cohort and why.

    Returns ``(form_status, ehr_status)``: Series of reasons aligned with ``form`` and
    ``ehr`` (``"included"`` or an exclusion reason).
    """
    import pandas as pd

    start, end = pd.Timestamp(study_start), pd.Timestamp(study_end)
    form_reason = pd.Series(REASON_INCLUDED, index=form.index, dtype=object)
    outside = (form["imr_end"] < start) | (form["imr_end"] > end) | (form["imr_start"] < start)
    form_reason[outside] = (REASON_OUTSIDE_PERIOD + f" ({study_start} to {study_end})")
    known = form["patient_code"].isin(set(ehr["patient_code"].dropna()))
    form_reason[~outside & ~known] = REASON_NO_EHR
    candidates = form[form_reason == REASON_INCLUDED].sort_values(["imr_end", "imr_start", "_line"], kind="stable")
    repeat = candidates.duplicated("patient_code", keep="first")
    form_reason[repeat[repeat].index] = REASON_REPEAT

    included_codes = set(form.loc[form_reason == REASON_INCLUDED, "patient_code"])
    any_form = set(form["patient_code"].dropna())
    ehr_reason = pd.Series(REASON_INCLUDED, index=ehr.index, dtype=object)
    ehr_reason[~ehr["patient_code"].isin(any_form)] = REASON_NO_FORM
    ehr_reason[ehr["patient_code"].isin(any_form) & ~ehr["patient_code"].isin(included_codes)] = REASON_FORM_EXCLUDED
    return form_reason, ehr_reason


def derive(form_in, ehr_in):
    """Join included form rows with their EHR record and derive the analysis variables."""
    import numpy as np
    import pandas as pd

    ehr = ehr_in.drop(columns=["_line"]).rename(columns={
        "patient_code": "patient_id", "first_access_date": "first_treatment_date",
        "municipality": "residence_municipality"})
    form = form_in.drop(columns=["_line", "timestamp"]).rename(columns={"patient_code": "patient_id"})
    df = form.merge(ehr, on="patient_id", how="left", validate="one_to_one")
    df["age_at_imr_start"] = (df["imr_start"].dt.year - df["birth_year"]).astype("int64")
    df["age_at_first_treatment"] = (df["first_treatment_date"].dt.year - df["birth_year"]).astype("int64")
    df["imr_duration_months"] = ((df["imr_end"] - df["imr_start"]).dt.days / C.DAYS_PER_MONTH).astype("float64")
    df["illness_duration_years"] = ((df["imr_start"] - df["first_treatment_date"]).dt.days
                                    / C.DAYS_PER_YEAR).astype("float64")
    df["residence_district"] = N.municipality_district(df["residence_municipality"])
    df["diagnosis_group"] = N.diagnosis_group(df["diagnosis_icd10"])
    meds = N.atc_classes(df["atc_codes"])
    for col in C.MEDICATION_COLUMNS:
        df[col] = meds[col].to_numpy()
    df["atc_codes"] = df["atc_codes"].map(lambda t: ";".join(t))
    df["n_modules"] = df[C.MODULE_COLUMNS].sum(axis=1).astype("int64")
    user = df[C.IMRS_USER_COLUMNS].astype("Float64")
    prov = df[C.IMRS_PROVIDER_COLUMNS].astype("Float64")
    df["imrs_user_total"] = user.sum(axis=1, skipna=False).astype("float64")
    df["imrs_provider_total"] = prov.sum(axis=1, skipna=False).astype("float64")
    df["imrs_user_mean"] = user.mean(axis=1, skipna=True).astype("float64")
    df["imrs_provider_mean"] = prov.mean(axis=1, skipna=True).astype("float64")
    df["birth_year"] = df["birth_year"].astype("int64")
    df["n_sessions"] = df["n_sessions"].astype("int64")
    for col in ("patient_id", "source_ehr", "service_type", "service_unit", "sex", "residence_municipality",
                "residence_district", "marital_status", "living_condition", "employment_status",
                "diagnosis_icd10", "diagnosis_group", "atc_codes", "imr_format", "manual_version"):
        df[col] = df[col].astype("string")
    for col in C.MODULE_COLUMNS + C.MEDICATION_COLUMNS:
        df[col] = df[col].astype(bool)
    df = df[C.COHORT_COLUMNS].sort_values("patient_id", kind="stable").reset_index(drop=True)
    _ = np  # vectorised throughout
    return df


def clean_raw(raw_dir=None, study_start: str = STUDY_START, study_end: str = STUDY_END,
              today=None) -> CleanResult:
    """Read, validate, harmonise and link the raw exports in ``raw_dir``.

    Parameters
    ----------
    raw_dir : folder with ``efeso_extract.csv``, ``sister_extract.csv`` and
        ``imr_summary_form.csv``; ``None`` means the compendium's ``data/raw``.
    study_start, study_end : the observation period; a programme enters the cohort when
        it started on or after ``study_start`` and stopped on or before ``study_end``.
    today : reference date for "date in the future" checks (default: today).

    Returns
    -------
    CleanResult
        ``cohort`` (one row per patient, :data:`constants.COHORT_COLUMNS`), ``flow``
        (one row per input record), ``data_mode`` and ``warnings``.

    Raises
    ------
    RawDataError
        Listing every unusable value with file, line and column.

    Examples
    --------
    >>> result = clean_raw()  # doctest: +SKIP
    >>> len(result.cohort), result.flow["status"].value_counts().to_dict()  # doctest: +SKIP
    (126, {'included': 252, 'excluded': 7})
    """
    import pandas as pd

    from . import paths
    from .schemas import ehr_schema, form_schema, validate

    raw_dir = paths.resolve(raw_dir, paths.raw_dir())
    if not raw_dir.is_dir():
        raise RawDataError([_folder_problem(raw_dir)])
    today = pd.Timestamp(today) if today is not None else _today()
    log = ProblemLog()
    tables = read_exports(raw_dir, log)
    log.raise_if_any()
    _guard_identifiers(tables)

    ehrs = [(tables[s].file, harmonise_ehr(tables[s], log, today)) for s in ("EFESO", "Sister")]
    form = harmonise_form(tables["form"], log, today)
    _duplicate_codes(ehrs, log)
    log.raise_if_any()
    for file, e in ehrs:
        log.problems.extend(validate(ehr_schema(today.year), e, file))
    log.problems.extend(validate(form_schema(), form, tables["form"].file))
    log.raise_if_any()

    ehr = pd.concat([e.assign(_file=f) for f, e in ehrs], ignore_index=True)
    form_reason, ehr_reason = link(form, ehr, study_start, study_end)
    inc_form = form[form_reason == REASON_INCLUDED]
    inc_ehr = ehr[ehr_reason == REASON_INCLUDED].drop(columns=["_file"])
    later = (inc_form["imr_start"] < inc_form.merge(inc_ehr[["patient_code", "first_access_date"]],
                                                    on="patient_code", how="left")
             ["first_access_date"].to_numpy())
    if later.any():
        for i in inc_form.index[later]:
            log.error(tables["form"].file, int(form.at[i, "_line"]), tables["form"].headers["start_date"],
                      form.at[i, "imr_start"].date(),
                      "IMR start is before the patient's first access in the EHR; check both dates")
        log.raise_if_any()
    cohort = derive(inc_form, inc_ehr)

    flow = pd.concat([
        _flow_rows("form", tables["form"].file, form, form_reason),
        *[_flow_rows(src, tables[src].file, ehr[ehr["_file"] == tables[src].file], ehr_reason)
          for src in ("EFESO", "Sister")],
    ], ignore_index=True)
    _check_flow_balance(flow, tables, cohort)
    warnings = [str(w) for w in log.warnings]
    extra = {tables[s].file: list(tables[s].extra.columns) for s in tables if len(tables[s].extra.columns)}
    return CleanResult(cohort=cohort, flow=flow, data_mode=detect_data_mode(raw_dir), warnings=warnings,
                       extra_columns=extra)


def _guard_identifiers(tables) -> None:
    """Refuse exports carrying direct identifiers (names, fiscal codes, ...)."""
    try:
        from .identifiers import guard_dataframe
    except ImportError:  # pragma: no cover - the guard ships with the package
        return
    for t in tables.values():
        frame = t.data.drop(columns=["_line"])
        frame.columns = [t.headers.get(c, c) for c in frame.columns]
        guard_dataframe(frame, t.file)
        if len(t.extra.columns):
            guard_dataframe(t.extra, t.file)


def _folder_problem(raw_dir):
    from .problems import Problem

    return Problem(str(raw_dir), None, None, None, "raw data folder does not exist")


def _flow_rows(source, file, frame, reason):
    import pandas as pd

    r = reason.reindex(frame.index)
    return pd.DataFrame({
        "source": source,
        "file": file,
        "line": frame["_line"].astype("int64").to_numpy(),
        "patient_id": frame["patient_code"].astype("string").to_numpy(),
        "status": (r == REASON_INCLUDED).map({True: "included", False: "excluded"}).to_numpy(),
        "reason": r.to_numpy(),
    })


def _check_flow_balance(flow, tables, cohort) -> None:
    """Every input record appears once in the flow; included records match the cohort."""
    for src, t in tables.items():
        n_flow = int((flow["source"] == src).sum())
        if n_flow != t.n_records:
            raise AssertionError(f"cohort flow for {t.file} has {n_flow} rows but the file has {t.n_records} records")
    for src in ("form",):
        inc = int(((flow["source"] == src) & (flow["status"] == "included")).sum())
        if inc != len(cohort):
            raise AssertionError(f"{inc} included form rows but {len(cohort)} patients in the cohort")
    inc_ehr = int(((flow["source"] != "form") & (flow["status"] == "included")).sum())
    if inc_ehr != len(cohort):
        raise AssertionError(f"{inc_ehr} included EHR records but {len(cohort)} patients in the cohort")


def cohort_overview(cohort):
    """One row per cohort column: type, non-missing and missing counts, distinct values.

    An aggregate view of the cohort that shows no individual record (safe to display on
    private data).
    """
    import pandas as pd

    return pd.DataFrame({
        "column": cohort.columns,
        "dtype": [str(t) for t in cohort.dtypes],
        "non_missing": cohort.notna().sum().to_numpy(),
        "missing": cohort.isna().sum().to_numpy(),
        "distinct": cohort.nunique(dropna=True).to_numpy(),
    })


def write_outputs(result: CleanResult, processed_dir=None) -> list[Path]:
    """Write ``cohort.parquet`` and ``cohort_flow.csv`` (byte-stable) into ``processed_dir``."""
    from . import paths
    from .cohort import COHORT_FILE, FLOW_FILE

    out = paths.resolve(processed_dir, paths.processed_dir())
    out.mkdir(parents=True, exist_ok=True)
    cohort_path, flow_path = out / COHORT_FILE, out / FLOW_FILE
    result.cohort.to_parquet(cohort_path, index=False, engine="pyarrow", compression="snappy")
    result.flow.sort_values(["source", "line"], kind="stable").to_csv(flow_path, index=False, lineterminator="\n")
    return [cohort_path, flow_path]


def main(argv=None) -> int:
    """``python -m imr_analysis clean [--raw-dir DIR] [--processed-dir DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m imr_analysis clean",
                                     description="Validate and clean the raw exports into the analysis cohort.")
    parser.add_argument("--raw-dir", default="", help="folder of the raw exports (default data/raw)")
    parser.add_argument("--processed-dir", default="", help="where to write the cohort (default data/processed)")
    parser.add_argument("--study-start", default=STUDY_START)
    parser.add_argument("--study-end", default=STUDY_END)
    args = parser.parse_args(argv)
    try:
        result = clean_raw(args.raw_dir or None, args.study_start, args.study_end)
    except (RawDataError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    written = write_outputs(result, args.processed_dir or None)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{len(result.cohort)} patients; cohort flow: "
          + ", ".join(f"{k} {v}" for k, v in result.flow["status"].value_counts().sort_index().items()))
    for p in written:
        print(f"wrote {p}")
    return 0
