"""Data sources: read and validate the EFESO and Sister EHR extracts and the IMR summary form as
the raw-data contract (``data/raw/README.md``) describes them. Problems are collected in a
:class:`ProblemLog`, each naming file, line, column and value, and raised as :class:`RawDataError`.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa
import pyarrow
import pyarrow.csv

from imr_analysis import constants as C
from imr_analysis.identifiers import KIND_LABELS, guard_dataframe


# Problems ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One problem in one cell (or in one file, when ``line`` is None)."""

    file: str
    line: int | None
    column: str | None
    value: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + ("" if self.line is None else f", line {self.line}")
        where += f", column '{self.column}'" if self.column else ""
        return f"{where}: {self.message}" + ("" if self.value is None else f" (value: {self.value!r})")


#: Where a researcher finds the accepted formats and the rule for each problem.
CONTRACT_HINT = "The raw-data contract (accepted formats, the rule for each problem) is in data/raw/README.md."


class RawDataError(ValueError):
    """The raw exports cannot be turned into a cohort: every problem found, file by file in line order."""

    def __init__(self, problems: list[Problem], max_shown: int = 50):
        order = {name: i for i, name in enumerate(C.RAW_FILES.values())}
        for p in problems:
            order.setdefault(p.file, len(order))
        self.problems = sorted(problems, key=lambda p: (order[p.file], -1 if p.line is None else p.line))
        lines = [f"{len(self.problems)} problem(s) in the raw exports; fix them and run again:"]
        lines += [f"  - {p}" for p in self.problems[:max_shown]]
        if len(self.problems) > max_shown:
            lines.append(f"  ... and {len(self.problems) - max_shown} more")
        super().__init__("\n".join(lines + [CONTRACT_HINT]))


@dataclass
class ProblemLog:
    """Problems (fatal) and warnings (kept, reported) found while reading and cleaning."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def error(self, file, line, column, value, message) -> None:
        self.problems.append(Problem(file, line, column, None if value is None else str(value), message))

    def warn(self, file, line, column, value, message) -> None:
        self.warnings.append(Problem(file, line, column, None if value is None else str(value), message))

    def flag(self, table: RawTable, fld: str, rows, message: str, values=None) -> None:
        """One error per row marked in ``rows``: its line, the column of ``fld``, its text there (or in ``values``)."""
        values = table.data[fld] if values is None else values
        for i in np.flatnonzero(np.asarray(rows, dtype=bool)):
            self.error(table.file, int(table.data["_line"].iloc[i]), table.headers[fld], values.iloc[i], message)

    def warn_lines(self, file, lines, column, message, limit: int = 10) -> None:
        """One warning for many rows, naming the first ``limit`` lines."""
        lines = [int(x) for x in lines]
        if lines:
            self.warn(file, lines[0], column, None, f"{message} ({len(lines)} row(s): line(s) {_some(lines, limit)})")

    def raise_if_any(self) -> None:
        if self.problems:
            raise RawDataError(self.problems)


def _some(items, limit: int = 10) -> str:
    shown = ", ".join(str(x) for x in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# Header names --------------------------------------------------------------------------
#: Accepted header names besides the contract's, per field, written as :func:`header_key` makes
#: them. ``data/raw/README.md`` lists every one (a test keeps the two in step).
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

#: Words naming the respondent in an IMRS grid header, by version of the scale.
IMRS_GRID_WORDS = {"user": ("user", "utente"), "provider": ("provider", "operatore", "operator")}
_GRID_VERSION = {word: version for version, words in IMRS_GRID_WORDS.items() for word in words}
#: An IMRS grid header: ``IMRS`` (optional, before or after), a respondent word, then the item
#: number, in square brackets followed by any text ("User IMRS [1. ...]") or bare ("imrs_user_01").
_IMRS_GRID = re.compile(r"^(?:imrs\s*)?(?P<who>" + "|".join(sorted(_GRID_VERSION, key=len, reverse=True))
                        + r")\s*(?:imrs\s*)?(?:\[\s*(?P<k>\d{1,2})\b.*\]|(?P<k2>\d{1,2}))$")

REQUIRED_FIELDS = {"EFESO": tuple(C.EHR_COLUMNS["EFESO"]), "Sister": tuple(C.EHR_COLUMNS["Sister"]),
                   "form": (*(f for f in C.FORM_COLUMNS if f != "timestamp"), *C.IMRS_USER_COLUMNS,
                            *C.IMRS_PROVIDER_COLUMNS)}
#: Fields read when present; an absent one is added empty, with a warning.
OPTIONAL_FIELDS = {"EFESO": (), "Sister": (), "form": ("timestamp",)}


def header_key(name: str) -> str:
    """A header without accents, in lower case, each run of spaces and punctuation (but ``[]``) one space."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^0-9a-zA-Z\[\]]+", " ", text).strip().lower()


def expected_header(source: str, fld: str) -> str:
    """The header the contract gives field ``fld`` of ``source``."""
    if source in C.EHR_COLUMNS:
        return C.EHR_COLUMNS[source][fld]
    if fld in C.FORM_COLUMNS:
        return C.FORM_COLUMNS[fld]
    _, who, k = fld.split("_")
    return (C.FORM_IMRS_USER if who == "user" else C.FORM_IMRS_PROVIDER)[int(k)]


