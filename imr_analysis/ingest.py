"""Read raw exports as they come out of EFESO, Sister and Google Forms.

Reading is deliberately forgiving about *form* (encoding, delimiter, header spelling)
and strict about *content* (that is :mod:`imr_analysis.clean`'s job):

- encoding: UTF-16 with BOM, UTF-8 (with or without BOM), else cp1252 (Italian Windows
  Excel), else latin-1; an Excel workbook saved with a ``.csv`` name is recognised and
  reported;
- delimiter: ``,`` ``;`` or tab, detected from the header and the first records (or
  taken from Excel's ``sep=;`` first line);
- optional first lines starting with ``#`` carry metadata; synthetic exports say
  ``# SYNTHETIC DATA`` there;
- header names are matched ignoring case, accents, spaces, underscores and punctuation,
  and through the aliases below (Italian Google Forms headers, English EHR names); the
  name the contract gives a field wins over an alias;
- columns nobody asked for are kept aside with a warning, never fatal; rows without any
  content are skipped with a warning; trailing empty fields are ignored;
- every value is read as text (stripped, Excel's ``="..."`` wrapper removed); numbers,
  dates and codes are parsed by the cleaner, which knows the line each value came from.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from . import constants as C
from .problems import ProblemLog, RawDataError, missing_folder

#: Extra accepted header names (normalised with :func:`header_key`) for canonical fields.
#: Every one is listed in the raw-data contract (``data/raw/README.md``, "Accepted header
#: names"); a test fails when the two disagree, so add an alias to both.
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
    "form": tuple(f for f in C.FORM_COLUMNS if f != "timestamp")
    + tuple(f"imrs_user_{k:02d}" for k in C.IMRS_ITEMS)
    + tuple(f"imrs_provider_{k:02d}" for k in C.IMRS_ITEMS),
}

#: Fields read when present; when the column is absent it is added empty, with a warning.
OPTIONAL_FIELDS = {"EFESO": (), "Sister": (), "form": ("timestamp",)}


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


#: Words naming the respondent in an IMRS grid header, by version of the scale (the
#: grid's other accepted names: see :func:`canonical_field`). Listed in the raw-data
#: contract, which a test keeps in step with this table and :data:`HEADER_ALIASES`.
IMRS_GRID_WORDS: dict[str, tuple[str, ...]] = {
    "user": ("user", "utente"),
    "provider": ("provider", "operatore", "operator"),
}

_GRID_VERSION = {word: version for version, words in IMRS_GRID_WORDS.items() for word in words}

#: IMRS grid headers: "User IMRS [1. ...]", "IMRS utente [1. ...]", "Operatore IMRS [1. ...]",
#: "imrs_user_01": ``IMRS`` (optional, before or after), a word of :data:`IMRS_GRID_WORDS`,
#: then the item number, in square brackets followed by any text, or bare.
_IMRS_GRID = re.compile(
    r"^(?:imrs\s*)?(?P<who>" + "|".join(sorted(_GRID_VERSION, key=len, reverse=True)) + r")\s*(?:imrs\s*)?"
    r"(?:\[\s*(?P<k>\d{1,2})\b.*\]|(?P<k2>\d{1,2}))$"
)


def field_map(source: str) -> dict[str, str]:
    """Map normalised header keys to canonical field names for ``source``."""
    return {**_alias_map(source), **_canonical_map(source)}


def _canonical_map(source: str) -> dict[str, str]:
    """Header keys of the names the contract gives each field (they win over aliases)."""
    if source in C.EHR_COLUMNS:
        return {header_key(col): fld for fld, col in C.EHR_COLUMNS[source].items()}
    base = {header_key(col): fld for fld, col in C.FORM_COLUMNS.items()}
    base.update(_imrs_header_keys("user"))
    base.update(_imrs_header_keys("provider"))
    return base


def _alias_map(source: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for fld, aliases in HEADER_ALIASES[source].items():
        for alias in aliases:
            out.setdefault(header_key(alias), fld)
    return out


def canonical_field(source: str, header: str, mapping: dict[str, str] | None = None) -> str | None:
    """Canonical field for a raw header, or None if the column is not one we know.

    Examples
    --------
    >>> canonical_field("form", "Informazioni cronologiche"), canonical_field("EFESO", "data_primo_accesso")
    ('timestamp', 'first_access_date')
    >>> canonical_field("form", "Utente IMRS [3. Coinvolgimento di familiari e amici]")
    'imrs_user_03'
    >>> canonical_field("form", "Operatore IMRS [12. Partecipazione ad attività di auto-aiuto]")
    'imrs_provider_12'
    """
    mapping = mapping or field_map(source)
    key = header_key(header)
    if key in mapping:
        return mapping[key]
    if source == "form":
        m = _IMRS_GRID.match(key)
        k = int(m.group("k") or m.group("k2")) if m else 0
        if 1 <= k <= C.N_IMRS_ITEMS:
            return f"imrs_{_GRID_VERSION[m.group('who')]}_{k:02d}"
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
    #: lines of rows with no content at all (skipped: they are not records)
    empty_lines: list = field(default_factory=list)

    @property
    def file(self) -> str:
        return self.path.name


#: What the first bytes of a file say about it when it is not a text CSV.
_BINARY_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"%PDF", "a PDF document"),
)


def _decode(raw: bytes) -> tuple[str, str]:
    """Decode an export: UTF-16 (with BOM), UTF-8 (with or without BOM), cp1252, latin-1.

    Examples
    --------
    >>> _decode("Scolarità".encode("cp1252")), _decode("\ufeffScolarità".encode("utf-8"))
    (('Scolarità', 'cp1252'), ('Scolarità', 'utf-8-sig'))
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "utf-16"
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            return raw.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


