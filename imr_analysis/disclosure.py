"""Statistical disclosure control for every published output of the compendium.

Departments run the compendium on their own patients. A table of a 126-patient cohort
split by service has cells of 1-5 patients, and a per-patient bar chart is microdata, so
every table passes through a *disclosure profile* before it is written:

* ``none`` -- nothing is suppressed (the default on synthetic data);
* ``opensafely`` -- the OpenSAFELY output rules: any statistic describing 7 or fewer
  patients is redacted, counts are rounded to the nearest 5 after redaction (no
  secondary suppression: rounding prevents exact differencing), totals and percentages
  are recomputed from the rounded counts, minima/maxima are removed, means and SDs of
  groups of 7 or fewer are redacted, 0% and 100% cells are flagged (the default on
  private data);
* ``opensafely_midpoint6`` -- the same with OpenSAFELY's midpoint-6 rounding;
* ``sistan_min3`` -- the SISTAN legal floor: minimum frequency 3 (counts 1-2 redacted,
  with secondary suppression), no rounding.

The profiles live in ``resources/disclosure_profiles.yaml`` (versioned); DISCLOSURE.md
explains the rules and their sources.

Input tables are *tidy long* tables as the table builders produce them: key columns
(``variable, level, group, kind`` for Table 1; ``unit, service_type, level, measure`` for
Table 2; any key columns for a simple count table) and statistic columns among
``n, denominator, percent, n_missing, mean, sd, median, q1, q3, min, max``.

The algorithm of :func:`apply_to_long`
---------------------------------------
1. *Primary suppression*: every count (``n``, ``n_missing``, ``denominator``) of 1..k
   patients is redacted (zero is kept); summaries (mean, SD, median, quartiles) of rows
   whose ``n`` is 1..k are redacted.
2. *Secondary suppression*, only in profiles without rounding (``sistan_min3``):
   rounded counts already prevent exact differencing, and a profile that asks for both
   is refused (:class:`Profile`). The table is read as additive relations "members (+ an
   unpublished remainder) = total": the levels of a variable sum to its denominator;
   denominator + missing, and levels + missing, sum to the group size (the column
   header); a yes-row plus its unpublished complement sums to the denominator; the
   service groups sum to the ``Total`` group (Table 2: units sum to their service type,
   types to the total); equal counts of one unit in several rows of Table 2 are one
   quantity. Cells are redacted one at a time until no redacted cell can be derived
   exactly (by peeling single-unknown relations, then by linear algebra on the whole
   system) and no relation with a known total has an unknown part of 1..k patients (a
   complement of 3 patients discloses them as surely as a cell of 3). The cell hidden
   is a member of the relation, the smallest, rather than a group size, denominator or
   total whenever a member will do.
3. *Rounding* of every published count (nearest ``base``, or midpoint rounding).
4. *Totals recomputed* as the sum of their rounded members (when none is redacted),
   *percentages recomputed* from the rounded numerator and denominator.
5. *Minima/maxima removed*; 0%/100% cells and zero cells that make a complementary cell
   the whole group are *flagged*.

Redacted values become missing; the companion columns ``redacted`` (bool),
``redacted_columns`` (``;``-joined column names) and ``disclosure_note`` let a formatter
print ``[REDACTED]`` (:func:`mark_redacted` does it for a whole table). Every action is
listed in the report (output, row key, column, kind, action, rule) -- never the value.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from typing import Iterable

from . import export
from .paths import RESOURCES_DIR

PROFILES_FILE = RESOURCES_DIR / "disclosure_profiles.yaml"
DATA_MODES = ("synthetic", "private")
REDACTED_MARKER = "[REDACTED]"

COUNT_COLUMNS = ("n", "n_missing", "denominator")
PERCENT_COLUMN = "percent"
SUMMARY_COLUMNS = ("mean", "sd", "median", "q1", "q3")
EXTREME_COLUMNS = ("min", "max")
STAT_COLUMNS = COUNT_COLUMNS + (PERCENT_COLUMN,) + SUMMARY_COLUMNS + EXTREME_COLUMNS
COMPANION_COLUMNS = ("redacted", "redacted_columns", "disclosure_note")
REPORT_COLUMNS = ["output", "row_key", "column", "kind", "action", "rule"]
ACTIONS = ("redacted", "redacted-secondary", "rounded", "removed", "flagged")
ROUNDING_METHODS = ("nearest", "midpoint")
#: Labels of total rows (case-insensitive, at the start of the label): Total, Overall, All ...
TOTAL_LABEL_PATTERN = r"(?i)^\s*(?:total|overall|all|totale|tutti)\b"
#: Values of Table 2's tier column (``level``) and the role they play.
TIER_ROLES = {"unit": "member", "type": "subtotal", "service_type": "subtotal",
              "subtotal": "subtotal", "total": "total"}

_PROFILE_FIELDS = {
    "description": str,
    "sources": list,
    "strength": int,
    "redact_counts_le": int,
    "secondary_suppression": bool,
    "rounding": (dict, type(None)),
    "recompute_totals": bool,
    "redact_summaries_le": int,
    "remove_min_max": bool,
    "flag_zero_hundred": bool,
    "allow_microdata": bool,
}
_STAT_KIND = {"n": "count", "n_missing": "count", "denominator": "count", "percent": "percent",
              "mean": "summary", "sd": "summary", "median": "summary", "q1": "summary",
              "q3": "summary", "min": "extreme", "max": "extreme"}
_EPS = 1e-9
#: Key columns that look like statistics (a wide table): refused, they would escape control.
_STATLIKE = re.compile(r"^(?:n|count|counts|freq|frequency|pct|perc|percent|percentage|mean|sd|median"
                       r"|iqr|min|max)(?:_.+)?$|_(?:n|count|pct|percent)$", re.IGNORECASE)


class DisclosureError(ValueError):
    """A disclosure profile cannot be used as asked, or a table cannot be protected."""


# --------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Profile:
    """A named set of disclosure-control rules (see ``disclosure_profiles.yaml``).

    Attributes
    ----------
    name, version, description, sources :
        Identity of the profile and where its rules come from.
    strength : int
        Ordering used to refuse weaker-than-default profiles on private data.
    redact_counts_le : int
        Counts ``1..redact_counts_le`` are redacted (0 = none).
    secondary_suppression : bool
        Protect redacted cells from being derived from published totals. Only in
        profiles without rounding: rounded counts already prevent exact differencing.
    rounding_method, rounding_base :
        ``"nearest"`` or ``"midpoint"`` rounding to ``rounding_base`` (``None`` = none).
    recompute_totals : bool
        Totals become sums of rounded counts; percentages are recomputed.
    redact_summaries_le : int
        Means/SDs/medians/quartiles of ``1..k`` patients are redacted.
    remove_min_max, flag_zero_hundred, allow_microdata : bool
    data_mode, requested, weaker_than_default :
        Filled by :func:`resolve_profile`: the data mode, what was asked for, and whether
        a weaker-than-default profile was chosen explicitly on private data.

    Raises
    ------
    DisclosureError
        A profile that rounds and also asks for secondary suppression (see DISCLOSURE.md,
        "Secondary suppression and rounding").

    Examples
    --------
    >>> p = get_profile("opensafely")
    >>> p.redact_counts_le, p.rounding_base, p.allow_microdata, p.secondary_suppression
    (7, 5, False, False)
    >>> dataclasses.replace(p, secondary_suppression=True)
    Traceback (most recent call last):
    ...
    imr_analysis.disclosure.DisclosureError: disclosure profile 'opensafely' combines rounding (nearest 5) ...
    """

    name: str
    version: int
    description: str
    sources: tuple[str, ...]
    strength: int
    redact_counts_le: int
    secondary_suppression: bool
    rounding_method: str | None
    rounding_base: int | None
    recompute_totals: bool
    redact_summaries_le: int
    remove_min_max: bool
    flag_zero_hundred: bool
    allow_microdata: bool
    data_mode: str | None = None
    requested: str | None = None
    weaker_than_default: bool = False

    def __post_init__(self):
        if self.secondary_suppression and self.rounding_method is not None:
            raise DisclosureError(
                f"disclosure profile {self.name!r} combines rounding ({self.rounding_method} "
                f"{self.rounding_base}) with secondary suppression; choose one: rounded counts already "
                "prevent exact differencing, and secondary suppression reasons on exact values that a "
                "rounding profile never publishes (see DISCLOSURE.md, 'Secondary suppression and rounding')")

    @property
    def is_noop(self) -> bool:
        """True when the profile changes nothing (the ``none`` profile)."""
        return (self.redact_counts_le == 0 and self.rounding_method is None
                and self.redact_summaries_le == 0 and not self.remove_min_max
                and not self.flag_zero_hundred)

    def rule_text(self) -> str:
        """Human-readable summary of the rules, e.g. for a table caption."""
        if self.is_noop:
            return "no disclosure control applied"
        parts = []
        if self.redact_counts_le:
            parts.append(f"counts of 1-{self.redact_counts_le} patients redacted")
        if self.secondary_suppression:
            parts.append("with secondary suppression")
        if self.rounding_method == "nearest":
            parts.append(f"counts rounded to the nearest {self.rounding_base}")
        elif self.rounding_method == "midpoint":
            parts.append(f"counts rounded to midpoint {self.rounding_base}")
        if self.recompute_totals and self.rounding_method:
            parts.append("totals and percentages recomputed from rounded counts")
        if self.redact_summaries_le:
            parts.append(f"summaries of 1-{self.redact_summaries_le} patients redacted")
        if self.remove_min_max:
            parts.append("minima/maxima removed")
        return "; ".join(parts)

    def describe(self) -> str:
        """One line for the run's colophon: name, version, rules, how it was chosen."""
        text = f"{self.name} (profile version {self.version}): {self.rule_text()}"
        if self.data_mode is not None:
            how = "chosen automatically" if self.requested in (None, "", "auto") else "requested explicitly"
            text += f"; {how} for {self.data_mode} data"
        if self.weaker_than_default:
            text += "; WEAKER than the default for private data (allow_weaker_profile=True)"
        return text

    def as_dict(self) -> dict:
        """The profile as a plain dict (for JSON colophons)."""
        d = dataclasses.asdict(self)
        d["sources"] = list(self.sources)
        return d


