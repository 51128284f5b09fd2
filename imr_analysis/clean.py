"""From raw exports to the analysis cohort: validate, harmonise, link, derive, account.

:func:`clean_raw` reads the EFESO and Sister EHR extracts and the IMR summary form,
harmonises the two EHRs (column names, date formats, ICD-10 and ATC formatting,
codings), links each completed programme to its patient's EHR record by the
pseudonymous patient code, derives the analysis variables and returns the cohort (one
row per patient) with the *cohort flow*: every input record of every source, once,
as included or excluded with its reason.

Rules (documented, one by one, in ``data/raw/README.md``):

- Problems that make a value unusable (a malformed date, code or number, an unknown
  service unit or module, an IMRS item outside 1-5, a stop date before the start, a
  date in the future or before 1900, a duplicated patient code in the EHRs, a missing
  required value) are fatal: all of them are collected and raised together as
  :class:`RawDataError`, each naming file, line and column.
- Records that are valid but outside the study are excluded and logged in the flow:
  a form row completed outside the observation period; a form row with no EHR record;
  a further programme of a patient already included; an EHR record with no form row.
  A form row gets the first of its reasons in that order (:func:`link`), and the
  programme analysed is the first completed one: earliest stop date, then earliest
  start date, then earliest line of the form (:data:`FIRST_PROGRAMME_ORDER`).
- A linked form row is checked against its EHR record (IMR start not before the first
  access) whatever its exclusion reason: bad data is reported, not hidden by a rule.
- Missing social variables and missing IMRS items are kept (missing) and counted.
- Oddities that do not change the analysis are kept with a warning (``warnings``): an
  unknown column, an unreadable form timestamp, empty rows, a service unit whose EHR
  is not the one holding the patient's code (the service type is the unit's).

:func:`check_flow` verifies that the flow lists every record of every file exactly
once and that its included rows are the cohort.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import constants as C
from . import normalise as N
from .ingest import RawTable, detect_data_mode, read_exports
from .problems import ProblemLog, RawDataError, missing_folder

#: The paper's observation period: programmes completed from April 2017 to July 2021.
STUDY_START = "2017-04-01"
STUDY_END = "2021-07-31"

FLOW_COLUMNS = ["source", "file", "line", "patient_id", "status", "reason"]

REASON_INCLUDED = "included"
REASON_OUTSIDE_PERIOD = "programme completed outside the observation period"
REASON_NO_EHR = "no EFESO or Sister record for this patient code"
REASON_REPEAT = ("further programme of a patient already included (the first programme completed within the "
                 "observation period is analysed)")
REASON_NO_FORM = "no IMR summary form row for this patient (programme not completed or not reported)"
REASON_FORM_EXCLUDED = "the patient's only IMR summary form row(s) were excluded"

#: The exclusion reasons of a form row, in the order they are checked: a row that fits
#: several is logged with the first. The period depends on the row alone and linkage on
#: the row and the EHRs, while "further programme" is relative to the patient's other
#: eligible rows, so it comes last: a programme outside the period or without an EHR
#: record is never the one analysed, and never makes another one a "further" programme.
FORM_EXCLUSION_ORDER = (REASON_OUTSIDE_PERIOD, REASON_NO_EHR, REASON_REPEAT)

#: How the programme analysed is chosen among a patient's eligible form rows (inside the
#: period, linked to an EHR record): the first in this order, i.e. the earliest stop date
#: (the first *completed* programme, as in the paper), on a tie the earliest start date
#: (the programme the patient began first, hence the longer one), then the earliest line
#: of the form (Google Forms appends answers in the order they were submitted). Each
#: line is unique, so the choice never depends on how rows happen to be sorted.
FIRST_PROGRAMME_ORDER = ("imr_end", "imr_start", "_line")


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


def _parse_date_field(log, file, lines, column, raw_values, preferred, today, what="a date"):
    """Parse one date column and report malformed, future and pre-1900 dates."""
    r = N.parse_date_column(raw_values, preferred=preferred, earliest=N.EARLIEST_DATE, latest=today)
    values = _Cells(raw_values)
    log.errors_from_mask(file, lines, column, values, r.bad,
                         f"not {what} (expected dd/mm/yyyy or yyyy-mm-dd)")
    log.errors_from_mask(file, lines, column, values, r.too_late, "date is in the future")
    log.errors_from_mask(file, lines, column, values, r.too_early, "date is before 1900")
    return r.dates, (r.bad | r.too_late | r.too_early)


class _Cells:
    """Positional, lazy view of a column for :meth:`ProblemLog.errors_from_mask`: only the
    cells reported are converted (``Series.tolist()`` of a million rows per check is not)."""

    def __init__(self, series, convert=None):
        self._series = series
        self._convert = convert

    def __getitem__(self, i):
        value = self._series.iloc[int(i)]
        return self._convert(value) if self._convert is not None else value

    def __len__(self):
        return len(self._series)


def harmonise_ehr(table: RawTable, log: ProblemLog, today=None):
    """Typed, canonical version of one EHR extract (EFESO or Sister).

    Columns: patient_code, birth_year, sex, municipality, first_access_date,
    diagnosis_icd10, atc_codes (valid codes joined by ";"), programme_start_date, education_years,
    marital_status, living_condition, employment_status, source_ehr, _line. The text
    columns but the patient code are ``Categorical``, as they stay in the cohort (:func:`derive`).
    """
    import pandas as pd

    today = today or _today()
    src, file = table.source, table.file
    raw = table.data
    lines = raw["_line"].to_numpy()
    fmt = C.EHR_FORMATS[src]
    out = {"_line": raw["_line"], "source_ehr": _constant_category(src, raw.index)}  # one frame at the end

    code = N.normalise_code(raw["patient_code"])
    log.errors_from_mask(file, lines, table.headers["patient_code"], _Cells(raw["patient_code"]),
                         code.isna() | (code == ""), "patient code is missing")
    out["patient_code"] = code.astype("string")

    by, bad = N.parse_integers(raw["birth_year"], lo=1900, hi=today.year)
    log.errors_from_mask(file, lines, table.headers["birth_year"], _Cells(raw["birth_year"]),
                         bad, f"birth year must be a year between 1900 and {today.year}")
    log.errors_from_mask(file, lines, table.headers["birth_year"], _Cells(raw["birth_year"]),
                         by.isna() & ~bad, "birth year is missing")
    out["birth_year"] = by

    for fld in ("sex", "marital_status", "living_condition", "employment_status"):
        vals, bad = N.map_categories(raw[fld], C.EHR_CODINGS[src][fld], as_category=True)
        allowed = ", ".join(repr(k) for k in C.EHR_CODINGS[src][fld])
        log.errors_from_mask(file, lines, table.headers[fld], _Cells(raw[fld]), bad,
                             f"unknown code; {src} uses {allowed}")
        out[fld] = vals
    log.errors_from_mask(file, lines, table.headers["sex"], _Cells(raw["sex"]),
                         out["sex"].isna() & N.blank(raw["sex"]), "sex is missing")

    out["municipality"] = N.canonical_municipality(raw["municipality"], as_category=True)
    log.errors_from_mask(file, lines, table.headers["municipality"], _Cells(raw["municipality"]),
                         N.blank(raw["municipality"]),
                         "municipality of residence is missing (needed for the health district)")

    for fld in ("first_access_date", "programme_start_date"):
        d, _ = _parse_date_field(log, file, lines, table.headers[fld], raw[fld], fmt["date_format"], today)
        out[fld] = d
    log.errors_from_mask(file, lines, table.headers["first_access_date"], _Cells(raw["first_access_date"]),
                         N.blank(raw["first_access_date"]), "date of first access is missing")
    before_birth = (out["first_access_date"].dt.year.astype("Int64") < out["birth_year"]).fillna(False)
    log.errors_from_mask(file, lines, table.headers["first_access_date"], _Cells(raw["first_access_date"]),
                         before_birth.to_numpy(dtype=bool),
                         f"first access is before the year of birth ({table.headers['birth_year']})")

    icd, bad = N.normalise_icd10(raw["diagnosis"], as_category=True)
    log.errors_from_mask(file, lines, table.headers["diagnosis"], _Cells(raw["diagnosis"]), bad,
                         "malformed ICD-10 code (expected e.g. F20.0 or F200)")
    log.errors_from_mask(file, lines, table.headers["diagnosis"], _Cells(raw["diagnosis"]),
                         icd.isna() & ~bad, "ICD-10 diagnosis is missing")
    out["diagnosis_icd10"] = icd

    log.errors_from_mask(file, lines, table.headers["medications"],
                         _Cells(raw["medications"], N.malformed_atc_text), N.malformed_atc(raw["medications"]),
                         "malformed ATC code (expected e.g. N05AH03)")
    out["atc_codes"] = N.atc_text(raw["medications"], as_category=True)  # ";"-joined

    edu, bad = N.parse_integers(raw["education_years"], lo=0, hi=30)
    log.errors_from_mask(file, lines, table.headers["education_years"], _Cells(raw["education_years"]), bad,
                         "years of education must be a whole number between 0 and 30")
    out["education_years"] = edu
    return pd.DataFrame(out, index=raw.index, copy=False)


@N.per_distinct
def _service_type(raw_units):
    """Service type (CMHC, SerD, EDP) of the form's service-unit answers."""
    types = {u: info["service_type"] for u, info in C.SERVICE_UNITS.items()}
    return N.normalise_service_unit(raw_units)[0].map(types).astype("string")