_DELIMITERS = (",", ";", "\t")


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return []


def _detect_delimiter(header_line: str, sample: list[str] | None = None) -> str:
    """The delimiter (``,`` ``;`` or tab) that splits the header into the most fields and
    the first records into as many fields as the header; ``,`` on ties.

    Examples
    --------
    >>> _detect_delimiter("a;b;c", ["1,5;2;3"]), _detect_delimiter('"a;x",b,c', ["1;2,3,4"])
    (';', ',')
    """
    best, best_score = ",", None
    for d in _DELIMITERS:
        n = len(_split(header_line, d))
        if n < 2:
            continue
        rows = [r for r in (sample or []) if r.strip()]
        consistent = sum(len(_split(r, d)) == n for r in rows)
        score = (consistent, n)
        if best_score is None or score > best_score:
            best, best_score = d, score
    return best


#: Fields that hold a different value on (almost) every row: read as plain text. Every
#: other field is dictionary-encoded (a pandas ``Categorical``), so that parsing, checking
#: and mapping run once per distinct value instead of once per row.
HIGH_CARDINALITY_FIELDS = frozenset({"patient_code", "timestamp"})


def _clean_text(series):
    """Strip spaces and Excel's ``="..."`` wrapper (used to keep leading zeros)."""
    s = series.astype("str").str.strip()
    wrapped = (s.str.startswith('="') & s.str.endswith('"') & (s.str.len() >= 3)).to_numpy(dtype=bool)
    if wrapped.any():
        s = s.where(~wrapped, s.str.slice(2, -1).str.strip())
    return s


def _clean_cells(series, categorical: bool = True):
    """:func:`_clean_text` of a raw column, as a ``Categorical`` of text when ``categorical``.

    A categorical column is cleaned on its categories only (then recoded: two raw
    spellings that clean to the same text become one category). Cell values, and hence
    everything read from them, are the same either way.

    Examples
    --------
    >>> import pandas as pd
    >>> _clean_cells(pd.Series([" a", "a", '="007"'])).tolist()
    ['a', 'a', '007']
    """
    import numpy as np
    import pandas as pd

    if not categorical:
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype("str")
        return _clean_text(series)
    if not isinstance(series.dtype, pd.CategoricalDtype):
        codes, uniques = pd.factorize(series.astype("str"), use_na_sentinel=True)
        series = pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype="str")),
                           index=series.index)
    cats = series.cat.categories
    cleaned = _clean_text(pd.Series(cats, dtype="str")).to_numpy(dtype=object)
    recode, uniques = pd.factorize(cleaned)
    codes = series.cat.codes.to_numpy()
    if len(uniques) < len(cats):  # two spellings clean to one text: recode (missing stays -1)
        codes = np.append(recode, -1).astype(codes.dtype)[codes]
    return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype="str"), validate=False),
                     index=series.index, name=series.name, copy=False)


