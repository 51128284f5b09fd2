"""The identifier guard: refuse data and outputs that carry direct identifiers.

An EHR extract can carry names, Italian fiscal codes, full dates of birth, phone numbers,
e-mail addresses or street addresses. The compendium works on pseudonymous exports only
(patient codes such as ``EF12345``, birth *years*), so

* :func:`guard_dataframe` refuses a loaded export (raising :class:`IdentifierError`, naming
  the file, the column and an example row -- never the value, which is masked);
* :func:`scan_paths` scans data files, tables, figures (SVG) and notebooks (cell sources
  *and* outputs) for the same patterns in values;
* ``python -m imr_analysis scan PATH...`` (:func:`main`) prints ``path:line: kind (masked
  value)`` for each finding and exits 1 if there is any.

What is detected
----------------
``fiscal_code``
    16-character Italian *codice fiscale* whose check character is right (official
    algorithm, DM 23/12/1976), omocodia letters included; a header such as
    ``codice_fiscale``.
``person_name``
    Headers such as ``nome``, ``cognome``, ``name``, ``surname``, ``first_name``,
    ``last_name``, ``nominativo``; or a column whose values look like "Firstname Lastname"
    in most rows and are mostly distinct (categorical labels repeat; names do not).
``date_of_birth``
    Full dates (day precision) in a birth-date column (``data_nascita``,
    ``date_of_birth``, ``dob``, ``ANNO_NASCITA`` holding dates ...). A birth year is allowed.
``phone``
    Italian mobile (3xx ...) and landline (0x ...) numbers, optionally with +39/0039.
``email``
    E-mail addresses (documentation domains such as example.org are ignored).
``address``
    "Via/Viale/Piazza/Corso/Largo/Vicolo <Name> <number>"; headers ``indirizzo``/``address``.

Pseudonymous codes (``EF12345``, ``SD12345``), ICD-10 and ATC codes and dates that are
not birth dates (e.g. first-access dates) are not identifiers and are not flagged.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import unicodedata
from pathlib import Path
from typing import Iterable

KINDS = ("fiscal_code", "person_name", "date_of_birth", "phone", "email", "address")
KIND_LABELS = {
    "fiscal_code": "Italian fiscal codes (codice fiscale, valid check character)",
    "person_name": "person names",
    "date_of_birth": "full dates of birth",
    "phone": "phone numbers",
    "email": "e-mail addresses",
    "address": "street addresses",
}
#: Text files scanned when a directory is walked.
SCAN_EXTENSIONS = (".csv", ".tsv", ".txt", ".md", ".tex", ".html", ".htm", ".svg", ".json", ".ipynb")
SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", ".ipynb_checkpoints", ".pytest_cache",
             ".hypothesis", "node_modules", ".mypy_cache", ".ruff_cache"}
#: Notebook output MIME types holding text (images and PDFs are skipped).
TEXT_MIME_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex", "image/svg+xml",
                   "application/json", "text/csv")

# --------------------------------------------------------------------------------------
# Italian fiscal code (codice fiscale)
# --------------------------------------------------------------------------------------
#: Omocodia: digits replaced by these letters (0-9) in positions 7-8, 10-11, 13-15.
OMOCODIA_LETTERS = "LMNPQRSTUV"
MONTH_LETTERS = "ABCDEHLMPRST"
_ODD_VALUES = {  # value of a character in an odd position (1st, 3rd, ... 15th)
    **dict(zip("0123456789", (1, 0, 5, 7, 9, 13, 15, 17, 19, 21))),
    **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
               (1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23))),
}
_EVEN_VALUES = {**{d: i for i, d in enumerate("0123456789")},
                **{c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}}
_D = "[0-9LMNPQRSTUV]"
CF_PATTERN = f"[A-Z]{{6}}{_D}{{2}}[{MONTH_LETTERS}]{_D}{{2}}[A-Z]{_D}{{3}}[A-Z]"
_CF_FULL = re.compile(f"^{CF_PATTERN}$")
_DL = "[0-9LMNPQRSTUVlmnpqrstuv]"
_CF_TEXT = re.compile(f"(?<![A-Za-z0-9])([A-Za-z]{{6}}{_DL}{{2}}[A-Za-z]{_DL}{{2}}[A-Za-z]{_DL}{{3}}[A-Za-z])"
                      "(?![A-Za-z0-9])")


def fiscal_code_check_character(first15: str) -> str:
    """Compute the check character of an Italian fiscal code from its first 15 characters.

    Characters in odd positions (1st, 3rd, ..., 15th) are converted with the "odd" table
    of the ministerial decree, those in even positions with the "even" table (digits and
    letters A-Z -> 0-25); the sum modulo 26 is the check letter (0 -> A ... 25 -> Z).
    Omocodia letters are converted as letters, as the algorithm prescribes.

    Parameters
    ----------
    first15 : the first 15 characters of the code (case-insensitive).

    Returns
    -------
    str
        One letter A-Z.

    Examples
    --------
    >>> fiscal_code_check_character("RSSMRA85T10A562")
    'S'
    """
    s = first15.upper()
    if len(s) != 15 or not all(ch in _EVEN_VALUES for ch in s):
        raise ValueError("expected the first 15 characters of a fiscal code (letters and digits)")
    total = sum(_ODD_VALUES[ch] if i % 2 == 0 else _EVEN_VALUES[ch] for i, ch in enumerate(s))
    return chr(ord("A") + total % 26)


def is_valid_fiscal_code(code: str) -> bool:
    """True if ``code`` is a well-formed Italian fiscal code with the right check character.

    Checks the 16-character pattern (with omocodia letters allowed in the numeric
    positions), the month letter, the day (1-31, or 41-71 for women) and the check
    character. Spaces and hyphens are ignored; case is ignored.

    Examples
    --------
    >>> is_valid_fiscal_code("RSSMRA85T10A562S")
    True
    >>> is_valid_fiscal_code("RSSMRA85T10A562B")
    False
    >>> is_valid_fiscal_code("EF12345")
    False
    """
    if not isinstance(code, str):
        return False
    s = re.sub(r"[\s-]", "", code).upper()
    if not _CF_FULL.match(s):
        return False
    day = int("".join(str(OMOCODIA_LETTERS.index(c)) if c in OMOCODIA_LETTERS else c for c in s[9:11]))
    if not (1 <= day <= 31 or 41 <= day <= 71):
        return False
    return fiscal_code_check_character(s[:15]) == s[15]


def _valid_cf_mask(values):
    """Vectorised :func:`is_valid_fiscal_code` over a string Series (whole values)."""
    import numpy as np
    import pandas as pd

    s = values.astype(str).str.replace(r"[\s-]", "", regex=True).str.upper()
    cand = s.str.fullmatch(CF_PATTERN).fillna(False).to_numpy(dtype=bool)
    out = np.zeros(len(s), dtype=bool)
    if not cand.any():
        return pd.Series(out, index=values.index)
    codes = s[cand].to_numpy(dtype=str)
    arr = np.frombuffer("".join(codes).encode("ascii"), dtype=np.uint8).reshape(-1, 16)
    odd = np.zeros(256, dtype=np.int64)
    even = np.zeros(256, dtype=np.int64)
    for ch, v in _ODD_VALUES.items():
        odd[ord(ch)] = v
    for ch, v in _EVEN_VALUES.items():
        even[ord(ch)] = v
    total = odd[arr[:, 0:15:2]].sum(axis=1) + even[arr[:, 1:15:2]].sum(axis=1)
    check_ok = (ord("A") + total % 26) == arr[:, 15]
    digit = np.full(256, -1, dtype=np.int64)
    for i, ch in enumerate("0123456789"):
        digit[ord(ch)] = i
    for i, ch in enumerate(OMOCODIA_LETTERS):
        digit[ord(ch)] = i
    day = digit[arr[:, 9]] * 10 + digit[arr[:, 10]]
    day_ok = ((day >= 1) & (day <= 31)) | ((day >= 41) & (day <= 71))
    out[np.flatnonzero(cand)] = check_ok & day_ok
    return pd.Series(out, index=values.index)


# --------------------------------------------------------------------------------------
# Other patterns
# --------------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![\w-])")
_EMAIL_IGNORED_DOMAINS = re.compile(
    r"@(?:[\w-]+\.)*(?:example\.(?:com|org|net|it)|invalid|test|localhost|users\.noreply\.github\.com)$",
    re.IGNORECASE)
_PHONE = re.compile(
    r"(?<![\w.,/+-])"
    r"((?:(?:\+|00)39[ .-]?)?"
    r"(?:3\d{2}(?:[ /-]?\d{6,7}|[ -]\d{3}[ -]\d{3,4})"
    r"|0[1-9]\d{0,3}(?:[ /-]?\d{4,8}|[ -]\d{2,4}[ -]\d{2,4})))"
    r"(?![\w]|[.,]\d)")
_ADDRESS_WORD = (r"(?:Via|VIA|via|Viale|VIALE|viale|Piazza|PIAZZA|piazza|Piazzale|PIAZZALE|piazzale|"
                 r"Corso|CORSO|corso|Largo|LARGO|largo|Vicolo|VICOLO|vicolo|P\.zza|P\.za|V\.le|C\.so)")
_ADDRESS = re.compile(
    rf"(?<![\w.]){_ADDRESS_WORD}[ \t]+"
    r"(?:(?:[Dd]ei|[Dd]egli|[Dd]elle|[Dd]ella|[Dd]ello|[Dd]el|[Dd]i|[Dd]e|[Ss]an|[Ss]anta|[Ss]\.|"
    r"DEI|DEGLI|DELLE|DELLA|DELLO|DEL|DI|DE|SAN|SANTA)[ \t]+)*"
    r"(?!(?:Python|Papermill|PyPI|GitHub|GitLab|Jupyter|JupyterLab|Conda|Docker|R)\b)"
    r"[A-ZÀ-Þ][A-Za-zÀ-ÿ'’.]*(?:[ \t]+[A-Za-zÀ-ÿ'’][A-Za-zÀ-ÿ'’.]*){0,4}?"
    r"[ \t]*,?[ \t]*(?:(?:n|nr|N|NR)\.?[ \t]*|n°[ \t]*|civico[ \t]+)?"
    r"\d{1,4}(?:[ \t]?/?[ \t]?[A-Za-z](?!\w))?(?!\w|[.,]\d)")


def _nocapture(pattern: str) -> str:
    """The same regex with capturing groups made non-capturing (for Series.str.contains)."""
    return re.sub(r"(?<!\\)\((?!\?)", "(?:", pattern)


_FULL_DATE = (r"^\s*(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}[/.-]\d{1,2}[/.-]\d{1,2})"
              r"(?:[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?)?\s*$")
_NAME_TOKEN = r"[A-ZÀ-Þ](?:[a-zß-ÿ]*['’][A-ZÀ-Þ]?)?[a-zß-ÿ]+"
_NAME_PARTICLE = r"(?:d[aei]|de[il]|della|dello|delle|van|von|la|le|lo|di|De|Di|Da|Del|Della|La|Lo)"
_NAME_TITLE = rf"{_NAME_TOKEN}(?:[ -](?:{_NAME_PARTICLE} )?{_NAME_TOKEN}){{1,3}}"
_NAME_UPPER = r"[A-ZÀ-Þ'’]{2,}(?: [A-ZÀ-Þ'’]{2,}){1,3}"
_NAME_FULL = rf"(?:{_NAME_TITLE}|{_NAME_UPPER}),?"


# Necessary conditions (RE2 syntax, run natively by pyarrow) for the patterns above: a value
# that fails one cannot match the full pattern, so the full (Python ``re``) pattern only runs on
# the candidates. Python's ``\d`` is Unicode ``\p{Nd}``; RE2's ``\w`` is ASCII, so
# ``[^\w...]`` accepts at least every character Python's look-behind accepts.
# A fiscal code is 16 letters and digits once white space and '-' are dropped: the value holds
# nothing else (or a non-ASCII character, which upper() may turn into ASCII letters).
_CF_CANDIDATE = r"[^\x00-\x7f]|^[\x09-\x0d\x1c-\x20A-Za-z0-9-]{16,}$"
_CF_TEXT_CANDIDATE = r"[A-Za-z]{6}"
_EMAIL_CANDIDATE = "@"
_PHONE_CANDIDATE = (r"(?:^|[^\w.,/+-])(?:(?:\+|00)39[ .-]?)?"
                    r"(?:3\p{Nd}{2}(?:[ /-]?\p{Nd}{6,7}|[ -]\p{Nd}{3}[ -]\p{Nd}{3,4})"
                    r"|0[1-9]\p{Nd}{0,3}(?:[ /-]?\p{Nd}{4,8}|[ -]\p{Nd}{2,4}[ -]\p{Nd}{2,4}))")
_ADDRESS_CANDIDATE = rf"(?:^|[^\w.]){_ADDRESS_WORD}[ \t]"
_NAME_CANDIDATE = None  # names hold no ASCII digit: see _on_candidates
#: Below this many distinct values the full patterns simply run on all of them.
_PREFILTER_MIN = 2000


def _distinct_texts(s, nonnull):
    """``(codes, texts)``: each row's index into the distinct stripped texts (-1: missing)."""
    import numpy as np
    import pandas as pd

    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) != "string":
        # mixed Python objects: str() of each value first, as a row-wise scan would
        vals = s.where(nonnull, None)
        text = pd.Series([str(v).strip() if v is not None else "" for v in vals.to_numpy()], dtype="str")
        codes, uniq = pd.factorize(text.where(nonnull.to_numpy(), None))
        return codes, pd.Series(uniq, dtype="str")
    plain_text = (not isinstance(s.dtype, pd.CategoricalDtype) and s.dtype != object
                  and pd.api.types.is_string_dtype(s.dtype))
    if plain_text and len(s) >= _PREFILTER_MIN and s.iloc[:_PREFILTER_MIN].nunique() >= 0.9 * _PREFILTER_MIN:
        # (almost) one value per row, e.g. patient codes: hashing them would find no repeats to save
        codes = np.where(nonnull.to_numpy(dtype=bool), np.arange(len(s)), -1)
        return codes, s.fillna("").str.strip().reset_index(drop=True).astype("str")
    if isinstance(s.dtype, pd.CategoricalDtype):  # the codes are there already (every category used)
        codes = s.cat.codes.to_numpy()
        if np.bincount(codes[codes >= 0], minlength=len(s.cat.categories)).all():
            return codes, pd.Series([str(v).strip() for v in s.cat.categories], dtype="str")
    codes, uniq = pd.factorize(s)
    if isinstance(uniq, pd.Index) and pd.api.types.is_string_dtype(uniq.dtype) and uniq.dtype != object:
        return codes, pd.Series(uniq, dtype="str").str.strip().reset_index(drop=True)
    text = pd.Series([str(v).strip() for v in np.asarray(uniq, dtype=object)], dtype="str")
    return codes, text


