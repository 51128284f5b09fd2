"""Direct identifiers: the guard every raw export passes, and the patterns the scanner shares.

Methods: the exports must be pseudonymous (patient codes, birth years). :func:`guard_dataframe`
refuses Italian fiscal codes (verified by python-stdnum), e-mail addresses, phone numbers, street
addresses, person names and full dates of birth, found in the values or announced by a header.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
from stdnum.it import codicefiscale

from imr_analysis import constants as c

KIND_LABELS = {"fiscal_code": "Italian fiscal codes (codice fiscale, valid check character)",
               "person_name": "person names", "date_of_birth": "full dates of birth", "phone": "phone numbers",
               "email": "e-mail addresses", "address": "street addresses"}
KINDS = tuple(KIND_LABELS)


def _bounded(kind: str, core: str, before: str, after: str) -> re.Pattern:  # syntax shared with RE2 (pandas)
    return re.compile(rf"(?:^|[^{before}])(?P<{kind}>{core})(?:$|{after})")


_D = "[0-9LMNPQRSTUVlmnpqrstuv]"  # a digit, or its omocodia letter
_VIA = r"(?:(?i:via|viale|piazza|piazzale|corso|largo|vicolo)|P\.zza|P\.za|V\.le|C\.so)"
_NUMBER_END = r"[^A-Za-z0-9_.,]|[.,](?:$|[^0-9])"  # not a word, nor a decimal point
#: Where a value can hold each kind; :data:`CHECKS` then accepts or rejects each match.
PATTERNS = {
    "fiscal_code": _bounded("fiscal_code", rf"[A-Za-z]{{3}}[ -]?[A-Za-z]{{3}}[ -]?{_D}{{2}}[ -]?[A-Za-z][ -]?{_D}{{2}}"
                                           rf"[ -]?[A-Za-z]{_D}{{3}}[ -]?[A-Za-z]", "A-Za-z0-9", "[^A-Za-z0-9]"),
    "email": _bounded("email", r"[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}",
                      "A-Za-z0-9_.%+-", "[^A-Za-z0-9_-]"),
    "phone": _bounded("phone", r"(?:(?:\+|00)39[ .-]?)?(?:3[0-9]{2}(?:[ /-]?[0-9]{6,7}|[ -][0-9]{3}[ -][0-9]{3,4})"
                               r"|0[1-9][0-9]{0,3}(?:[ /-]?[0-9]{4,8}|[ -][0-9]{2,4}[ -][0-9]{2,4}))",
                      "A-Za-z0-9_.,/+-", _NUMBER_END),
    "address": _bounded("address", rf"{_VIA}[ \t]+(?:(?:(?i:dei|degli|delle|della|dello|del|di|de|san|santa)|[Ss]\.)"
                                   r"[ \t]+)*[A-ZÀ-Þ][A-Za-zÀ-ÿ'’.]*(?:[ \t]+[A-Za-zÀ-ÿ'’][A-Za-zÀ-ÿ'’.]*){0,4}?"
                                   r"[ \t]*,?[ \t]*(?:(?:n|nr|N|NR)\.?[ \t]*|n°[ \t]*|civico[ \t]+)?"
                                   r"[0-9]{1,4}(?:[ \t]?/?[ \t]?[A-Za-z])?", "A-Za-z0-9_.", _NUMBER_END),
}
_NAME_TOKEN = r"[A-ZÀ-Þ](?:[a-zß-ÿ]*['’][A-ZÀ-Þ]?)?[a-zß-ÿ]+"
_PARTICLE = r"(?:d[aei]|de[il]|della|dello|delle|van|von|la|le|lo|di|De|Di|Da|Del|Della|La|Lo)"
#: A whole value that reads "Firstname Lastname" (or "FIRSTNAME LASTNAME").
NAME = (rf"[ \t]*(?:{_NAME_TOKEN}(?:[ -](?:{_PARTICLE} )?{_NAME_TOKEN}){{1,3}}"
        r"|[A-ZÀ-Þ'’]{2,}(?: [A-ZÀ-Þ'’]{2,}){1,3}),?[ \t]*")
#: A whole value that is a date with its day (optionally a time).
FULL_DATE = (r"[ \t]*(?:[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{2,4}|[0-9]{4}[/.-][0-9]{1,2}[/.-][0-9]{1,2})"
             r"(?:[ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?(?:\.[0-9]+)?)?[ \t]*")
_DATE_LIKE = re.compile(r"[0-9]{1,2}[-/. ][0-9]{1,2}[-/. ][0-9]{2,4}|[0-9]{4}[-/. ][0-9]{1,2}[-/. ][0-9]{1,2}")
_DOCUMENTATION_DOMAIN = re.compile(
    r"@(?:[\w-]+\.)*(?:example\.(?:com|org|net|it)|invalid|test|localhost|users\.noreply\.github\.com)$", re.I)
_NOT_STREETS = {"Python", "Papermill", "PyPI", "GitHub", "GitLab", "Jupyter", "JupyterLab", "Conda", "Docker", "R"}


def is_valid_fiscal_code(code: str) -> bool:
    """True for a 16-character Italian fiscal code with a valid date and check character (python-stdnum).

    Examples
    --------
    >>> is_valid_fiscal_code("RSSMRA85T10A562S"), is_valid_fiscal_code("RSSMRA85T10A562B"), is_valid_fiscal_code("EF1")
    (True, False, False)
    """
    return len(codicefiscale.compact(code)) == 16 and codicefiscale.is_valid(code)


def _plausible_phone(number: str) -> bool:
    """Digit counts the phone pattern cannot express; dates are not phone numbers."""
    if _DATE_LIKE.fullmatch(number):
        return False
    prefix = re.match(r"(?:(?:\+|00)39[ .-]?)?", number).end()  # the international prefix, if any
    body, n = number[prefix:], len(re.sub(r"[^0-9]", "", number[prefix:]))
    if body.startswith("3"):  # mobile
        return n in (9, 10) if prefix else n == 10
    return 6 <= n <= 11 if prefix else (8 if re.search(r"[ /.-]", body) else 9) <= n <= 11


#: Which matches of :data:`PATTERNS` are identifiers.
CHECKS = {"fiscal_code": is_valid_fiscal_code, "email": lambda v: not _DOCUMENTATION_DOMAIN.search(v),
          "phone": _plausible_phone, "address": lambda v: not _NOT_STREETS & set(v.split())}


def find_all(kind: str, text: str) -> Iterator[tuple[int, str]]:
    """``(offset, value)`` of each ``kind`` in ``text`` that passes its check.

    Examples
    --------
    >>> list(find_all("email", "write to mario.rossi@asl.fe.it or doc@example.org"))
    [(9, 'mario.rossi@asl.fe.it')]
    >>> list(find_all("phone", "tel. 0532 236111, 12/03/2018"))
    [(5, '0532 236111')]
    """
    pattern, pos = PATTERNS[kind], 0
    while match := pattern.search(text, pos):
        if CHECKS[kind](match.group(kind)):
            yield match.start(kind), match.group(kind)
        pos = match.end(kind)


def mask_value(value: str, kind: str = "") -> str:
    """Mask a suspected identifier, keeping each word's length and its first character (fiscal
    codes two, e-mails the top-level domain too, phone numbers the prefix and the last two digits).

    Examples
    --------
    >>> mask_value("Mario Rossi", "person_name"), mask_value("+39 340 1234567", "phone")
    ('M**** R****', '+39 *** *****67')
    >>> mask_value("mario.rossi@asl.fe.it", "email"), mask_value("RSSMRA85T10A562S", "fiscal_code")
    ('m**********@a*****.it', 'RS**************')
    >>> mask_value("Via Roma 12", "address")
    'V** R*** 1*'
    """
    v = str(value).strip()
    if kind == "fiscal_code":
        return v[:2] + "*" * max(len(v) - 2, 0)
    if kind == "email" and "@" in v:
        local, domain = v.split("@", 1)
        rest, _, tld = domain.rpartition(".")
        return f"{local[:1]}{'*' * (len(local) - 1)}@{rest[:1]}{'*' * (len(rest) - 1)}.{tld}"
    if kind == "phone":
        prefix = re.match(r"(?:(?:\+|00)39[ .-]?)?", v).end()
        return v[:prefix] + re.sub(r"[0-9](?=(?:[^0-9]*[0-9]){2})", "*", v[prefix:])
    return re.sub(r"(?<=\w)\w", "*", v)


_HEADERS = {kind: set(names.split()) for kind, names in {
    "fiscal_code": "codice_fiscale codicefiscale cod_fiscale cod_fisc codfisc cf c_f fiscal_code tax_code "
                   "codice_fiscale_paziente cf_paziente ssn",
    "person_name": "nome cognome nominativo name surname first_name firstname last_name lastname full_name fullname "
                   "given_name family_name forename patient_name nome_paziente cognome_paziente nome_cognome "
                   "cognome_nome nome_e_cognome cognome_e_nome nome_assistito cognome_assistito nome_utente "
                   "cognome_utente nominativo_paziente paziente_nome paziente_cognome",
    "email": "email e_mail mail pec indirizzo_email indirizzo_mail posta_elettronica email_address",
    "phone": "telefono tel cellulare cell phone phone_number mobile mobile_phone recapito_telefonico numero_telefono "
             "telefono_cellulare telefono_fisso fax",
    "date_of_birth": "data_nascita data_di_nascita dt_nascita data_nasc datanascita date_of_birth dob birth_date "
                     "birthdate birthday nascita d_nascita nato_il nata_il"}.items()}


def _normalise_header(name) -> str:
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def header_kind(name) -> str | None:
    """The identifier kind a column header announces, or None.

    Examples
    --------
    >>> [header_kind(h) for h in ("Codice Fiscale", "COGNOME", "ANNO_NASCITA", "DATA_NASCITA", "DATA_ACCESSO")]
    ['fiscal_code', 'person_name', None, 'date_of_birth', None]
    """
    h = _normalise_header(name)
    tokens = set(h.split("_"))
    for kind, headers in _HEADERS.items():
        if h in headers:
            return kind
    if tokens & {"indirizzo", "address", "street"}:  # an address, or an e-mail address
        return "email" if tokens & {"email", "mail", "pec"} else "address"
    return "phone" if tokens & {"telefono", "cellulare"} else None


#: Labels of the codebook (municipalities, units, modules, codings ...): never person names.
_VOCABULARY = frozenset(w.casefold() for w in [
    *c.MUNICIPALITY_DISTRICT, *c.SERVICE_UNITS, *c.MODULES.values(), *c.MODULE_ITALIAN_TITLES.values(),
    *c.IMRS_ITEMS.values(), *c.DIAGNOSIS_GROUP_LABELS.values(), *c.MEDICATION_CLASS_LABELS.values(),
    *c.MANUAL_VERSIONS, *c.FORM_FORMATS, *c.SERVICE_TYPE_LABELS.values(), *c.DISTRICTS,
    *(label for ehr in c.EHR_CODINGS.values() for coding in ehr.values() for label in coding)])


@dataclass(frozen=True)
class Finding:
    """A suspected identifier: where (file, line, column, data row, notebook cell), kind, masked value, why."""

    path: str
    kind: str
    masked: str
    line: int | None = None
    column: str | None = None
    row: int | None = None
    detail: str = ""
    location: str = ""


class IdentifierError(ValueError):
    """A table holds direct identifiers; ``findings`` lists them."""

    def __init__(self, message: str, findings: list[Finding]):
        super().__init__(message)
        self.findings = findings


#: Any of :data:`PATTERNS`, in one pass: the values worth checking kind by kind.
_CANDIDATE = "|".join(p.pattern.replace(f"(?P<{kind}>", "(?:") for kind, p in PATTERNS.items())
_DETAILS = {"fiscal_code": "valid check character", "person_name": "values look like 'Firstname Lastname'",
            "date_of_birth": "full dates in a birth-date column (only the year is allowed)"}


def _as_text(s: pd.Series) -> pd.Series | None:
    """A column's values as text (dates and mixed objects: their ``str``); None for numbers."""
    values = s.cat.categories if isinstance(s.dtype, pd.CategoricalDtype) else s
    if not pd.api.types.is_numeric_dtype(values):
        return s.dropna() if pd.api.types.is_string_dtype(values) else s.dropna().astype("str")


