"""Value parsers for raw exports: dates, numbers, ICD-10 and ATC codes, modules, categories.

Each parser is vectorised: it takes a Series of raw text and returns the parsed Series
plus a boolean mask of the values it could not parse (empty cells are *missing*, not
bad). The cleaner turns masks into problems naming file, line and column.
"""

from __future__ import annotations

import re
import unicodedata

from . import constants as C

EXCEL_EPOCH = "1899-12-30"

#: Date formats accepted in any export, in order of preference per source.
DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y")


def _blank(s):
    return s.isna() | (s.astype(str).str.strip() == "")


def text_key(value: str) -> str:
    """Lower-case, accent-free, single-spaced version of a label, for matching.

    Examples
    --------
    >>> text_key("  Il modello  Stress-Vulnerabilità ")
    'il modello stress-vulnerabilita'
    """
    s = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"\s+", " ", s).strip().lower()


def parse_dates(s, preferred: str | None = None):
    """Parse dates written as dd/mm/yyyy, yyyy-mm-dd (and close variants) or Excel serials.

    Returns ``(dates, bad)``; ``bad`` marks non-empty cells that are not a date.
    Month-first (US) dates are not accepted: 03/04/2019 is 3 April 2019.

    Examples
    --------
    >>> import pandas as pd
    >>> d, bad = parse_dates(pd.Series(["04/03/2019", "2019-03-04", "43528", "", "31/02/2019"]))
    >>> d.dt.strftime("%Y-%m-%d").tolist()[:3], bad.tolist()
    (['2019-03-04', '2019-03-04', '2019-03-04'], [False, False, False, False, True])
    """
    import numpy as np
    import pandas as pd

    s = s.astype(object).where(~_blank(s), None)
    text = s.astype("string").str.strip()
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    formats = ([preferred] if preferred else []) + [f for f in DATE_FORMATS if f != preferred]
    todo = text.notna()
    for fmt in formats:
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        ok = parsed.notna()
        out.loc[ok[ok].index] = parsed[ok]
        todo = todo & out.isna()
    serial = text[todo].str.fullmatch(r"\d{4,5}(\.0+)?").fillna(False).astype(bool)
    if serial.any():
        idx = serial[serial].index
        days = pd.to_numeric(text[idx], errors="coerce").astype(float)
        out.loc[idx] = pd.to_datetime(EXCEL_EPOCH) + pd.to_timedelta(days, unit="D")
        todo = todo & out.isna()
    bad = (text.notna() & out.isna()).to_numpy(dtype=bool)
    return out, pd.Series(np.asarray(bad), index=s.index)


_TS_PATTERNS = (
    ("%d/%m/%Y %H:%M:%S", None),
    ("%d/%m/%Y %H.%M.%S", None),  # Italian locale
    ("%Y/%m/%d %I:%M:%S %p", r"\s*GMT[+-]\d{1,2}(:?\d{2})?$"),  # English locale
    ("%Y-%m-%d %H:%M:%S", None),
)


def parse_timestamps(s):
    """Parse Google Forms timestamps in Italian or English locale.

    Examples
    --------
    >>> import pandas as pd
    >>> t, bad = parse_timestamps(pd.Series(["15/07/2021 10:32:11", "15/07/2021 10.32.11",
    ...                                      "2021/07/15 10:32:11 AM GMT+2"]))
    >>> t.dt.strftime("%Y-%m-%d %H:%M").tolist(), bool(bad.any())
    (['2021-07-15 10:32', '2021-07-15 10:32', '2021-07-15 10:32'], False)
    """
    import pandas as pd

    text = s.astype("string").str.strip()
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    todo = text.notna() & (text != "")
    for fmt, strip in _TS_PATTERNS:
        if not todo.any():
            break
        vals = text[todo]
        if strip:
            vals = vals.str.replace(strip, "", regex=True)
        parsed = pd.to_datetime(vals, format=fmt, errors="coerce")
        ok = parsed.notna()
        out.loc[ok[ok].index] = parsed[ok]
        todo = todo & out.isna()
    bad = text.notna() & (text != "") & out.isna()
    return out, bad.fillna(False).astype(bool)