def _blank_rows(frame) -> "object":
    """Rows whose every cell is empty after stripping (boolean numpy array)."""
    import numpy as np
    import pandas as pd

    blank = np.ones(len(frame), dtype=bool)
    for j in frame.columns:
        col = frame[j]
        if isinstance(col.dtype, pd.CategoricalDtype):
            empty_cat = (pd.Series(col.cat.categories, dtype="str").str.strip() == "").to_numpy(dtype=bool)
            codes = col.cat.codes.to_numpy()
            blank &= np.where(codes >= 0, empty_cat[np.maximum(codes, 0)] if len(empty_cat) else False, True)
        else:
            blank &= (col.astype("str").str.strip() == "").to_numpy(dtype=bool)
        if not blank.any():
            break
    return blank


def _preamble(lines, stop: int):
    """Metadata lines, Excel's ``sep=`` directive and blank lines before the header.

    Returns ``(offset, metadata_line, delimiter)``: ``offset`` is the index of the header
    line in ``lines`` (``stop`` when there is none among the first ``stop`` lines)."""
    offset, metadata_line, delimiter = 0, None, None
    while offset < stop:
        line = lines[offset]
        if line.startswith("#"):
            metadata_line = metadata_line or line
        elif re.fullmatch(r'"?sep=(.)"?,*;*\s*', line.strip("\ufeff")):
            delimiter = re.fullmatch(r'"?sep=(.)"?,*;*\s*', line.strip("\ufeff")).group(1)  # Excel directive
        elif line.strip(" \t,;\ufeff"):
            break
        offset += 1
    return offset, metadata_line, delimiter


#: Bytes decoded to find the header of a large file on the fast path.
_HEAD_BYTES = 1 << 20


#: Bytes scanned at a time when counting line ends in a large export.
_SCAN_BYTES = 1 << 24


def _byte_chunks(raw, start: int = 0):
    """``(offset, uint8 array)`` views of ``raw`` (bytes or a memory map) from ``start``."""
    import numpy as np

    data = np.frombuffer(raw, dtype=np.uint8)
    for i in range(start, len(data), _SCAN_BYTES):
        yield i, data[i:i + _SCAN_BYTES]


def _count_byte(raw, byte: int, start: int = 0) -> int:
    r"""How many times ``byte`` occurs in ``raw`` from ``start`` (``bytes.count`` for a memory map too).

    Examples
    --------
    >>> _count_byte(b"a\nb\n\nc", ord("\n")), _count_byte(b"a\nb\n\nc", ord("\n"), 2)
    (3, 2)
    """
    import numpy as np

    return sum(int(np.count_nonzero(chunk == byte)) for _, chunk in _byte_chunks(raw, start))


def _cr_only_before_lf(raw) -> bool:
    r"""True when every carriage return in ``raw`` is followed by a line feed (Windows line ends).

    Examples
    --------
    >>> _cr_only_before_lf(b"a\r\nb\r\n"), _cr_only_before_lf(b"a\rb\r\n"), _cr_only_before_lf(b"a\r")
    (True, False, False)
    """
    import numpy as np

    data = np.frombuffer(raw, dtype=np.uint8)
    for i, chunk in _byte_chunks(raw):
        cr = np.flatnonzero(chunk == 13) + i
        if len(cr) and (cr[-1] + 1 >= len(data) or (data[cr + 1] != 10).any()):
            return False
    return True


def _open_bytes(path: Path):
    """The bytes of ``path``: memory-mapped when large (no copy of the file in memory), else read."""
    import mmap

    if path.stat().st_size < _SCAN_BYTES:
        return path.read_bytes()
    with open(path, "rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_WILLNEED"):
        mapped.madvise(mmap.MADV_WILLNEED)  # read ahead now: a file not yet in memory is read at disk speed
    return mapped