def _value_hits(text: dict) -> pd.DataFrame:
    """``column, value, kind``: the distinct values of the text columns that hold each kind."""
    if not text:
        return pd.DataFrame(columns=["column", "value", "kind"])
    values = pd.concat({c: pd.Series(s.unique()).astype("str") for c, s in text.items()}, names=["column", None])
    values = values.rename("value").reset_index(level=0)
    candidates = values[values["value"].str.contains(_CANDIDATE)]
    found = [(c, v, k) for c, v in candidates.itertuples(index=False) for k in PATTERNS if next(find_all(k, v), None)]
    names = values[values["value"].str.fullmatch(NAME)]
    names = names[~names["value"].str.strip().str.casefold().isin(_VOCABULARY)]
    birth = values[values["column"].isin([c for c in text if re.search(  # birth-date columns
        r"nascita|birth|^(?:dob|nato_il|nata_il|born|yob)$", _normalise_header(c))])]
    return pd.concat([pd.DataFrame(found, columns=["column", "value", "kind"]), names.assign(kind="person_name"),
                      birth[birth["value"].str.fullmatch(FULL_DATE)].assign(kind="date_of_birth")])


def _column_findings(column, s: pd.Series, hits: pd.DataFrame, file_name: str) -> list[Finding]:
    """One column's findings from its value hits (``isin`` finds their rows) and its header."""
    present = s.astype("str").str.strip() != ""
    rows = {kind: s.isin(group["value"]) for kind, group in hits.groupby("kind")}
    header = header_kind(column)
    # bare numbers are phones in a column of mostly phones, with a phone header or a +39 beside
    phones, names = (hits.loc[hits["kind"] == kind, "value"] for kind in ("phone", "person_name"))
    bare = s.isin([v for v in phones if next(find_all("phone", v))[1] == v.strip()])
    if bare.any() and bare.sum() < 0.5 * present.sum() and header != "phone" and not (
            phones.str.contains("[+]39|0039").any()):
        del rows["phone"]
    # names: "Firstname Lastname" (not a codebook label) in most rows, mostly distinct
    n_names = rows["person_name"].sum() if len(names) else 0
    if n_names and not (n_names > 0.5 * present.sum() and len(names) >= 0.5 * n_names):
        del rows["person_name"]
    header = header if header not in (None, "date_of_birth", *rows) and present.any() else None
    if header:
        rows[header] = present
    findings = []
    for kind in (k for k in KINDS if k in rows):
        first, count = rows[kind].idxmax(), f"{rows[kind].sum()} of {present.sum()} rows"
        example = str(s[first]).strip()
        value = next((v for _, v in find_all(kind, example)), example) if kind in PATTERNS else example
        detail = "header" if kind == header else _DETAILS.get(kind, "")
        masked = "" if kind == header and kind != "person_name" else mask_value(value, kind)
        findings.append(Finding(str(file_name), kind, masked, column=str(column), row=first + 1,
                                detail=f"{detail}; {count}" if detail else count))
    return findings