def harmonise_form(table: RawTable, log: ProblemLog, today=None):
    """Typed, canonical version of the IMR summary form, one row per completed programme.

    The text columns but the patient code are ``Categorical``, as they stay in the cohort (:func:`derive`).
    ``service_type`` is that of the service unit that delivered the programme (the form's
    answer), never inferred from the EHR holding the patient's code: the eating-disorder
    programme keeps its records in EFESO, as the CMHCs do, and a patient recorded by one
    service may attend an IMR programme of another (:func:`_linkage_warnings`).
    """
    import pandas as pd

    today = today or _today()
    file = table.file
    raw = table.data
    lines = raw["_line"].to_numpy()
    h = table.headers
    out = {"_line": raw["_line"]}  # columns; one frame at the end, without copies

    ts, bad = N.parse_timestamps(raw["timestamp"])
    log.warn_lines(file, raw["_line"][bad.to_numpy(dtype=bool)], h["timestamp"],
                   "timestamp not understood; kept as missing (it is not used in the analysis)")
    out["timestamp"] = ts

    code = N.normalise_code(raw["patient_code"])
    log.errors_from_mask(file, lines, h["patient_code"], _Cells(raw["patient_code"]),
                         code.isna() | (code == ""), "patient code is missing")
    out["patient_code"] = code.astype("string")

    unit, bad = N.normalise_service_unit(raw["service_unit"], as_category=True)
    log.errors_from_mask(file, lines, h["service_unit"], _Cells(raw["service_unit"]), bad,
                         "unknown service unit; expected one of: " + ", ".join(C.SERVICE_UNITS))
    log.errors_from_mask(file, lines, h["service_unit"], _Cells(raw["service_unit"]), unit.isna() & ~bad,
                         "service unit is missing")
    out["service_unit"] = unit
    out["service_type"] = _service_type(raw["service_unit"], as_category=True)

    for fld, col in (("start_date", "imr_start"), ("stop_date", "imr_end")):
        d, bad = _parse_date_field(log, file, lines, h[fld], raw[fld], C.FORM_DATE_FORMAT, today)
        log.errors_from_mask(file, lines, h[fld], _Cells(raw[fld]), N.blank(raw[fld]),
                             f"{'IMR start' if fld == 'start_date' else 'IMR stop'} date is missing")
        out[col] = d
    back = (out["imr_end"] < out["imr_start"]).fillna(False)
    log.errors_from_mask(file, lines, h["stop_date"], _Cells(raw["stop_date"]), back,
                         "stop date is before start date")

    fmt, bad = N.map_categories(raw["format"], N.IMR_FORMAT_CODING, as_category=True)
    log.errors_from_mask(file, lines, h["format"], _Cells(raw["format"]), bad | fmt.isna(),
                         "IMR format must be Group or Individual")
    out["imr_format"] = fmt
    out["manual_version"] = N.canonical_manual_version(raw["manual_version"], as_category=True)

    ses, bad = N.parse_integers(raw["n_sessions"], lo=1)
    log.errors_from_mask(file, lines, h["n_sessions"], _Cells(raw["n_sessions"]), bad,
                         "number of sessions must be a whole number of at least 1")
    log.errors_from_mask(file, lines, h["n_sessions"], _Cells(raw["n_sessions"]), ses.isna() & ~bad,
                         "number of sessions is missing")
    out["n_sessions"] = ses

    mods, _ = N.parse_modules(raw["modules"])
    has_unknown = N.unknown_modules(raw["modules"])
    log.errors_from_mask(file, lines, h["modules"], _Cells(raw["modules"], N.unknown_modules_text), has_unknown,
                         "unknown module title (expected e.g. 'M1. Recovery Strategies')")
    none = ~mods.any(axis=1) & ~has_unknown
    log.errors_from_mask(file, lines, h["modules"], _Cells(raw["modules"]), none, "no module ticked")
    for col in C.MODULE_COLUMNS:
        out[col] = mods[col]

    for col in C.IMRS_USER_COLUMNS + C.IMRS_PROVIDER_COLUMNS:
        vals, bad = N.parse_imrs_item(raw[col])
        log.errors_from_mask(file, lines, h[col], _Cells(raw[col]), bad,
                             "IMRS items are scored 1 to 5 (whole numbers)")
        out[col] = vals  # Int8 here; Int64 in the cohort
    return pd.DataFrame(out, index=raw.index, copy=False)