#: Codes such as ``EF00001234``: letters then digits, at most 15 characters. No pattern
#: below can match one (a fiscal code has 16 characters; a phone number starts at the
#: beginning of the value or after a non-word character, with '+', '0' or '3'; e-mails,
#: addresses and names need '@', a space or no digit), so such values skip the checks.
_INERT_CODE = r"[A-Za-z]{1,14}[0-9]{1,14}"
#: Form timestamps such as ``15/07/2021 10:32:11``: two-digit fields between '/' and ':'
#: cannot hold a phone number (it needs four more digits or a space after its first two),
#: and hold no letter or '@'.
_INERT_TIMESTAMP = r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}"


def _inert(text):
    """Boolean array: values of the :data:`_INERT_CODE` or :data:`_INERT_TIMESTAMP` shape
    (``None`` for few values, or when there is none)."""
    import numpy as np

    if len(text) < _PREFILTER_MIN:
        return None
    inert = ((text.str.fullmatch(_INERT_CODE).fillna(False).to_numpy(dtype=bool)
              & (text.str.len().fillna(0).to_numpy() <= 15))
             | text.str.fullmatch(_INERT_TIMESTAMP).fillna(False).to_numpy(dtype=bool))
    return inert if inert.any() else None


def _on_candidates(text, prefilter, check, width: int = 1, inert=None):
    """Boolean result of ``check`` over ``text``, evaluated only where ``prefilter`` matches.

    ``prefilter`` is a necessary condition for ``check`` to be true (``None``: the value has
    no ASCII digit); with few values ``check`` simply runs on all of them. Values marked
    ``inert`` (see :data:`_INERT_CODE`) are not examined: the result there is False.
    """
    import numpy as np

    n = len(text)
    if n < _PREFILTER_MIN:
        out = np.asarray(check(text), dtype=bool)
        return out.reshape(n, width) if width > 1 else out.reshape(n)
    if inert is not None:
        out = np.zeros((n, width), dtype=bool)
        live = np.flatnonzero(~inert)
        if len(live):
            out[live] = _on_candidates(text.iloc[live].reset_index(drop=True), prefilter, check, width).reshape(
                -1, width)
        return out if width > 1 else out[:, 0]
    if prefilter is None:
        cand = ~text.str.contains(r"[0-9]", regex=True).fillna(False).to_numpy(dtype=bool)
    else:
        cand = text.str.contains(prefilter, regex=True).fillna(False).to_numpy(dtype=bool)
    out = np.zeros((n, width), dtype=bool)
    if cand.any():
        out[cand] = np.asarray(check(text[cand].reset_index(drop=True)), dtype=bool).reshape(-1, width)
    return out if width > 1 else out[:, 0]


