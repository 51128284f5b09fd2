"""Read raw exports as they come out of EFESO, Sister and Google Forms.

Reading is deliberately forgiving about *form* (encoding, delimiter, header spelling)
and strict about *content* (that is :mod:`imr_analysis.clean`'s job):

- encoding: UTF-8 (with or without BOM), falling back to cp1252 (Italian Windows Excel);
- delimiter: ``,`` ``;`` or tab, detected from the header line;
- an optional first line starting with ``#`` carries metadata; synthetic exports say
  ``# SYNTHETIC DATA`` there;
- header names are matched ignoring case, accents, spaces, underscores and punctuation,
  and through the aliases below (Italian Google Forms headers, English EHR names);
- columns nobody asked for are kept aside with a warning, never fatal;
- every value is read as text; numbers, dates and codes are parsed by the cleaner, which
  knows the line each value came from.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from . import constants as C
from .problems import ProblemLog, RawDataError

#: Extra accepted header names (normalised with :func:`header_key`) for canonical fields.
HEADER_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "EFESO": {
        "patient_code": ("codice paziente", "cod paz", "patient code", "id paziente"),
        "birth_year": ("anno di nascita", "birth year"),
        "sex": ("sesso", "genere", "sex"),
        "municipality": ("comune", "comune di residenza", "residenza"),
        "first_access_date": ("data primo accesso", "data di primo accesso", "first access date"),
        "diagnosis": ("diagnosi", "diagnosi icd10", "diagnosi icd 10", "icd10", "diagnosis"),
        "medications": ("farmaci", "terapia", "atc", "medications"),
        "programme_start_date": ("data inizio programma terapeutico", "data inizio pt"),
        "education_years": ("scolarita", "anni di scolarita", "years of education"),
        "marital_status": ("stato civile", "marital status"),
        "living_condition": ("condizione abitativa", "living condition"),
        "employment_status": ("condizione lavorativa", "condizione professionale", "employment status"),
    },
    "Sister": {
        "patient_code": ("codice paziente", "id", "patient code", "cod paziente"),
        "birth_year": ("anno di nascita", "birth year"),
        "sex": ("genere", "sex"),
        "municipality": ("comune res", "comune", "comune di residenza"),
        "first_access_date": ("data primo accesso", "data primo contatto servizio"),
        "diagnosis": ("diagnosi", "diagnosi icd10", "icd10"),
        "medications": ("farmaci atc", "atc", "terapia"),
        "programme_start_date": ("data inizio programma", "data inizio programma terapeutico"),
        "education_years": ("anni scolarita", "scolarita"),
        "marital_status": ("stato civile",),
        "living_condition": ("condizione abitativa",),
        "employment_status": ("condizione lavorativa", "condizione professionale"),
    },
    "form": {
        "timestamp": ("informazioni cronologiche", "marca temporale", "data e ora"),
        "patient_code": ("codice paziente", "codice utente"),
        "service_unit": ("servizio", "unita operativa", "servizio erogante"),
        "start_date": ("data inizio imr", "data di inizio"),
        "stop_date": ("data fine imr", "data di fine", "imr end date"),
        "format": ("formato imr", "formato", "modalita"),
        "manual_version": ("versione del manuale", "versione manuale"),
        "n_sessions": ("numero di sessioni", "numero sessioni", "sessions"),
        "modules": ("moduli somministrati", "moduli", "modules"),
    },
}

REQUIRED_FIELDS = {
    "EFESO": tuple(C.EHR_COLUMNS["EFESO"]),
    "Sister": tuple(C.EHR_COLUMNS["Sister"]),
    "form": tuple(C.FORM_COLUMNS) + tuple(f"imrs_user_{k:02d}" for k in C.IMRS_ITEMS)
    + tuple(f"imrs_provider_{k:02d}" for k in C.IMRS_ITEMS),
}


def header_key(name: str) -> str:
    """Normalise a header name: no accents, lower case, punctuation and spacing collapsed.

    Examples
    --------
    >>> header_key("  Data_Primo  Accesso ")
    'data primo accesso'
    >>> header_key("Scolarità")
    'scolarita'
    """
    s = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^0-9a-zA-Z\[\]]+", " ", s).strip().lower()
    return re.sub(r"\s+", " ", s)


def _imrs_header_keys(version: str) -> dict[str, str]:
    """Keys for the IMRS grid columns: 'User IMRS [1. Progress ...]' and Italian variants."""
    out = {}
    labels = C.FORM_IMRS_USER if version == "user" else C.FORM_IMRS_PROVIDER
    for k, label in labels.items():
        out[header_key(label)] = f"imrs_{version}_{k:02d}"
    return out


_IMRS_GRID = re.compile(
    r"^(?P<who>user|utente|provider|operatore|operator)\s*imrs\s*\[\s*(?P<k>\d{1,2})\b.*\]$"
)


def field_map(source: str) -> dict[str, str]:
    """Map normalised header keys to canonical field names for ``source``."""
    if source in C.EHR_COLUMNS:
        base = {header_key(col): fld for fld, col in C.EHR_COLUMNS[source].items()}
    else:
        base = {header_key(col): fld for fld, col in C.FORM_COLUMNS.items()}
        base.update(_imrs_header_keys("user"))
        base.update(_imrs_header_keys("provider"))
    for fld, aliases in HEADER_ALIASES[source].items():
        for alias in aliases:
            base.setdefault(header_key(alias), fld)
    return base


def canonical_field(source: str, header: str, mapping: dict[str, str] | None = None) -> str | None:
    """Canonical field for a raw header, or None if the column is not one we know."""
    mapping = mapping or field_map(source)
    key = header_key(header)
    if key in mapping:
        return mapping[key]
    if source == "form":
        m = _IMRS_GRID.match(key)
        if m and 1 <= int(m.group("k")) <= C.N_IMRS_ITEMS:
            who = "user" if m.group("who") in {"user", "utente"} else "provider"
            return f"imrs_{who}_{int(m.group('k')):02d}"
    return None


@dataclass
class RawTable:
    """One raw export, read as text, with the provenance of every row."""

    source: str
    path: Path
    data: "object"  # pandas.DataFrame of str, columns = canonical fields, plus '_line'
    headers: dict[str, str]  # canonical field -> header as written in the file
    extra: "object"  # pandas.DataFrame of unknown columns (kept aside)
    synthetic: bool
    encoding: str
    delimiter: str
    n_records: int
    metadata_line: str | None = None
    warnings: list = field(default_factory=list)

    @property
    def file(self) -> str:
        return self.path.name


def _decode(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="strict"), "cp1252"


def _detect_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 0 else ","


def read_raw(path: str | Path, source: str, log: ProblemLog | None = None) -> RawTable:
    """Read one raw export of ``source`` (``EFESO``, ``Sister`` or ``form``) as text.

    Header problems (empty file, no data rows, missing required columns) are recorded in
    ``log``; if no log is given they are raised at once as :class:`RawDataError`.

    Examples
    --------
    >>> t = read_raw("data/raw/efeso_extract.csv", "EFESO")  # doctest: +SKIP
    >>> t.data.columns[:3].tolist()  # doctest: +SKIP
    ['patient_code', 'birth_year', 'sex']
    """
    import pandas as pd

    own_log = log is None
    log = log or ProblemLog()
    path = Path(path)
    name = path.name
    if source not in REQUIRED_FIELDS:
        raise ValueError(f"unknown source {source!r}")
    if not path.exists():
        log.error(name, None, None, None, f"file not found at {path}")
        return _empty(source, path, log, own_log)
    text, encoding = _decode(path.read_bytes())
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    offset = 0
    metadata_line = None
    while offset < len(lines) and lines[offset].startswith("#"):
        metadata_line = metadata_line or lines[offset]
        offset += 1
    synthetic = bool(metadata_line and metadata_line.startswith(C.SYNTHETIC_MARKER))
    body = "\n".join(lines[offset:])
    if not body.strip():
        log.error(name, None, None, None, "the file is empty (no header line)")
        return _empty(source, path, log, own_log)
    header_line = lines[offset]
    delimiter = _detect_delimiter(header_line)
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    rows = list(reader)
    header = [h.strip() for h in rows[0]]
    records = []
    record_lines = []
    # csv may span lines inside quotes; recover file line numbers from the reader.
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    next(reader)
    for rec in reader:
        line_no = reader.line_num + offset  # 1-based line where this record ends
        if not any(cell.strip() for cell in rec):
            continue  # blank line: not a record
        records.append(rec)
        record_lines.append(line_no)
    mapping = field_map(source)
    headers: dict[str, str] = {}
    extra_cols = []
    for j, h in enumerate(header):
        fld = canonical_field(source, h, mapping)
        if fld is None or fld in headers:
            extra_cols.append(j)
            if fld in headers:
                log.warn(name, offset + 1, h, None, f"duplicate column for '{fld}'; the first one is used")
            else:
                log.warn(name, offset + 1, h, None, "column not part of the raw-data contract; kept aside, not used")
            continue
        headers[fld] = h
    missing = [f for f in REQUIRED_FIELDS[source] if f not in headers]
    for f in missing:
        expected = _expected_header(source, f)
        log.error(name, offset + 1, expected, None, "required column is missing from the header")
    width = len(header)
    for rec, ln in zip(records, record_lines):
        if len(rec) != width:
            log.error(name, ln, None, None,
                      f"the row has {len(rec)} fields but the header has {width}; check the delimiter/quoting")
    if not records:
        if source == "form":
            log.error(name, None, None, None, "the file has a header but no records")
        else:
            log.warn(name, None, None, None, "the file has a header but no records")
    padded = [(rec + [""] * width)[:width] for rec in records]
    all_df = pd.DataFrame(padded, columns=range(width), dtype=object)
    cols = {fld: all_df[header.index(h)] for fld, h in headers.items()} if records else {}
    data = pd.DataFrame({fld: (cols[fld] if fld in cols else pd.Series([], dtype=object))
                         for fld in headers}, dtype=object)
    data = data.apply(lambda s: s.astype(object).str.strip()) if len(data) else data
    data["_line"] = pd.Series(record_lines, dtype="int64")
    extra = all_df[extra_cols].copy() if records else pd.DataFrame()
    if len(extra.columns):
        extra.columns = [header[j] for j in extra_cols]
    table = RawTable(source=source, path=path, data=data, headers=headers, extra=extra,
                     synthetic=synthetic, encoding=encoding, delimiter=delimiter,
                     n_records=len(records), metadata_line=metadata_line)
    if own_log:
        log.raise_if_any()
    return table


def _expected_header(source: str, fld: str) -> str:
    if source in C.EHR_COLUMNS:
        return C.EHR_COLUMNS[source][fld]
    if fld in C.FORM_COLUMNS:
        return C.FORM_COLUMNS[fld]
    who, k = fld.split("_")[1], int(fld.split("_")[2])
    return (C.FORM_IMRS_USER if who == "user" else C.FORM_IMRS_PROVIDER)[k]


def _empty(source, path, log, own_log) -> RawTable:
    import pandas as pd

    if own_log:
        log.raise_if_any()
    return RawTable(source=source, path=path, data=pd.DataFrame({"_line": pd.Series([], dtype="int64")}),
                    headers={}, extra=pd.DataFrame(), synthetic=False, encoding="", delimiter="",
                    n_records=0)


def raw_paths(raw_dir: str | Path) -> dict[str, Path]:
    """The three export paths in ``raw_dir``, keyed by source."""
    raw_dir = Path(raw_dir)
    return {source: raw_dir / fname for source, fname in C.RAW_FILES.items()}


def detect_data_mode(raw_dir: str | Path) -> str:
    """``"synthetic"`` when every raw export carries the synthetic marker, else ``"private"``.

    Anything short of all three files labelled synthetic is treated as private data (the
    safe side): outputs then go to a git-ignored folder and disclosure control applies.

    Examples
    --------
    >>> detect_data_mode("data/raw")  # doctest: +SKIP
    'synthetic'
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"raw data folder {raw_dir} does not exist")
    for path in raw_paths(raw_dir).values():
        if not path.exists():
            return "private"
        with open(path, "rb") as fh:
            first = fh.readline().decode("utf-8-sig", errors="replace")
        if not first.startswith(C.SYNTHETIC_MARKER):
            return "private"
    return "synthetic"


def read_exports(raw_dir: str | Path, log: ProblemLog | None = None) -> dict[str, RawTable]:
    """Read the three exports in ``raw_dir``; header problems of all files are reported together."""
    own_log = log is None
    log = log or ProblemLog()
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise RawDataError([_folder_problem(raw_dir)])
    tables = {source: read_raw(p, source, log) for source, p in raw_paths(raw_dir).items()}
    if own_log:
        log.raise_if_any()
    return tables


def _folder_problem(raw_dir):
    from .problems import Problem

    return Problem(str(raw_dir), None, None, None, "raw data folder does not exist")