# --------------------------------------------------------------------------------------
# Linkage and the cohort flow
# --------------------------------------------------------------------------------------
def _duplicate_codes(ehrs, log, headers=None):
    """Report every patient code that appears more than once across the EHR extracts.

    A code twice is fatal whatever the other fields say: linkage to the form would be
    ambiguous. The message says whether sex and birth year agree (probably one patient
    registered twice, or in both services) or disagree (probably two patients sharing a
    code), to help whoever fixes the extract.
    """
    import pandas as pd

    import numpy as np

    headers = headers or {}
    keys = [_keys_of(e) for _, e in ehrs]
    if all(k is not None for k in keys):  # integer keys: find the (rare) repeated codes first
        allk = np.concatenate(keys)
        counts = np.bincount(allk[allk >= 0], minlength=1)
        if not (counts > 1).any():
            return
        ehrs = [(f, e[(counts > 1)[np.maximum(k, 0)] & (k >= 0)]) for (f, e), k in zip(ehrs, keys)]
    both = pd.concat([e[["patient_code", "source_ehr", "_line", "sex", "birth_year"]]
                      .assign(file=f, sex=_string_column(e["sex"]), source_ehr=_string_column(e["source_ehr"]))
                      for f, e in ehrs], ignore_index=True)
    both = both[both["patient_code"].notna() & (both["patient_code"] != "")]
    dup = both[both.duplicated("patient_code", keep=False)]
    if dup.empty:
        return
    n_sex = dup.groupby("patient_code")["sex"].nunique(dropna=False)
    n_by = dup.groupby("patient_code")["birth_year"].nunique(dropna=False)
    for code, grp in dup.groupby("patient_code", sort=True):
        recs = grp.to_dict("records")
        where = "; ".join(f"{r['file']} line {r['_line']}" for r in recs)
        scope = ("in both EHRs" if grp["source_ehr"].nunique() > 1 else f"within {recs[0]['file']}")
        sexes = " / ".join(str(r["sex"]) for r in recs)
        years = " / ".join(str(r["birth_year"]) for r in recs)
        if n_sex[code] == 1 and n_by[code] == 1:
            detail = (f"sex and birth year agree ({recs[0]['sex']}, {recs[0]['birth_year']}): probably one "
                      "patient recorded twice; keep one record")
        else:
            parts = []
            if n_sex[code] > 1:
                parts.append(f"sex disagrees ({sexes})")
            if n_by[code] > 1:
                parts.append(f"birth year disagrees ({years})")
            if n_sex[code] == 1:
                parts.append(f"sex agrees ({recs[0]['sex']})")
            if n_by[code] == 1:
                parts.append(f"birth year agrees ({recs[0]['birth_year']})")
            detail = " and ".join(parts) + ": probably different patients sharing a code"
        for r in recs:
            column = headers.get(r["file"], "patient code")
            log.error(r["file"], int(r["_line"]), column, code,
                      f"patient code appears more than once in the EHR extracts, {scope} ({where}); "
                      f"linkage would be ambiguous; {detail}")


def patient_keys(*codes):
    """Integer keys of patient codes, shared across the given Series (-1 where missing).

    Linking a million form rows to a million EHR records compares integers instead of
    strings: the codes are hashed once, here.

    Examples
    --------
    >>> import pandas as pd
    >>> [k.tolist() for k in patient_keys(pd.Series(["A1", "B2", None]), pd.Series(["B2", "C3"]))]
    [[0, 1, -1], [1, 2]]
    """
    import numpy as np
    import pandas as pd

    sizes = [len(c) for c in codes]
    allc = pd.concat([c.astype("string").reset_index(drop=True) for c in codes], ignore_index=True)
    keys, _ = pd.factorize(allc, use_na_sentinel=True)
    keys = np.asarray(keys, dtype=np.int64)
    return list(np.split(keys, np.cumsum(sizes)[:-1]))


def _keys_of(frame):
    """The ``_key`` column when the cleaner added one, else ``None``."""
    return frame["_key"].to_numpy() if "_key" in frame.columns else None


def _key_counts(keys, size=None):
    """How many times each key (int >= 0) occurs; missing keys (-1) are not counted."""
    import numpy as np

    keys = keys[keys >= 0]
    return np.bincount(keys, minlength=size or 0)


