"""Value parsers for raw exports: dates, numbers, ICD-10 and ATC codes, modules, categories.

Each parser is vectorised: it takes a Series of raw text and returns the parsed Series
plus a boolean mask of the values it could not parse (empty cells are *missing*, not
bad). The cleaner turns masks into problems naming file, line and column.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from . import constants as C

EXCEL_EPOCH = "1899-12-30"

#: Date formats accepted in any export, in order of preference per source.
#:
#: A two-digit year (``%d/%m/%y``, tried last) follows the ``strptime`` convention that
#: pandas applies: ``00``-``68`` are 2000-2068 and ``69``-``99`` are 1969-1999 (a fixed
#: pivot, not one that moves with today's date). A two-digit year can therefore not
#: express 1900-1968, and one that lands after today is reported as *in the future* by
#: :func:`parse_date_column` (``01/01/65`` is 2065, not 1965). See
#: :data:`TWO_DIGIT_YEAR_PIVOT`.
DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y")

#: First two-digit year read as 19xx (``69`` -> 1969); the ones below it are 20xx
#: (``68`` -> 2068). This is the pivot of ``strptime``'s ``%y``, which the parser uses;
#: it is stated here, and tested, so that the raw-data contract can quote it.
TWO_DIGIT_YEAR_PIVOT = 69

#: Earliest date accepted in any export; earlier dates are reported as errors.
EARLIEST_DATE = "1900-01-01"

#: Excel serial day numbers are accepted with five digits only (10000 = 1927-05-18 to
#: 99999 = 2173-10-14): a bare four-digit number such as ``2019`` is a year, not a date,
#: and is reported instead of being read as 11 July 1905.
_EXCEL_SERIAL = r"\d{5}(?:[.,]\d+)?"

#: A time of day after a date ("15/03/2010 00:00", "2010-03-15T00:00:00"), as database
#: and Excel exports write date cells; it is dropped (the fields are dates).
_TIME_OF_DAY = r"(?:[ T]+(?:[01]?\d|2[0-3])[:.][0-5]\d(?:[:.][0-5]\d(?:[.,]\d+)?)?)$"

_NS_MIN, _NS_MAX = "1677-09-22", "2262-04-11"


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


def loose_key(value: str) -> str:
    """:func:`text_key` with every punctuation mark dropped, for matching free-typed titles.

    Examples
    --------
    >>> loose_key("M3 .  The Stress Vulnerability-model")
    'm3 the stress vulnerability model'
    """
    return re.sub(r"\s+", " ", re.sub(r"[^0-9a-z]+", " ", text_key(value))).strip()


def map_unique(s, func):
    """Apply a Python function to the distinct values of ``s`` only, then map (vectorised callers).

    Raw columns hold few distinct values (codes, municipalities, module titles), so this
    keeps per-value Python work independent of the number of rows.

    Examples
    --------
    >>> import pandas as pd
    >>> map_unique(pd.Series(["A ", "a", "A "]), text_key).tolist()
    ['a', 'a', 'a']
    """
    import numpy as np
    import pandas as pd

    values = s.to_numpy(dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    mapped = np.empty(len(uniques), dtype=object)
    mapped[:] = [func(v) for v in uniques]
    return pd.Series(mapped[codes], index=s.index, dtype=object)


def _distinct(s, min_rows: int = 1000):
    """``(codes, distinct)`` when ``s`` repeats its values (``distinct`` ends with a missing
    value, where missing cells point); ``None`` when it hardly does. Used to run elementwise
    parsers once per distinct value."""
    import pandas as pd

    if len(s) < min_rows:
        return None
    codes, uniq = pd.factorize(s, use_na_sentinel=True)
    if 2 * (len(uniq) + 1) > len(s):
        return None
    codes = codes.copy()
    codes[codes < 0] = len(uniq)
    distinct = pd.Series(list(uniq) + [None], dtype=s.dtype if s.dtype != object else object)
    return codes, distinct


def _categories(s):
    """``(codes, distinct)`` of a categorical column: ``distinct`` is its categories as text
    followed by a missing value, where missing cells point. ``None`` for other columns."""
    import numpy as np
    import pandas as pd

    if not isinstance(s.dtype, pd.CategoricalDtype):
        return None
    cats = s.cat.categories
    codes = s.cat.codes.to_numpy().astype(np.int64)
    codes[codes < 0] = len(cats)
    distinct = pd.Series(list(cats.astype(str)) + [None], dtype="str")
    return codes, distinct


def _is_text(result) -> bool:
    """A Series of text (``str`` or ``string``, or ``object`` holding only text), not a mask,
    a number or tuples of codes."""
    import pandas as pd

    if not isinstance(result, pd.Series) or isinstance(result.dtype, pd.CategoricalDtype):
        return False
    if result.dtype == object:
        return pd.api.types.infer_dtype(result, skipna=True) in ("string", "empty")
    return pd.api.types.is_string_dtype(result.dtype)


def _text_categorical(result, codes, index):
    """``result[codes]`` as a ``Categorical`` of text: the distinct texts once, one small
    integer per row (``result`` is computed on distinct values, so it is small)."""
    import numpy as np
    import pandas as pd

    rcodes, uniques = pd.factorize(result, use_na_sentinel=True)
    categories = pd.Index(np.asarray(uniques, dtype=object), dtype="str")
    return pd.Series(pd.Categorical.from_codes(rcodes[codes], categories=categories, validate=False),
                     index=index, name=result.name, copy=False)


def _text_as_category(result):
    """``result`` (a Series or a tuple of them) with its text Series made ``Categorical``."""
    import numpy as np

    if isinstance(result, tuple) and not hasattr(result, "_fields"):
        return tuple(_text_as_category(r) for r in result)
    return _text_categorical(result, np.arange(len(result)), result.index) if _is_text(result) else result


def _spread_result(result, codes, index, as_category: bool = False):
    """A result computed on the distinct values (Series, DataFrame, tuple, DateParse) put
    back on the rows; with ``as_category``, text comes back as a ``Categorical``."""
    import numpy as np
    import pandas as pd

    if isinstance(result, tuple) and not hasattr(result, "_fields"):
        return tuple(_spread_result(r, codes, index, as_category) for r in result)
    if isinstance(result, DateParse):
        return DateParse(*(_spread_result(x, codes, index) for x in
                           (result.dates, result.bad, result.too_early, result.too_late)))
    if isinstance(result, pd.DataFrame):
        out = result.take(codes)
        out.index = index
        return out
    if as_category and _is_text(result):
        return _text_categorical(result, codes, index)
    if result.dtype == bool and not result.any():  # masks of problems: usually nothing to spread
        return pd.Series(np.zeros(len(codes), dtype=bool), index=index, name=result.name, copy=False)
    # the taken array is new: wrapping it without a copy (pandas 3 copies by default)
    return pd.Series(result.array.take(codes), index=index, name=result.name, dtype=result.dtype, copy=False)


def per_distinct(func=None, *, plain: bool = False):
    """Run an elementwise column function once per distinct value of a categorical column.

    Every raw column but the patient code and the form timestamp is read as a
    ``Categorical`` (:mod:`imr_analysis.ingest`): a million rows hold a few dozen distinct
    dates, codes or titles. ``func(s, ...)`` must be elementwise (each output row depends
    only on that row's value; column-level decisions must depend only on the *set* of
    values): then running it on the categories and spreading the result back by the codes
    gives exactly what running it on the rows gives. Other columns are passed through,
    unless ``plain=True``: then a plain column that repeats its values is factorized
    first (:func:`_distinct`), for parsers that also serve text not read by
    :mod:`imr_analysis.ingest`.

    Every decorated function also takes ``as_category=True``: text results then come
    back as a ``Categorical`` (the same values; one small integer per row instead of
    one string per row, which a million-row cleaning does not have to build, copy and
    gather again).

    Examples
    --------
    >>> import pandas as pd
    >>> upper = per_distinct(lambda s: s.str.upper())
    >>> upper(pd.Series(["a", "b", "a", None], dtype="category")).tolist()
    ['A', 'B', 'A', nan]
    >>> upper(pd.Series(["a", "b", "a"]), as_category=True).cat.categories.tolist()
    ['A', 'B']
    """
    if func is None:
        return lambda f: per_distinct(f, plain=plain)

    @functools.wraps(func)
    def wrapper(s, *args, as_category: bool = False, **kwargs):
        distinct = _categories(s)
        if distinct is None and plain:
            distinct = _distinct(s)
        if distinct is None:
            result = func(s, *args, **kwargs)
            return _text_as_category(result) if as_category else result
        codes, values = distinct
        return _spread_result(func(values, *args, **kwargs), codes, s.index, as_category)

    return wrapper


@per_distinct
def blank(s):
    """True where a cell is missing or holds only white space.

    Examples
    --------
    >>> import pandas as pd
    >>> blank(pd.Series(["a", " ", None], dtype="category")).tolist()
    [False, True, True]
    """
    return _blank(s)


@dataclass(frozen=True)
class DateParse:
    """Result of :func:`parse_date_column`: parsed dates and one mask per kind of problem.

    ``dates`` is ``datetime64[ns]`` (NaT where missing, malformed or out of range);
    ``bad`` marks non-empty cells that are not a date; ``too_early`` and ``too_late``
    mark real dates before ``earliest`` or after ``latest``.
    """

    dates: "object"
    bad: "object"
    too_early: "object"
    too_late: "object"


@per_distinct(plain=True)
def parse_date_column(s, preferred: str | None = None, earliest: str | None = EARLIEST_DATE,
                      latest=None) -> DateParse:
    """Parse a column of dates and tell malformed dates from dates out of range.

    Accepted: ``dd/mm/yyyy``, ``yyyy-mm-dd``, ``dd-mm-yyyy``, ``dd.mm.yyyy``,
    ``yyyy/mm/dd``, ``dd/mm/yy`` (each optionally followed by a time of day, which is
    dropped) and five-digit Excel serial day numbers (``43528`` or ``43528,0``).
    Month-first (US) dates are never assumed: ``03/04/2019`` is 3 April 2019.
    Two-digit years ``00``-``68`` are 2000-2068 and ``69``-``99`` are 1969-1999
    (:data:`TWO_DIGIT_YEAR_PIVOT`).
    ``preferred`` is tried first. Dates outside the range pandas can hold in
    nanoseconds (years 1678-2261) are still recognised, so that ``01/01/1650`` is
    reported as *before 1900*, not as *not a date*.

    Parameters
    ----------
    s : Series of raw text.
    preferred : a ``strptime`` format tried before the others.
    earliest, latest : bounds (inclusive); ``None`` for no bound.

    Returns
    -------
    DateParse

    Examples
    --------
    >>> import pandas as pd
    >>> r = parse_date_column(pd.Series(["04/03/2019", "01/01/1650", "01/01/2999", "2019", "",
    ...                                  "2019-03-04 00:00:00"]), latest="2021-12-31")
    >>> r.dates.dt.strftime("%Y-%m-%d").tolist()
    ['2019-03-04', nan, nan, nan, nan, '2019-03-04']
    >>> r.bad.tolist(), r.too_early.tolist(), r.too_late.tolist()
    ([False, False, False, True, False, False], [False, True, False, False, False, False], \
[False, False, True, False, False, False])
    >>> parse_date_column(pd.Series(["31/12/68", "01/01/69"])).dates.dt.strftime("%Y-%m-%d").tolist()
    ['2068-12-31', '1969-01-01']
    """
    import numpy as np
    import pandas as pd

    text = s.astype("string").str.strip()
    text = text.where(text != "")
    present = text.notna().to_numpy(dtype=bool)
    core = text.str.replace(_TIME_OF_DAY, "", regex=True)
    out = np.full(len(s), np.datetime64("NaT"), dtype="datetime64[us]")
    todo = present.copy()
    formats = ([preferred] if preferred else []) + [f for f in DATE_FORMATS if f != preferred]
    for fmt in formats:
        if not todo.any():
            break
        parsed = pd.to_datetime(core[todo], format=fmt, errors="coerce")
        vals = parsed.to_numpy(dtype="datetime64[us]")
        ok = ~np.isnat(vals)
        pos = np.flatnonzero(todo)[ok]
        out[pos] = vals[ok]
        todo[pos] = False
    if todo.any():
        serial = core[todo].str.fullmatch(_EXCEL_SERIAL).fillna(False).to_numpy(dtype=bool)
        if serial.any():
            pos = np.flatnonzero(todo)[serial]
            days = np.floor(core.iloc[pos].str.replace(",", ".", regex=False).astype(float).to_numpy())
            out[pos] = np.datetime64(EXCEL_EPOCH, "us") + (days * 86_400_000_000).astype("timedelta64[us]")
            todo[pos] = False
    bad = present & np.isnat(out)
    early = ~np.isnat(out) & (out < np.datetime64(earliest, "us")) if earliest else np.zeros(len(s), bool)
    late = (~np.isnat(out) & (out > np.datetime64(pd.Timestamp(latest).date(), "us"))
            if latest is not None else np.zeros(len(s), bool))
    inside = (out >= np.datetime64(_NS_MIN, "us")) & (out <= np.datetime64(_NS_MAX, "us"))
    keep = ~np.isnat(out) & inside & ~early & ~late
    dates = pd.Series(np.where(keep, out, np.datetime64("NaT")).astype("datetime64[ns]"), index=s.index,
                      copy=False)
    mk = lambda a: pd.Series(np.asarray(a, dtype=bool), index=s.index, copy=False)  # fresh arrays  # noqa: E731
    return DateParse(dates, mk(bad), mk(early), mk(late))


@per_distinct
def parse_dates(s, preferred: str | None = None):
    """Parse dates written as dd/mm/yyyy, yyyy-mm-dd (and close variants) or Excel serials.

    Returns ``(dates, bad)``; ``bad`` marks non-empty cells that are not a date (or a
    date pandas cannot hold, before 1678 or after 2261). Month-first (US) dates are not
    accepted: 03/04/2019 is 3 April 2019. :func:`parse_date_column` also tells dates out
    of a range apart.

    Examples
    --------
    >>> import pandas as pd
    >>> d, bad = parse_dates(pd.Series(["04/03/2019", "2019-03-04", "43528", "", "31/02/2019"]))
    >>> d.dt.strftime("%Y-%m-%d").tolist()[:3], bad.tolist()
    (['2019-03-04', '2019-03-04', '2019-03-04'], [False, False, False, False, True])
    """
    r = parse_date_column(s, preferred, earliest=None, latest=None)
    present = ~_blank(s)
    return r.dates, (r.bad | (present & r.dates.isna())).astype(bool)


_TZ_SUFFIX = r"\s*(?:(?:GMT|UTC)\s*(?:[+-]\d{1,2}(?::?\d{2})?)?|[A-Z]{3,5}|[+-]\d{2}:?\d{2}|Z)$"

_TS_FORMATS_DAY_FIRST = (
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H.%M.%S",  # Google Sheets, English (UK) and Italian locale
    "%d/%m/%Y %H:%M", "%d/%m/%Y %H.%M",
)
_TS_FORMATS_MONTH_FIRST = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M")  # Google Sheets, US locale
_TS_FORMATS_OTHER = (
    "%Y/%m/%d %I:%M:%S %p",  # Google Forms "Download responses (.csv)", English locale
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H.%M.%S",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S.%f",
)


#: From this many values on, :func:`_try_formats` first parses fixed-width texts by parts.
_BY_PARTS_MIN_ROWS = 10_000


_FIXED_WIDTH = {"%d": r"\d{2}", "%m": r"\d{2}", "%Y": r"\d{4}", "%H": r"\d{2}", "%M": r"\d{2}", "%S": r"\d{2}"}


def _split_format(fmt):
    """``(shape regex, date part, time part)`` for a format ``"<date> <time>"`` made only of
    two-digit fields, ``%Y`` and punctuation (e.g. ``%d/%m/%Y %H:%M:%S``); else ``None``."""
    parts = fmt.split(" ")
    if len(parts) != 2:
        return None
    shape = ""
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            token = fmt[i:i + 2]
            if token not in _FIXED_WIDTH:
                return None
            shape += _FIXED_WIDTH[token]
            i += 2
        else:
            if fmt[i].isalnum():
                return None
            shape += re.escape(fmt[i])
            i += 1
    return shape, parts[0], parts[1]


def _parse_by_parts(text, fmt):
    """``(positions, values)`` of the texts written exactly in the fixed-width ``fmt``
    (``15/07/2021 10:32:11`` for ``%d/%m/%Y %H:%M:%S``), parsed as date part + time part,
    each once per distinct value: what ``pd.to_datetime(text, format=fmt)`` gives for
    them. The other texts are left to pandas. ``None`` when ``fmt`` is not of that kind.

    Examples
    --------
    >>> import pandas as pd
    >>> pos, vals = _parse_by_parts(pd.Series(["15/07/2021 10:32:11", "1/7/2021 9:00:00", "31/02/2021 10:00:00"]),
    ...                             "%d/%m/%Y %H:%M:%S")
    >>> pos.tolist(), str(vals[0])
    ([0], '2021-07-15T10:32:11.000000')
    """
    import numpy as np
    import pandas as pd

    split = _split_format(fmt)
    if split is None:
        return None
    shape, date_fmt, time_fmt = split
    text = text.astype("string")
    fits = np.flatnonzero(text.str.fullmatch(shape).fillna(False).to_numpy(dtype=bool))
    width = len(pd.Timestamp("2000-01-01").strftime(date_fmt))
    sub = text.iloc[fits]
    date_codes, date_u = pd.factorize(sub.str.slice(0, width))
    time_codes, time_u = pd.factorize(sub.str.slice(width + 1))
    dates = pd.to_datetime(pd.Series(date_u, dtype="string"), format=date_fmt, errors="coerce").to_numpy(
        dtype="datetime64[us]")
    times = (pd.to_datetime(pd.Series(time_u, dtype="string"), format=time_fmt, errors="coerce").to_numpy(
        dtype="datetime64[us]") - np.datetime64("1900-01-01", "us"))
    vals = dates[date_codes] + times[time_codes]
    ok = ~np.isnat(vals)
    return fits[ok], vals[ok]


def _try_formats(text, formats):
    import numpy as np
    import pandas as pd

    out = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[us]")
    todo = text.notna().to_numpy(dtype=bool, copy=True)
    for fmt in formats:
        if not todo.any():
            break
        parts = _parse_by_parts(text[todo], fmt) if todo.sum() >= _BY_PARTS_MIN_ROWS else None
        if parts is not None:
            pos = np.flatnonzero(todo)[parts[0]]
            out[pos] = parts[1]
            todo[pos] = False
            if not todo.any():
                break
        vals = pd.to_datetime(text[todo], format=fmt, errors="coerce").to_numpy(dtype="datetime64[us]")
        ok = ~np.isnat(vals)
        pos = np.flatnonzero(todo)[ok]
        out[pos] = vals[ok]
        todo[pos] = False
    return out


@per_distinct
def parse_timestamps(s):
    """Parse Google Forms timestamps in Italian or English locale.

    Accepted: ``15/07/2021 10:32:11`` and ``15/07/2021 10.32.11`` (Google Sheets, UK and
    Italian locale), ``2021/07/15 10:32:11 AM GMT+2`` (the Forms CSV download, English
    locale), ISO ``2021-07-15 10:32:11`` / ``2021-07-15T10:32:11``, with or without a
    time-zone suffix (dropped: local time is kept). A column written month-first
    (``7/15/2021 10:32:11``, Google Sheets in US locale) is recognised as such only when
    at least one of its values cannot be day-first and all of them can be month-first.

    Examples
    --------
    >>> import pandas as pd
    >>> t, bad = parse_timestamps(pd.Series(["15/07/2021 10:32:11", "15/07/2021 10.32.11",
    ...                                      "2021/07/15 10:32:11 AM GMT+2"]))
    >>> t.dt.strftime("%Y-%m-%d %H:%M").tolist(), bool(bad.any())
    (['2021-07-15 10:32', '2021-07-15 10:32', '2021-07-15 10:32'], False)
    >>> t, _ = parse_timestamps(pd.Series(["7/15/2021 10:32:11", "7/3/2021 9:00:00"]))
    >>> t.dt.strftime("%Y-%m-%d").tolist()
    ['2021-07-15', '2021-07-03']
    """
    import numpy as np
    import pandas as pd

    text = s.astype("string").str.strip()
    text = text.where(text != "")
    # a time-zone suffix holds a letter, '+' or '-': only such values go through the regex
    zoned = text.str.contains(r"[A-Za-z+-]", regex=True).fillna(False).to_numpy(dtype=bool)
    if zoned.any():
        text = text.copy()
        text[zoned] = text[zoned].str.replace(_TZ_SUFFIX, "", regex=True).str.strip()
    present = text.notna().to_numpy(dtype=bool)
    # every _TS_FORMATS_OTHER format starts with a four-digit year and '/' or '-'
    year_first = text.str.match(r"\p{Nd}{4}[/-]").fillna(False).to_numpy(dtype=bool)
    other = _try_formats(text.where(year_first), _TS_FORMATS_OTHER)
    slash = text.where(np.isnat(other))
    day_first = _try_formats(slash, _TS_FORMATS_DAY_FIRST)
    candidates = slash.notna().to_numpy(dtype=bool)
    # month-first only matters when some candidate is not a day-first timestamp
    us_locale = False
    if candidates.any() and bool(np.isnat(day_first[candidates]).any()):
        month_first = _try_formats(slash, _TS_FORMATS_MONTH_FIRST)
        us_locale = bool((~np.isnat(month_first[candidates])).all())
    out = np.where(np.isnat(other), month_first if us_locale else day_first, other)
    inside = (out >= np.datetime64(_NS_MIN, "us")) & (out <= np.datetime64(_NS_MAX, "us"))
    out = np.where(inside, out, np.datetime64("NaT"))
    bad = present & np.isnat(out)
    return (pd.Series(out.astype("datetime64[ns]"), index=s.index, copy=False),
            pd.Series(bad, index=s.index, dtype=bool, copy=False))


@per_distinct(plain=True)
def parse_integers(s, lo: float | None = None, hi: float | None = None):
    """Parse whole numbers; accepts '21', ' 21 ', '21.0', '21,0' (decimal comma), '+3'.

    Anything else that is not empty is bad: words, '2.5', '1e3', 'inf', thousands
    separators, numbers of more than nine digits. Returns ``(values as Int64, bad)``;
    values outside ``[lo, hi]`` are bad too (and missing in ``values``).

    Examples
    --------
    >>> import pandas as pd
    >>> v, bad = parse_integers(pd.Series(["21", "21,0", "", "x", "2.5", "0", "inf"]), lo=1)
    >>> v.tolist(), bad.tolist()
    ([21, 21, <NA>, <NA>, <NA>, <NA>, <NA>], [False, False, False, True, True, True, True])
    """
    import numpy as np
    import pandas as pd

    text = s.astype("string").str.strip()
    blank = (text.isna() | (text == "")).to_numpy(dtype=bool)
    numeric = text.str.fullmatch(r"[+-]?\d{1,9}(?:[.,]\d+)?").fillna(False).to_numpy(dtype=bool)
    num = pd.to_numeric(text.where(numeric).str.replace(",", ".", regex=False),
                        errors="coerce").astype("Float64")
    whole = (num.notna() & (num == num.round())).fillna(False).to_numpy(dtype=bool)
    bad = ~blank & ~whole
    values = num.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        if lo is not None:
            bad |= values < lo
        if hi is not None:
            bad |= values > hi
    vals = num.where(pd.Series(whole & ~bad, index=num.index)).round().astype("Int64")
    return vals, pd.Series(bad, index=s.index, dtype=bool, copy=False)


@per_distinct
def parse_imrs_item(s):
    """IMRS item scores: whole numbers from 1 to 5 (:func:`parse_integers`), as ``Int8``.

    Returns ``(values, bad)``. A million answers take 2 MB as ``Int8``, 9 MB as ``Int64``.

    Examples
    --------
    >>> import pandas as pd
    >>> v, bad = parse_imrs_item(pd.Series(["3", " 5 ", "", "6", "2,0"]))
    >>> v.tolist(), bad.tolist(), str(v.dtype)
    ([3, 5, <NA>, <NA>, 2], [False, False, False, True, False], 'Int8')
    """
    vals, bad = parse_integers(s, lo=C.IMRS_MIN, hi=C.IMRS_MAX)
    return vals.astype("Int8"), bad


_ICD = re.compile(r"^([A-Z])(\d{2})(?:\.?([0-9A-Z]{1,2}))?$")


@per_distinct
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


@per_distinct
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


@per_distinct
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

    def split(cell):
        tokens = [x for x in re.split(r"[,;|/\s]+", cell) if x]
        return (tuple(x for x in tokens if _ATC_RE.match(x)), tuple(x for x in tokens if not _ATC_RE.match(x)))

    parts = map_unique(text, split)
    return (pd.Series([p[0] for p in parts], index=s.index, dtype=object),
            pd.Series([p[1] for p in parts], index=s.index, dtype=object))


def _nonempty(tuples):
    """True where a Series of tuples (the problems a parser found in each cell) holds any."""
    import pandas as pd

    return pd.Series([len(t) > 0 for t in tuples], index=tuples.index, dtype=bool)


def _problems_of_cell(parse, cell) -> tuple:
    """The problems ``parse`` (a column parser returning ``(values, problems)``) finds in one cell."""
    import pandas as pd

    return parse(pd.Series([cell], dtype=object))[1].iloc[0]


@per_distinct
def malformed_atc(s):
    """True where a medication cell holds a token that is not an ATC code (:func:`split_atc`).

    Examples
    --------
    >>> import pandas as pd
    >>> malformed_atc(pd.Series(["N05AH03, n06ab06", "", "XYZ|N07BC02", None])).tolist()
    [False, False, True, False]
    """
    return _nonempty(split_atc(s)[1])


def malformed_atc_text(cell) -> str:
    """The tokens of one medication cell that are not ATC codes, joined by ``", "``.

    Examples
    --------
    >>> malformed_atc_text("XYZ|N07BC02, abc")
    'XYZ, ABC'
    """
    return ", ".join(_problems_of_cell(split_atc, cell))


@per_distinct
def atc_text(s):
    """The valid ATC codes of each medication cell (:func:`split_atc`) joined by ``;``.

    Examples
    --------
    >>> import pandas as pd
    >>> atc_text(pd.Series(["N05AH03, n06ab06", "", "XYZ|N07BC02"])).tolist()
    ['N05AH03;N06AB06', '', 'N07BC02']
    """
    import pandas as pd

    codes, _ = split_atc(s)
    return pd.Series([";".join(t) for t in codes], index=s.index, dtype="str")


@per_distinct
def atc_classes(codes):
    """One boolean column per medication class (and ``med_none``) from tuples of ATC codes
    (or the codes joined by ``;``, as :func:`atc_text` writes them).

    Examples
    --------
    >>> import pandas as pd
    >>> atc_classes(pd.Series([("N05AN01",), ("N05AH03", "N07BC02"), ("A02BC01",)])).astype(int).values.tolist()
    [[0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]]
    >>> atc_classes(pd.Series(["N05AH03;N07BC02", ""], dtype="category")).astype(int).values.tolist()
    [[1, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]]
    """
    import pandas as pd

    if len(codes) and not isinstance(codes.dropna().iloc[0] if codes.notna().any() else (), tuple):
        codes = pd.Series([tuple(x for x in str(t).split(";") if x) if t == t and t is not None else ()
                           for t in codes], index=codes.index, dtype=object)

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
        ita = C.MODULE_ITALIAN_TITLES[k]
        for label in (title, ita, C.MODULE_FORM_LABELS[k], f"Modulo {k}", f"Module {k}", f"M{k}"):
            lookup[loose_key(label)] = k
        for prefix in (f"M{k}", f"Modulo {k}", f"Module {k}", f"M {k}", f"Mod {k}"):
            for t in (title, ita):
                lookup[loose_key(f"{prefix} {t}")] = k
    return lookup


_MODULES = _module_lookup()


def module_number(label: str) -> int | None:
    """Module number for a checkbox label in English or Italian wording, or None.

    Case, accents, spacing and punctuation do not matter; a label may carry its number
    (``M3.``, ``Modulo 3 -``) or not, but a number and a title that disagree (``M2.
    Coping with Stress``) match nothing.

    Examples
    --------
    >>> module_number("M3. The Stress-Vulnerability Model"), module_number("  affrontare lo STRESS ")
    (3, 8)
    >>> module_number("Modulo 3 - Il modello stress vulnerabilità"), module_number("M2. Coping with Stress")
    (3, None)
    """
    return _MODULES.get(loose_key(label))


@per_distinct
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

    def parse(cell):
        sep = ";" if ";" in cell else ","
        labels = [x.strip() for x in cell.split(sep) if x.strip()]
        numbers = [module_number(x) for x in labels]
        return (tuple(k for k in numbers if k is not None),
                tuple(x for x, k in zip(labels, numbers) if k is None))

    parsed = map_unique(s.astype("string").fillna(""), parse)
    arr = np.zeros((len(s), C.N_MODULES), dtype=bool)
    rows = np.repeat(np.arange(len(s)), [len(p[0]) for p in parsed])
    cols = np.fromiter((k - 1 for p in parsed for k in p[0]), dtype=np.int64, count=len(rows))
    arr[rows, cols] = True
    frame = pd.DataFrame(arr, index=s.index, columns=C.MODULE_COLUMNS).astype(bool)
    unknown = pd.Series([p[1] for p in parsed], index=s.index, dtype=object)
    return frame, unknown


@per_distinct
def unknown_modules(s):
    """True where a modules answer holds a label that matches no module (:func:`parse_modules`).

    Examples
    --------
    >>> import pandas as pd
    >>> unknown_modules(pd.Series(["M1. Recovery Strategies;M12. Extra", "M6. Drug and Alcohol Use", ""])).tolist()
    [True, False, False]
    """
    return _nonempty(parse_modules(s)[1])


def unknown_modules_text(cell) -> str:
    """The labels of one modules answer that match no module, joined by ``"; "``.

    Examples
    --------
    >>> unknown_modules_text("M1. Recovery Strategies;M12. Extra;Yoga")
    'M12. Extra; Yoga'
    """
    return "; ".join(_problems_of_cell(parse_modules, cell))


@per_distinct
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
    for v in sorted(set(coding.values())):
        lookup.setdefault(text_key(v), v)
    # numeric codes that passed through a spreadsheet ("1,0", "1.0") are the code "1"
    text = (map_unique(s.astype("string").fillna(""), text_key).astype("string")
            .str.replace(r"^(\d+)[.,]0+$", r"\1", regex=True))
    blank = text == ""
    vals = text.map(lookup).astype("string")
    bad = (~blank & vals.isna()).astype(bool)
    return vals.where(~blank), bad


@per_distinct
def municipality_district(s):
    """Health district of residence from the municipality name ('outside' if not in the province).

    Examples
    --------
    >>> import pandas as pd
    >>> municipality_district(pd.Series(["FERRARA", "Cento ", "Bologna"])).tolist()
    ['Centro-Nord', 'Ovest', 'outside']
    """
    lookup = {text_key(k): v for k, v in C.MUNICIPALITY_DISTRICT.items()}
    return map_unique(s.astype("string").fillna(""), lambda x: lookup.get(text_key(x), "outside"))


@per_distinct
def canonical_municipality(s):
    """Municipality names in their canonical spelling when known, else stripped title case."""
    lookup = {text_key(k): k for k in C.MUNICIPALITY_DISTRICT}
    text = s.astype("string").fillna("").str.strip()
    return map_unique(text, lambda x: lookup.get(text_key(x), x.title() if x else None))


#: Other names of the three kinds of service, in Italian and English, accepted before the town.
SERVICE_TYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "CMHC": ("CMHC", "CSM", "Centro di Salute Mentale", "Centro Salute Mentale", "Community Mental Health Centre",
             "Community Mental Health Center"),
    "SerD": ("SerD", "SerDP", "SerT", "Servizio Dipendenze", "Servizio Dipendenze Patologiche",
             "Servizio per le Dipendenze"),
    "EDP": ("EDP", "DCA", "Programma DCA", "Programma Disturbi del Comportamento Alimentare",
            "Eating Disorders Programme", "Eating Disorders Program"),
}


def _unit_lookup() -> dict[str, str]:
    lookup = {}
    for unit, info in C.SERVICE_UNITS.items():
        town = unit.split(" ", 1)[1]
        for alias in SERVICE_TYPE_ALIASES[info["service_type"]]:
            for label in (f"{alias} {town}", f"{alias} di {town}", f"{town} {alias}"):
                lookup[loose_key(label)] = unit
    for unit in C.SERVICE_UNITS:
        lookup[loose_key(unit)] = unit
    return lookup


_UNITS = _unit_lookup()


@per_distinct
def normalise_service_unit(s):
    """Canonical service unit (a key of ``SERVICE_UNITS``) from the form's answer.

    Case, accents, spacing, punctuation (``Ser.D.``) and the Italian names of the
    services (``CSM``, ``SerDP``, ``SerT``, ``DCA``) do not matter. Returns ``(units,
    bad)``; ``bad`` marks non-empty answers that name no known unit.

    Examples
    --------
    >>> import pandas as pd
    >>> u, bad = normalise_service_unit(pd.Series(["cmhc  ferrara", "CSM Cento", "Ser.D. Codigoro", "DCA Ferrara",
    ...                                            "CMHC Atlantis", ""]))
    >>> u.tolist(), bad.tolist()
    (['CMHC Ferrara', 'CMHC Cento', 'SerD Codigoro', 'EDP Ferrara', <NA>, <NA>], \
[False, False, False, False, True, False])
    """
    text = s.astype("string").fillna("")
    key = map_unique(text, loose_key).astype("string")
    # "Ser.D." -> "ser d": glue single letters back onto the word they belong to
    key = (key.str.replace(r"\bser d p\b", "serdp", regex=True).str.replace(r"\bser d\b", "serd", regex=True)
           .str.replace(r"\bser t\b", "sert", regex=True))
    units = key.map(_UNITS).astype("string")
    blank = key == ""
    return units.where(~blank), (~blank & units.isna()).astype(bool)


#: Answers accepted for the IMR format question (Google Form in English or Italian).
IMR_FORMAT_CODING = {"Group": "group", "Individual": "individual", "Gruppo": "group", "Di gruppo": "group",
                     "Individuale": "individual"}


@per_distinct
def canonical_manual_version(s):
    """The manual version as written in :data:`constants.MANUAL_VERSIONS` when it is one of
    them (ignoring case, accents and spacing); other answers are kept, single-spaced.

    Examples
    --------
    >>> import pandas as pd
    >>> canonical_manual_version(pd.Series(["  original toolkit (samhsa 2009) ", "Other  edition", ""])).tolist()
    ['Original toolkit (SAMHSA 2009)', 'Other edition', <NA>]
    """
    lookup = {text_key(v): v for v in C.MANUAL_VERSIONS}
    text = s.astype("string").fillna("").str.strip().str.replace(r"\s+", " ", regex=True)
    out = map_unique(text, lambda x: lookup.get(text_key(x), x)).astype("string")
    return out.where(text != "")


@per_distinct
def normalise_code(s):
    """Patient codes for linkage: stripped, upper case, inner spaces removed.

    Examples
    --------
    >>> import pandas as pd
    >>> normalise_code(pd.Series([" ef 0001 ", "SD0002", None])).tolist()
    ['EF0001', 'SD0002', <NA>]
    """
    text = s.astype("string").str.strip().str.upper()
    # codes are letters and digits: only the others can hold inner (Unicode) white space
    plain = text.str.fullmatch(r"[A-Z0-9]*").fillna(True).to_numpy(dtype=bool)
    if plain.all():
        return text
    text = text.copy()
    text[~plain] = text[~plain].str.replace(r"\s+", "", regex=True)
    return text