def _read_fast(raw: bytes, source: str):
    """Read a UTF-8 export straight from its bytes with pyarrow's multi-threaded CSV reader.

    Taken only when it gives exactly what the ``csv`` module would: the bytes are UTF-8,
    lines end in ``\\n`` or ``\\r\\n`` (no lone ``\\r``), no NUL byte, the header sits on one
    line near the top and has no trailing empty field, and pyarrow finds one record per
    line, each with as many fields as the header (a blank line, a quoted field spanning
    lines or a short row make the counts differ or pyarrow refuse), and no record is
    empty. Record ``i`` then starts on file line ``offset + 2 + i``.

    Returns ``None`` (the caller then reads the file with the ``csv`` module, which reports
    each irregularity with its line) or a dict with ``header``, ``offset``,
    ``metadata_line``, ``delimiter``, ``encoding``, ``frame`` (columns ``0..width-1``:
    categorical text, plain text for :data:`HIGH_CARDINALITY_FIELDS`) and ``lines``.
    """
    import numpy as np

    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or raw.find(b"\x00") >= 0:
        return None
    bom = 3 if raw[:3] == b"\xef\xbb\xbf" else 0
    if raw.find(b"\r") >= 0 and not _cr_only_before_lf(raw):
        return None
    head = raw[bom:bom + _HEAD_BYTES]
    if len(raw) - bom > _HEAD_BYTES:
        head = head[: head.rfind(b"\n") + 1]
    try:
        head_text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = head_text.replace("\r\n", "\n").split("\n")
    complete = len(lines) - 1  # the last piece may be cut (or is what follows the final newline)
    offset, metadata_line, delimiter = _preamble(lines, complete)
    if offset >= complete or offset + 21 > complete and len(raw) - bom > _HEAD_BYTES:
        return None
    header_line = lines[offset]
    if delimiter is None:
        delimiter = _detect_delimiter(header_line, lines[offset + 1: offset + 21])
    if len(delimiter) != 1 or delimiter in '"\n\r' or header_line.count('"') & 1:
        return None
    header = [h.strip().strip("\ufeff") for h in _split(header_line, delimiter)]
    width = len(header)
    if width < 2 or header[-1] == "":
        return None
    body_start = bom
    for _ in range(offset + 1):
        body_start = raw.find(b"\n", body_start) + 1
        if body_start == 0:
            return None
    n_lines = _count_byte(raw, ord("\n"), body_start) + (0 if raw[-1:] == b"\n" else 1)
    if n_lines <= 0 or body_start >= len(raw):
        return None
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:  # pragma: no cover - pyarrow is pinned
        return None
    names = [f"c{j}" for j in range(width)]
    aliases = _alias_map(source)
    plain = {f"c{j}" for j, h in enumerate(header) if canonical_field(source, h, {**aliases, **_canonical_map(source)})
             in HIGH_CARDINALITY_FIELDS}
    types = {n: (pa.string() if n in plain else pa.dictionary(pa.int32(), pa.string())) for n in names}
    try:
        table = pacsv.read_csv(
            pa.py_buffer(raw).slice(body_start),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                                             escape_char=False, newlines_in_values=False,
                                             ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, ValueError):
        return None
    if table.num_rows != n_lines:
        return None
    frame = {j: table.column(j).to_pandas() for j in range(width)}
    del table
    import pandas as pd

    frame = pd.DataFrame(frame, copy=False)
    if _blank_rows(frame).any():  # rows without content are reported by the csv path
        return None
    return {"header": header, "offset": offset, "metadata_line": metadata_line, "delimiter": delimiter,
            "encoding": "utf-8-sig" if bom else "utf-8", "frame": frame,
            "lines": offset + 2 + np.arange(n_lines, dtype=np.int64)}


def _read_text(raw: bytes, name: str, log: ProblemLog):
    """Decode and read an export with the ``csv`` module, record by record, noting the line
    where each record starts (and ends, when a quoted field spans lines) and blank lines.

    Returns ``(header, offset, delimiter, metadata_line, encoding, records, record_lines,
    record_ends, empty_lines)``, or ``None`` after logging why the file cannot be read.
    """
    text, encoding = _decode(raw)
    if "\x00" in text:
        log.error(name, None, None, None, "the file contains NUL bytes; it is not a CSV text file")
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    offset, metadata_line, delimiter = _preamble(lines, len(lines))
    if offset >= len(lines):
        log.error(name, None, None, None, "the file is empty (no header line)")
        return None
    header_line = lines[offset]
    if delimiter is None:
        delimiter = _detect_delimiter(header_line, lines[offset + 1: offset + 21])
    body = "\n".join(lines[offset:])
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    try:
        header = [h.strip().strip("\ufeff") for h in next(reader)]
    except csv.Error as err:
        log.error(name, offset + 1, None, None, f"the header line cannot be read as CSV ({err})")
        return None
    records: list[list[str]] = []
    record_lines: list[int] = []
    record_ends: dict[int, int] = {}  # start line -> end line, for records spanning lines
    empty_lines: list[int] = []
    prev = reader.line_num
    try:
        for rec in reader:
            line_no = prev + 1 + offset  # 1-based file line where this record starts
            if reader.line_num - prev > 1:
                record_ends[line_no] = reader.line_num + offset
            prev = reader.line_num
            if not any(cell.strip() for cell in rec):
                empty_lines.append(line_no)
                continue  # blank line: not a record
            records.append(rec)
            record_lines.append(line_no)
    except csv.Error as err:
        log.error(name, reader.line_num + offset, None, None, f"the line cannot be read as CSV ({err})")
    while header and header[-1] == "" and all(len(r) < len(header) or not r[len(header) - 1].strip()
                                              for r in records):
        header.pop()  # trailing delimiter on the header line (and maybe on the rows)
    return header, offset, delimiter, metadata_line, encoding, records, record_lines, record_ends, empty_lines