def _first_of_each(keys):
    """Positions of the first occurrence of each key in ``keys`` (int array)."""
    import numpy as np

    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    start = np.ones(len(sk), dtype=bool)
    start[1:] = sk[1:] != sk[:-1]
    return order[start]


def _row_of(keys, table_keys):
    """For each of ``keys`` (int, -1 missing), the row of ``table_keys`` holding it; -1 where
    none does. With a key on several rows, one of them."""
    import numpy as np

    row = np.full(int(max(keys.max(initial=-1), table_keys.max(initial=-1))) + 2, -1, dtype=np.int64)
    valid = np.flatnonzero(table_keys >= 0)
    row[table_keys[valid]] = valid  # the last slot (key -1) stays -1: missing keys match nothing
    return row[keys]


def _member(keys, among):
    """``keys`` (int, -1 missing) found in ``among`` (int): boolean array."""
    return _row_of(keys, among) >= 0


def _imr_start_before_first_access(form, ehrs, form_table, log) -> None:
    """Report every form row whose IMR start is before the first access recorded in the
    EHR record its patient code links to.

    An IMR programme cannot start before the patient's first access to the services. The
    rule is checked on *every* form row that links to an EHR record, whatever
    :func:`link` later decides for it (included, outside the observation period, further
    programme): an impossible pair of dates is an error in the data, and an exclusion must
    not hide it. Rows whose code is in neither EHR have nothing to be compared with; a
    missing or malformed date is reported by its own rule and never flagged here.

    Parameters
    ----------
    form : the harmonised form (:func:`harmonise_form`) with its ``_key`` column.
    ehrs : list of ``(file name, harmonised EHR extract)`` pairs, each extract with its
        ``_key`` column; the patient codes must be unique across them
        (:func:`_duplicate_codes` has passed).
    form_table : the form's :class:`RawTable` (file name, header, raw start dates).
    log : where the errors go, one per row, naming file, line and column.
    """
    import numpy as np
    import pandas as pd

    ehr_keys = np.concatenate([e["_key"].to_numpy() for _, e in ehrs])
    first_access = np.concatenate([e["first_access_date"].to_numpy(dtype="datetime64[ns]") for _, e in ehrs])
    row = _row_of(form["_key"].to_numpy(), ehr_keys)  # -1: the code is in neither EHR
    linked = np.flatnonzero(row >= 0)
    start = form["imr_start"].to_numpy(dtype="datetime64[ns]")
    early = linked[start[linked] < first_access[row[linked]]]  # NaT compares False: never flagged
    if not len(early):
        return
    ends = np.cumsum([len(e) for _, e in ehrs])  # record r is in ehrs[searchsorted(ends, r, "right")]
    ehr_lines = np.concatenate([e["_line"].to_numpy() for _, e in ehrs])
    raw_start = form_table.data["start_date"]
    for pos in early:
        r = row[pos]
        ehr_file = ehrs[int(np.searchsorted(ends, r, side="right"))][0]
        log.error(form_table.file, int(form["_line"].iloc[pos]), form_table.headers["start_date"],
                  raw_start.iloc[pos],
                  f"IMR start is before the patient's first access in the EHR "
                  f"({pd.Timestamp(first_access[r]):%d/%m/%Y}, {ehr_file} line {int(ehr_lines[r])}); "
                  "check both dates")


def link(form, ehr, study_start=STUDY_START, study_end=STUDY_END):
    """Decide, for every form row and EHR record, whether it enters the cohort and why.

    A form row is checked against :data:`FORM_EXCLUSION_ORDER` and gets the first reason
    that applies:

    1. the programme did not start and stop within ``study_start`` to ``study_end``;
    2. its patient code is in neither EHR;
    3. another row of the same patient passed 1 and 2 and comes first in
       :data:`FIRST_PROGRAMME_ORDER` (earliest stop date, then earliest start date, then
       earliest line): a further programme.

    So a row outside the period is logged as such even when its patient has another,
    included programme, and only programmes inside the period and linked compete for
    "first completed". An EHR record is included when one of its patient's form rows is,
    else excluded as having no form row or only excluded ones.

    Parameters
    ----------
    form : harmonised form rows (``patient_code``, ``imr_start``, ``imr_end``, ``_line``).
    ehr : harmonised EHR records of both extracts (``patient_code``), codes unique.
    study_start, study_end : the observation period (inclusive).

    Returns
    -------
    tuple of Series
        ``(form_status, ehr_status)``: reasons aligned with ``form`` and ``ehr``
        (``"included"`` or an exclusion reason).
    """
    import numpy as np
    import pandas as pd

    fk, ek = _keys_of(form), _keys_of(ehr)
    if fk is None or ek is None:
        fk, ek = patient_keys(form["patient_code"], ehr["patient_code"])
    start, end = pd.Timestamp(study_start), pd.Timestamp(study_end)
    outside_reason = REASON_OUTSIDE_PERIOD + f" ({study_start} to {study_end})"
    # code k (k >= 1) is the k-th reason of FORM_EXCLUSION_ORDER; each step codes only the
    # rows that no earlier step excluded, so a row keeps the first reason that applies
    reasons = np.array([REASON_INCLUDED, outside_reason, REASON_NO_EHR, REASON_REPEAT], dtype=object)
    code = np.zeros(len(form), dtype=np.int8)
    outside = ((form["imr_end"] < start) | (form["imr_end"] > end) | (form["imr_start"] < start)).to_numpy(dtype=bool)
    code[outside] = 1
    known = _member(fk, ek)
    code[~outside & ~known] = 2
    cand = np.flatnonzero(code == 0)
    if len(cand):
        # the first completed programme of each patient, in FIRST_PROGRAMME_ORDER (np.lexsort
        # sorts by its last key first); the others are further programmes
        keys = [form[col].to_numpy()[cand] for col in reversed(FIRST_PROGRAMME_ORDER)]
        order = cand[np.lexsort(keys)]
        first = _first_of_each(fk[order])
        repeat = np.ones(len(order), dtype=bool)
        repeat[first] = False
        code[order[repeat]] = 3
    form_reason = pd.Series(reasons[code], index=form.index, dtype=object, copy=False)

    ehr_code = np.zeros(len(ehr), dtype=np.int8)
    in_form = _member(ek, fk)
    ehr_code[~in_form] = 1
    ehr_code[in_form & ~_member(ek, fk[code == 0])] = 2
    ehr_reasons = np.array([REASON_INCLUDED, REASON_NO_FORM, REASON_FORM_EXCLUDED], dtype=object)
    ehr_reason = pd.Series(ehr_reasons[ehr_code], index=ehr.index, dtype=object, copy=False)
    return form_reason, ehr_reason