def _validate_profile(name: str, spec, version: int, path: Path) -> Profile:
    if not isinstance(spec, dict):
        raise DisclosureError(f"{path}: profile {name!r} must be a mapping")
    missing = sorted(set(_PROFILE_FIELDS) - set(spec))
    unknown = sorted(set(spec) - set(_PROFILE_FIELDS))
    if missing or unknown:
        raise DisclosureError(f"{path}: profile {name!r}: missing fields {missing}, unknown fields {unknown}")
    for field, typ in _PROFILE_FIELDS.items():
        value = spec[field]
        if typ is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise DisclosureError(f"{path}: profile {name!r}: {field} must be a non-negative integer")
        if typ is not int and not isinstance(value, typ):
            raise DisclosureError(f"{path}: profile {name!r}: {field} has the wrong type ({type(value).__name__})")
    rounding = spec["rounding"]
    method = base = None
    if rounding is not None:
        method, base = rounding.get("method"), rounding.get("base")
        if method not in ROUNDING_METHODS or isinstance(base, bool) or not isinstance(base, int) or base < 1:
            raise DisclosureError(
                f"{path}: profile {name!r}: rounding must be {{method: nearest|midpoint, base: positive int}}")
    if rounding is not None and spec["secondary_suppression"]:
        raise DisclosureError(
            f"{path}: profile {name!r}: rounding and secondary_suppression cannot be combined; rounded "
            "counts already prevent exact differencing (see DISCLOSURE.md, 'Secondary suppression and "
            "rounding'): set secondary_suppression: false, or drop the rounding")
    return Profile(
        name=name, version=version, description=spec["description"],
        sources=tuple(str(s) for s in spec["sources"]), strength=spec["strength"],
        redact_counts_le=spec["redact_counts_le"], secondary_suppression=spec["secondary_suppression"],
        rounding_method=method, rounding_base=base, recompute_totals=spec["recompute_totals"],
        redact_summaries_le=spec["redact_summaries_le"], remove_min_max=spec["remove_min_max"],
        flag_zero_hundred=spec["flag_zero_hundred"], allow_microdata=spec["allow_microdata"],
    )