def parse_integers(s, lo: float | None = None, hi: float | None = None):
    """Parse whole numbers; accepts '21', ' 21 ', '21.0', '21,0' (decimal comma).

    Returns ``(values as Int64, bad)``; values outside ``[lo, hi]`` are bad.

    Examples
    --------
    >>> import pandas as pd
    >>> v, bad = parse_integers(pd.Series(["21", "21,0", "", "x", "2.5", "0"]), lo=1)
    >>> v.tolist(), bad.tolist()
    ([21, 21, <NA>, <NA>, <NA>, <NA>], [False, False, False, True, True, True])
    """
    import numpy as np
    import pandas as pd

    text = s.astype("string").str.strip().str.replace(",", ".", regex=False)
    blank = text.isna() | (text == "")
    num = pd.to_numeric(text.where(~blank, None), errors="coerce").astype("Float64")
    whole = num.notna() & (num == num.round())
    bad = ~blank & ~whole.fillna(False)
    if lo is not None:
        bad |= (num < lo).fillna(False)
    if hi is not None:
        bad |= (num > hi).fillna(False)
    vals = num.where(whole.fillna(False) & ~bad).round().astype("Int64")
    return vals, pd.Series(np.asarray(bad, dtype=bool), index=s.index)


_ICD = re.compile(r"^([A-Z])(\d{2})(?:\.?([0-9A-Z]{1,2}))?$")


def normalise_icd10(s):
    """Normalise ICD-10 codes to the dotted WHO form: 'f200' -> 'F20.0', 'F10.2' kept.

    Returns ``(codes, bad)``; empty cells are missing (not bad).

    Examples
    --------
    >>> import pandas as pd
    >>> c, bad = normalise_icd10(pd.Series(["F20.0", "f200", " F31 ", "F1020", "20.0", ""]))
    >>> c.tolist(), bad.tolist()
    (['F20.0', 'F20.0', 'F31', 'F10.20', <NA>, <NA>], [False, False, False, False, True, False])
    """
    import pandas as pd

    text = s.astype("string").str.strip().str.upper().str.replace(" ", "", regex=False)
    blank = text.isna() | (text == "")
    parts = text.str.extract(r"^([A-Z])(\d{2})\.?([0-9A-Z]{1,2})?$")
    ok = parts[0].notna()
    code = parts[0] + parts[1]
    code = code.where(parts[2].isna(), code + "." + parts[2])
    code = code.where(ok)
    bad = (~blank & ~ok).fillna(False).astype(bool)
    return code.astype("string"), bad


def diagnosis_group(codes):
    """Map dotted ICD-10 codes to the compendium's diagnosis groups.

    F20-F29 schizophrenia_spectrum; F30-F31 bipolar; F32-F34 depressive; F10-F19
    substance_use; F50 eating; anything else (including non-F codes) other.

    Examples
    --------
    >>> import pandas as pd
    >>> diagnosis_group(pd.Series(["F20.0", "F31.1", "F32.2", "F10.2", "F50.0", "F41.1"])).tolist()
    ['schizophrenia_spectrum', 'bipolar', 'depressive', 'substance_use', 'eating', 'other']
    """
    import numpy as np
    import pandas as pd

    text = codes.astype("string")
    letter = text.str[0]
    num = pd.to_numeric(text.str[1:3], errors="coerce")
    isf = (letter == "F").fillna(False).to_numpy(dtype=bool)
    n = num.to_numpy(dtype=float, na_value=np.nan)
    conditions = [
        isf & (n >= 20) & (n <= 29),
        isf & (n >= 30) & (n <= 31),
        isf & (n >= 32) & (n <= 34),
        isf & (n >= 10) & (n <= 19),
        isf & (n == 50),
    ]
    choices = ["schizophrenia_spectrum", "bipolar", "depressive", "substance_use", "eating"]
    return pd.Series(np.select(conditions, choices, default="other"), index=codes.index, dtype=object)