def derive(form_in, ehr_in, form_rows=None, ehr_rows=None, consume=False):
    """Join included form rows with their EHR record and derive the analysis variables.

    ``form_rows`` / ``ehr_rows`` (boolean masks) select the included rows of larger frames
    without copying them first; by default every row is used. With ``consume=True`` each
    input column is let go of as soon as it has been gathered into the cohort (the given
    frames keep only ``_line``, ``_file``, ``_key`` and ``patient_code``), so that a large
    cohort is not built while a full copy of its inputs is still held.
    """
    import numpy as np
    import pandas as pd

    fk, ek = _keys_of(form_in), _keys_of(ehr_in)
    if fk is None or ek is None:
        fk, ek = patient_keys(form_in["patient_code"], ehr_in["patient_code"])
    form_pos = np.arange(len(form_in)) if form_rows is None else np.flatnonzero(form_rows)
    ehr_pos = np.arange(len(ehr_in)) if ehr_rows is None else np.flatnonzero(ehr_rows)
    fk, ek = fk[form_pos], ek[ehr_pos]
    # one EHR record per form row (a left join, one to one, on the patient code)
    if (fk < 0).any() or (_key_counts(fk) > 1).any() or (_key_counts(ek) > 1).any():
        raise ValueError("derive: the form rows and the EHR records must each hold a patient at most once")
    take = _row_of(fk, ek)
    if (take < 0).any():
        raise ValueError("derive: a form row has no EHR record")
    # rows in patient-code order (pyarrow's stable sort of the text, as sort_values would give)
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pa.array(form_in["patient_code"].astype("string").array).take(pa.array(form_pos))
    order = pc.array_sort_indices(ids, order="ascending", null_placement="at_end").to_numpy()
    columns = {}
    kept = ("_line", "_key", "_file", "patient_code")  # what the caller still needs; not in the EHR's part
    for frame, rows, skip, rename in (
            (form_in, form_pos[order], ("_line", "_key", "timestamp"), {"patient_code": "patient_id"}),
            (ehr_in, ehr_pos[take[order]], kept,
             {"first_access_date": "first_treatment_date", "municipality": "residence_municipality"})):
        for col in list(frame.columns):
            if col not in skip:
                columns[rename.get(col, col)] = frame[col].array.take(rows)
            if consume and col not in kept:
                del frame[col]
    df = pd.DataFrame(columns, copy=False)
    del columns
    df["age_at_imr_start"] = (df["imr_start"].dt.year - df["birth_year"]).astype("int64")
    df["age_at_first_treatment"] = (df["first_treatment_date"].dt.year - df["birth_year"]).astype("int64")
    df["imr_duration_months"] = ((df["imr_end"] - df["imr_start"]).dt.days / C.DAYS_PER_MONTH).astype("float64")
    df["illness_duration_years"] = ((df["imr_start"] - df["first_treatment_date"]).dt.days
                                    / C.DAYS_PER_YEAR).astype("float64")
    df["residence_district"] = N.municipality_district(df["residence_municipality"].astype("category"),
                                                       as_category=True)
    df["diagnosis_group"] = N.diagnosis_group(df["diagnosis_icd10"].astype("category"), as_category=True)
    meds = N.atc_classes(df["atc_codes"].astype("category"))  # codes joined by ";" (harmonise_ehr)
    for col in C.MEDICATION_COLUMNS:
        df[col] = meds[col].to_numpy()
    df["n_modules"] = df[C.MODULE_COLUMNS].sum(axis=1).astype("int64")
    for who, cols in (("user", C.IMRS_USER_COLUMNS), ("provider", C.IMRS_PROVIDER_COLUMNS)):
        # item by item, so that no patients x items table is built (the sums of whole
        # numbers are exact in floating point, whatever the order of the additions)
        answered_sum = np.zeros(len(df), dtype="float64")
        answered = np.zeros(len(df), dtype="int64")
        for col in cols:  # no object round trip for nullable integers
            item = df[col].to_numpy(dtype="float64", na_value=np.nan)
            seen = ~np.isnan(item)
            answered += seen
            answered_sum += np.where(seen, item, 0.0)
        # the total is missing if any item is missing; the mean is that of the answered items
        df[f"imrs_{who}_total"] = np.where(answered == len(cols), answered_sum, np.nan)
        with np.errstate(invalid="ignore"):
            df[f"imrs_{who}_mean"] = np.where(answered > 0, answered_sum / np.maximum(answered, 1), np.nan)
    df["birth_year"] = df["birth_year"].astype("int64")
    df["n_sessions"] = df["n_sessions"].astype("int64")
    for col in C.IMRS_USER_COLUMNS + C.IMRS_PROVIDER_COLUMNS:
        df[col] = df[col].astype("Int64")
    df["patient_id"] = _string_column(df["patient_id"])
    for col in C.COHORT_CATEGORICAL_COLUMNS:
        df[col] = _category_column(df[col])
    for col in C.MODULE_COLUMNS + C.MEDICATION_COLUMNS:
        if df[col].dtype != bool:
            df[col] = df[col].astype(bool)
    return df[C.COHORT_COLUMNS]


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
        ``cohort`` (one row per patient, :data:`constants.COHORT_COLUMNS`; the text of
        :data:`constants.COHORT_CATEGORICAL_COLUMNS` as ``category``), ``flow`` (one row
        per input record), ``data_mode`` and ``warnings``.

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
        raise RawDataError([missing_folder(raw_dir)])
    today = pd.Timestamp(today) if today is not None else _today()
    log = ProblemLog()
    tables = read_exports(raw_dir, log)
    log.raise_if_any()
    _guard_identifiers(tables)

    ehrs = [(tables[s].file, harmonise_ehr(tables[s], log, today)) for s in ("EFESO", "Sister")]
    form = harmonise_form(tables["form"], log, today)
    keys = patient_keys(form["patient_code"], *(e["patient_code"] for _, e in ehrs))
    form["_key"] = keys[0]
    for (_, e), k in zip(ehrs, keys[1:]):
        e["_key"] = k
    _duplicate_codes(ehrs, log, {tables[s].file: tables[s].headers.get("patient_code") for s in ("EFESO", "Sister")})
    log.raise_if_any()
    for (file, e), s in zip(ehrs, ("EFESO", "Sister")):
        heads = {**tables[s].headers, "diagnosis_icd10": tables[s].headers.get("diagnosis")}
        log.problems.extend(validate(ehr_schema(today.year), e, file, heads))
    fh = tables["form"].headers
    form_heads = {**fh, "imr_start": fh.get("start_date"), "imr_end": fh.get("stop_date"),
                  "imr_format": fh.get("format")}
    log.problems.extend(validate(form_schema(), form, tables["form"].file, form_heads))
    _imr_start_before_first_access(form, ehrs, tables["form"], log)  # every linked row, before any exclusion
    log.raise_if_any()
    # from here on only the line numbers of the raw records are needed: the rest of the raw
    # text is let go before the cohort is built, so that it does not add to the peak memory
    tables = {s: replace(t, data=t.data[["_line"]]) for s, t in tables.items()}

    ehr = _concat_records([e.assign(_file=_constant_category(f, e.index)) for f, e in ehrs])
    del ehrs
    form_reason, ehr_reason = link(form, ehr, study_start, study_end)
    _linkage_warnings(form, ehr, form_reason, tables, log)
    form_in = (form_reason == REASON_INCLUDED).to_numpy(dtype=bool)
    ehr_in = (ehr_reason == REASON_INCLUDED).to_numpy(dtype=bool)
    cohort = derive(form, ehr, form_rows=form_in, ehr_rows=ehr_in, consume=True)

    flow = pd.concat([
        _flow_rows("form", tables["form"].file, form, form_reason),
        *[_flow_rows(src, tables[src].file, ehr.loc[part, ["_line", "patient_code"]], ehr_reason[part])
          for src in ("EFESO", "Sister") for part in [(ehr["_file"] == tables[src].file).to_numpy(dtype=bool)]],
    ], ignore_index=True)
    check_flow(flow, tables, cohort)
    warnings = [str(w) for w in log.warnings]
    extra = {tables[s].file: list(tables[s].extra.columns) for s in tables if len(tables[s].extra.columns)}
    return CleanResult(cohort=cohort, flow=flow, data_mode=detect_data_mode(raw_dir), warnings=warnings,
                       extra_columns=extra)