# --------------------------------------------------------------------------------------
# Column headers
# --------------------------------------------------------------------------------------
_NAME_HEADERS = {
    "nome", "cognome", "nominativo", "name", "surname", "first_name", "firstname", "last_name", "lastname",
    "full_name", "fullname", "given_name", "family_name", "forename", "patient_name", "nome_paziente",
    "cognome_paziente", "nome_cognome", "cognome_nome", "nome_e_cognome", "cognome_e_nome",
    "nome_assistito", "cognome_assistito", "nome_utente", "cognome_utente", "nominativo_paziente",
    "paziente_nome", "paziente_cognome",
}
_CF_HEADERS = {"codice_fiscale", "codicefiscale", "cod_fiscale", "cod_fisc", "codfisc", "cf", "c_f",
               "fiscal_code", "tax_code", "codice_fiscale_paziente", "cf_paziente", "ssn"}
_PHONE_HEADERS = {"telefono", "tel", "cellulare", "cell", "phone", "phone_number", "mobile", "mobile_phone",
                  "recapito_telefonico", "numero_telefono", "telefono_cellulare", "telefono_fisso", "fax"}
_EMAIL_HEADERS = {"email", "e_mail", "mail", "pec", "indirizzo_email", "indirizzo_mail", "posta_elettronica",
                  "email_address"}