@functools.lru_cache(maxsize=8)
def _load(path_str: str) -> tuple[int, dict[str, str], dict[str, Profile]]:
    import yaml

    path = Path(path_str)
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, dict) or not {"version", "defaults", "profiles"} <= set(doc):
        raise DisclosureError(f"{path}: expected top-level keys 'version', 'defaults' and 'profiles'")
    version = doc["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise DisclosureError(f"{path}: 'version' must be an integer")
    profiles = {name: _validate_profile(name, spec, version, path) for name, spec in doc["profiles"].items()}
    defaults = dict(doc["defaults"])
    if set(defaults) != set(DATA_MODES) or not set(defaults.values()) <= set(profiles):
        raise DisclosureError(f"{path}: 'defaults' must map {list(DATA_MODES)} to defined profiles")
    return version, defaults, profiles


def load_profiles(path: str | Path | None = None) -> dict[str, Profile]:
    """Read and validate the disclosure profiles.

    Parameters
    ----------
    path : YAML file; ``None`` means the packaged ``resources/disclosure_profiles.yaml``.

    Returns
    -------
    dict of str to Profile

    Examples
    --------
    >>> sorted(load_profiles())
    ['none', 'opensafely', 'opensafely_midpoint6', 'sistan_min3']
    """
    return dict(_load(str(Path(path or PROFILES_FILE).resolve()))[2])


def profiles_version(path: str | Path | None = None) -> int:
    """The ``version`` of the profiles file (recorded in reports and the colophon)."""
    return _load(str(Path(path or PROFILES_FILE).resolve()))[0]


def default_profile_name(data_mode: str, path: str | Path | None = None) -> str:
    """The default profile for a data mode (``synthetic`` -> ``none``, ``private`` -> ``opensafely``)."""
    _check_mode(data_mode)
    return _load(str(Path(path or PROFILES_FILE).resolve()))[1][data_mode]


def get_profile(name: str, path: str | Path | None = None) -> Profile:
    """Return the profile called ``name``; unknown names raise :class:`DisclosureError`.

    Examples
    --------
    >>> get_profile("sistan_min3").redact_counts_le
    2
    """
    profiles = load_profiles(path)
    if name not in profiles:
        raise DisclosureError(f"unknown disclosure profile {name!r}; choose from {sorted(profiles)} or 'auto'")
    return profiles[name]


def _check_mode(data_mode: str) -> None:
    if data_mode not in DATA_MODES:
        raise DisclosureError(f"unknown data mode {data_mode!r}; expected one of {list(DATA_MODES)}")


def resolve_profile(requested: str | None, data_mode: str, allow_weaker_profile: bool = False,
                    path: str | Path | None = None) -> Profile:
    """Choose the disclosure profile of a run.

    Parameters
    ----------
    requested : a profile name, or ``"auto"`` (also ``None``/``""``) for the data mode's default.
    data_mode : ``"synthetic"`` or ``"private"``.
    allow_weaker_profile : on private data, a profile weaker than the default
        (``opensafely``) is refused unless this is True; the choice is then recorded in
        the returned profile (``weaker_than_default=True``) for the run's colophon.
    path : profiles file (default: the packaged one).

    Returns
    -------
    Profile
        With ``data_mode``, ``requested`` and ``weaker_than_default`` filled in.

    Raises
    ------
    DisclosureError
        Unknown profile or data mode, or a weaker profile on private data without the flag.

    Examples
    --------
    >>> resolve_profile("auto", "synthetic").name
    'none'
    >>> resolve_profile("auto", "private").name
    'opensafely'
    >>> resolve_profile("none", "private")
    Traceback (most recent call last):
    ...
    imr_analysis.disclosure.DisclosureError: disclosure profile 'none' is weaker than 'opensafely', the default for private data; pass allow_weaker_profile=True to use it (the choice is recorded in the run's colophon)
    """
    _check_mode(data_mode)
    default = get_profile(default_profile_name(data_mode, path), path)
    if requested in (None, "", "auto"):
        return dataclasses.replace(default, data_mode=data_mode, requested="auto")
    profile = get_profile(str(requested), path)
    weaker = data_mode == "private" and profile.strength < default.strength
    if weaker and not allow_weaker_profile:
        raise DisclosureError(
            f"disclosure profile {profile.name!r} is weaker than {default.name!r}, the default for private "
            "data; pass allow_weaker_profile=True to use it (the choice is recorded in the run's colophon)")
    return dataclasses.replace(profile, data_mode=data_mode, requested=str(requested),
                               weaker_than_default=weaker)


def _as_profile(profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, str):
        return get_profile(profile)
    raise TypeError(f"profile must be a Profile or a profile name, not {type(profile).__name__}")


# --------------------------------------------------------------------------------------
# Rounding
# --------------------------------------------------------------------------------------
def round_counts(values, base: int = 5, method: str = "nearest"):
    """Round non-negative counts as the disclosure profiles do.

    ``nearest``: to the nearest multiple of ``base`` (halves, which only occur for even
    bases or non-integer input, go up). ``midpoint``: OpenSAFELY's midpoint rounding
    ``ceil(x / base) * base - floor(base / 2) * (x != 0)``, so with ``base=6``: 0 -> 0,
    1-6 -> 3, 7-12 -> 9, 13-18 -> 15. Missing values stay missing.

    Parameters
    ----------
    values : array-like of counts.
    base : rounding base (positive integer).
    method : ``"nearest"`` or ``"midpoint"``.

    Returns
    -------
    numpy.ndarray of float

    Examples
    --------
    >>> round_counts([0, 8, 12, 13, 23], 5).tolist()
    [0.0, 10.0, 10.0, 15.0, 25.0]
    >>> round_counts([0, 1, 6, 7, 12, 13], 6, "midpoint").tolist()
    [0.0, 3.0, 3.0, 9.0, 9.0, 15.0]
    """
    import numpy as np

    x = np.asarray(values, dtype=float)
    if method == "nearest":
        return np.floor(x / base + 0.5) * base
    if method == "midpoint":
        return np.ceil(x / base) * base - np.floor(base / 2) * (x != 0)
    raise DisclosureError(f"unknown rounding method {method!r}; choose from {list(ROUNDING_METHODS)}")


# --------------------------------------------------------------------------------------
# Table layout
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Layout:
    keys: list
    level_col: str | None
    group_col: str | None
    parent_col: str | None
    tier_col: str | None
    den_col: str | None
    derived_den: bool


def _layout(df, level_col, group_col, parent_col, tier_col) -> _Layout:
    cols = list(df.columns)
    keys = [c for c in cols if c not in STAT_COLUMNS and c not in COMPANION_COLUMNS and not str(c).startswith("_")]
    table2 = "unit" in cols
    if group_col == "auto":
        group_col = "unit" if table2 else ("group" if "group" in cols else
                                           ("service_type" if "service_type" in cols else None))
        if group_col is None:  # a simple table: the one key column holding a "Total" row
            holding = [k for k in keys if k != "kind"
                       and df[k].astype(str).str.match(TOTAL_LABEL_PATTERN).fillna(False).any()]
            group_col = holding[0] if len(holding) == 1 else None
    if parent_col == "auto":
        parent_col = "service_type" if (group_col == "unit" and "service_type" in cols) else None
    if tier_col == "auto":
        tier_col = None
        if table2 and "level" in cols:
            values = set(df["level"].dropna().astype(str).str.lower())
            if values and values <= set(TIER_ROLES):
                tier_col = "level"
    if level_col == "auto":
        level_col = "level" if ("level" in cols and tier_col != "level") else None
    for name, col in (("level_col", level_col), ("group_col", group_col),
                      ("parent_col", parent_col), ("tier_col", tier_col)):
        if col is not None and col not in keys:
            raise DisclosureError(f"{name}={col!r} is not a key column of the table (keys: {keys})")
    if "denominator" in cols:
        den_col, derived = "denominator", False
    elif PERCENT_COLUMN in cols and "n" in cols:
        den_col, derived = "_denominator", True
    else:
        den_col, derived = None, False
    return _Layout(keys, level_col, group_col, parent_col, tier_col, den_col, derived)


def _key_strings(df, keys):
    import pandas as pd

    out = {}
    for k in keys:
        s = df[k]
        out[k] = s.astype(object).where(s.notna(), "<NA>").map(str)
    return pd.DataFrame(out, index=df.index)


def _join(K, cols, index):
    import pandas as pd

    if not cols:
        return pd.Series("", index=index, dtype=object)
    out = K[cols[0]].astype(object)
    for c in cols[1:]:
        out = out + "\x1f" + K[c]
    return out


def _row_roles(df, layout: _Layout):
    """member / subtotal / total / None for each row along the cross-group dimension."""
    import numpy as np
    import pandas as pd

    n = len(df)
    if layout.group_col is None:
        return pd.Series([None] * n, index=df.index, dtype=object)
    if layout.tier_col is not None:
        tier = df[layout.tier_col].astype(object).map(lambda v: str(v).lower() if pd.notna(v) else None)
        return tier.map(TIER_ROLES).astype(object).where(tier.notna(), None)
    g = df[layout.group_col]
    g_total = g.astype(str).str.match(TOTAL_LABEL_PATTERN).to_numpy() & g.notna().to_numpy()
    if layout.parent_col is None:
        return pd.Series(np.where(g_total, "total", "member"), index=df.index, dtype=object)
    p = df[layout.parent_col]
    p_total = (p.astype(str).str.match(TOTAL_LABEL_PATTERN).to_numpy() & p.notna().to_numpy()) | p.isna().to_numpy()
    agg = g_total | g.isna().to_numpy()
    role = np.where(agg & p_total, "total", np.where(agg, "subtotal", "member"))
    return pd.Series(role, index=df.index, dtype=object)


# --------------------------------------------------------------------------------------
# The disclosure-control pass
# --------------------------------------------------------------------------------------
def apply_to_long(long_df, profile, table_name: str, *, level_col="auto", group_col="auto",
                  parent_col="auto", tier_col="auto"):
    """Apply a disclosure profile to a tidy long table.

    Parameters
    ----------
    long_df : DataFrame
        Key columns (``variable, level, group, kind`` for Table 1; ``unit, service_type,
        level, measure`` for Table 2; any keys for a simple count table) and statistic
        columns among ``n, denominator, percent, n_missing, mean, sd, median, q1, q3,
        min, max``. Total rows carry a group (or unit) label starting with "Total",
        "Overall" or "All". In Table 2, ``level`` is the tier (``unit``/``type``/
        ``total``). A table with ``n`` and ``percent`` but no ``denominator`` has its
        denominators derived from them (a reader can do the same).
    profile : Profile or profile name.
    table_name : name of the output, written in the report.
    level_col, group_col, parent_col, tier_col : override the detected layout
        (``"auto"``): the category-level column (Table 1 ``level``), the column whose
        values sum to a Total row (``group``, or ``unit``), the parent of ``group_col``
        (Table 2 ``service_type``) and Table 2's tier column. ``None`` disables one.

    Returns
    -------
    safe_df : DataFrame
        Same rows and columns, redacted statistics missing, counts rounded and totals/
        percentages recomputed as the profile says, plus ``redacted`` (bool),
        ``redacted_columns`` (``;``-joined) and ``disclosure_note``. Counts are
        ``Int64`` when integral.
    report_df : DataFrame
        One row per action: ``output, row_key, column, kind, action, rule`` (the kind of
        statistic, never its value).

    Notes
    -----
    For a Table-1 layout ``safe_df.attrs["group_sizes"]`` maps each group to its
    publishable size (the column header: rounded, or ``None`` when it must be shown as
    ``[REDACTED]``). DISCLOSURE.md describes the rules and their sources.

    Raises
    ------
    DisclosureError
        The table already carries companion columns, or a statistic is not numeric or negative.

    Examples
    --------
    >>> import pandas as pd
    >>> long = pd.DataFrame({
    ...     "variable": "sex", "level": ["M", "F"] * 4,
    ...     "group": ["CMHC", "CMHC", "SerD", "SerD", "EDP", "EDP", "Total", "Total"],
    ...     "n": [40, 29, 30, 22, 2, 3, 72, 54], "denominator": [69, 69, 52, 52, 5, 5, 126, 126]})
    >>> safe, report = apply_to_long(long, "opensafely", "demo")
    >>> safe["n"].tolist()  # EDP redacted; rounding keeps Total - CMHC - SerD from revealing it
    [40, 30, 30, 20, <NA>, <NA>, 70, 55]
    >>> safe["denominator"].tolist()  # recomputed: 40 + 30 = 70, 30 + 20 = 50, 70 + 55 = 125
    [70, 70, 50, 50, <NA>, <NA>, 125, 125]
    >>> sorted(set(report["action"]))
    ['redacted', 'rounded']

    Without rounding (``sistan_min3``: counts 1-2 redacted) EDP's 2 men need secondary
    cells, chosen among the members rather than the group sizes or totals: EDP's 3
    women (else 5 - 3), SerD's men (else 72 - 40 - 30) and, in turn, SerD's women:

    >>> safe, report = apply_to_long(long, "sistan_min3", "demo")
    >>> safe["n"].tolist()
    [40, 29, <NA>, <NA>, <NA>, <NA>, 72, 54]
    >>> safe.attrs["group_sizes"]
    {'CMHC': 69, 'SerD': 52, 'EDP': 5, 'Total': 126}
    """
    import numpy as np
    import pandas as pd

    prof = _as_profile(profile)
    if not isinstance(long_df, pd.DataFrame):
        raise TypeError("long_df must be a pandas DataFrame")
    already = [c for c in COMPANION_COLUMNS if c in long_df.columns]
    if already:
        raise DisclosureError(f"{table_name}: the table already has {already}: it has been through "
                              "disclosure control once; pass the original long table")
    df = long_df.reset_index(drop=True).copy()
    stats_present = [c for c in STAT_COLUMNS if c in df.columns]
    for c in stats_present:
        try:
            df[c] = pd.to_numeric(df[c]).astype(float)
        except (TypeError, ValueError) as exc:
            raise DisclosureError(f"{table_name}: column {c!r} must be numeric ({exc})") from None
    for c in [c for c in COUNT_COLUMNS if c in df.columns]:
        if (df[c] < 0).any():
            raise DisclosureError(f"{table_name}: column {c!r} has negative counts")

    layout = _layout(df, level_col, group_col, parent_col, tier_col)
    wide = [k for k in layout.keys if _STATLIKE.search(str(k)) and pd.api.types.is_numeric_dtype(df[k])]
    if wide:
        raise DisclosureError(
            f"{table_name}: columns {wide} look like statistics but are not among the known statistic "
            f"columns {list(STAT_COLUMNS)}; pass a tidy long table (one row per cell, statistics in those "
            "columns) so that they can be protected")
    if layout.derived_den:
        pct = df[PERCENT_COLUMN]
        with np.errstate(divide="ignore", invalid="ignore"):
            derived = np.where(pct > 0, np.rint(df["n"] * 100.0 / pct), np.nan)
        df["_denominator"] = derived

    state = _State(df, layout, prof, table_name)
    if not len(df):
        return state.finish()
    state.build_cells()
    state.build_sets()
    state.primary()
    if prof.secondary_suppression and prof.redact_counts_le > 0:
        state.secondary()
    state.summaries()
    state.round_and_recompute()
    state.percentages()
    state.flags()
    state.extremes()
    return state.finish()


class _State:
    """Working state of one :func:`apply_to_long` call (cells, relations, actions)."""

    def __init__(self, df, layout: _Layout, prof: Profile, table_name: str):
        self.df = df
        self.layout = layout
        self.prof = prof
        self.table = table_name
        self.k = prof.redact_counts_le
        self.count_cols = [c for c in ("n", "n_missing", "denominator", "_denominator") if c in df.columns]
        self.actions = []  # frames of row, column, action, rule
        self.dc = self.cells = self.final = None

    # -- cells --------------------------------------------------------------------------
    def build_cells(self):
        import numpy as np
        import pandas as pd

        df, lay = self.df, self.layout
        K = _key_strings(df, lay.keys)
        within_keys = [k for k in lay.keys if k != lay.level_col]
        dims = {lay.group_col, lay.parent_col, lay.tier_col} - {None}
        cross_n = [k for k in lay.keys if k not in dims]
        cross_shared = [k for k in within_keys if k not in dims]
        self.wkey = _join(K, within_keys, df.index)
        self.wid = pd.Series(pd.factorize(self.wkey)[0], index=df.index)
        roles = _row_roles(df, lay)
        parent = K[lay.parent_col] if lay.parent_col else pd.Series("", index=df.index, dtype=object)
        gcols = [c for c in (lay.group_col, lay.parent_col) if c is not None]
        gkey = _join(K, gcols, df.index)

        # Table-1 layout: the group size (column header "CMHC (n=69)") is one quantity,
        # shown as the denominator of every variable without missing values.
        size_rows = pd.Series(False, index=df.index)
        self.group_size = None
        if lay.level_col is not None and lay.group_col is not None and lay.den_col is not None:
            D = df[lay.den_col]
            M = df["n_missing"] if "n_missing" in df.columns else pd.Series(np.nan, index=df.index)
            exact = D.notna() & M.fillna(0).eq(0)
            cand = pd.concat([D[exact], (D + M.fillna(0))[D.notna() & ~exact]])
            pref = pd.Series(np.r_[np.ones(exact.sum()), np.zeros(len(cand) - exact.sum())], index=cand.index)
            tab = pd.DataFrame({"g": gkey[cand.index], "size": cand.to_numpy(), "pref": pref.to_numpy()})
            if len(tab):
                cnt = tab.groupby(["g", "size"]).agg(pref=("pref", "max"), n=("pref", "size")).reset_index()
                cnt = cnt.sort_values(["g", "pref", "n", "size"], ascending=[True, False, False, False])
                self.group_size = cnt.groupby("g").head(1).set_index("g")["size"]
                size_rows = D.notna() & D.eq(gkey.map(self.group_size))
        self.size_rows = size_rows

        # Tables without category levels (Table 2, simple count tables) show the same
        # quantity in several places (a unit's patients: n of "patients", "sessions", ...
        # and denominator of its module rows). Equal non-zero counts of the same row group
        # are treated as one cell: if one is redacted, all are (conservative).
        link = lay.level_col is None and lay.group_col is not None
        lgkey = _join(K, [c for c in (lay.group_col, lay.parent_col, lay.tier_col) if c is not None], df.index)
        frames = []
        for col in self.count_cols:
            v = df[col]
            rows = np.flatnonzero(v.notna().to_numpy())
            if col == "n":
                lkey = col + "\x1d" + pd.Series(rows.astype(str), dtype=object)
                ckey = col + "\x1d" + _join(K, cross_n, df.index).iloc[rows].reset_index(drop=True)
            else:
                lkey = col + "\x1d" + (self.wkey.iloc[rows] + "\x1e" + v.iloc[rows].map(repr)).reset_index(drop=True)
                ckey = col + "\x1d" + _join(K, cross_shared, df.index).iloc[rows].reset_index(drop=True)
                if col == lay.den_col:
                    is_size = size_rows.to_numpy()[rows]
                    lkey = lkey.where(~is_size, "group_size\x1d" + gkey.iloc[rows].reset_index(drop=True))
            if link:
                val = v.to_numpy(dtype=float)[rows]
                linked = pd.Series("link\x1d" + lgkey.iloc[rows].to_numpy() + "\x1e"
                                   + pd.Series(val).map(repr).to_numpy(), dtype=object)
                lkey = pd.Series(np.where(val > _EPS, linked, lkey.to_numpy()), dtype=object)
            frames.append(pd.DataFrame({
                "row": rows, "col": col, "value": v.to_numpy()[rows], "lkey": lkey.to_numpy(),
                "role": roles.to_numpy()[rows], "ckey": ckey.to_numpy(),
                "parent": parent.to_numpy()[rows], "wid": self.wid.to_numpy()[rows],
                "gkey": gkey.to_numpy()[rows]}))
        dc = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["row", "col", "value", "lkey", "role", "ckey", "parent", "wid", "gkey"])
        # group sizes shown nowhere in the table (every variable has missing values) still
        # take part in the relations: they are the column headers
        extra = None
        if self.group_size is not None:
            shown = set(dc.loc[dc["lkey"].str.startswith("group_size\x1d"), "gkey"])
            first = pd.Series(np.arange(len(df)), index=df.index).groupby(gkey).first()
            hidden_sizes = [g for g in self.group_size.index if g not in shown]
            if hidden_sizes:
                r = first[hidden_sizes].to_numpy()
                extra = pd.DataFrame({
                    "row": -1, "col": "group_size", "value": self.group_size[hidden_sizes].to_numpy(),
                    "lkey": ["group_size\x1d" + g for g in hidden_sizes], "role": roles.to_numpy()[r],
                    "ckey": "group_size", "parent": parent.to_numpy()[r], "wid": -1, "gkey": hidden_sizes})
        allc = pd.concat([dc, extra], ignore_index=True) if extra is not None else dc
        ids = pd.factorize(allc["lkey"])[0] if len(allc) else np.array([], dtype=int)
        allc["cell"] = ids
        self.dc = allc[allc["row"] >= 0].reset_index(drop=True)  # displayed cells: one per (row, column)
        cells = allc.drop_duplicates("cell").set_index("cell").sort_index()
        cells = cells[["col", "value", "role", "ckey", "parent", "wid", "row", "gkey"]].copy()
        cells["is_size"] = pd.Series(allc.drop_duplicates("cell").set_index("cell").sort_index()["lkey"]
                                     .str.startswith("group_size\x1d").to_numpy(), index=cells.index)
        # relation coordinates: a cell can be in several across-group relations (the group
        # size is also each variable's denominator)
        coords = allc[["cell", "value", "role", "ckey", "parent"]]
        size_coords = cells[cells["is_size"]].reset_index()[["cell", "value", "role", "parent"]].assign(ckey="group_size")
        self.coords = pd.concat([coords, size_coords], ignore_index=True).drop_duplicates(["cell", "ckey"])
        cells["hidden"] = False
        cells["action"] = ""
        cells["rule"] = ""
        self.cells = cells
        self.size_cell = (cells[cells["is_size"]].reset_index().set_index("gkey")["cell"]
                          if self.group_size is not None else None)

    # -- relations ----------------------------------------------------------------------
    def build_sets(self):
        import numpy as np
        import pandas as pd

        cells, lay = self.cells, self.layout
        members, sets = [], []

        ncells = cells[cells["col"] == "n"]
        den_col = lay.den_col
        if den_col is not None and len(ncells):
            # per row: its denominator cell and missing cell
            row_den = self.dc[self.dc["col"] == den_col].set_index("row")["cell"]
            row_mis = self.dc[self.dc["col"] == "n_missing"].set_index("row")["cell"]
            nc = ncells.reset_index()
            nc["den_cell"] = nc["row"].map(row_den)
            nc["mis_cell"] = nc["row"].map(row_mis)
            # values by cell, not by column: in Table 2 a unit's patients are one cell,
            # shown as the n of its patient row and as the denominator of its module rows
            nc["D"] = nc["den_cell"].map(cells["value"])
            nc["M"] = nc["mis_cell"].map(cells["value"])
            g = nc.groupby("wid", sort=True)
            w = pd.DataFrame({
                "S": g["value"].sum(), "D": g["D"].first(), "D_n": g["D"].nunique(),
                "D_cell": g["den_cell"].first(), "M": g["M"].first(), "M_cell": g["mis_cell"].first()})
            has_d = w["D"].notna()
            has_m = w["M"].notna()
            rem_incl = w["D"] - w["S"] - w["M"].fillna(0)
            rem_excl = w["D"] - w["S"]
            single_d = w["D_n"] <= 1
            mode = np.select(
                [~has_d, ~single_d, has_m & (rem_incl >= -_EPS), rem_excl >= -_EPS],
                ["none", "rowwise", "incl", "excl"], default="rowwise")
            w["mode"] = mode
            # partitions ("incl": levels + missing = D; "excl": levels = D)
            part = w[np.isin(mode, ["incl", "excl"])]
            if len(part):
                pn = nc[nc["wid"].isin(part.index)]
                ids = "W" + pn["wid"].astype(str)
                mem = [pd.DataFrame({"set": ids.to_numpy(), "cell": pn["cell"].to_numpy()})]
                incl = part[(part["mode"] == "incl") & part["M_cell"].notna()]
                mem.append(pd.DataFrame({"set": ("W" + incl.index.astype(str)).to_numpy(),
                                         "cell": incl["M_cell"].astype(int).to_numpy()}))
                members.extend(mem)
                rem = np.where(part["mode"] == "incl", rem_incl[part.index], rem_excl[part.index])
                sets.append(pd.DataFrame({
                    "set": ("W" + part.index.astype(str)).to_numpy(), "total_cell": part["D_cell"].astype(int).to_numpy(),
                    "total_value": part["D"].to_numpy(), "virtual": False, "remainder": rem,
                    "kind": "within", "partition": True, "priority": 0}))
                # denominator + missing = the group size (the column header)
                ex = part[(part["mode"] == "excl") & part["M_cell"].notna()]
                if len(ex):
                    members.append(pd.DataFrame({"set": ("V" + ex.index.astype(str)).to_numpy(),
                                                 "cell": ex["D_cell"].astype(int).to_numpy()}))
                    members.append(pd.DataFrame({"set": ("V" + ex.index.astype(str)).to_numpy(),
                                                 "cell": ex["M_cell"].astype(int).to_numpy()}))
                    tc, tv, virt = self._size_totals(nc, ex.index, (ex["D"] + ex["M"]).to_numpy())
                    sets.append(pd.DataFrame({
                        "set": ("V" + ex.index.astype(str)).to_numpy(), "total_cell": tc,
                        "total_value": tv, "virtual": virt, "remainder": 0.0, "kind": "within",
                        "partition": False, "priority": 2}))
                    # ... and levels + missing = group size
                    en = nc[nc["wid"].isin(ex.index)]
                    members.append(pd.DataFrame({"set": ("L" + en["wid"].astype(str)).to_numpy(),
                                                 "cell": en["cell"].to_numpy()}))
                    members.append(pd.DataFrame({"set": ("L" + ex.index.astype(str)).to_numpy(),
                                                 "cell": ex["M_cell"].astype(int).to_numpy()}))
                    sets.append(pd.DataFrame({
                        "set": ("L" + ex.index.astype(str)).to_numpy(), "total_cell": tc,
                        "total_value": tv, "virtual": virt, "remainder": rem_excl[ex.index].to_numpy(),
                        "kind": "within", "partition": False, "priority": 2}))
            # yes/no and multi-response rows: n + its unpublished complement = D
            rw = nc[nc["wid"].map(w["mode"]).eq("rowwise") & nc["D"].notna() & (nc["D"] >= nc["value"] - _EPS)]
            if len(rw):
                ids = ("R" + rw["cell"].astype(str)).to_numpy()
                members.append(pd.DataFrame({"set": ids, "cell": rw["cell"].to_numpy()}))
                sets.append(pd.DataFrame({
                    "set": ids, "total_cell": rw["den_cell"].astype(int).to_numpy(), "total_value": rw["D"].to_numpy(),
                    "virtual": False, "remainder": (rw["D"] - rw["value"]).to_numpy(), "kind": "within",
                    "partition": False, "priority": 1}))
                rm = rw[rw["M"].notna() & (rw["M"] > 0)].drop_duplicates(["den_cell", "mis_cell"])
                if len(rm):
                    vid = ("U" + rm["cell"].astype(str)).to_numpy()
                    members.append(pd.DataFrame({"set": vid, "cell": rm["den_cell"].astype(int).to_numpy()}))
                    members.append(pd.DataFrame({"set": vid, "cell": rm["mis_cell"].astype(int).to_numpy()}))
                    tc, tv, virt = self._size_totals(rm, None, (rm["D"] + rm["M"]).to_numpy())
                    sets.append(pd.DataFrame({
                        "set": vid, "total_cell": tc, "total_value": tv,
                        "virtual": virt, "remainder": 0.0, "kind": "within",
                        "partition": False, "priority": 2}))
            self.within = w
        else:
            self.within = None

        # across groups: members sum to the Total (Table 2: units -> subtotal -> total)
        if lay.group_col is not None and len(cells):
            c = self.coords
            c = c[c["role"].notna()]
            hier = lay.parent_col is not None or lay.tier_col is not None
            specs = []
            if hier:
                c1 = c.assign(skey=c["ckey"] + "\x1c" + c["parent"].astype(str))
                specs.append((c1, c1["role"] == "member", c1["role"] == "subtotal", "X1"))
                has_sub = c.groupby("ckey")["role"].transform(lambda r: (r == "subtotal").any())
                c2 = c.assign(skey=c["ckey"])
                specs.append((c2, np.where(has_sub, c2["role"] == "subtotal", c2["role"] == "member"),
                              c2["role"] == "total", "X2"))
            else:
                c0 = c.assign(skey=c["ckey"])
                specs.append((c0, c0["role"] == "member", c0["role"] == "total", "X0"))
            for frame, mmask, tmask, prefix in specs:
                tot = frame[np.asarray(tmask)].groupby("skey", sort=False).head(1).set_index("skey")
                mem = frame[np.asarray(mmask) & frame["skey"].isin(tot.index).to_numpy()]
                if not len(mem):
                    continue
                sums = mem.groupby("skey")["value"].sum()
                tt = tot.loc[sums.index]
                rem = tt["value"] - sums
                ok = rem >= -_EPS
                sid = pd.Series(prefix + ":" + pd.Series(pd.factorize(sums.index)[0]).astype(str).to_numpy(),
                                index=sums.index)
                members.append(pd.DataFrame({"set": mem["skey"].map(sid).to_numpy(), "cell": mem["cell"].to_numpy()})
                               [mem["skey"].map(ok).to_numpy()])
                sets.append(pd.DataFrame({
                    "set": sid[ok].to_numpy(), "total_cell": tt["cell"][ok].astype(int).to_numpy(),
                    "total_value": tt["value"][ok].to_numpy(), "virtual": False,
                    "remainder": rem[ok].to_numpy(), "kind": "cross", "partition": False, "priority": 3}))

        cols = ["set", "total_cell", "total_value", "virtual", "remainder", "kind", "partition", "priority"]
        self.sets = (pd.concat(sets, ignore_index=True) if sets else pd.DataFrame(columns=cols)).set_index("set")
        self.members = (pd.concat(members, ignore_index=True) if members
                        else pd.DataFrame({"set": pd.Series(dtype=object), "cell": pd.Series(dtype=int)}))
        self.members = self.members[self.members["set"].isin(self.sets.index)].reset_index(drop=True)
        self.members["value"] = self.members["cell"].map(self.cells["value"]).to_numpy()

    def _size_totals(self, frame, wids, sizes):
        """Total cells of "levels + missing = group size" relations: the group's size
        cell when the sizes agree, else a virtual total (published when > k)."""
        import numpy as np

        if wids is not None:  # one value per within-set: take the gkey of its first row
            g = frame.groupby("wid")["gkey"].first().reindex(wids).to_numpy()
        else:
            g = frame["gkey"].to_numpy()
        tc = np.full(len(sizes), -1, dtype=np.int64)
        tv = np.asarray(sizes, dtype=float)
        virt = np.ones(len(sizes), dtype=bool)
        if self.size_cell is not None:
            cell = self.size_cell.reindex(g).to_numpy()
            val = self.group_size.reindex(g).to_numpy(dtype=float)
            ok = ~np.isnan(cell.astype(float)) & (np.abs(val - tv) <= _EPS)
            tc[ok] = cell[ok].astype(np.int64)
            virt[ok] = False
        return tc, tv, virt

    # -- primary suppression ------------------------------------------------------------
    def primary(self):
        k, cells = self.k, self.cells
        if k <= 0 or not len(cells):
            return
        hide = (cells["value"] > _EPS) & (cells["value"] <= k + _EPS)
        cells.loc[hide, "hidden"] = True
        cells.loc[hide, "action"] = "redacted"
        cells.loc[hide, "rule"] = f"{self.prof.name}: count <= {k}"

    # -- secondary suppression ----------------------------------------------------------
    def secondary(self):
        """Hide more cells until no redacted cell can be derived from the published ones.

        Every relation reads "members + unpublished remainder = total". A reader knows
        the published cells (and the column headers: group sizes above k). Two leaks are
        closed, one cell per step, until neither remains:

        1. *exact derivation*: repeatedly, a relation with a single unknown (a hidden
           member, or a hidden total whose members are all known) reveals it; when no
           such relation is left, the whole linear system is checked (a redacted cell is
           derivable iff it vanishes on the null space of the relations);
        2. *small hidden mass*: a relation whose total is known and whose unknown part
           (hidden members plus remainder) holds 1..k patients -- e.g. "66 of 69 take
           antipsychotics" discloses 3 patients.

        The first unsafe relation (earliest revelation first; within-variable relations
        before across-group ones; then table order) is mended by hiding the cell that
        loses least: its smallest published non-zero *member* that is not itself a total
        (a level's count, a missing count, a service's cell -- never a group size, a
        denominator, a Total-group or subtotal cell while such a member will do).
        Failing that, among its members that are totals and its own total, the cell
        shown in the fewest places (Table 2 shows a unit's patients as the denominator
        of every module row). Ties go to the cell leaving the fewest unsafe relations,
        then the smallest, then the first in table order. Deterministic.

        Only profiles without rounding use this step (:class:`Profile` refuses rounding
        combined with secondary suppression), so the values it reasons on are the
        published ones.
        """
        import numpy as np
        import pandas as pd

        cells, sets, mem, k = self.cells, self.sets, self.members, self.k
        if not len(sets):
            return
        S, C = len(sets), len(cells)
        order = np.argsort(sets["priority"].to_numpy(dtype=int), kind="stable")
        rank = np.empty(S, dtype=np.int64)
        rank[order] = np.arange(S)
        codes = pd.Series(np.arange(S), index=sets.index)
        pos = pd.Series(np.arange(C), index=cells.index)
        m_set = codes.reindex(mem["set"]).to_numpy(dtype=np.int64)
        m_pos = pos.reindex(mem["cell"]).to_numpy(dtype=np.int64)
        m_val = mem["value"].to_numpy(dtype=float)
        t_cell = sets["total_cell"].to_numpy(dtype=np.int64)
        virtual = sets["virtual"].to_numpy(dtype=bool) | (t_cell < 0)
        t_pos = np.where(virtual, 0, pos.reindex(np.where(virtual, cells.index[0], t_cell)).to_numpy(dtype=np.int64))
        t_val = sets["total_value"].to_numpy(dtype=float)
        rem = sets["remainder"].to_numpy(dtype=float)
        has_rem = rem > _EPS
        header_unknown = virtual & (t_val <= k + _EPS)  # a group size of <= k is not published
        members_of = {int(g): idx.to_numpy() for g, idx in pd.Series(np.arange(len(m_set))).groupby(m_set)}
        empty = np.array([], dtype=np.int64)
        hidden = cells["hidden"].to_numpy(dtype=bool).copy()
        cell_val = cells["value"].to_numpy(dtype=float)

        def derive(hid):
            """Cells a reader can derive: propagate relations with a single unknown."""
            unknown = hid.copy()
            exposer = np.full(C, -1, dtype=np.int64)
            sweep = np.zeros(C, dtype=np.int64)
            n_sweep = 0
            while True:
                n_sweep += 1
                n_u = np.bincount(m_set, weights=unknown[m_pos].astype(float), minlength=S).astype(np.int64)
                tot_u = ~virtual & unknown[t_pos]
                single = (n_u + tot_u == 1) & ~has_rem & ~header_unknown
                if not single.any():
                    return unknown, exposer, sweep
                sets_t = np.flatnonzero(single & tot_u)
                hit_m = single[m_set] & unknown[m_pos]
                cand_cells = np.concatenate([t_pos[sets_t], m_pos[hit_m]])
                cand_sets = np.concatenate([sets_t, m_set[hit_m]])
                first = np.lexsort((cand_sets, rank[cand_sets]))
                for c, sidx in zip(cand_cells[first], cand_sets[first]):
                    if exposer[c] < 0:
                        exposer[c] = sidx
                        sweep[c] = n_sweep
                unknown[cand_cells] = False

        def unsafe(hid):
            """Relations to fix, in order: (relation, revelation sweep)."""
            unknown, exposer, sweep = derive(hid)
            leaked = np.flatnonzero(hid & ~unknown)
            known_total = np.where(virtual, ~header_unknown, ~unknown[t_pos])
            mass = np.bincount(m_set, weights=np.where(unknown[m_pos], m_val, 0.0), minlength=S) \
                + np.where(has_rem, rem, 0.0)
            small = np.flatnonzero(known_total & (mass > _EPS) & (mass <= k + _EPS))
            # revelations first (a small hidden mass is often only the consequence of a
            # derivable member, and is mended with it), then small hidden masses
            todo = np.concatenate([exposer[leaked], small])
            when = np.concatenate([sweep[leaked], np.zeros(len(small), dtype=np.int64)])
            is_small = np.r_[np.zeros(len(leaked), dtype=np.int64), np.ones(len(small), dtype=np.int64)]
            return todo[np.lexsort((rank[todo], when, is_small))]

        # cells that are totals of something: group sizes, denominators, cells of the
        # Total group or of a subtotal, and the total of any relation
        total_like = cells["is_size"].to_numpy(dtype=bool) \
            | cells["col"].isin(["denominator", "_denominator", "group_size"]).to_numpy() \
            | cells["role"].isin(["total", "subtotal"]).to_numpy()
        shown_as_den = self.dc.loc[self.dc["col"].isin(["denominator", "_denominator"]), "cell"].unique()
        total_like[pos.reindex(shown_as_den).to_numpy(dtype=np.int64)] = True
        total_like[t_pos[~virtual]] = True

        free_col = has_rem | header_unknown  # relations with an unknown of their own

        def exact_leaks(hid):
            """Hidden cells determined by the whole system of relations, each with the
            relations that determine it (linear algebra: a cell is determined iff its
            coordinate vanishes on the null space of the relations restricted to the
            unknowns; the relations used are those of a certificate y with y'A = e_cell).
            Peeling single-unknown relations can miss such chains."""
            from scipy.linalg import null_space

            unk = np.flatnonzero(hid)
            if not len(unk):
                return []
            col = np.full(C, -1, dtype=np.int64)
            col[unk] = np.arange(len(unk))
            extra = np.flatnonzero(free_col)
            A = np.zeros((S, len(unk) + len(extra)))
            mh = hid[m_pos]
            np.add.at(A, (m_set[mh], col[m_pos[mh]]), 1.0)
            th = ~virtual & hid[t_pos]
            np.add.at(A, (np.flatnonzero(th), col[t_pos[th]]), -1.0)
            A[extra, len(unk) + np.arange(len(extra))] = 1.0
            rows = np.flatnonzero(np.abs(A).sum(axis=1) > 0)
            A = A[rows]
            if not len(rows):
                return []
            N = null_space(A)
            out = []
            for c in unk[np.all(np.abs(N[: len(unk)]) < 1e-8, axis=1)]:
                e = np.zeros(A.shape[1])
                e[col[c]] = 1.0
                y = np.linalg.lstsq(A.T, e, rcond=None)[0]
                chain = rows[np.abs(y) > 1e-8]
                out.append((int(c), chain[np.argsort(rank[chain], kind="stable")]))
            return out

        # published positions a cell occupies: Table 2 shows a unit's patients in up to
        # twenty places (n of its patient rows, denominator of its module rows); a group
        # size is also the column header
        shown = np.bincount(pos.reindex(self.dc["cell"]).to_numpy(dtype=np.int64), minlength=C) \
            + cells["is_size"].to_numpy(dtype=np.int64)

        def choose(relations):
            """The cell to hide to mend the first relation that can be mended: its
            smallest published non-zero member that is not a total; failing that, among
            its members that are totals and its own total, the one shown in the fewest
            places. Ties: the fewest unsafe relations left, the smallest value, table
            order."""
            for sidx in relations:
                idx = members_of.get(int(sidx), empty)
                cand = np.unique(m_pos[idx[~hidden[m_pos[idx]] & (m_val[idx] > _EPS)]])
                plain = cand[~total_like[cand]]
                if len(plain):
                    best = plain[cell_val[plain] <= cell_val[plain].min() + _EPS]
                else:
                    own = [] if virtual[sidx] or hidden[t_pos[sidx]] else [t_pos[sidx]]
                    pool = np.unique(np.r_[cand, own].astype(np.int64))
                    if not len(pool):
                        continue
                    best = pool[shown[pool] == shown[pool].min()]
                if len(best) == 1:
                    return int(best[0])
                scores = []
                for c in best:
                    trial = hidden.copy()
                    trial[c] = True
                    scores.append((len(unsafe(trial)), cell_val[c], int(c)))
                return min(scores)[2]
            return None

        new_hidden = []
        for _ in range(C + 1):
            todo = unsafe(hidden)
            pick = choose(todo) if len(todo) else None
            if pick is None:  # nothing (more) to mend by peeling: check the whole system
                for c, chain in exact_leaks(hidden):
                    pick = choose(chain)
                    if pick is not None:
                        break
            if pick is None:
                break
            hidden[pick] = True
            new_hidden.append(cells.index[pick])
        if new_hidden:
            cells.loc[new_hidden, "hidden"] = True
            cells.loc[new_hidden, "action"] = "redacted-secondary"
            cells.loc[new_hidden, "rule"] = f"{self.prof.name}: secondary suppression (else derivable from published cells)"

    # -- summaries of small groups ------------------------------------------------------
    def summaries(self):
        import numpy as np
        import pandas as pd

        df, ks = self.df, self.prof.redact_summaries_le
        cols = [c for c in SUMMARY_COLUMNS if c in df.columns]
        if ks <= 0 or not cols or "n" not in df.columns:
            return
        small = ((df["n"] > _EPS) & (df["n"] <= ks + _EPS)).to_numpy()
        rows, hits = [], []
        for c in cols:
            m = small & df[c].notna().to_numpy()
            rows.append(np.flatnonzero(m))
            hits.extend([c] * int(m.sum()))
            df.loc[m, c] = np.nan
        if hits:
            self.actions.append(pd.DataFrame({
                "row": np.concatenate(rows), "column": hits, "action": "redacted",
                "rule": f"{self.prof.name}: summary of <= {ks} patients"}))

    # -- rounding and recomputed totals -------------------------------------------------
    def round_and_recompute(self):
        import numpy as np
        import pandas as pd

        cells, prof = self.cells, self.prof
        final = cells["value"].astype(float).copy()
        final[cells["hidden"]] = np.nan
        self.recomputed = pd.Series(False, index=cells.index)
        if prof.rounding_method is not None and len(cells):
            pub = ~cells["hidden"]
            final[pub] = round_counts(cells.loc[pub, "value"], prof.rounding_base, prof.rounding_method)
            if prof.recompute_totals and len(self.sets):
                sets = self.sets
                rec = sets[~sets["virtual"].astype(bool) & (sets["remainder"].abs() <= _EPS)]
                mem = self.members[self.members["set"].isin(rec.index)]
                for _ in range(32):
                    hid = mem["cell"].map(cells["hidden"]).to_numpy(dtype=bool)
                    fv = mem["cell"].map(final).to_numpy(dtype=float)
                    agg = pd.DataFrame({"set": mem["set"], "s": np.where(hid, 0.0, fv), "h": hid}
                                       ).groupby("set").agg(s=("s", "sum"), h=("h", "any"))
                    r = rec.join(agg, how="inner")
                    r = r[~r["h"] & ~r["total_cell"].map(cells["hidden"]).astype(bool)]
                    if not len(r):
                        break
                    r = r.sort_values(["priority"], kind="stable").groupby("total_cell").head(1)
                    newv = pd.Series(r["s"].to_numpy(), index=r["total_cell"].astype(int).to_numpy())
                    changed = (final.reindex(newv.index) - newv).abs() > _EPS
                    self.recomputed[newv.index] = True
                    if not changed.any():
                        break
                    final[newv.index[changed.to_numpy()]] = newv[changed.to_numpy()]
        self.final = final

    # -- percentages --------------------------------------------------------------------
    def percentages(self):
        import numpy as np

        df, lay, prof = self.df, self.layout, self.prof
        if PERCENT_COLUMN not in df.columns or "n" not in df.columns:
            return
        dc = self.dc
        ncell = dc[dc["col"] == "n"].set_index("row")["cell"].reindex(range(len(df)))
        dcell = (dc[dc["col"] == lay.den_col].set_index("row")["cell"].reindex(range(len(df)))
                 if lay.den_col else ncell * np.nan)
        had = df[PERCENT_COLUMN].notna().to_numpy()
        n_h = ncell.map(self.cells["hidden"]).fillna(False).to_numpy(dtype=bool)
        d_h = dcell.map(self.cells["hidden"]).fillna(False).to_numpy(dtype=bool)
        hide = had & (n_h | d_h)
        # the percent takes the action of the count that hid it
        src = np.where(n_h, ncell.to_numpy(), dcell.to_numpy())
        rows = np.flatnonzero(hide)
        if len(rows):
            acts = self.cells.loc[src[rows].astype(int), ["action", "rule"]].to_numpy()
            self._add(rows, PERCENT_COLUMN, acts[:, 0], [r + " (percent of a redacted count)" for r in acts[:, 1]])
        pct = df[PERCENT_COLUMN].to_numpy(dtype=float).copy()
        pct[hide] = np.nan
        if prof.rounding_method is not None:
            nf = ncell.map(self.final).to_numpy(dtype=float)
            dfin = dcell.map(self.final).to_numpy(dtype=float)
            ok = had & ~hide & np.isfinite(nf) & np.isfinite(dfin) & (dfin > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                pct = np.where(ok, 100.0 * nf / dfin, np.where(had & ~hide & (dfin == 0), np.nan, pct))
            recomputed = np.flatnonzero(had & ~hide)
            if len(recomputed):
                self._add(recomputed, PERCENT_COLUMN, "rounded",
                          f"{prof.name}: percent recomputed from rounded counts")
        df[PERCENT_COLUMN] = pct

    # -- flags --------------------------------------------------------------------------
    def flags(self):
        import numpy as np

        df, lay, prof = self.df, self.layout, self.prof
        if not prof.flag_zero_hundred or "n" not in df.columns:
            return
        dc, cells = self.dc, self.cells
        ncell = dc[dc["col"] == "n"].set_index("row")["cell"].reindex(range(len(df)))
        n = ncell.map(cells["value"]).to_numpy(dtype=float)
        n_h = ncell.map(cells["hidden"]).fillna(True).to_numpy(dtype=bool)
        if lay.den_col:
            dcell = dc[dc["col"] == lay.den_col].set_index("row")["cell"].reindex(range(len(df)))
            d = dcell.map(cells["value"]).to_numpy(dtype=float)
            d_h = dcell.map(cells["hidden"]).fillna(True).to_numpy(dtype=bool)
            extreme = np.isfinite(n) & np.isfinite(d) & (d > 0) & ((n <= _EPS) | (np.abs(n - d) <= _EPS))
            has_pct = PERCENT_COLUMN in df.columns
            col_pct = has_pct & df[PERCENT_COLUMN].notna().to_numpy() if has_pct else np.zeros(len(df), bool)
            rows = np.flatnonzero(extreme & ~n_h & ~d_h)
            if len(rows):
                cols = np.where(col_pct[rows], PERCENT_COLUMN, "n")
                for c in np.unique(cols):
                    self._add(rows[cols == c], str(c), "flagged",
                              f"{prof.name}: 0% or 100% of the group (an attribute of everyone in it)")
        # a zero level that makes the only non-zero level the whole group
        sets = self.sets
        if len(sets):
            part = sets[sets["partition"].astype(bool) & (sets["remainder"].abs() <= _EPS)]
            mem = self.members[self.members["set"].isin(part.index)]
            mem = mem[mem["cell"].map(cells["col"]).eq("n").to_numpy()]
            nz = (mem["value"] > _EPS).groupby(mem["set"]).sum()
            one = nz[nz == 1].index
            zero = mem[mem["set"].isin(one) & (mem["value"] <= _EPS)]
            zero = zero[~zero["cell"].map(cells["hidden"]).astype(bool)]
            rows = np.unique(zero["cell"].map(cells["row"]).to_numpy(dtype=int))
            if len(rows):
                self._add(rows, "n", "flagged", f"{prof.name}: zero cell makes its complement the whole group")

    # -- minima and maxima --------------------------------------------------------------
    def extremes(self):
        import numpy as np

        df = self.df
        if not self.prof.remove_min_max:
            return
        for c in EXTREME_COLUMNS:
            if c in df.columns:
                rows = np.flatnonzero(df[c].notna().to_numpy())
                if len(rows):
                    self._add(rows, c, "removed", f"{self.prof.name}: minima/maxima describe single patients")
                df[c] = np.nan

    # -- helpers ------------------------------------------------------------------------
    def _add(self, rows, column, action, rule):
        import pandas as pd

        self.actions.append(pd.DataFrame({"row": rows, "column": column, "action": action, "rule": rule}))

    def finish(self):
        import numpy as np
        import pandas as pd

        df, dc, cells, prof = self.df, self.dc, self.cells, self.prof
        # counts: hidden -> missing, published -> rounded/recomputed values
        if dc is not None and len(dc):
            vals = dc["cell"].map(self.final).to_numpy(dtype=float)
            for col in self.count_cols:
                m = (dc["col"] == col).to_numpy()
                arr = np.full(len(df), np.nan)
                arr[dc["row"].to_numpy()[m]] = vals[m]
                df[col] = arr
            act = dc.join(cells[["action", "rule", "hidden"]], on="cell")
            red = act[act["hidden"]]
            self.actions.insert(0, pd.DataFrame({"row": red["row"], "column": red["col"],
                                                 "action": red["action"], "rule": red["rule"]}))
            if prof.rounding_method is not None:
                pub = act[~act["hidden"]]
                rec = pub["cell"].map(self.recomputed).fillna(False).to_numpy(dtype=bool)
                how = (f"nearest {prof.rounding_base}" if prof.rounding_method == "nearest"
                       else f"midpoint {prof.rounding_base}")
                rules = np.where(rec, f"{prof.name}: total recomputed as the sum of rounded counts",
                                 f"{prof.name}: rounded to {how}")
                self.actions.insert(1, pd.DataFrame({"row": pub["row"], "column": pub["col"],
                                                     "action": "rounded", "rule": rules}))
        if "_denominator" in df.columns:
            df = df.drop(columns="_denominator")
        for col in [c for c in COUNT_COLUMNS if c in df.columns]:
            v = df[col].to_numpy(dtype=float)
            fin = v[np.isfinite(v)]
            if np.all(np.abs(fin - np.round(fin)) < _EPS):
                df[col] = pd.array(np.where(np.isfinite(v), np.round(v), np.nan), dtype="Float64").astype("Int64")

        acts = (pd.concat(self.actions, ignore_index=True) if self.actions
                else pd.DataFrame(columns=["row", "column", "action", "rule"]))
        acts = acts[acts["column"] != "_denominator"]
        col_order = {c: i for i, c in enumerate(df.columns)}
        act_order = {a: i for i, a in enumerate(ACTIONS)}
        acts = acts.assign(_c=acts["column"].map(col_order), _a=acts["action"].map(act_order))
        acts = acts.sort_values(["row", "_c", "_a"], kind="stable").drop_duplicates(["row", "column", "action"])

        # companion columns
        redacted_mask = acts["action"].isin(["redacted", "redacted-secondary"])
        red_cols = acts[redacted_mask].groupby("row")["column"].agg(";".join)
        flagged = acts[acts["action"] == "flagged"].groupby("row")["column"].agg(", ".join)
        removed = acts[acts["action"] == "removed"].groupby("row")["column"].agg(", ".join)
        idx = pd.RangeIndex(len(df))
        red_s = red_cols.reindex(idx).fillna("")
        notes = []
        for part, prefix in ((red_s.str.replace(";", ", "), REDACTED_MARKER + " "),
                             (removed.reindex(idx).fillna(""), "removed: "),
                             (flagged.reindex(idx).fillna(""), "flagged: ")):
            notes.append(np.where(part != "", prefix + part.astype(str), ""))
        note = pd.Series(["; ".join(p for p in parts if p) for parts in zip(*notes)], index=idx, dtype="str")
        df["redacted"] = (red_s != "").to_numpy()
        df["redacted_columns"] = pd.Series(red_s.to_numpy(), dtype="str")
        df["disclosure_note"] = note

        # group sizes (column headers of a Table-1 layout)
        extra_report = None
        if cells is not None and self.group_size is not None:
            sc = cells[cells["is_size"]]
            fin = self.final.reindex(sc.index)
            df.attrs["group_sizes"] = {g: (None if h else int(round(v)) if abs(v - round(v)) < _EPS else float(v))
                                       for g, h, v in zip(sc["gkey"], sc["hidden"], fin)}
            undisplayed = sc[(sc["row"] < 0) & sc["hidden"]]
            if len(undisplayed):
                extra_report = pd.DataFrame({
                    "output": self.table, "row_key": [f"{self.layout.group_col}={g}" for g in undisplayed["gkey"]],
                    "column": "group_size", "kind": "group size", "action": undisplayed["action"].to_numpy(),
                    "rule": undisplayed["rule"].to_numpy()}).astype("str")

        # report
        keys = [k for k in self.layout.keys if k != "kind"]
        K = _key_strings(df, keys)
        row_key = pd.Series("", index=df.index, dtype=object)
        for k in keys:
            part = np.where(df[k].notna(), f"{k}=" + K[k], "")
            row_key = np.where((row_key != "") & (part != ""), row_key + "; " + part, row_key + part)
        row_key = pd.Series(row_key, index=df.index)
        rows = acts["row"].to_numpy(dtype=int)
        if "kind" in df.columns:
            kind = df["kind"].astype(object).where(df["kind"].notna(), "").map(str).to_numpy()[rows]
        else:
            kind = acts["column"].map(_STAT_KIND).fillna("").to_numpy()
        report = pd.DataFrame({
            "output": pd.Series([self.table] * len(acts), dtype="str"),
            "row_key": pd.Series(row_key.to_numpy()[rows], dtype="str"),
            "column": pd.Series(acts["column"].to_numpy(), dtype="str"),
            "kind": pd.Series(kind, dtype="str"),
            "action": pd.Series(acts["action"].to_numpy(), dtype="str"),
            "rule": pd.Series(acts["rule"].to_numpy(), dtype="str"),
        })
        if extra_report is not None:
            report = pd.concat([report, extra_report], ignore_index=True)
        return df, report


# --------------------------------------------------------------------------------------
# Reports, display helpers and figure policy
# --------------------------------------------------------------------------------------
def empty_report():
    """An empty report with the report's columns."""
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype="str") for c in REPORT_COLUMNS})