def _contract_headers(source: str) -> dict[str, str]:
    return {header_key(expected_header(source, fld)): fld for fld in REQUIRED_FIELDS[source] + OPTIONAL_FIELDS[source]}


def canonical_field(source: str, header: str) -> str | None:
    """The field a header names in ``source``: the contract's name, an alias or an IMRS grid header."""
    key = header_key(header)
    fld = _contract_headers(source).get(key) or next((f for f, a in HEADER_ALIASES[source].items() if key in a), None)
    m = _IMRS_GRID.match(key) if source == "form" and fld is None else None
    if m is None:
        return fld
    k = int(m.group("k") or m.group("k2"))
    return f"imrs_{_GRID_VERSION[m.group('who')]}_{k:02d}" if 1 <= k <= C.N_IMRS_ITEMS else None


# Reading one export ----------------------------------------------------------------------
@dataclass
class RawTable:
    """One export as text: ``data`` holds a categorical column per field and ``_line``, the
    line each record starts on; ``extra`` the columns outside the contract, kept aside."""

    source: str
    path: Path
    data: pd.DataFrame
    headers: dict[str, str]  # field -> header as written in the file
    extra: pd.DataFrame
    encoding: str
    delimiter: str
    n_records: int

    @property
    def file(self) -> str:
        return self.path.name