_ADDRESS_TOKENS = {"indirizzo", "address", "street"}
_DOB_HEADERS = {"data_nascita", "data_di_nascita", "dt_nascita", "data_nasc", "datanascita", "date_of_birth",
                "dob", "birth_date", "birthdate", "birthday", "nascita", "d_nascita", "nato_il", "nata_il"}


def _normalise_header(name) -> str:
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def header_kind(name) -> str | None:
    """The identifier kind a column header announces, or None.

    Examples
    --------
    >>> header_kind("Codice Fiscale"), header_kind("COGNOME"), header_kind("ANNO_NASCITA")
    ('fiscal_code', 'person_name', None)
    >>> header_kind("DATA_NASCITA"), header_kind("DATA_PRIMO_ACCESSO")
    ('date_of_birth', None)
    """
    h = _normalise_header(name)
    tokens = set(h.split("_"))
    if h in _CF_HEADERS:
        return "fiscal_code"
    if h in _NAME_HEADERS:
        return "person_name"
    if h in _EMAIL_HEADERS or (tokens & {"email", "mail", "pec"} and tokens & _ADDRESS_TOKENS):
        return "email"
    if h in _PHONE_HEADERS or tokens & {"telefono", "cellulare"}:
        return "phone"
    if tokens & _ADDRESS_TOKENS:
        return "address"
    if h in _DOB_HEADERS:
        return "date_of_birth"
    return None


def _is_birth_header(name) -> bool:
    h = _normalise_header(name)
    return "nascita" in h or "birth" in h or h in {"dob", "nato_il", "nata_il", "born", "yob"}


def _vocabulary() -> frozenset:
    """Labels of the compendium's own vocabulary, never person names (casefolded)."""
    global _VOCAB
    if _VOCAB is None:
        from . import constants as c

        words: set[str] = set()
        words.update(c.MUNICIPALITY_DISTRICT, c.SERVICE_UNITS, c.MODULES.values(), c.MODULE_ITALIAN_TITLES.values(),
                     c.IMRS_ITEMS.values(), c.DIAGNOSIS_GROUP_LABELS.values(), c.MEDICATION_CLASS_LABELS.values(),
                     c.MANUAL_VERSIONS, c.FORM_FORMATS, c.SERVICE_TYPE_LABELS.values(), c.DISTRICTS)
        for ehr in c.EHR_CODINGS.values():
            for coding in ehr.values():
                words.update(coding)
        _VOCAB = frozenset(w.casefold() for w in words)
    return _VOCAB


_VOCAB: frozenset | None = None