def disclosure_report(reports: Iterable):
    """Combine the per-output reports of a run into one table.

    Parameters
    ----------
    reports : iterable of DataFrames returned by :func:`apply_to_long`.

    Returns
    -------
    DataFrame
        Columns ``output, row_key, column, kind, action, rule`` in the order given.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"group": ["A", "B", "Total"], "n": [3, 20, 23]})
    >>> _, r1 = apply_to_long(t, "opensafely", "t1")
    >>> disclosure_report([r1])[["row_key", "action"]].values.tolist()
    [['group=A', 'redacted'], ['group=B', 'rounded'], ['group=Total', 'rounded']]
    """
    import pandas as pd

    frames = [r for r in reports if r is not None and len(r)]
    if not frames:
        return empty_report()
    for r in frames:
        missing = set(REPORT_COLUMNS) - set(r.columns)
        if missing:
            raise DisclosureError(f"not a disclosure report: missing columns {sorted(missing)}")
    return pd.concat([r[REPORT_COLUMNS] for r in frames], ignore_index=True)


def report_summary(report):
    """Cells changed per output and action: the overview a notebook shows.

    An empty report (nothing needed redacting or rounding) gives a one-row frame saying so.

    Examples
    --------
    >>> report_summary(empty_report())["cells"].to_dict()
    {'no action needed': 0}
    """
    import pandas as pd

    if report is None or len(report) == 0:
        return pd.DataFrame({"cells": [0]}, index=pd.Index(["no action needed"], name="action"))
    return report.groupby(["output", "action"]).size().rename("cells").to_frame()