def find_identifier_columns(df: pd.DataFrame, file_name: str) -> list[Finding]:
    """One :class:`Finding` per (column, kind): the first data row (1-based), masked value, how many rows.

    Examples
    --------
    >>> df = pd.DataFrame({"COD_PAZIENTE": ["EF00001", "EF00002"], "NOTE": ["", "tel. 0532 123456"]})
    >>> [(f.column, f.kind, f.row, f.masked) for f in find_identifier_columns(df, "x.csv")]
    [('NOTE', 'phone', 2, '**** ****56')]
    """
    df = df.reset_index(drop=True)  # index: the data row, from 0
    text = {c: t for c in df.columns if (t := _as_text(df[c])) is not None}
    hits = _value_hits(text)
    return [f for c in df.columns if header_kind(c) or (hits["column"] == c).any()
            for f in _column_findings(c, text.get(c, df[c].dropna()), hits[hits["column"] == c], file_name)]


def guard_dataframe(df: pd.DataFrame, file_name: str) -> pd.DataFrame:
    """Refuse a raw export holding direct identifiers (naming the file and, per column, the kind,
    a data row and the masked value); return it unchanged otherwise.

    Examples
    --------
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
        lines += [f"  - column {f.column!r}: {KIND_LABELS[f.kind]} ({f.detail}), e.g. data row {f.row}"
                  + (f" ({f.masked})" if f.masked else "") for f in findings]
        raise IdentifierError("\n".join(lines), findings)
    return df