def read_raw(path: str | Path, source: str, log: ProblemLog | None = None) -> RawTable:
    """Read one raw export of ``source`` (``EFESO``, ``Sister`` or ``form``) as text.

    Form problems (a file missing, empty or not a CSV, no data rows, a required column
    missing, two columns for one field, a row with the wrong number of fields) are
    recorded in ``log`` with file, line and column; if no log is given they are raised
    at once as :class:`RawDataError`. Tolerated, with a warning: columns outside the
    contract (kept aside in ``extra``), rows without any content, a missing optional
    column. Tolerated silently: encoding, BOM, delimiter, an Excel ``sep=;`` line,
    trailing empty fields, header spelling.

    Parameters
    ----------
    path : the CSV file.
    source : ``"EFESO"``, ``"Sister"`` or ``"form"``.
    log : where problems and warnings go; ``None`` raises at once.

    Returns
    -------
    RawTable
        ``data`` holds one column per canonical field (text, stripped) and ``_line``,
        the line where each record starts in the file as a text editor numbers it.

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
    if path.is_dir():
        log.error(name, None, None, None, f"{path} is a folder, not a CSV file")
        return _empty(source, path, log, own_log)
    try:
        raw = _open_bytes(path)
    except (OSError, ValueError) as err:
        log.error(name, None, None, None, f"the file cannot be read ({getattr(err, 'strerror', None) or err})")
        return _empty(source, path, log, own_log)
    for signature, what in _BINARY_SIGNATURES:
        if raw[:len(signature)] == signature:
            log.error(name, None, None, None,
                      f"this is {what}, not a CSV text file; open it and save it as CSV (UTF-8 or 'CSV (separato "
                      "da punto e virgola)')")
            return _empty(source, path, log, own_log)
    fast = _read_fast(raw, source)
    if fast is not None:
        header, offset, delimiter = fast["header"], fast["offset"], fast["delimiter"]
        metadata_line, encoding = fast["metadata_line"], fast["encoding"]
        fast_frame, record_lines = fast["frame"], fast["lines"]
        records = range(len(record_lines))  # only its length is used below
        record_ends: dict[int, int] = {}
        empty_lines: list[int] = []
        del raw, fast
    else:
        parsed = _read_text(bytes(raw), name, log)
        if parsed is None:
            return _empty(source, path, log, own_log)
        header, offset, delimiter, metadata_line, encoding, records, record_lines, record_ends, empty_lines = parsed
    synthetic = bool(metadata_line and metadata_line.startswith(C.SYNTHETIC_MARKER))
    width = len(header)
    canonical, aliases = _canonical_map(source), _alias_map(source)
    chosen: dict[str, tuple[int, int]] = {}  # field -> (priority, column index)
    unknown_cols: list[int] = []
    for j, h in enumerate(header):
        key = header_key(h)
        if key in canonical:
            fld, prio = canonical[key], 0
        else:
            fld, prio = canonical_field(source, h, aliases), 1
        if fld is None:
            unknown_cols.append(j)
            continue
        if fld in chosen:
            p0, j0 = chosen[fld]
            if prio < p0:
                chosen[fld] = (prio, j)
                unknown_cols.append(j0)
                log.warn(name, offset + 1, header[j0], None,
                         f"another column, '{h}', holds '{_expected_header(source, fld)}'; this one is kept aside")
            elif prio > p0:
                unknown_cols.append(j)
                log.warn(name, offset + 1, h, None,
                         f"column '{header[j0]}' holds '{_expected_header(source, fld)}'; this one is kept aside")
            else:
                log.error(name, offset + 1, h, None,
                          f"two columns, '{header[j0]}' and '{h}', both hold '{_expected_header(source, fld)}'; "
                          "remove one of them")
            continue
        chosen[fld] = (prio, j)
    headers = {fld: header[j] for fld, (_, j) in sorted(chosen.items(), key=lambda kv: kv[1][1])}
    unknown_cols = sorted(unknown_cols)
    unnamed = [j for j in unknown_cols if header[j] == ""]
    for j in unknown_cols:
        if header[j] == "":
            continue
        if canonical_field(source, header[j], aliases) is None and header_key(header[j]) not in canonical:
            log.warn(name, offset + 1, header[j], None,
                     "column not part of the raw-data contract; kept aside, not used")
    if unnamed:
        log.warn(name, offset + 1, None, None,
                 f"{len(unnamed)} column(s) without a name in the header (positions "
                 f"{', '.join(str(j + 1) for j in unnamed)}); kept aside, not used")
    missing = [f for f in REQUIRED_FIELDS[source] if f not in headers]
    if missing:
        hint = [header[j] for j in unknown_cols if header[j]]
        hint_text = (f"; columns not recognised: {', '.join(repr(h) for h in hint[:10])}" if hint else "")
        for f in missing:
            log.error(name, offset + 1, _expected_header(source, f), None,
                      "required column is missing from the header" + hint_text)
    for i, (rec, ln) in enumerate(zip(records, record_lines) if isinstance(records, list) else ()):
        if len(rec) > width and not any(c.strip() for c in rec[width:]):
            records[i] = rec[:width]  # trailing empty fields (a delimiter at the end of the line)
        elif len(rec) != width:
            spans = (f" (the record runs from line {ln} to line {record_ends[ln]}: a quote is probably not "
                     "closed)") if ln in record_ends else ""
            log.error(name, ln, None, None,
                      f"the row has {len(rec)} fields but the header has {width}; check the delimiter "
                      f"({_delimiter_name(delimiter)} detected) and the quoting{spans}")
    if empty_lines:
        log.warn(name, empty_lines[0], None, None,
                 f"{len(empty_lines)} row(s) without any content skipped (line(s) {_lines_text(empty_lines)})")
    if not records:
        if source == "form":
            log.error(name, None, None, None, "the file has a header but no records")
        else:
            log.warn(name, None, None, None, "the file has a header but no records")
    if not isinstance(records, list):
        all_df = fast_frame
    else:
        padded = [(rec + [""] * width)[:width] for rec in records]
        all_df = pd.DataFrame(padded, columns=range(width), dtype="str") if width else pd.DataFrame(
            index=range(len(records)))
    data = pd.DataFrame({fld: (all_df[header.index(h)] if len(records) else pd.Series([], dtype="str"))
                         for fld, h in headers.items()}, copy=False)
    for fld in OPTIONAL_FIELDS[source]:
        if fld not in headers and not missing:
            log.warn(name, offset + 1, _expected_header(source, fld), None,
                     "optional column is absent; its values are missing (it is not used in the analysis)")
            headers[fld] = _expected_header(source, fld)
            data[fld] = pd.Series([""] * len(records), dtype="str")
    data = pd.DataFrame({fld: _clean_cells(data[fld], categorical=fld not in HIGH_CARDINALITY_FIELDS)
                         for fld in data.columns}, index=data.index, copy=False) if len(data.columns) else data
    data["_line"] = pd.Series(record_lines, dtype="int64")
    extra_cols = [j for j in unknown_cols if j < width]
    extra = all_df[extra_cols].copy() if records and extra_cols else pd.DataFrame()
    if len(extra.columns):
        extra.columns = [header[j] or f"(unnamed column {j + 1})" for j in extra_cols]
    table = RawTable(source=source, path=path, data=data, headers=headers, extra=extra,
                     synthetic=synthetic, encoding=encoding, delimiter=delimiter,
                     n_records=len(records), metadata_line=metadata_line, empty_lines=empty_lines)
    if own_log:
        log.raise_if_any()
    return table


def _delimiter_name(d: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab"}.get(d, repr(d))


def _lines_text(lines: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(x) for x in lines[:limit])
    return shown + (f" and {len(lines) - limit} more" if len(lines) > limit else "")


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
            head = fh.read(4096)
        first = _decode(head[: len(head) - len(head) % 2] if head.startswith((b"\xff\xfe", b"\xfe\xff"))
                        else head)[0].split("\n", 1)[0]
        if not first.startswith(C.SYNTHETIC_MARKER):
            return "private"
    return "synthetic"


def read_exports(raw_dir: str | Path, log: ProblemLog | None = None) -> dict[str, RawTable]:
    """Read the three exports in ``raw_dir``; header problems of all files are reported together."""
    own_log = log is None
    log = log or ProblemLog()
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise RawDataError([missing_folder(raw_dir)])
    tables = {source: read_raw(p, source, log) for source, p in raw_paths(raw_dir).items()}
    if own_log:
        log.raise_if_any()
    return tables