# --------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Finding:
    """One suspected direct identifier.

    Attributes
    ----------
    path : file name or path.
    kind : one of :data:`KINDS`.
    masked : the value with its letters and digits masked ("" for a header-only finding).
    line : 1-based line in the file (None for an in-memory DataFrame).
    column : column name, for table findings.
    row : 1-based data row (header excluded) of an example, for table findings.
    detail : why it was flagged (e.g. "values in 12 of 40 rows", "header").
    location : where in a notebook ("cell 3, output 1, text/html").
    """

    path: str
    kind: str
    masked: str
    line: int | None = None
    column: str | None = None
    row: int | None = None
    detail: str = ""
    location: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line if self.line is not None else 0}"
        extra = []
        if self.column is not None:
            extra.append(f"column {self.column!r}")
        if self.location:
            extra.append(self.location)
        if self.detail:
            extra.append(self.detail)
        tail = f" [{'; '.join(extra)}]" if extra else ""
        return f"{where}: {self.kind} ({self.masked or 'header'}){tail}"


class IdentifierError(ValueError):
    """A table holds direct identifiers; ``findings`` lists them."""

    def __init__(self, message: str, findings: list[Finding]):
        super().__init__(message)
        self.findings = findings


def mask_value(value: str, kind: str = "") -> str:
    """Mask a suspected identifier: keep the first character of each word, hide the rest.

    Fiscal codes keep their first two characters; e-mails keep the first character of the
    local part and of the domain and the top-level domain; phone numbers keep the
    international prefix and the last two digits. The length of each word is preserved.

    Examples
    --------
    >>> mask_value("Mario Rossi", "person_name")
    'M**** R****'
    >>> mask_value("mario.rossi@asl.fe.it", "email")
    'm**********@a*****.it'
    >>> mask_value("+39 340 1234567", "phone")
    '+39 *** *****67'
    """
    v = str(value).strip()
    if kind == "fiscal_code":
        return v[:2] + "*" * max(len(v) - 2, 0)
    if kind == "email" and "@" in v:
        local, domain = v.split("@", 1)
        tld = domain.rsplit(".", 1)[-1] if "." in domain else ""
        rest = domain[: len(domain) - len(tld) - 1] if tld else domain
        return f"{local[:1]}{'*' * (len(local) - 1)}@{rest[:1]}{'*' * (len(rest) - 1)}.{tld}"
    if kind == "phone":
        m = re.match(r"^((?:\+|00)39[ .-]?)?(.*)$", v)
        prefix, body = m.group(1) or "", m.group(2)
        digits = [i for i, ch in enumerate(body) if ch.isdigit()]
        keep = set(digits[-2:])
        return prefix + "".join(ch if (i in keep or not ch.isdigit()) else "*" for i, ch in enumerate(body))
    return re.sub(r"(?<=\w)\w", "*", v)