def _guard_identifiers(tables) -> None:
    """Refuse exports carrying direct identifiers (names, fiscal codes, ...).

    :func:`imr_analysis.identifiers.guard_dataframe` checks each file (its contract
    columns and the columns kept aside); its findings, from all files, are raised
    together as one :class:`RawDataError` naming file, line and column, with the value
    masked.
    """
    try:
        from .identifiers import guard_dataframe
    except ImportError:  # pragma: no cover - the guard ships with the package
        return
    problems = []
    for t in tables.values():
        frame = t.data.drop(columns=["_line"])
        frame.columns = [t.headers.get(c, c) for c in frame.columns]
        frames = [frame] + ([t.extra] if len(t.extra.columns) else [])
        for f in frames:
            try:
                guard_dataframe(f, t.file)
            except ValueError as err:
                findings = getattr(err, "findings", None)
                if not findings:
                    raise
                problems += [_identifier_problem(t, finding) for finding in findings]
    if problems:
        raise RawDataError(problems)


def _identifier_problem(table, finding):
    from .problems import Problem

    try:
        from .identifiers import KIND_LABELS
        kind = KIND_LABELS.get(finding.kind, finding.kind)
    except ImportError:  # pragma: no cover
        kind = finding.kind
    row = getattr(finding, "row", None)
    line = int(table.data["_line"].iloc[row - 1]) if row and row <= len(table.data) else None
    detail = f" ({finding.detail})" if getattr(finding, "detail", "") else ""
    return Problem(table.file, line, finding.column, finding.masked or None,
                   f"direct identifier: {kind}{detail}; remove this column from the export and export again "
                   "(the value shown is masked)")