_BINARY_SIGNATURES = ((b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive"),
                      (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"), (b"%PDF", "a PDF document"))
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def decode(raw: bytes) -> tuple[str, str]:
    """Text and encoding of an export: UTF-16 (with BOM), UTF-8 (with or without BOM), cp1252, latin-1."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "utf-16"
    for encoding in ("utf-8-sig", "utf-8", "cp1252") if raw.startswith(b"\xef\xbb\xbf") else ("utf-8", "cp1252"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1"), "latin-1"


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return []


def detect_delimiter(header_line: str, sample: list[str]) -> str:
    """The delimiter (``,`` ``;`` or tab) that splits the header into the most fields and the
    first records into as many fields as the header; ``,`` on ties.
    """
    scores = {}
    for d in (",", ";", "\t"):
        n = len(_split(header_line, d))
        if n >= 2:
            scores[d] = (sum(len(_split(r, d)) == n for r in sample if r.strip()), n)
    return max(scores, key=scores.get) if scores else ","


_SEP_LINE = re.compile(r'"?sep=(.)"?,*;*\s*')


def _records(body: str, delimiter: str, header: list[str], first_line: int, name: str,
             log: ProblemLog) -> tuple[pd.DataFrame, np.ndarray, list[int]]:
    """The records after the header (categorical text, columns ``"0"``, ``"1"``, ...), the line
    each starts on (a quoted field may span lines) and the lines of those without content,
    which are skipped. A record with the wrong number of fields is an error, unless its extra
    fields (or the header's unnamed last ones) are empty."""
    width, named = len(header), max((j + 1 for j, h in enumerate(header) if h), default=0)
    names = [str(j) for j in range(width)]
    refused: list = []
    frame = pd.DataFrame({n: pd.Categorical([], categories=pd.Index([], dtype="str")) for n in names})
    if body:
        frame = pyarrow.csv.read_csv(
            io.BytesIO((body if body.endswith("\n") else body + "\n").encode("utf-8")),
            read_options=pyarrow.csv.ReadOptions(column_names=names, use_threads=False),  # refused rows: numbered
            parse_options=pyarrow.csv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                                   ignore_empty_lines=False,
                                                   invalid_row_handler=lambda row: refused.append(row) or "skip"),
            convert_options=pyarrow.csv.ConvertOptions(
                column_types=dict.fromkeys(names, pyarrow.dictionary(pyarrow.int32(), pyarrow.string())),
                strings_can_be_null=False, quoted_strings_can_be_null=False)).to_pandas()
    # records follow each other, each spanning one line more than the line breaks in its fields
    refused_at = np.array([r.number - 1 for r in refused], dtype="int64")  # record numbers count from 1
    read_at = np.delete(np.arange(len(frame) + len(refused)), refused_at)
    span = np.ones(len(read_at) + len(refused_at), dtype="int64")
    span[read_at] += sum(on_categories(frame[n], lambda s: s.str.count("\n")).to_numpy() for n in names
                         if frame[n].cat.categories.str.contains("\n").any())
    span[refused_at] += np.array([r.text.count("\n") for r in refused], dtype="int64")
    line = first_line + np.cumsum(span) - span
    kept = {}  # refused records that are empty, or whose extra fields are
    for row, at in zip(refused, refused_at):
        cells = next(csv.reader(io.StringIO(row.text), delimiter=delimiter), [])
        if not any(c.strip() for c in cells) or len(cells) >= named and not any(c.strip() for c in cells[named:]):
            kept[at] = (cells + [""] * width)[:width]
            continue
        runs = (f" (the record runs from line {line[at]} to line {line[at] + span[at] - 1}: a quote is probably "
                "not closed)")
        log.error(name, int(line[at]), None, None, f"the row has {len(cells)} fields but the header has {named}; check "
                  f"the delimiter ({_DELIMITER_NAMES.get(delimiter, repr(delimiter))} detected) and the quoting"
                  + (runs if span[at] > 1 else ""))
    frame.index = read_at
    if kept:
        frame = pd.concat([frame, pd.DataFrame(kept.values(), index=list(kept), columns=names)]).sort_index()
        frame = frame.astype("category")
    lines = line[frame.index]
    blank = np.logical_and.reduce([(frame[n].cat.categories.str.strip() == "")[frame[n].cat.codes] for n in names])
    return frame[~blank].reset_index(drop=True), lines[~blank], lines[blank].tolist()


def read_raw(path: str | Path, source: str, log: ProblemLog | None = None) -> RawTable:
    """Read one export of ``source`` (``"EFESO"``, ``"Sister"`` or ``"form"``) as text.

    Errors (the file missing, empty or not text; a required column missing or held twice; a
    row with the wrong number of fields; a form without records) go to ``log``, or are raised
    at once. Warnings: columns outside the contract (kept aside in ``extra``), rows without
    content (skipped), an absent optional column, an EHR extract without records.
    """
    own_log, log, path = log is None, log or ProblemLog(), Path(path)
    if source not in REQUIRED_FIELDS:
        raise ValueError(f"unknown source {source!r}")
    table = _read(path, source, log)
    if own_log:
        log.raise_if_any()
    return table or RawTable(source, path, pd.DataFrame({"_line": pd.Series([], dtype="int64")}), {}, pd.DataFrame(),
                             "", "", 0)


def _read(path: Path, source: str, log: ProblemLog) -> RawTable | None:
    """The export as a :class:`RawTable`, or ``None`` once ``log`` says why it cannot be read."""
    name = path.name
    if not path.is_file():
        log.error(name, None, None, None, f"{path} is a folder, not a CSV file" if path.is_dir()
                  else f"file not found at {path}")
        return None
    try:
        raw = path.read_bytes()
    except OSError as err:
        log.error(name, None, None, None, f"the file cannot be read ({err.strerror or err})")
        return None
    for signature, what in _BINARY_SIGNATURES:
        if raw.startswith(signature):
            log.error(name, None, None, None, f"this is {what}, not a CSV text file; open it and save it as CSV "
                      "(UTF-8 or 'CSV (separato da punto e virgola)')")
            return None
    text, encoding = decode(raw)
    if "\x00" in text:
        log.error(name, None, None, None, "the file contains NUL bytes; it is not a CSV text file")
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text[:1 << 20].split("\n")  # the lines before the header, the header, the first records
    if lines[-1] == "" or len(text) > 1 << 20:
        lines.pop()  # the line end of the last line, or a line cut short
    # before the header: metadata lines ("# SYNTHETIC DATA ..."), Excel's "sep=;" line, blank lines
    offset, delimiter = 0, None
    for line in lines:
        sep = None if line.startswith("#") else _SEP_LINE.fullmatch(line.strip("\ufeff"))
        if not (line.startswith("#") or sep or not line.strip(" \t,;\ufeff")):
            break  # the header
        delimiter, offset = sep.group(1) if sep else delimiter, offset + 1
    if offset == len(lines):
        log.error(name, None, None, None, "the file is empty (no header line)")
        return None
    delimiter = delimiter or detect_delimiter(lines[offset], lines[offset + 1: offset + 21])
    header = [h.strip().strip("\ufeff") for h in _split(lines[offset], delimiter)]
    body = text[sum(len(line) + 1 for line in lines[:offset + 1]):]
    frame, record_lines, empty = _records(body, delimiter, header, offset + 2, name, log)
    while header and not header[-1] and not (frame[str(len(header) - 1)].astype("str").str.strip() != "").any():
        frame = frame.drop(columns=str(len(header) - 1))  # a delimiter at the end of every line
        header.pop()
    fields = _match_headers(header, source, offset + 1, name, log)
    if empty:
        log.warn(name, empty[0], None, None,
                 f"{len(empty)} row(s) without any content skipped (line(s) {_some(empty)})")
    if not len(frame):
        (log.error if source == "form" else log.warn)(name, None, None, None, "the file has a header but no records")
    data = pd.DataFrame({fld: on_categories(frame[str(j)], _clean_text) for fld, j in fields.items()},
                        index=frame.index)
    headers = {fld: header[j] for fld, j in fields.items()}
    for fld in OPTIONAL_FIELDS[source]:
        if fld not in fields and not set(REQUIRED_FIELDS[source]) - set(fields):
            headers[fld] = expected_header(source, fld)
            log.warn(name, offset + 1, headers[fld], None,
                     "optional column is absent; its values are missing (it is not used in the analysis)")
            data[fld] = pd.Categorical([""] * len(frame))
    extra = [j for j in range(len(header)) if j not in fields.values()]
    return RawTable(source=source, path=path, data=data.assign(_line=record_lines), headers=headers,
                    extra=frame[[str(j) for j in extra]].set_axis([header[j] or f"(unnamed column {j + 1})"
                                                                   for j in extra], axis=1),
                    encoding=encoding, delimiter=delimiter, n_records=len(frame))


def _match_headers(header: list[str], source: str, line: int, name: str, log: ProblemLog) -> dict[str, int]:
    """The column of each field, by the contract's name, else by an alias; of two columns holding
    one field the alias is kept aside (a warning), two of the same rank are an error."""
    contract = _contract_headers(source)
    chosen: dict[str, tuple[int, int]] = {}  # field -> (rank, column)
    aside = []  # columns of a lower rank than another holding the same field
    for j, h in enumerate(header):
        fld, rank = canonical_field(source, h), 0 if header_key(h) in contract else 1
        if fld in chosen:
            rank0, j0 = chosen[fld]
            holds = expected_header(source, fld)
            if rank == rank0:
                log.error(name, line, h, None, f"two columns, '{header[j0]}' and '{h}', both hold '{holds}'; "
                          "remove one of them")
            elif rank < rank0:
                log.warn(name, line, header[j0], None,
                         f"another column, '{h}', holds '{holds}'; this one is kept aside")
                chosen[fld], aside = (rank, j), aside + [j0]
            else:
                log.warn(name, line, h, None, f"column '{header[j0]}' holds '{holds}'; this one is kept aside")
                aside.append(j)
        elif fld is not None:
            chosen[fld] = (rank, j)
    unknown = [j for j, h in enumerate(header) if canonical_field(source, h) is None]
    for j in unknown:
        if header[j]:
            log.warn(name, line, header[j], None, "column not part of the raw-data contract; kept aside, not used")
    unnamed = [j + 1 for j, h in enumerate(header) if not h]
    if unnamed:
        log.warn(name, line, None, None, f"{len(unnamed)} column(s) without a name in the header (positions "
                 f"{', '.join(map(str, unnamed))}); kept aside, not used")
    missing = [f for f in REQUIRED_FIELDS[source] if f not in chosen]
    hint = [header[j] for j in sorted(aside + unknown) if header[j]]
    hint = f"; columns not recognised: {', '.join(repr(h) for h in hint[:10])}" if hint else ""
    for fld in missing:
        log.error(name, line, expected_header(source, fld), None, "required column is missing from the header" + hint)
    return {fld: j for fld, (_, j) in sorted(chosen.items(), key=lambda kv: kv[1][1])}


def _clean_text(text: pd.Series) -> pd.Series:
    """Cells without surrounding spaces and without Excel's ``="..."`` wrapper (kept leading zeros)."""
    return text.str.strip().str.replace(r'(?s)^="(.*)"$', r"\1", regex=True).str.strip()


def raw_paths(raw_dir: str | Path) -> dict[str, Path]:
    """The three export paths in ``raw_dir``, keyed by source."""
    return {source: Path(raw_dir) / name for source, name in C.RAW_FILES.items()}


def detect_data_mode(raw_dir: str | Path) -> str:
    """``"synthetic"`` when every export starts with the synthetic marker, else ``"private"``
    (the safe side: outputs then go to a git-ignored folder, disclosure control applies)."""
    if not Path(raw_dir).is_dir():
        raise FileNotFoundError(f"raw data folder {raw_dir} does not exist")
    for path in raw_paths(raw_dir).values():
        if not path.exists():
            return "private"
        with open(path, "rb") as fh:
            head = fh.read(4096)
        utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
        if not decode(head[:len(head) - len(head) % 2] if utf16 else head)[0].startswith(C.SYNTHETIC_MARKER):
            return "private"
    return "synthetic"


def marked_departments(raw_dir: str | Path) -> set:
    """The department each present export's synthetic marker names (``department=NAME``), ``None`` for a marker
    naming none or no marker: ``{None}`` for the shipped exports, ``{"north"}`` for a synthetic department's."""
    names = set()
    for path in filter(Path.is_file, raw_paths(raw_dir).values()):
        with open(path, "rb") as fh:
            head = fh.read(4096)
        line = decode(head[:len(head) - len(head) % 2] if head.startswith((b"\xff\xfe", b"\xfe\xff")) else head)[0]
        found = re.match(re.escape(C.SYNTHETIC_MARKER) + r".*?\bdepartment=([^)]+)\)", line.split("\n", 1)[0])
        names.add(found.group(1) if found else None)
    return names


def read_exports(raw_dir: str | Path, log: ProblemLog | None = None) -> dict[str, RawTable]:
    """Read the three exports in ``raw_dir``; raise the problems of all three together as one
    :class:`RawDataError`, then any direct identifier (:func:`guard_identifiers`)."""
    log = ProblemLog() if log is None else log
    if not Path(raw_dir).is_dir():
        raise RawDataError([Problem(str(raw_dir), None, None, None, "raw data folder does not exist")])
    tables = {source: read_raw(path, source, log) for source, path in raw_paths(raw_dir).items()}
    log.raise_if_any()
    guard_identifiers(tables)
    return tables


def summary(tables: dict[str, RawTable]) -> pd.DataFrame:
    """One row per export: its file, encoding, delimiter and number of records."""
    return pd.DataFrame([{"source": s, "file": t.file, "encoding": t.encoding, "delimiter": t.delimiter,
                          "records": t.n_records} for s, t in tables.items()])


def guard_identifiers(tables: dict[str, RawTable]) -> None:
    """Refuse exports holding direct identifiers (:func:`imr_analysis.identifiers.guard_dataframe`
    on every column, kept aside or not): one :class:`RawDataError` for all files, values masked."""
    problems = []
    for t in tables.values():
        frames = [t.data.drop(columns="_line").rename(columns=t.headers)] + ([t.extra] if len(t.extra.columns) else [])
        for frame in frames:
            try:
                guard_dataframe(frame, t.file)
            except ValueError as err:
                if not getattr(err, "findings", None):
                    raise
                for f in err.findings:
                    line = int(t.data["_line"].iloc[f.row - 1]) if f.row and f.row <= len(t.data) else None
                    detail = f" ({f.detail})" if f.detail else ""
                    problems.append(Problem(t.file, line, f.column, f.masked or None,
                                            f"direct identifier: {KIND_LABELS.get(f.kind, f.kind)}{detail}; remove "
                                            "this column from the export and export again (the value shown is masked)"))
    if problems:
        raise RawDataError(problems)


# Value parsers: each takes the distinct texts of a column ------------------------------
def on_categories(column: pd.Series, parse) -> pd.Series | pd.DataFrame:
    """``parse`` applied once to each category of ``column``, its result spread to the rows.

    ``parse`` takes a Series of text and returns a Series or a DataFrame on its index; text
    comes back categorical. ``column`` holds no missing value (an empty cell is ``""``).

    Examples
    --------
    >>> on_categories(pd.Series(["a", "b", "a"], dtype="category"), lambda s: s.str.upper()).tolist()
    ['A', 'B', 'A']
    """
    parsed, codes = parse(pd.Series(column.cat.categories, dtype="str")), column.cat.codes.to_numpy()

    def spread(values: pd.Series) -> pd.Series:
        values = values.astype("category") if isinstance(values.dtype, pd.StringDtype) else values
        return pd.Series(values.array.take(codes), index=column.index, name=values.name)

    if isinstance(parsed, pd.Series):
        return spread(parsed)
    return pd.DataFrame({c: spread(parsed[c]) for c in parsed}, index=column.index)


def text_key(value: str) -> str:
    """A label without accents, in lower case and single-spaced, for matching."""
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"\s+", " ", text).strip().lower()


def loose_key(value: str) -> str:
    """:func:`text_key` without punctuation, for matching free-typed titles."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text_key(value)).split())


#: Date formats accepted in any export, tried after the source's own. A two-digit year
#: (``%d/%m/%y``, last) follows ``strptime``'s fixed pivot: ``00``-``68`` are 2000-2068 and
#: ``69``-``99`` are 1969-1999 (:data:`TWO_DIGIT_YEAR_PIVOT`); one after today is *in the future*.
DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y")
TWO_DIGIT_YEAR_PIVOT = 69
#: Earliest date accepted in any export.
EARLIEST_DATE = "1900-01-01"
#: Excel serial day numbers count from this day; only five-digit ones are dates (``2019`` is a year).
EXCEL_EPOCH = "1899-12-30"
_EXCEL_SERIAL = r"\d{5}(?:[.,]\d+)?"
#: A time of day after a date ("15/03/2010 00:00", "2010-03-15T00:00:00"): dropped.
_TIME_OF_DAY = r"(?:[ T]+(?:[01]?\d|2[0-3])[:.][0-5]\d(?:[:.][0-5]\d(?:[.,]\d+)?)?)$"
#: The dates pandas holds in nanoseconds.
_NS_RANGE = (pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-11"))


def _first_format(text: pd.Series, formats) -> pd.Series:
    """Each text read with the first of ``formats`` that reads it (NaT: none does)."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    for fmt in formats:
        todo = text.notna() & out.isna()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce", cache=True)
    return out


def parse_dates(text: pd.Series, preferred: str | None = None, latest=None) -> pd.DataFrame:
    """Dates in :data:`DATE_FORMATS` (``preferred`` first; with or without a time of day) or as
    five-digit Excel serials, never month-first: ``date`` (NaT when missing, not a date or out
    of range), ``bad`` (not a date), ``too_early`` (before 1900), ``too_late`` (after ``latest``).

    Examples
    --------
    >>> r = parse_dates(pd.Series(["04/03/2019", "01/01/1650", "2019", "", "43528", "31/12/68"]), latest="2024-01-01")
    >>> r["date"].dt.strftime("%Y-%m-%d").tolist()
    ['2019-03-04', nan, nan, nan, '2019-03-04', nan]
    >>> r[["bad", "too_early", "too_late"]].to_numpy().nonzero()
    (array([1, 2, 5]), array([1, 0, 2]))
    """
    present = text.str.strip() != ""
    core = text.str.strip().str.replace(_TIME_OF_DAY, "", regex=True).where(present)
    dates = _first_format(core, dict.fromkeys(f for f in (preferred, *DATE_FORMATS) if f))
    serial = dates.isna() & core.str.fullmatch(_EXCEL_SERIAL).fillna(False).astype(bool)
    days = core[serial].str.replace(",", ".").astype("float64") // 1
    dates[serial] = pd.Timestamp(EXCEL_EPOCH) + pd.to_timedelta(days, unit="D")
    early = dates < pd.Timestamp(EARLIEST_DATE)
    late = dates > pd.Timestamp(latest).normalize() if latest is not None else pd.Series(False, index=text.index)
    keep = dates.between(*_NS_RANGE) & ~early & ~late
    return pd.DataFrame({"date": dates.where(keep).astype("datetime64[ns]"), "bad": present & dates.isna(),
                         "too_early": early, "too_late": late})


_TZ_SUFFIX = r"(?:(?:GMT|UTC) *(?:[+-]\d{1,2}(?::?\d{2})?)?|[A-Z]{3,5}|[+-]\d{2}:?\d{2}|Z)$"
_TS_DAY_FIRST = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H.%M.%S", "%d/%m/%Y %H:%M", "%d/%m/%Y %H.%M")
_TS_MONTH_FIRST = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M")
_TS_YEAR_FIRST = ("%Y/%m/%d %I:%M:%S %p", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H.%M.%S", "%Y-%m-%d %H:%M:%S",
                  "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S.%f")


def parse_timestamps(text: pd.Series) -> pd.DataFrame:
    """Google Forms timestamps (Italian or English locale, Sheets or the Forms download, ISO; time
    zone dropped): ``timestamp`` and ``bad``. A column is read month-first (US locale) only when
    some values cannot be day-first and all can be month-first.

    Examples
    --------
    >>> parse_timestamps(pd.Series(["15/07/2021 10.32.11", "2021/07/15 10:32:11 AM GMT+2", "ieri"]))["bad"].tolist()
    [False, False, True]
    >>> parse_timestamps(pd.Series(["7/15/2021 10:32:11", "7/3/2021 9:00:00"]))["timestamp"].dt.month.tolist()
    [7, 7]
    """
    present = text.str.strip() != ""
    text = text.str.strip().str.replace(_TZ_SUFFIX, "", regex=True).str.strip().where(present)
    year_first = _first_format(text.where(text.str.match(r"\d{4}[/-]").fillna(False).astype(bool)), _TS_YEAR_FIRST)
    rest = text.where(year_first.isna())
    stamps = _first_format(rest, _TS_DAY_FIRST)
    if (rest.notna() & stamps.isna()).any():
        month_first = _first_format(rest, _TS_MONTH_FIRST)
        if month_first[rest.notna()].notna().all():
            stamps = month_first
    stamps = year_first.fillna(stamps)
    stamps = stamps.where(stamps.between(*_NS_RANGE)).astype("datetime64[ns]")
    return pd.DataFrame({"timestamp": stamps, "bad": present & stamps.isna()})


def parse_integers(text: pd.Series, lo: float | None = None, hi: float | None = None) -> pd.DataFrame:
    """Whole numbers, also written ``21,0``, ``21.0`` or ``+3``: ``value`` (Int64) and ``bad`` (not
    empty and not a whole number of at most nine digits within ``[lo, hi]``).
    """
    lo, hi = -np.inf if lo is None else lo, np.inf if hi is None else hi

    def parse(cell):
        cell = cell.strip()
        x = float(cell.replace(",", ".")) if re.fullmatch(r"[+-]?\d{1,9}(?:[.,]\d+)?", cell, re.ASCII) else None
        bad = cell != "" if x is None else x != round(x) or not lo <= x <= hi
        return None if bad or x is None else int(x), bad

    return pd.DataFrame(text.map(parse).tolist(), index=text.index, columns=["value", "bad"]).astype(
        {"value": "Int64", "bad": bool})


def normalise_code(text: pd.Series) -> pd.Series:
    """Patient codes for linkage: upper case, without spaces."""
    return text.str.strip().str.upper().str.replace(r"\s+", "", regex=True)


def normalise_icd10(text: pd.Series) -> pd.DataFrame:
    """ICD-10 codes in the dotted WHO form (``f200`` is ``F20.0``); ``code`` and ``bad``."""
    text = text.str.strip().str.upper().str.replace(" ", "")
    parts = text.str.extract(r"^([A-Z])(\d{2})\.?([0-9A-Z]{1,2})?$")
    code = (parts[0] + parts[1] + ("." + parts[2]).fillna("")).astype("str")
    return pd.DataFrame({"code": code, "bad": (text != "") & code.isna()})


_ATC = re.compile(r"[A-Z]\d{2}(?:[A-Z](?:[A-Z](?:\d{2})?)?)?")


def split_atc(text: pd.Series) -> pd.DataFrame:
    """The ATC codes of each medication cell (separated by ``,`` ``;`` ``|`` ``/`` or spaces):
    ``codes``, the valid ones joined by ``;``, and ``malformed``, the others joined by ``", "``.
    """
    def split(cell):
        tokens = [t for t in re.split(r"[,;|/\s]+", cell) if t]
        return (";".join(t for t in tokens if _ATC.fullmatch(t)), ", ".join(t for t in tokens if not _ATC.fullmatch(t)))

    return pd.DataFrame(text.str.upper().map(split).tolist(), index=text.index, columns=["codes", "malformed"],
                        dtype="str")


#: The module a checkbox label names (:func:`loose_key`), English or Italian, with or without its number.
_MODULES = {loose_key(label): k for k, title in C.MODULES.items() for ita in [C.MODULE_ITALIAN_TITLES[k]]
            for label in (title, ita, C.MODULE_FORM_LABELS[k], f"Modulo {k}", f"Module {k}", f"M{k}",
                          *(f"{p} {t}" for p in (f"M{k}", f"Modulo {k}", f"Module {k}", f"M {k}", f"Mod {k}")
                            for t in (title, ita)))}


def parse_modules(text: pd.Series) -> pd.DataFrame:
    """The modules ticked in each answer (joined by ``;``, else by ``,``): ``module_01`` ...
    ``module_11`` (bool) and ``unknown``, the labels naming no module joined by ``"; "``.
    """
    def parse(cell):
        labels = [x.strip() for x in cell.split(";" if ";" in cell else ",") if x.strip()]
        numbers = [_MODULES.get(loose_key(x)) for x in labels]
        return [k in numbers for k in C.MODULES] + ["; ".join(x for x, k in zip(labels, numbers) if k is None)]

    frame = pd.DataFrame(text.map(parse).tolist(), index=text.index, columns=C.MODULE_COLUMNS + ["unknown"])
    return frame.astype({**dict.fromkeys(C.MODULE_COLUMNS, bool), "unknown": "str"})


def map_codes(text: pd.Series, coding: dict[str, str]) -> pd.DataFrame:
    """A source's codes (or the canonical names; ``1,0`` is code ``1``) mapped to canonical
    categories, ignoring case, accents and spacing: ``value`` and ``bad``.
    """
    lookup = {text_key(k): v for k, v in coding.items()}
    lookup.update({text_key(v): v for v in sorted(set(coding.values())) if text_key(v) not in lookup})
    key = text.map(text_key).str.replace(r"^(\d+)[.,]0+$", r"\1", regex=True)
    value = key.map(lookup).astype("str")
    return pd.DataFrame({"value": value, "bad": (key != "") & value.isna()})


def canonical_municipality(text: pd.Series) -> pd.Series:
    """Municipalities spelled as in the codebook when known, else in title case."""
    lookup = {text_key(k): k for k in C.MUNICIPALITY_DISTRICT}
    return text.str.strip().map(lambda x: lookup.get(text_key(x), x.title() if x else None)).astype("str")


#: Service units by the ways an answer names them ("CSM di Ferrara", "Ferrara SerT", ...; :func:`loose_key`).
_UNITS = {loose_key(label): unit for unit, info in C.SERVICE_UNITS.items() for town in [unit.split(" ", 1)[1]]
          for alias in C.SERVICE_TYPE_ALIASES[info["service_type"]]
          for label in (f"{alias} {town}", f"{alias} di {town}", f"{town} {alias}")} | {
    loose_key(unit): unit for unit in C.SERVICE_UNITS}


def normalise_service_unit(text: pd.Series) -> pd.DataFrame:
    """The service unit an answer names, whatever its case, accents, spacing, punctuation
    (``Ser.D.``) or Italian service name: ``unit``, ``bad``, ``service_type``.
    """
    def unit(answer):
        key = re.sub(r"\bser d p\b", "serdp", loose_key(answer))  # "Ser.D.P." -> "serdp"
        return _UNITS.get(re.sub(r"\bser t\b", "sert", re.sub(r"\bser d\b", "serd", key)))

    units = text.map(unit).astype("str")
    return pd.DataFrame({"unit": units, "bad": (text.str.strip() != "") & units.isna(),
                         "service_type": units.map({u: i["service_type"] for u, i in C.SERVICE_UNITS.items()})})


def canonical_manual_version(text: pd.Series) -> pd.Series:
    """The manual version as the codebook writes it (ignoring case, accents, spacing), else as written."""
    lookup = {text_key(v): v for v in C.MANUAL_VERSIONS}
    text = text.str.strip().str.replace(r"\s+", " ", regex=True)
    return text.map(lambda x: lookup.get(text_key(x), x)).astype("str").where(text != "")


# Schemas: the contract on the typed records, a safety net behind the checks above --------
def ehr_schema(reference_year: int) -> pa.DataFrameSchema:
    """Schema of one harmonised EHR extract (EFESO or Sister), one row per record."""
    after_1900 = pa.Check.ge(pd.Timestamp(EARLIEST_DATE))
    return pa.DataFrameSchema({
        "patient_code": pa.Column("string", pa.Check.str_matches(r"^\S+$")),
        "birth_year": pa.Column("Int64", pa.Check.in_range(1900, reference_year)),
        "sex": pa.Column("category", pa.Check.isin(C.SEXES)),
        "municipality": pa.Column(),
        "first_access_date": pa.Column("datetime64[ns]", after_1900),
        "diagnosis_icd10": pa.Column("category", pa.Check.str_matches(r"^[A-Z]\d{2}(\.[0-9A-Z]{1,2})?$")),
        "programme_start_date": pa.Column("datetime64[ns]", after_1900, nullable=True),
        "education_years": pa.Column("Int64", pa.Check.in_range(0, 30), nullable=True),
        "marital_status": pa.Column("category", pa.Check.isin(C.MARITAL_STATUS), nullable=True),
        "living_condition": pa.Column("category", pa.Check.isin(C.LIVING_CONDITION), nullable=True),
        "employment_status": pa.Column("category", pa.Check.isin(C.EMPLOYMENT_STATUS), nullable=True),
    }, checks=[pa.Check(lambda df: df["first_access_date"].dt.year.astype("Int64") >= df["birth_year"],
                        error="first access is before the year of birth")])


def form_schema() -> pa.DataFrameSchema:
    """Schema of the harmonised IMR summary form, one row per completed programme."""
    after_1900 = pa.Check.ge(pd.Timestamp(EARLIEST_DATE))
    return pa.DataFrameSchema({
        "patient_code": pa.Column("string", pa.Check.str_matches(r"^\S+$")),
        "service_unit": pa.Column("category", pa.Check.isin(list(C.SERVICE_UNITS))),
        "imr_start": pa.Column("datetime64[ns]", after_1900),
        "imr_end": pa.Column("datetime64[ns]", after_1900),
        "imr_format": pa.Column("category", pa.Check.isin(C.IMR_FORMATS)),
        "n_sessions": pa.Column("Int64", pa.Check.ge(1)),
        **{col: pa.Column("Int64", pa.Check.in_range(C.IMRS_MIN, C.IMRS_MAX), nullable=True)
           for col in C.IMRS_USER_COLUMNS + C.IMRS_PROVIDER_COLUMNS},
    }, checks=[pa.Check(lambda df: df["imr_end"] >= df["imr_start"], error="stop date is before start date")])


def cohort_schema() -> pa.DataFrameSchema:
    """Schema of the cleaned cohort written to ``data/processed/cohort.parquet``."""
    columns = {
        "patient_id": pa.Column("string", unique=True),
        "age_at_imr_start": pa.Column("int64", pa.Check.in_range(0, 120)),
        "age_at_first_treatment": pa.Column("int64", pa.Check.in_range(0, 120)),
        "imr_duration_months": pa.Column("float64", pa.Check.ge(0)),
        "illness_duration_years": pa.Column("float64", pa.Check.ge(0)),
        "n_sessions": pa.Column("int64", pa.Check.ge(1)),
        "n_modules": pa.Column("int64", pa.Check.in_range(0, C.N_MODULES)),
    }
    for col, allowed in (("service_type", C.SERVICE_TYPES), ("service_unit", list(C.SERVICE_UNITS)), ("sex", C.SEXES),
                         ("residence_district", C.DISTRICTS), ("diagnosis_group", C.DIAGNOSIS_GROUPS),
                         ("imr_format", C.IMR_FORMATS)):
        columns[col] = pa.Column("category", pa.Check.isin(allowed))
    return pa.DataFrameSchema(columns | {col: pa.Column("bool") for col in C.MODULE_COLUMNS + C.MEDICATION_COLUMNS})


#: Dataframe-wide checks and the column their problems are reported in.
_WIDE_CHECKS = {"first access is before the year of birth": "first_access_date",
                "stop date is before start date": "imr_end"}


def validate(schema: pa.DataFrameSchema, df: pd.DataFrame, file: str, headers: dict | None = None) -> list[Problem]:
    """Every failure of ``schema`` on ``df`` (with ``_line``) as a :class:`Problem` naming file,
    line and column (its header in ``headers``); one per record for a dataframe-wide check.
    """
    headers = headers or {}
    try:
        schema.validate(df, lazy=True)
        return []
    except pandera.errors.SchemaErrors as err:
        cases = err.failure_cases
    problems, seen = [], set()
    for case in cases.itertuples(index=False):
        idx = case.index
        line = int(df.at[idx, "_line"]) if idx == idx and idx is not None and idx in df.index else None
        column, check, value = case.column if case.column == case.column else None, str(case.check), case.failure_case
        if case.schema_context == "DataFrameSchema" and check in _WIDE_CHECKS:
            if (line, check) in seen:
                continue
            seen.add((line, check))
            column = _WIDE_CHECKS[check]
            value = df.at[idx, column] if line is not None else None
        problems.append(Problem(file, line, headers.get(column, column), None if value is None else str(value),
                                _describe(check)))
    return problems


def _describe(check: str) -> str:
    """A pandera check described as a sentence."""
    name, _, args = check.partition("(")
    sentence = {"in_range": "value out of the allowed range ({}", "isin": "value is not one of the allowed categories",
                "str_matches": "value does not have the expected format", "not_nullable": "required value is missing",
                "greater_than_or_equal_to": "value below the allowed minimum ({}",
                "field_uniqueness": "value must be unique"}.get(name)
    return check if sentence is None else sentence.format(args)