# --------------------------------------------------------------------------------------
# DataFrames
# --------------------------------------------------------------------------------------
def find_identifier_columns(df, file_name: str) -> list[Finding]:
    """Find columns of ``df`` that look like direct identifiers.

    Parameters
    ----------
    df : DataFrame (e.g. a raw export as read from disk).
    file_name : name reported in the findings.

    Returns
    -------
    list of Finding
        One per (column, kind), in column order, each with an example row (1-based)
        and the masked example value.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"COD_PAZIENTE": ["EF00001", "EF00002"],
    ...                    "NOTE": ["", "tel. 0532 123456"]})
    >>> [(f.column, f.kind, f.row) for f in find_identifier_columns(df, "x.csv")]
    [('NOTE', 'phone', 2)]
    """
    import numpy as np
    import pandas as pd

    findings: list[Finding] = []
    for col in df.columns:
        s = df[col]
        nonnull = s.notna()
        if not nonnull.any():
            continue
        hkind = header_kind(col)
        per_kind: dict[str, tuple] = {}  # kind -> (mask, detail)

        is_dt = pd.api.types.is_datetime64_any_dtype(s)
        textual = not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) or is_dt)
        # Every check is a function of the (stripped) text of one value, so it runs once per
        # distinct value and is mapped back to the rows (exports repeat their values a lot).
        codes, text_u = _distinct_texts(s, nonnull)
        present_u = (text_u != "").to_numpy(dtype=bool)

        def rows(mask_u):
            mask_u = np.asarray(mask_u, dtype=bool)
            if not mask_u.any():  # the usual case: nothing found, nothing to spread
                return np.zeros(len(codes), dtype=bool)
            return np.append(mask_u, False)[codes]

        present = rows(present_u)
        n_present = int(present.sum())
        if n_present == 0:
            continue

        if _is_birth_header(col):
            if is_dt:
                per_kind["date_of_birth"] = (present, "full dates in a birth-date column")
            else:
                full = rows(text_u.str.match(_FULL_DATE).fillna(False).to_numpy(dtype=bool) & present_u)
                if full.any():
                    per_kind["date_of_birth"] = (full, "full dates in a birth-date column (only the year is allowed)")

        if textual:
            inert = _inert(text_u)
            values_u = text_u.to_numpy(dtype=object)
            cf_u = _on_candidates(text_u, _CF_CANDIDATE, lambda t: _valid_cf_mask(t).to_numpy(dtype=bool),
                                  inert=inert) & present_u
            if not cf_u.any():  # codes inside longer text (notes)
                maybe = _on_candidates(text_u, _CF_TEXT_CANDIDATE,
                                       lambda t: t.str.contains(_nocapture(_CF_TEXT.pattern), regex=True)
                                       .fillna(False).to_numpy(dtype=bool), inert=inert) & present_u
                if maybe.any():
                    idx = np.flatnonzero(maybe)
                    cf_u = np.zeros(len(text_u), dtype=bool)
                    cf_u[idx] = [any(is_valid_fiscal_code(m) for m in _CF_TEXT.findall(t)) for t in values_u[idx]]
            cf = rows(cf_u)
            if cf.any():
                per_kind["fiscal_code"] = (cf, "valid check character")

            em_u = _on_candidates(text_u, _EMAIL_CANDIDATE,
                                  lambda t: t.str.contains(_EMAIL.pattern, regex=True).fillna(False)
                                  .to_numpy(dtype=bool), inert=inert) & present_u
            if em_u.any():
                idx = np.flatnonzero(em_u)
                keep = [any(not _EMAIL_IGNORED_DOMAINS.search(m.group(0)) for m in _EMAIL.finditer(t))
                        for t in values_u[idx]]
                em_u = np.zeros(len(text_u), dtype=bool)
                em_u[idx[np.asarray(keep, dtype=bool)]] = True
                em = rows(em_u)
                if em.any():
                    per_kind["email"] = (em, "")

            def phone_checks(t):
                dates = t.str.match(_DATE_LIKE.pattern).fillna(False).to_numpy(dtype=bool)
                full = t.str.fullmatch(rf"\s*{_nocapture(_PHONE.pattern)}\s*").fillna(False).to_numpy(dtype=bool)
                anywhere = t.str.contains(_nocapture(_PHONE.pattern), regex=True).fillna(False).to_numpy(dtype=bool)
                return np.column_stack([full & ~dates, anywhere & ~dates])

            ph_u = _on_candidates(text_u, _PHONE_CANDIDATE, phone_checks, width=2, inert=inert)
            ph_full_u = ph_u[:, 0] & present_u
            ph_any_u = ph_u[:, 1] & present_u
            ph_pref_u = _on_candidates(text_u, "39", lambda t: t.str.contains(r"(?:\+|\b00)39[ .-]?[03]\d",
                                                                              regex=True)
                                       .fillna(False).to_numpy(dtype=bool), inert=inert)
            ph_full, ph_any = rows(ph_full_u), rows(ph_any_u)
            if ph_full.sum() >= 0.5 * n_present or (ph_pref_u & ph_any_u).any() or (hkind == "phone" and ph_any.any()):
                per_kind["phone"] = (ph_any, "")
            elif ph_any.any() and not ph_full.any():  # numbers inside free text
                idx = np.flatnonzero(ph_any_u)
                keep = np.array([any(_plausible_phone(m.group(1)) for m in _PHONE.finditer(t))
                                 for t in values_u[idx]], dtype=bool)
                if keep.any():
                    hits = np.zeros(len(text_u), dtype=bool)
                    hits[idx[keep]] = True
                    per_kind["phone"] = (rows(hits), "in free text")

            ad_u = _on_candidates(text_u, _ADDRESS_CANDIDATE,
                                  lambda t: t.str.contains(_ADDRESS.pattern, regex=True).fillna(False)
                                  .to_numpy(dtype=bool), inert=inert) & present_u
            if ad_u.any():
                per_kind["address"] = (rows(ad_u), "")

            nm_u = _on_candidates(text_u, _NAME_CANDIDATE,
                                  lambda t: t.str.fullmatch(_NAME_FULL).fillna(False).to_numpy(dtype=bool),
                                  inert=inert) & present_u
            if nm_u.any():
                vocab = _vocabulary()
                nm_u &= ~text_u.str.casefold().isin(vocab).to_numpy()
                nm = rows(nm_u)
                n_nm = int(nm.sum())
                if n_nm > 0.5 * n_present and text_u[nm_u].nunique() >= 0.5 * n_nm:
                    per_kind["person_name"] = (nm, "values look like 'Firstname Lastname'")

        if hkind is not None and hkind not in per_kind and hkind != "date_of_birth":
            per_kind[hkind] = (present, "header")

        for kind in KINDS:
            if kind not in per_kind:
                continue
            mask, detail = per_kind[kind]
            rows = np.flatnonzero(mask)
            first = int(rows[0])
            count = f"{len(rows)} of {n_present} rows"
            reason = f"{detail}; {count}" if detail and detail != "header" else (
                f"header; {count}" if detail == "header" else count)
            example = text_u.iloc[codes[first]]
            masked = "" if detail == "header" and kind != "person_name" else _mask_match(example, kind)
            findings.append(Finding(path=str(file_name), kind=kind, masked=masked, column=str(col),
                                    row=first + 1, detail=reason))
    return findings


_DATE_LIKE = re.compile(r"^\s*(?:\d{1,2}[-/. ]\d{1,2}[-/. ]\d{2,4}|\d{4}[-/. ]\d{1,2}[-/. ]\d{1,2})\s*$")


def _plausible_phone(match: str) -> bool:
    """Digit-count checks that the phone regex cannot express; dates are not phones."""
    if _DATE_LIKE.match(match):
        return False
    has_prefix = bool(re.match(r"^(?:\+|00)39", match))
    body = re.sub(r"^(?:\+|00)39[ .-]?", "", match)
    digits = re.sub(r"\D", "", body)
    separated = bool(re.search(r"[ /.-]", body))
    if digits.startswith("3"):
        return len(digits) in (9, 10) if has_prefix else len(digits) == 10
    if has_prefix:
        return 6 <= len(digits) <= 11
    return 8 <= len(digits) <= 11 if separated else 9 <= len(digits) <= 11