_ATC = r"[A-Z]\d{2}(?:[A-Z](?:[A-Z](?:\d{2})?)?)?"
_ATC_RE = re.compile(rf"^{_ATC}$")

#: ATC prefix -> medication class; the first matching prefix wins (lithium before N05A).
ATC_CLASS_PREFIXES = (
    ("N05AN", "mood_stabilizer"),
    ("N05A", "antipsychotic"),
    ("N06A", "antidepressant"),
    ("N03A", "mood_stabilizer"),
    ("N05B", "anxiolytic_sedative"),
    ("N05C", "anxiolytic_sedative"),
    ("N07B", "addiction"),
)


def split_atc(s):
    """Split medication cells into lists of upper-case ATC codes.

    Separators ``,`` ``;`` ``|`` ``/`` and whitespace are accepted. Returns ``(codes,
    bad_codes)`` where ``codes`` is a Series of tuples and ``bad_codes`` a Series of
    tuples of the tokens that are not ATC codes (empty tuple when all are fine).

    Examples
    --------
    >>> import pandas as pd
    >>> codes, bad = split_atc(pd.Series(["N05AH03, n06ab06", "N07BC02|N05BA12", "", "XYZ"]))
    >>> codes.tolist(), bad.tolist()
    ([('N05AH03', 'N06AB06'), ('N07BC02', 'N05BA12'), (), ()], [(), (), (), ('XYZ',)])
    """
    import pandas as pd

    text = s.astype("string").fillna("").str.upper()
    tokens = text.str.split(r"[,;|/\s]+", regex=True)
    codes = tokens.map(lambda t: tuple(x for x in t if x and _ATC_RE.match(x)))
    bad = tokens.map(lambda t: tuple(x for x in t if x and not _ATC_RE.match(x)))
    return pd.Series(codes, index=s.index), pd.Series(bad, index=s.index)


def atc_classes(codes):
    """One boolean column per medication class (and ``med_none``) from tuples of ATC codes.

    Examples
    --------
    >>> import pandas as pd
    >>> atc_classes(pd.Series([("N05AN01",), ("N05AH03", "N07BC02"), ("A02BC01",)])).astype(int).values.tolist()
    [[0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]]
    """
    import pandas as pd

    exploded = codes.explode().dropna()
    cls = pd.Series("", index=exploded.index, dtype=object)
    assigned = pd.Series(False, index=exploded.index)
    for prefix, name in ATC_CLASS_PREFIXES:
        hit = exploded.astype(str).str.startswith(prefix) & ~assigned
        cls[hit] = name
        assigned |= hit
    out = pd.DataFrame(index=codes.index)
    for name in C.MEDICATION_CLASSES:
        has = (cls == name)
        out[f"med_{name}"] = has.groupby(level=0).any().reindex(codes.index, fill_value=False).astype(bool)
    out["med_none"] = ~out[[f"med_{n}" for n in C.MEDICATION_CLASSES]].any(axis=1)
    return out


def _module_lookup() -> dict[str, int]:
    lookup: dict[str, int] = {}
    for k, title in C.MODULES.items():
        for label in (title, C.MODULE_FORM_LABELS[k], f"M{k} {title}", f"M{k}. {title}",
                      f"M{k} - {title}", f"Modulo {k}", f"Module {k}", f"M{k}",
                      C.MODULE_ITALIAN_TITLES[k], f"M{k}. {C.MODULE_ITALIAN_TITLES[k]}"):
            lookup[text_key(label)] = k
    return lookup


_MODULES = _module_lookup()