def _text_column(codes, names, dtype="str"):
    """A text column (``str``, or ``string``) of ``names[codes]`` (code -1: missing), built by
    pyarrow from the codes instead of from a million Python strings.

    Examples
    --------
    >>> import numpy as np
    >>> _text_column(np.array([1, 0, -1, 1]), ["excluded", "included"]).tolist()
    ['included', 'excluded', nan, 'included']
    >>> _text_column(np.array([1, -1]), ["excluded", "included"], dtype="string").tolist()
    ['included', <NA>]
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    codes = np.asarray(codes, dtype=np.int32)
    indices = pa.array(codes, mask=codes < 0)
    text = pa.DictionaryArray.from_arrays(indices, pa.array([str(n) for n in names], type=pa.large_string()))
    return pd.array(text.cast(pa.large_string()), dtype=dtype)


def _string_column(s):
    """``s.astype("string")``; a ``Categorical`` is spelled out by pyarrow from its codes
    (pandas would build a Python string per row first).

    Examples
    --------
    >>> import pandas as pd
    >>> _string_column(pd.Series(["b", None, "a", "b"], dtype="category")).tolist()
    ['b', <NA>, 'a', 'b']
    """
    import pandas as pd

    if not isinstance(s.dtype, pd.CategoricalDtype):
        return s.astype("string")
    return pd.Series(_text_column(s.cat.codes.to_numpy(), s.cat.categories, dtype="string"), index=s.index,
                     name=s.name, copy=False)


def _category_column(s):
    """``s`` as a ``Categorical`` of text whose categories are the values it holds, sorted.

    The cohort keeps its low-cardinality text (service, sex, diagnosis, ...) categorical:
    one small integer per row instead of one string. Its categories are exactly the values
    present, in sorted order, so the dtype depends on the values alone, not on the path
    that built the column (unused categories, first-seen order).

    Examples
    --------
    >>> import pandas as pd
    >>> s = _category_column(pd.Series(pd.Categorical(["b", None, "a"], categories=["z", "b", "a"])))
    >>> s.tolist(), list(s.cat.categories)
    (['b', nan, 'a'], ['a', 'b'])
    >>> list(_category_column(pd.Series(["M", "F", "M"], dtype="string")).cat.categories)
    ['F', 'M']
    """
    import numpy as np
    import pandas as pd

    if not isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype("category")
    codes = s.cat.codes.to_numpy()
    names = np.asarray(s.cat.categories.astype(str), dtype=object)
    used = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(names)))
    order = used[np.argsort(names[used], kind="stable")]
    recode = np.full(len(names) + 1, -1, dtype=np.int64)  # the last slot maps code -1 (missing) to -1
    recode[order] = np.arange(len(order))
    return pd.Series(pd.Categorical.from_codes(recode[codes], categories=pd.Index(list(names[order]), dtype="str"),
                                               validate=False), index=s.index, name=s.name, copy=False)


def _constant_category(value, index):
    """A ``Categorical`` Series holding ``value`` on every row of ``index``."""
    import numpy as np
    import pandas as pd

    return pd.Series(pd.Categorical.from_codes(np.zeros(len(index), dtype=np.int8), categories=[value]),
                     index=index, copy=False)


def _concat_records(frames):
    """``pd.concat(frames, ignore_index=True)`` keeping categorical columns categorical.

    pandas turns a column that is categorical in every frame, but with other categories
    in each, into a column of Python strings; here the categories are united first.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"x": pd.Categorical(["EFESO"])})
    >>> b = pd.DataFrame({"x": pd.Categorical(["Sister", "Sister"])})
    >>> both = _concat_records([a, b])
    >>> str(both["x"].dtype), both["x"].tolist()
    ('category', ['EFESO', 'Sister', 'Sister'])
    """
    import pandas as pd
    from pandas.api.types import union_categoricals

    frames = list(frames)
    shared = [c for c in frames[0].columns
              if all(c in f.columns and isinstance(f[c].dtype, pd.CategoricalDtype) for f in frames)]
    united = {c: union_categoricals([pd.Categorical([], categories=f[c].cat.categories) for f in frames]).categories
              for c in shared}
    frames = [f.assign(**{c: f[c].cat.set_categories(cats) for c, cats in united.items()}) for f in frames]
    return pd.concat(frames, ignore_index=True)


def _flow_rows(source, file, frame, reason):
    import numpy as np
    import pandas as pd

    r = reason.reindex(frame.index)
    reason_codes, reason_names = pd.factorize(r, use_na_sentinel=True)
    n = len(frame)
    return pd.DataFrame({
        "source": _text_column(np.zeros(n), [source]),
        "file": _text_column(np.zeros(n), [file]),
        "line": frame["_line"].astype("int64").to_numpy(),
        "patient_id": frame["patient_code"].astype("string").array,
        "status": _text_column((r == REASON_INCLUDED).to_numpy(dtype=np.int8), ["excluded", "included"]),
        "reason": _text_column(reason_codes, reason_names),
    }, copy=False)


def _linkage_warnings(form, ehr, form_reason, tables, log) -> None:
    """Warn about linked records that look wrong but are usable (kept, not fatal).

    - a form row whose service unit keeps its records in one EHR while the patient code
      is found in the other (e.g. a SerD unit and an EFESO code): the row is linked to the
      EHR record found (the patient's data are that record's) and its service type stays
      the unit's (:func:`harmonise_form`), since the analysis compares the services that
      delivered IMR, not the systems that hold the records;
    - a form row with no EHR record whose code matches an EHR code once leading zeros
      are ignored (a spreadsheet may have dropped them); the row stays excluded.
    """
    import pandas as pd

    file, h = tables["form"].file, tables["form"].headers
    ehr_of_unit = {u: info["ehr"] for u, info in C.SERVICE_UNITS.items()}
    import numpy as np

    fk, ek = _keys_of(form), _keys_of(ehr)
    if fk is None or ek is None:
        fk, ek = patient_keys(form["patient_code"], ehr["patient_code"])
    # the EHR holding each code (codes are unique by now)
    src_codes, src_names = pd.factorize(ehr["source_ehr"], use_na_sentinel=True)
    row = _row_of(fk, ek)
    found_code = np.full(len(row), -1, dtype=np.int64)
    found_code[row >= 0] = src_codes[row[row >= 0]]
    found = pd.Series(np.asarray(src_names, dtype=object).take(np.maximum(found_code, 0)), index=form.index,
                      dtype=object, copy=False).where(found_code >= 0)
    expected = form["service_unit"].astype("category").map(ehr_of_unit).astype(object)
    mismatch = (found.notna() & expected.notna() & (found != expected)).fillna(False).to_numpy(dtype=bool)
    for (exp, fnd), grp in form.assign(_exp=expected, _fnd=found)[mismatch].groupby(["_exp", "_fnd"], sort=True):
        log.warn_lines(file, grp["_line"], h["service_unit"],
                       f"the service unit keeps its records in {exp} but the patient code is in {fnd}; "
                       f"kept (the patient's data come from the {fnd} record, the service type from the "
                       "service unit), check the code")
    no_ehr = form_reason == REASON_NO_EHR
    if no_ehr.any():
        strip = lambda s: s.astype("string").str.replace(r"^([A-Z]*)0+(?=\d)", r"\1", regex=True)  # noqa: E731
        ehr_keys = pd.Series(ehr["patient_code"].to_numpy(), index=strip(ehr["patient_code"]).to_numpy())
        ehr_keys = ehr_keys[~ehr_keys.index.duplicated()]
        keys = strip(form.loc[no_ehr, "patient_code"])
        near = keys.map(ehr_keys)
        for i in near[near.notna()].index:
            log.warn(file, int(form.at[i, "_line"]), h["patient_code"], form.at[i, "patient_code"],
                     f"no EHR record has this code, but {near[i]!r} differs only in leading zeros "
                     "(a spreadsheet may have dropped them); the row is excluded until the code is fixed")


def check_flow(flow, tables, cohort) -> None:
    """Check that the cohort flow accounts for every input record exactly once.

    For each source: the flow has one row per record of the file, at the very lines the
    reader found them; the included form rows, the included EHR records and the cohort
    are the same patients; every excluded row has a reason.

    Raises
    ------
    AssertionError
        With the first discrepancy found (a bug in the cleaner, not in the data).

    Examples
    --------
    >>> result = clean_raw()  # doctest: +SKIP
    >>> check_flow(result.flow, read_exports("data/raw"), result.cohort)  # doctest: +SKIP
    """
    import numpy as np
    import pandas as pd

    lines = flow["line"].to_numpy(dtype=np.int64)
    src, src_names = pd.factorize(flow["source"])
    src = src.astype(np.int64)
    for name, t in tables.items():
        k = list(src_names).index(name) if name in list(src_names) else -1
        part = lines[src == k]
        if len(part) != t.n_records:
            raise AssertionError(f"cohort flow for {t.file} has {len(part)} rows but the file has "
                                 f"{t.n_records} records")
        file_lines = t.data["_line"].to_numpy()
        if not (np.array_equal(part, file_lines)  # the flow lists a file's records in file order
                or np.array_equal(np.sort(part), np.sort(file_lines))):
            raise AssertionError(f"cohort flow for {t.file} does not list the file's records line by line")
    if (_key_counts(src * (int(lines.max(initial=0)) + 1) + lines) > 1).any():
        raise AssertionError("a record appears twice in the cohort flow")
    if ((flow["status"] == "excluded") & (flow["reason"].isna() | (flow["reason"] == REASON_INCLUDED))).any():
        raise AssertionError("an excluded record has no reason in the cohort flow")
    inc = (flow["status"] == "included").to_numpy(dtype=bool)
    is_form = (flow["source"] == "form").to_numpy(dtype=bool)
    ids, form_ids, ehr_ids = patient_keys(cohort["patient_id"], flow.loc[inc & is_form, "patient_id"],
                                          flow.loc[inc & ~is_form, "patient_id"])
    size = int(max(ids.max(initial=-1), form_ids.max(initial=-1), ehr_ids.max(initial=-1))) + 1
    in_cohort = _key_counts(ids, size)
    if (ids < 0).any() or (in_cohort > 1).any():
        raise AssertionError("a patient appears twice in the cohort")
    same = lambda k: len(k) == len(ids) and np.array_equal(_key_counts(k, size), in_cohort)  # noqa: E731
    if not same(form_ids):
        raise AssertionError(f"{len(form_ids)} included form rows but {len(cohort)} patients in the cohort")
    if not same(ehr_ids):
        raise AssertionError(f"{len(ehr_ids)} included EHR records but {len(cohort)} patients in the cohort")


#: Former name, kept for callers of the first version.
_check_flow_balance = check_flow


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
    from . import export, paths
    from .cohort import COHORT_FILE, FLOW_FILE

    out = paths.resolve(processed_dir, paths.processed_dir())
    out.mkdir(parents=True, exist_ok=True)
    cohort_path, flow_path = out / COHORT_FILE, out / FLOW_FILE
    result.cohort.to_parquet(cohort_path, index=False, engine="pyarrow", compression="snappy")
    export.write_csv(result.flow.sort_values(["source", "line"], kind="stable"), flow_path)
    return [cohort_path, flow_path]


def main(argv=None) -> int:
    """``python -m imr_analysis clean [--raw-dir DIR] [--processed-dir DIR]``.

    Problems in the raw exports are printed as a list (file, line, column, value) with a
    pointer to the raw-data contract, and the exit code is 1; no traceback is shown
    unless ``--traceback`` is given.
    """
    from . import paths
    from .problems import CONTRACT_HINT

    parser = argparse.ArgumentParser(prog="python -m imr_analysis clean",
                                     description="Validate and clean the raw exports into the analysis cohort.")
    parser.add_argument("--raw-dir", default="", help="folder of the raw exports (default data/raw)")
    parser.add_argument("--processed-dir", default="",
                        help="where to write the cohort (default data/processed; outputs/private/data/processed "
                             "for private data, so a department's cohort never lands in the committed folder)")
    parser.add_argument("--study-start", default=STUDY_START)
    parser.add_argument("--study-end", default=STUDY_END)
    parser.add_argument("--traceback", action="store_true", help="show the Python traceback of unexpected errors")
    args = parser.parse_args(argv)
    try:
        result = clean_raw(args.raw_dir or None, args.study_start, args.study_end)
        processed = args.processed_dir or None
        if processed is None and result.data_mode != "synthetic":
            processed = paths.private_outputs_dir() / "data" / "processed"
            print(f"note: {result.data_mode} data: the cohort goes to {processed}", file=sys.stderr)
        written = write_outputs(result, processed)
    except RawDataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as err:
        if args.traceback:
            raise
        where = paths.display_path(paths.resolve(args.raw_dir or None, paths.raw_dir()))
        print(f"error: {type(err).__name__}: {err}\nraw exports read from: {where}\n{CONTRACT_HINT}",
              file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - the command line shows a message, not a traceback
        if args.traceback:
            raise
        print(f"error: unexpected {type(err).__name__} while cleaning: {err}\n"
              "This is probably a bug in imr_analysis rather than in your data; run again with --traceback "
              "and report it.", file=sys.stderr)
        return 1
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{len(result.cohort)} patients; cohort flow: "
          + ", ".join(f"{k} {v}" for k, v in result.flow["status"].value_counts().sort_index().items()))
    for p in written:
        print(f"wrote {p}")
    return 0