def _mask_match(text: str, kind: str) -> str:
    """Mask the part of ``text`` that matched ``kind`` (or the whole value)."""
    pattern = {"email": _EMAIL, "phone": _PHONE, "address": _ADDRESS, "fiscal_code": _CF_TEXT}.get(kind)
    if pattern is not None:
        m = pattern.search(text)
        if m is not None:
            return mask_value(m.group(0), kind)
    return mask_value(text, kind)


def guard_dataframe(df, file_name: str):
    """Refuse a table holding direct identifiers.

    Parameters
    ----------
    df : DataFrame, e.g. a raw export just read.
    file_name : its file name, used in the message.

    Returns
    -------
    DataFrame
        ``df`` itself, unchanged, when no identifier is found (so calls can be chained).

    Raises
    ------
    IdentifierError
        Naming the file, each offending column, what it looks like and an example row
        number -- the value itself is masked.

    Examples
    --------
    >>> import pandas as pd
    >>> guard_dataframe(pd.DataFrame({"COD_PAZIENTE": ["EF00001"], "ANNO_NASCITA": [1980]}), "efeso.csv").shape
    (1, 2)
    >>> guard_dataframe(pd.DataFrame({"NOME": ["Mario"]}), "efeso.csv")
    Traceback (most recent call last):
    ...
    imr_analysis.identifiers.IdentifierError: efeso.csv: direct identifiers found; remove these columns from the export and export again:
      - column 'NOME': person names (header; 1 of 1 rows), e.g. data row 1 (M****)
    """
    findings = find_identifier_columns(df, file_name)
    if findings:
        lines = [f"{file_name}: direct identifiers found; remove these columns from the export and export again:"]
        for f in findings:
            example = f", e.g. data row {f.row}" + (f" ({f.masked})" if f.masked else "")
            lines.append(f"  - column {f.column!r}: {KIND_LABELS[f.kind]} ({f.detail}){example}")
        raise IdentifierError("\n".join(lines), findings)
    return df


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------
def _blank(match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def _blank_base64(text: str) -> str:
    """Blank embedded base64 payloads (data URIs) keeping offsets and line breaks."""
    return re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+", _blank, text)


_SVG_GEOMETRY = re.compile(
    r"""\s(?:d|points|transform|viewBox|style|x|y|x1|x2|y1|y2|dx|dy|width|height|cx|cy|r|rx|ry|"""
    r"""offset|stroke-dasharray|clip-path|xlink:href|href|id)\s*=\s*(?:"[^"]*"|'[^']*')""")


def _blank_svg_geometry(text: str) -> str:
    """Blank SVG geometry attributes (path data are numbers that look like phone numbers);
    text, titles and matplotlib's text comments are kept."""
    return _SVG_GEOMETRY.sub(_blank, text)


def scan_text(text: str, path: str = "<text>", location: str = "") -> list[Finding]:
    """Scan free text for fiscal codes (valid check character), e-mails, phones and addresses.

    Parameters
    ----------
    text : the text.
    path : name used in the findings.
    location : optional location label (e.g. a notebook cell).

    Returns
    -------
    list of Finding
        With 1-based line numbers within ``text``, in order of appearance.

    Examples
    --------
    >>> [f.kind for f in scan_text("contact: mario.rossi@asl.fe.it, Via Roma 12")]
    ['email', 'address']
    >>> scan_text("EF12345;F20.0;N05AH04;12/03/2018")
    []
    """
    import bisect

    text = _blank_base64(text)
    newlines = [i for i, ch in enumerate(text) if ch == "\n"] if "\n" in text else []
    found = []

    def line_of(pos):
        return bisect.bisect_right(newlines, pos - 1) + 1 if newlines else 1

    for m in _CF_TEXT.finditer(text):
        if is_valid_fiscal_code(m.group(1)):
            found.append((m.start(), "fiscal_code", m.group(1)))
    for m in _EMAIL.finditer(text):
        if not _EMAIL_IGNORED_DOMAINS.search(m.group(0)):
            found.append((m.start(), "email", m.group(0)))
    for m in _PHONE.finditer(text):
        if _plausible_phone(m.group(1)):
            found.append((m.start(), "phone", m.group(1)))
    for m in _ADDRESS.finditer(text):
        found.append((m.start(), "address", m.group(0)))
    found.sort(key=lambda t: (t[0], KINDS.index(t[1])))
    return [Finding(path=path, kind=k, masked=mask_value(v, k), line=line_of(pos), location=location)
            for pos, k, v in found]


def _notebook_texts(nb: dict):
    """(location, text) pairs of a notebook: cell sources and text outputs."""
    def joined(x):
        return "".join(x) if isinstance(x, list) else str(x)

    for i, cell in enumerate(nb.get("cells", []), start=1):
        yield f"cell {i}, source", joined(cell.get("source", ""))
        for j, out in enumerate(cell.get("outputs", []) or [], start=1):
            otype = out.get("output_type")
            if otype == "stream":
                yield f"cell {i}, output {j}, {out.get('name', 'stream')}", joined(out.get("text", ""))
            elif otype in ("execute_result", "display_data"):
                for mime, payload in sorted((out.get("data") or {}).items()):
                    if mime in TEXT_MIME_TYPES or mime.endswith("+json"):
                        text = joined(payload if isinstance(payload, (str, list)) else json.dumps(payload))
                        if mime == "image/svg+xml" or "<svg" in text:
                            text = _blank_svg_geometry(text)
                        yield f"cell {i}, output {j}, {mime}", text
            elif otype == "error":
                yield (f"cell {i}, output {j}, error",
                       "\n".join([str(out.get("ename", "")), str(out.get("evalue", ""))]
                                 + [str(t) for t in out.get("traceback", [])]))


def _scan_notebook(raw: str, path: str) -> list[Finding]:
    try:
        nb = json.loads(raw)
    except json.JSONDecodeError:
        return scan_text(raw, path)
    lines = raw.splitlines()
    out = []
    for location, text in _notebook_texts(nb):
        for f in scan_text(text, path, location):
            needle = re.escape(_first_match_text(text, f))
            line = next((n for n, l in enumerate(lines, start=1) if re.search(needle, l)), None) if needle else None
            out.append(dataclasses.replace(f, line=line if line is not None else 0))
    return out


def _first_match_text(text: str, finding: Finding) -> str:
    """The raw text of the finding's match on its line (to locate it in the .ipynb JSON)."""
    pattern = {"email": _EMAIL, "phone": _PHONE, "address": _ADDRESS, "fiscal_code": _CF_TEXT}[finding.kind]
    line = _blank_base64(text).splitlines()[finding.line - 1] if text else ""
    for m in pattern.finditer(line):
        value = m.group(1) if finding.kind in ("fiscal_code", "phone") else m.group(0)
        if mask_value(value, finding.kind) == finding.masked:
            return value
    return ""


def _scan_delimited(text: str, path: str, sep: str | None) -> list[Finding]:
    """Column checks (names, dates of birth, identifier headers) of a CSV/TSV file."""
    import io

    import pandas as pd

    lines = text.splitlines()
    skip = 0
    while skip < len(lines) and lines[skip].lstrip().startswith("#"):
        skip += 1
    if skip >= len(lines):
        return []
    header = lines[skip]
    if sep is None:
        counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
        sep = max(counts, key=counts.get)
        if counts[sep] == 0:
            return []
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, skiprows=skip, dtype=str, on_bad_lines="skip")
    except (ValueError, pd.errors.ParserError):
        return []
    out = []
    for f in find_identifier_columns(df, path):
        line = skip + 1 if f.detail.startswith("header") else skip + 1 + (f.row or 0)
        out.append(dataclasses.replace(f, line=line))
    return out