def module_number(label: str) -> int | None:
    """Module number for a checkbox label in English or Italian wording, or None.

    Examples
    --------
    >>> module_number("M3. The Stress-Vulnerability Model"), module_number("  affrontare lo STRESS ")
    (3, 8)
    """
    key = text_key(label)
    if key in _MODULES:
        return _MODULES[key]
    m = re.match(r"^(?:m|modulo|module)\s*\.?\s*(\d{1,2})\b", key)
    if m and 1 <= int(m.group(1)) <= C.N_MODULES:
        # "M3. <anything>" : the number decides only if the title also matches or is absent
        rest = key[m.end():].strip(" .-:")
        k = int(m.group(1))
        if not rest or rest in (text_key(C.MODULES[k]), text_key(C.MODULE_ITALIAN_TITLES[k])):
            return k
    return None


def parse_modules(s):
    """Parse the checkbox answer into a boolean frame module_01..module_11.

    Google Forms joins ticked boxes with ';' (', ' in some exports: accepted when no ';'
    is present). Returns ``(frame, unknown)`` where ``unknown`` holds, per row, the tuple
    of labels that match no module.

    Examples
    --------
    >>> import pandas as pd
    >>> f, unknown = parse_modules(pd.Series(["M1. Recovery Strategies;M6. Drug and Alcohol Use", "M12. Extra"]))
    >>> f.sum(axis=1).tolist(), unknown.tolist()
    ([2, 0], [(), ('M12. Extra',)])
    """
    import numpy as np
    import pandas as pd

    text = s.astype("string").fillna("")
    sep = np.where(text.str.contains(";", regex=False), ";", ",")
    labels = [tuple(x.strip() for x in t.split(sp) if x.strip()) for t, sp in zip(text.tolist(), sep)]
    mapped = [[module_number(x) for x in row] for row in labels]
    arr = np.zeros((len(labels), C.N_MODULES), dtype=bool)
    for i, row in enumerate(mapped):
        for k in row:
            if k is not None:
                arr[i, k - 1] = True
    frame = pd.DataFrame(arr, index=s.index, columns=C.MODULE_COLUMNS).astype(bool)
    unknown = pd.Series([tuple(x for x, k in zip(lab, row) if k is None) for lab, row in zip(labels, mapped)],
                        index=s.index, dtype=object)
    return frame, unknown


def map_categories(s, coding: dict[str, str]):
    """Map source codings to canonical categories, ignoring case, accents and spacing.

    Returns ``(values, bad)``; empty cells are missing.

    Examples
    --------
    >>> import pandas as pd
    >>> v, bad = map_categories(pd.Series([" celibe/nubile", "X", ""]), {"Celibe/Nubile": "never_married"})
    >>> v.tolist(), bad.tolist()
    (['never_married', <NA>, <NA>], [False, True, False])
    """
    import pandas as pd

    lookup = {text_key(k): v for k, v in coding.items()}
    for v in set(coding.values()):
        lookup.setdefault(text_key(v), v)
    text = s.astype("string").fillna("").map(text_key)
    blank = text == ""
    vals = text.map(lookup).astype("string")
    bad = (~blank & vals.isna()).astype(bool)
    return vals.where(~blank), bad


def municipality_district(s):
    """Health district of residence from the municipality name ('outside' if not in the province).

    Examples
    --------
    >>> import pandas as pd
    >>> municipality_district(pd.Series(["FERRARA", "Cento ", "Bologna"])).tolist()
    ['Centro-Nord', 'Ovest', 'outside']
    """
    lookup = {text_key(k): v for k, v in C.MUNICIPALITY_DISTRICT.items()}
    return s.astype("string").fillna("").map(text_key).map(lookup).fillna("outside").astype(object)


def canonical_municipality(s):
    """Municipality names in their canonical spelling when known, else stripped title case."""
    lookup = {text_key(k): k for k in C.MUNICIPALITY_DISTRICT}
    text = s.astype("string").fillna("").str.strip()
    return text.map(lambda x: lookup.get(text_key(x), x.title() if x else None)).astype(object)


def normalise_code(s):
    """Patient codes for linkage: stripped, upper case, inner spaces removed."""
    return s.astype("string").str.strip().str.upper().str.replace(r"\s+", "", regex=True)