def write_disclosure_report(df, out_dir: str | Path, profile: Profile | str | None = None) -> list[Path]:
    """Write the combined report to ``out_dir/disclosure_report.csv`` and ``.md``.

    Parameters
    ----------
    df : the combined report (:func:`disclosure_report`).
    out_dir : folder (created if missing).
    profile : optional profile, described at the top of the Markdown file.

    Returns
    -------
    list of Path
        The two files written.

    Examples
    --------
    >>> paths = write_disclosure_report(empty_report(), "/tmp/imr_demo_report")  # doctest: +SKIP
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = df[REPORT_COLUMNS] if len(df) else empty_report()
    csv_path, md_path = out / "disclosure_report.csv", out / "disclosure_report.md"
    export.write_csv(df, csv_path)
    lines = ["# Disclosure report", ""]
    if profile is not None:
        prof = _as_profile(profile)
        lines += [f"Profile: {prof.describe()}", ""]
    lines += [f"Profiles file version: {profiles_version()}", ""]
    if not len(df):
        lines += ["No disclosure-control actions were needed.", ""]
    else:
        summary = (df.groupby(["output", "action"], sort=False).size().rename("cells").reset_index())
        lines += ["## Summary", "", summary.to_markdown(index=False), "", "## Actions", "",
                  "Each row is one cell of a published table and what was done to it (never its value).", "",
                  df.to_markdown(index=False), ""]
    md_path.write_text("\n".join(lines), encoding="utf-8")
    return [csv_path, md_path]


def mark_redacted(safe_df, marker: str = REDACTED_MARKER):
    """Return a display copy of a protected table with ``marker`` in every redacted cell.

    Parameters
    ----------
    safe_df : the first value returned by :func:`apply_to_long`.
    marker : text for redacted cells (OpenSAFELY's convention is ``[REDACTED]``).

    Returns
    -------
    DataFrame
        Object-dtype copy without the companion columns (``disclosure_note`` is kept).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"group": ["A", "B", "Total"], "n": [3, 20, 23]})
    >>> mark_redacted(apply_to_long(t, "opensafely", "t")[0])["n"].tolist()
    ['[REDACTED]', 20, 25]
    """
    import numpy as np

    if "redacted_columns" not in safe_df.columns:
        raise DisclosureError("mark_redacted needs a table returned by apply_to_long")
    out = safe_df.drop(columns=["redacted", "redacted_columns"]).astype(object)
    red = safe_df["redacted_columns"].fillna("").astype(str)
    for col in [c for c in STAT_COLUMNS if c in out.columns]:
        hit = red.str.split(";").map(lambda cols, c=col: c in cols).to_numpy(dtype=bool)
        out[col] = np.where(hit, marker, out[col].to_numpy())
    return out


def figure_policy(profile) -> dict:
    """What figure code may draw under a profile.

    Parameters
    ----------
    profile : Profile or profile name.

    Returns
    -------
    dict
        ``profile``; ``allow_microdata``; ``figure1`` (``"per_patient"``: one bar per
        patient, or ``"aggregate"``: use the non-microdata Figure 1); ``bland_altman_show_points``
        (individual points allowed); ``min_count`` (smallest count an aggregate figure may
        show; 1 when nothing is suppressed); ``rounding`` (e.g. ``"nearest 5"`` or ``None``);
        ``note`` (a sentence for the caption).

    Examples
    --------
    >>> figure_policy("opensafely")["figure1"]
    'aggregate'
    >>> figure_policy("none")["bland_altman_show_points"]
    True
    """
    prof = _as_profile(profile)
    allow = bool(prof.allow_microdata)
    rounding = (None if prof.rounding_method is None else
                f"{prof.rounding_method} {prof.rounding_base}")
    if allow:
        note = "" if prof.is_noop else f"Disclosure control: {prof.rule_text()}."
    else:
        note = (f"Disclosure control ({prof.name}): per-patient marks are not shown; "
                f"aggregated counts follow the table rules ({prof.rule_text()}).")
    return {
        "profile": prof.name,
        "allow_microdata": allow,
        "figure1": "per_patient" if allow else "aggregate",
        "bland_altman_show_points": allow,
        "min_count": prof.redact_counts_le + 1,
        "rounding": rounding,
        "note": note,
    }