def scan_file(path: str | Path) -> list[Finding] | None:
    """Scan one file; ``None`` when it is binary (not scanned).

    Examples
    --------
    >>> scan_file("/nonexistent.csv")  # doctest: +SKIP
    """
    p = Path(path)
    data = p.read_bytes()
    if b"\x00" in data[:8192]:
        return None
    text = data.decode("utf-8", errors="replace")
    name = str(path)
    suffix = p.suffix.lower()
    if suffix == ".ipynb":
        return _scan_notebook(text, name)
    if suffix == ".svg" or (suffix in (".html", ".htm") and "<svg" in text):
        text = _blank_svg_geometry(text)
    findings = scan_text(text, name)
    if suffix in (".csv", ".tsv"):
        seen = {f.kind for f in findings}
        findings += [f for f in _scan_delimited(text, name, "\t" if suffix == ".tsv" else None)
                     if f.kind not in seen]
        findings.sort(key=lambda f: (f.line or 0, KINDS.index(f.kind)))
    return findings


def iter_files(paths: Iterable[str | Path]):
    """Files to scan: given files as they are, directories walked (sorted, skipping
    .git, .venv, __pycache__, .ipynb_checkpoints ... and keeping :data:`SCAN_EXTENSIONS`)."""
    for path in paths:
        p = Path(path)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
                for f in sorted(files):
                    if Path(f).suffix.lower() in SCAN_EXTENSIONS:
                        yield Path(root) / f
        elif p.exists():
            yield p
        else:
            raise FileNotFoundError(f"{p} does not exist")


def scan_paths(paths: Iterable[str | Path]) -> list[Finding]:
    """Scan files and directories for direct identifiers.

    Parameters
    ----------
    paths : files and/or directories. CSV/TSV/MD/TeX/HTML/SVG/JSON/TXT files are scanned
        as text (CSV/TSV also column by column), notebooks cell by cell (sources and text
        outputs: text/plain, text/html, stream, errors ...); binary files are skipped.

    Returns
    -------
    list of Finding
        In file order, then line order.

    Examples
    --------
    >>> scan_paths(["notebooks"])  # doctest: +SKIP
    []
    """
    return _scan(paths)[0]


def _scan(paths):
    findings, n_files = [], 0
    for f in iter_files(paths):
        result = scan_file(f)
        if result is None:
            continue
        n_files += 1
        findings.extend(result)
    return findings, n_files


def main(argv: list[str] | None = None) -> int:
    """``python -m imr_analysis scan PATH...``: print findings, exit 1 if any.

    Examples
    --------
    >>> main(["data/raw"])  # doctest: +SKIP
    no direct identifiers found in 3 files
    0
    """
    parser = argparse.ArgumentParser(
        prog="python -m imr_analysis scan",
        description="Scan data files, tables, figures and notebooks (sources and outputs) for direct "
                    "identifiers: Italian fiscal codes, e-mails, phone numbers, street addresses, "
                    "person names and full dates of birth in CSV columns. Exit status 1 if any is found.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to scan")
    args = parser.parse_args(argv)
    try:
        findings, n_files = _scan(args.paths)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for f in findings:
        print(f)
    if findings:
        files = len({f.path for f in findings})
        print(f"{len(findings)} suspected direct identifier(s) in {files} of {n_files} files")
        return 1
    print(f"no direct identifiers found in {n_files} files")
    return 0
