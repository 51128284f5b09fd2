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
The counts of the table are read as *cells*, one per quantity however often it is shown,
and as additive *relations* "members (+ an unpublished remainder) = total": the levels of
a variable sum to its denominator; denominator + missing, and levels + missing, sum to
the group size (the column header); a yes-row plus its unpublished complement sums to the
denominator; the service groups sum to the ``Total`` group (Table 2: units sum to their
service type, types to the total); equal counts of one unit in several rows of Table 2
are one cell. Then:

1. *Primary suppression*: every count (``n``, ``n_missing``, ``denominator``) of 1..k
   patients is redacted (zero is kept); summaries (mean, SD, median, quartiles) of rows
   whose ``n`` is 1..k are redacted.
2. *Secondary suppression*, only in profiles without rounding (``sistan_min3``): rounded
   counts already prevent exact differencing, and a profile that asks for both is refused
   (:class:`Profile`). Cells are redacted one at a time until no redacted cell can be
   derived exactly (by peeling single-unknown relations, then by linear algebra on the
   whole system) and no relation with a known total has an unknown part of 1..k patients
   (a complement of 3 patients discloses them as surely as a cell of 3). The cell hidden
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
import itertools
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import yaml
from scipy.linalg import null_space

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

_PROFILE_FIELDS = {"description": str, "sources": list, "strength": int, "redact_counts_le": int,
                   "secondary_suppression": bool, "rounding": (dict, type(None)), "recompute_totals": bool,
                   "redact_summaries_le": int, "remove_min_max": bool, "flag_zero_hundred": bool,
                   "allow_microdata": bool}
_STAT_KIND = {**dict.fromkeys(COUNT_COLUMNS, "count"), PERCENT_COLUMN: "percent",
              **dict.fromkeys(SUMMARY_COLUMNS, "summary"), **dict.fromkeys(EXTREME_COLUMNS, "extreme")}
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
    """A named set of disclosure-control rules (one entry of ``disclosure_profiles.yaml``).

    The fields are those of the YAML file (its header documents them), with ``rounding``
    split into ``rounding_method`` (``"nearest"``, ``"midpoint"`` or ``None``) and
    ``rounding_base``, plus ``data_mode``, ``requested`` and ``weaker_than_default``,
    filled by :func:`resolve_profile` for the run's colophon.

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
        return (self.redact_counts_le == 0 and self.rounding_method is None and self.redact_summaries_le == 0
                and not self.remove_min_max and not self.flag_zero_hundred)

    def rule_text(self) -> str:
        """Human-readable summary of the rules, e.g. for a table caption."""
        if self.is_noop:
            return "no disclosure control applied"
        rounding = {"nearest": f"counts rounded to the nearest {self.rounding_base}",
                    "midpoint": f"counts rounded to midpoint {self.rounding_base}"}
        parts = [self.redact_counts_le and f"counts of 1-{self.redact_counts_le} patients redacted",
                 self.secondary_suppression and "with secondary suppression",
                 rounding.get(self.rounding_method),
                 self.recompute_totals and self.rounding_method
                 and "totals and percentages recomputed from rounded counts",
                 self.redact_summaries_le and f"summaries of 1-{self.redact_summaries_le} patients redacted",
                 self.remove_min_max and "minima/maxima removed"]
        return "; ".join(p for p in parts if p)

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
        return {**dataclasses.asdict(self), "sources": list(self.sources)}


def _validate_profile(name: str, spec, version: int, path: Path) -> Profile:
    where = f"{path}: profile {name!r}"
    if not isinstance(spec, dict):
        raise DisclosureError(f"{where} must be a mapping")
    missing, unknown = sorted(set(_PROFILE_FIELDS) - set(spec)), sorted(set(spec) - set(_PROFILE_FIELDS))
    if missing or unknown:
        raise DisclosureError(f"{where}: missing fields {missing}, unknown fields {unknown}")
    for field, typ in _PROFILE_FIELDS.items():
        value = spec[field]
        if typ is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise DisclosureError(f"{where}: {field} must be a non-negative integer")
        if typ is not int and not isinstance(value, typ):
            raise DisclosureError(f"{where}: {field} has the wrong type ({type(value).__name__})")
    rounding = spec["rounding"]
    method, base = (None, None) if rounding is None else (rounding.get("method"), rounding.get("base"))
    if rounding is not None and (method not in ROUNDING_METHODS or isinstance(base, bool)
                                 or not isinstance(base, int) or base < 1):
        raise DisclosureError(f"{where}: rounding must be {{method: nearest|midpoint, base: positive int}}")
    if rounding is not None and spec["secondary_suppression"]:
        raise DisclosureError(
            f"{where}: rounding and secondary_suppression cannot be combined; rounded counts already "
            "prevent exact differencing (see DISCLOSURE.md, 'Secondary suppression and rounding'): set "
            "secondary_suppression: false, or drop the rounding")
    fields = {f: v for f, v in spec.items() if f not in ("sources", "rounding")}
    return Profile(name=name, version=version, sources=tuple(str(s) for s in spec["sources"]),
                   rounding_method=method, rounding_base=base, **fields)


@functools.lru_cache(maxsize=8)
def _load(path_str: str) -> tuple[int, dict[str, str], dict[str, Profile]]:
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


def _loaded(path) -> tuple[int, dict[str, str], dict[str, Profile]]:
    return _load(str(Path(path or PROFILES_FILE).resolve()))


def load_profiles(path: str | Path | None = None) -> dict[str, Profile]:
    """Read and validate the disclosure profiles (``None``: the packaged YAML file).

    Examples
    --------
    >>> sorted(load_profiles())
    ['none', 'opensafely', 'opensafely_midpoint6', 'sistan_min3']
    """
    return dict(_loaded(path)[2])


def profiles_version(path: str | Path | None = None) -> int:
    """The ``version`` of the profiles file (recorded in reports and the colophon)."""
    return _loaded(path)[0]


def default_profile_name(data_mode: str, path: str | Path | None = None) -> str:
    """The default profile for a data mode (``synthetic`` -> ``none``, ``private`` -> ``opensafely``)."""
    if data_mode not in DATA_MODES:
        raise DisclosureError(f"unknown data mode {data_mode!r}; expected one of {list(DATA_MODES)}")
    return _loaded(path)[1][data_mode]


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

    Examples
    --------
    >>> resolve_profile("auto", "synthetic").name, resolve_profile("auto", "private").name
    ('none', 'opensafely')
    >>> resolve_profile("none", "private")
    Traceback (most recent call last):
    ...
    imr_analysis.disclosure.DisclosureError: disclosure profile 'none' is weaker than 'opensafely', the default for private data; pass allow_weaker_profile=True to use it (the choice is recorded in the run's colophon)
    """
    default = get_profile(default_profile_name(data_mode, path), path)
    if requested in (None, "", "auto"):
        return dataclasses.replace(default, data_mode=data_mode, requested="auto")
    profile = get_profile(str(requested), path)
    weaker = data_mode == "private" and profile.strength < default.strength
    if weaker and not allow_weaker_profile:
        raise DisclosureError(
            f"disclosure profile {profile.name!r} is weaker than {default.name!r}, the default for private "
            "data; pass allow_weaker_profile=True to use it (the choice is recorded in the run's colophon)")
    return dataclasses.replace(profile, data_mode=data_mode, requested=str(requested), weaker_than_default=weaker)


def _as_profile(profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, str):
        return get_profile(profile)
    raise TypeError(f"profile must be a Profile or a profile name, not {type(profile).__name__}")


def round_counts(values, base: int = 5, method: str = "nearest"):
    """Round non-negative counts as the disclosure profiles do.

    ``nearest``: to the nearest multiple of ``base`` (halves, which only occur for even
    bases or non-integer input, go up). ``midpoint``: OpenSAFELY's midpoint rounding
    ``ceil(x / base) * base - floor(base / 2) * (x != 0)``, so with ``base=6``: 0 -> 0,
    1-6 -> 3, 7-12 -> 9, 13-18 -> 15. Missing values stay missing.

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
    x = np.asarray(values, dtype=float)
    if method == "nearest":
        return np.floor(x / base + 0.5) * base
    if method == "midpoint":
        return np.ceil(x / base) * base - np.floor(base / 2) * (x != 0)
    raise DisclosureError(f"unknown rounding method {method!r}; choose from {list(ROUNDING_METHODS)}")


# --------------------------------------------------------------------------------------
# Reading a table: layout, cells, relations
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Layout:
    """The part each key column plays (see :func:`apply_to_long`)."""

    keys: list
    level_col: str | None
    group_col: str | None
    parent_col: str | None
    tier_col: str | None
    den_col: str | None  # "denominator", "_denominator" (derived from n and percent) or None


def _is_total(s: pd.Series) -> np.ndarray:
    return (s.astype(str).str.match(TOTAL_LABEL_PATTERN).fillna(False) & s.notna()).to_numpy(dtype=bool)


def _layout(df, level_col, group_col, parent_col, tier_col) -> _Layout:
    cols = list(df.columns)
    keys = [c for c in cols if c not in STAT_COLUMNS + COMPANION_COLUMNS and not str(c).startswith("_")]
    if group_col == "auto":
        group_col = next((c for c in ("unit", "group", "service_type") if c in cols), None)
        if group_col is None:  # a simple table: the one key column holding a "Total" row
            holding = [k for k in keys if k != "kind" and _is_total(df[k]).any()]
            group_col = holding[0] if len(holding) == 1 else None
    if parent_col == "auto":
        parent_col = "service_type" if group_col == "unit" and "service_type" in cols else None
    if tier_col == "auto":
        tiers = set(df["level"].dropna().astype(str).str.lower()) if {"unit", "level"} <= set(cols) else set()
        tier_col = "level" if tiers and tiers <= set(TIER_ROLES) else None
    if level_col == "auto":
        level_col = "level" if "level" in cols and tier_col != "level" else None
    for name, col in (("level_col", level_col), ("group_col", group_col),
                      ("parent_col", parent_col), ("tier_col", tier_col)):
        if col is not None and col not in keys:
            raise DisclosureError(f"{name}={col!r} is not a key column of the table (keys: {keys})")
    den_col = ("denominator" if "denominator" in cols
               else "_denominator" if {PERCENT_COLUMN, "n"} <= set(cols) else None)
    return _Layout(keys, level_col, group_col, parent_col, tier_col, den_col)


def _roles(df, lay: _Layout) -> np.ndarray:
    """Each row's place across groups: ``member``, ``subtotal``, ``total`` or None."""
    if lay.group_col is None:
        return np.full(len(df), None, dtype=object)
    if lay.tier_col is not None:
        return np.array([TIER_ROLES.get(str(v).lower()) if pd.notna(v) else None for v in df[lay.tier_col]],
                        dtype=object)
    g = df[lay.group_col]
    total = _is_total(g)
    if lay.parent_col is None:
        return np.where(total, "total", "member").astype(object)
    aggregate = total | g.isna().to_numpy()
    p_total = _is_total(df[lay.parent_col]) | df[lay.parent_col].isna().to_numpy()
    return np.where(aggregate & p_total, "total", np.where(aggregate, "subtotal", "member")).astype(object)


def _join(K: pd.DataFrame, cols) -> pd.Series:
    """Key columns (as text) joined into one key; "" when there are none."""
    cols = [c for c in cols if c is not None]
    return functools.reduce(lambda a, b: a + "\x1f" + b, [K[c] for c in cols]) if cols else pd.Series("", K.index)


def _group_sizes(df, lay: _Layout, gkey: pd.Series) -> pd.Series | None:
    """Each group's size, the column header "CMHC (n=69)" of a Table-1 layout: the most
    frequent denominator among rows without missing values, else of denominator + missing."""
    if None in (lay.level_col, lay.group_col, lay.den_col):
        return None
    missing = df["n_missing"].fillna(0) if "n_missing" in df.columns else pd.Series(0.0, index=df.index)
    den = df[lay.den_col]
    tab = pd.DataFrame({"g": gkey, "size": den + missing, "pref": missing.eq(0)})[den.notna()]
    if not len(tab):
        return None
    tab = tab.groupby(["g", "size"]).agg(pref=("pref", "max"), n=("pref", "size")).reset_index()
    tab = tab.sort_values(["g", "pref", "n", "size"], ascending=[True, False, False, False])
    return tab.drop_duplicates("g").set_index("g")["size"]


def _cells(df, lay: _Layout, count_cols: list):
    """The counts of the table as cells: one cell per quantity, however often it is shown.

    A row's ``n`` is a cell of its own; the denominator (or missing count) repeated on the
    rows of a variable is one cell, and so is a group's size, also when every variable has
    missing values and the size is shown only as the column header (``row`` -1). Without
    category levels (Table 2, simple tables) equal non-zero counts of one row group are one
    cell: a unit's patients are the ``n`` of its patient rows and the denominator of its
    module rows.

    Returns ``cells`` (indexed 0.., first place shown: ``col, value, role, ckey, parent,
    wid, row, gkey``; ``is_size``), ``shown`` (``row, col, cell`` of every displayed count),
    ``coords`` (``cell, ckey, role, parent, value``: the cross-group coordinates, ``ckey``
    naming the statistic summed across groups) and the group sizes (or None).
    """
    K = pd.DataFrame({k: df[k].astype(object).where(df[k].notna(), "<NA>").map(str) for k in lay.keys},
                     index=df.index)
    dims = {lay.group_col, lay.parent_col, lay.tier_col} - {None}
    within = [k for k in lay.keys if k != lay.level_col]
    wkey, gkey = _join(K, within), _join(K, [lay.group_col, lay.parent_col])
    link_key = _join(K, [lay.group_col, lay.parent_col, lay.tier_col]).to_numpy()
    wid, roles = pd.factorize(wkey)[0], _roles(df, lay)
    parent = (K[lay.parent_col] if lay.parent_col else pd.Series("", df.index)).to_numpy()
    sizes = _group_sizes(df, lay, gkey)
    is_size_row = df[lay.den_col].eq(gkey.map(sizes)).to_numpy() if sizes is not None else None
    link = lay.level_col is None and lay.group_col is not None
    frames = []
    for col in count_cols:
        rows = np.flatnonzero(df[col].notna())
        value = df[col].to_numpy(dtype=float)[rows]
        if col == "n":
            key = [("n", r) for r in rows]
        else:
            key = [(col, wkey.iat[r], v) for r, v in zip(rows, value)]
            if col == lay.den_col and is_size_row is not None:
                key = [("group_size", gkey.iat[r]) if is_size_row[r] else k for r, k in zip(rows, key)]
        if link:
            key = [("link", link_key[r], v) if v > _EPS else k for r, v, k in zip(rows, value, key)]
        cross = [k for k in (lay.keys if col == "n" else within) if k not in dims]
        frames.append(pd.DataFrame({
            "row": rows, "col": col, "value": value, "key": pd.Series(key, dtype=object), "role": roles[rows],
            "ckey": col + "\x1d" + _join(K, cross).to_numpy()[rows], "parent": parent[rows], "wid": wid[rows],
            "gkey": gkey.to_numpy()[rows]}))
    if sizes is not None:  # group sizes shown nowhere but in the column header
        displayed = {k[1] for f in frames for k in f["key"] if k[0] == "group_size"}
        header = [g for g in sizes.index if g not in displayed]
        first = pd.Series(np.arange(len(df))).groupby(gkey.to_numpy()).first()[header].to_numpy()
        frames.append(pd.DataFrame({
            "row": -1, "col": "group_size", "value": sizes[header].to_numpy(),
            "key": pd.Series([("group_size", g) for g in header], dtype=object), "role": roles[first],
            "ckey": "group_size", "parent": parent[first], "wid": -1, "gkey": header}))
    every = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["row", "col", "value", "key", "role", "ckey", "parent", "wid", "gkey"])
    ids: dict = {}
    every["cell"] = [ids.setdefault(k, len(ids)) for k in every["key"]]
    cells = every.drop_duplicates("cell").set_index("cell")
    cells["is_size"] = [k[0] == "group_size" for k in cells["key"]]
    size_coords = cells[cells["is_size"]].reset_index().assign(ckey="group_size")
    coords = pd.concat([every, size_coords])[["cell", "ckey", "role", "parent", "value"]]
    return (cells.drop(columns="key"), every[every["row"] >= 0][["row", "col", "cell"]],
            coords.drop_duplicates(["cell", "ckey"]).reset_index(drop=True), sizes)


@dataclasses.dataclass
class _Relations:
    """The relations "members (+ remainder) = total", in the order they are mended.

    ``members[r, c]`` counts cell ``c`` among the members of relation ``r``; ``total[r]`` is
    the total's cell, or -1 when the total is a group size read off the column header
    (published when above k); ``partition``: the levels of one variable."""

    members: np.ndarray
    total: np.ndarray
    total_value: np.ndarray
    remainder: np.ndarray
    partition: np.ndarray

    @property
    def totals(self) -> np.ndarray:
        """``totals[r, c]`` is 1 when cell ``c`` is the total of relation ``r``."""
        t = np.zeros_like(self.members)
        has = np.flatnonzero(self.total >= 0)
        t[has, self.total[has]] = 1
        return t


def _relations(cells, shown, coords, sizes, lay: _Layout) -> _Relations:
    """The additive relations of the table, within groups first, then across groups."""
    size_cell = {g: c for c, g in cells.loc[cells["is_size"], "gkey"].items()}

    def header(g, value):  # the group's size cell, when the group size is this value
        c = size_cell.get(g, -1)
        return c if c >= 0 and abs(sizes[g] - value) <= _EPS else -1

    parts, rowwise, beside, den_missing, levels_missing = [], [], [], [], []
    nc = cells[cells["col"] == "n"]
    if lay.den_col is not None and len(nc):
        at = shown.pivot(index="row", columns="col", values="cell")
        nc = nc.assign(den_cell=nc["row"].map(at.get(lay.den_col, pd.Series(dtype=float))),
                       mis_cell=nc["row"].map(at.get("n_missing", pd.Series(dtype=float))))
        nc = nc.assign(D=nc["den_cell"].map(cells["value"]), M=nc["mis_cell"].map(cells["value"]))
        w = nc.groupby("wid").agg(S=("value", "sum"), D=("D", "first"), D_n=("D", "nunique"), gkey=("gkey", "first"),
                                  D_cell=("den_cell", "first"), M=("M", "first"), M_cell=("mis_cell", "first"))
        levels = nc.groupby("wid").groups  # the levels of one variable in one group
        single = w["D"].notna() & (w["D_n"] <= 1)
        incl = single & w["M"].notna() & (w["D"] - w["S"] - w["M"] >= -_EPS)  # levels + missing = D
        excl = single & ~incl & (w["D"] - w["S"] >= -_EPS)  # levels = D (the non-missing)
        for i, r in w[incl | excl].iterrows():
            with_missing = [int(r.M_cell)] if incl[i] else []
            parts.append((list(levels[i]) + with_missing, int(r.D_cell), r.D,
                          r.D - r.S - r.M if incl[i] else r.D - r.S, True))
        for i, r in w[excl & w["M"].notna()].iterrows():  # D + missing, levels + missing = the group size
            t = header(r.gkey, r.D + r.M)
            den_missing.append(([int(r.D_cell), int(r.M_cell)], t, r.D + r.M, 0.0, False))
            levels_missing.append((list(levels[i]) + [int(r.M_cell)], t, r.D + r.M, r.D - r.S, False))
        # yes/no and multiple-response rows: n + its unpublished complement = D
        rw = nc[nc["wid"].map(w["D"].notna() & ~incl & ~excl) & nc["D"].notna() & (nc["D"] >= nc["value"] - _EPS)]
        rowwise = [([c], int(r.den_cell), r.D, r.D - r.value, False) for c, r in rw.iterrows()]
        beside = [([int(r.den_cell), int(r.mis_cell)], header(r.gkey, r.D + r.M), r.D + r.M, 0.0, False)
                  for _, r in rw[rw["M"] > 0].drop_duplicates(["den_cell", "mis_cell"]).iterrows()]
    across = []
    if lay.group_col is not None and len(cells):  # members sum to the Total (units -> subtotal -> total)
        c = coords[coords["role"].notna()]
        if lay.parent_col is not None or lay.tier_col is not None:
            has_sub = c.groupby("ckey")["role"].transform(lambda r: (r == "subtotal").any())
            steps = [(c["ckey"] + "\x1c" + c["parent"].astype(str), c["role"] == "member", c["role"] == "subtotal"),
                     (c["ckey"], np.where(has_sub, c["role"] == "subtotal", c["role"] == "member"),
                      c["role"] == "total")]
        else:
            steps = [(c["ckey"], c["role"] == "member", c["role"] == "total")]
        for skey, is_member, is_total in steps:
            f = c.assign(skey=skey)
            totals = f[np.asarray(is_total)].drop_duplicates("skey").set_index("skey")
            for key, m in f[np.asarray(is_member) & f["skey"].isin(totals.index)].groupby("skey"):
                t = totals.loc[key]
                rem = t["value"] - m["value"].sum()
                if rem >= -_EPS:
                    across.append((list(m["cell"]), int(t["cell"]), t["value"], rem, False))
    rels = parts + rowwise + den_missing + levels_missing + beside + across
    members = np.zeros((len(rels), len(cells)), dtype=int)
    for r, rel in enumerate(rels):
        np.add.at(members[r], rel[0], 1)
    return _Relations(members, np.array([r[1] for r in rels], dtype=int), np.array([r[2] for r in rels], float),
                      np.array([r[3] for r in rels], float), np.array([r[4] for r in rels], bool))


# --------------------------------------------------------------------------------------
# Secondary suppression
# --------------------------------------------------------------------------------------
class _Reader:
    """What a reader of the published table can work out about its hidden cells.

    The reader knows every published cell and the column headers (group sizes above k).
    A relation with an unpublished remainder, or whose total is a header of 1..k patients,
    has an unknown of its own."""

    def __init__(self, rel: _Relations, value: np.ndarray, k: int):
        self.rel, self.value, self.k = rel, value, k
        self.cells_of = rel.members + rel.totals  # every cell of a relation, its total included
        self.has_total = rel.total >= 0
        self.has_rem = rel.remainder > _EPS
        self.header_unknown = ~self.has_total & (rel.total_value <= k + _EPS)

    def peel(self, hidden):
        """Solve relations with a single unknown, sweep after sweep. Returns the cells still
        unknown and, for each cell revealed, the relation that revealed it and the sweep."""
        unknown, by, sweep = hidden.copy(), np.full(len(hidden), -1), np.zeros(len(hidden), dtype=int)
        solvable = ~self.has_rem & ~self.header_unknown
        for n_sweep in itertools.count(1):
            single = np.flatnonzero((self.cells_of @ unknown == 1) & solvable)
            if not len(single):
                return unknown, by, sweep
            revealed = [np.flatnonzero(self.cells_of[r] * unknown)[0] for r in single]
            for r, c in zip(single, revealed):
                if by[c] < 0:
                    by[c], sweep[c] = r, n_sweep
            unknown[revealed] = False

    def unsafe(self, hidden) -> np.ndarray:
        """Relations to mend, in order: those revealing a hidden cell (by sweep, then relation
        order), then those whose known total leaves an unknown part of 1..k patients."""
        unknown, by, sweep = self.peel(hidden)
        leaked = np.flatnonzero(hidden & ~unknown)
        total_known = np.where(self.has_total, ~unknown[self.rel.total], ~self.header_unknown)
        mass = self.rel.members @ np.where(unknown, self.value, 0.0) + np.where(self.has_rem, self.rel.remainder, 0)
        small = np.flatnonzero(total_known & (mass > _EPS) & (mass <= self.k + _EPS))
        todo = np.r_[by[leaked], small]
        return todo[np.lexsort((todo, np.r_[sweep[leaked], np.zeros(len(small))],
                                np.r_[np.zeros(len(leaked)), np.ones(len(small))]))]

    def determined(self, hidden) -> list:
        """Hidden cells fixed by the whole system of relations, each with the relations that fix
        it: a cell is determined iff its coordinate vanishes on the null space of the relations
        restricted to the unknowns; the relations used are those of a certificate y, y'A = e."""
        unk, free = np.flatnonzero(hidden), np.flatnonzero(self.has_rem | self.header_unknown)
        if not len(unk):
            return []
        remainders = np.zeros((len(self.has_total), len(free)))
        remainders[free, np.arange(len(free))] = 1.0
        A = np.hstack([(self.rel.members - self.rel.totals)[:, unk], remainders])
        rows = np.flatnonzero(np.abs(A).sum(axis=1) > 0)
        if not len(rows):
            return []
        A = A[rows]
        fixed = np.all(np.abs(null_space(A)[: len(unk)]) < 1e-8, axis=1)
        return [(unk[i], rows[np.abs(np.linalg.lstsq(A.T, np.eye(A.shape[1])[i], rcond=None)[0]) > 1e-8])
                for i in np.flatnonzero(fixed)]


def _secondary(cells, rel: _Relations, shown, k: int, name: str) -> None:
    """Hide more cells until no redacted cell can be derived from the published ones.

    The first unsafe relation (:meth:`_Reader.unsafe`; when there is none, a relation
    fixing a cell through the whole system) is mended by hiding the cell that loses
    least: its smallest published non-zero *member* that is not itself a total (a level's
    count, a missing count, a service's cell -- never a group size, a denominator, a
    Total-group or subtotal cell while such a member will do). Failing that, among its
    members and its own total, the cell shown in the fewest places (Table 2 shows a unit's
    patients as the denominator of every module row). Ties go to the cell leaving the
    fewest unsafe relations, then the smallest, then the first in table order.
    """
    value, hidden = cells["value"].to_numpy(dtype=float), cells["hidden"].to_numpy(dtype=bool).copy()
    reader = _Reader(rel, value, k)
    shown_as_den = shown.loc[shown["col"].isin(["denominator", "_denominator"]), "cell"]
    total_like = (cells["is_size"] | cells["col"].isin(["denominator", "_denominator", "group_size"])
                  | cells["role"].isin(["total", "subtotal"]) | cells.index.isin(shown_as_den)
                  | cells.index.isin(rel.total)).to_numpy()
    places = np.bincount(shown["cell"], minlength=len(cells)) + cells["is_size"].to_numpy(dtype=int)

    def choose(relations):
        for r in relations:
            cand = np.flatnonzero((rel.members[r] > 0) & ~hidden & (value > _EPS))
            plain = cand[~total_like[cand]]
            if len(plain):
                best = plain[value[plain] <= value[plain].min() + _EPS]
            else:
                own = [rel.total[r]] if rel.total[r] >= 0 and not hidden[rel.total[r]] else []
                pool = np.unique(np.r_[cand, own].astype(int))
                if not len(pool):
                    continue
                best = pool[places[pool] == places[pool].min()]
            return min(best, key=lambda c: (len(best) > 1 and len(reader.unsafe(hidden | (np.arange(len(hidden)) == c))),
                                            value[c], c))
        return None

    for _ in range(len(cells) + 1):
        todo = reader.unsafe(hidden)
        pick = choose(todo) if len(todo) else None
        if pick is None:  # nothing left to mend by peeling: check the whole system
            pick = next((p for _, chain in reader.determined(hidden) if (p := choose(chain)) is not None), None)
        if pick is None:
            break
        hidden[pick] = True
        cells.loc[pick, ["hidden", "action", "rule"]] = [
            True, "redacted-secondary", f"{name}: secondary suppression (else derivable from published cells)"]


# --------------------------------------------------------------------------------------
# The other rules
# --------------------------------------------------------------------------------------
def _actions(rows, column, action, rule) -> pd.DataFrame:
    return pd.DataFrame({"row": rows, "column": column, "action": action, "rule": rule})


def _primary(cells, k: int, name: str) -> None:
    """Counts of 1..k patients are redacted (zero is kept)."""
    small = (cells["value"] > _EPS) & (cells["value"] <= k + _EPS)
    cells.loc[small, ["hidden", "action", "rule"]] = [True, "redacted", f"{name}: count <= {k}"]


def _redact_summaries(df, prof: Profile) -> list:
    """Means, SDs, medians and quartiles of rows whose ``n`` is 1..k are redacted."""
    ks, cols = prof.redact_summaries_le, [c for c in SUMMARY_COLUMNS if c in df.columns]
    if ks <= 0 or not cols or "n" not in df.columns:
        return []
    small = ((df["n"] > _EPS) & (df["n"] <= ks + _EPS)).to_numpy()
    out = []
    for c in cols:
        hit = small & df[c].notna().to_numpy()
        if hit.any():
            out.append(_actions(np.flatnonzero(hit), c, "redacted", f"{prof.name}: summary of <= {ks} patients"))
        df.loc[hit, c] = np.nan
    return out


def _round_and_recompute(cells, rel: _Relations, prof: Profile):
    """Published counts rounded; totals whose members are all published become their sum
    (relations in order, repeated until totals of totals settle). Returns the published
    value of every cell (NaN when hidden) and which totals were recomputed."""
    hidden = cells["hidden"].to_numpy(dtype=bool)
    final = np.where(hidden, np.nan, cells["value"].to_numpy(dtype=float))
    recomputed = np.zeros(len(cells), dtype=bool)
    if prof.rounding_method is None:
        return final, recomputed
    final[~hidden] = round_counts(final[~hidden], prof.rounding_base, prof.rounding_method)
    if not prof.recompute_totals:
        return final, recomputed
    exact = np.flatnonzero((rel.total >= 0) & (np.abs(rel.remainder) <= _EPS))
    for _ in range(32):
        ok = exact[(rel.members[exact] @ hidden == 0) & ~hidden[rel.total[exact]]]
        totals, first = np.unique(rel.total[ok], return_index=True)  # the first relation of each total
        if not len(totals):
            break
        sums = rel.members[ok[first]] @ np.where(hidden, 0.0, final)
        recomputed[totals] = True
        changed = np.abs(final[totals] - sums) > _EPS
        if not changed.any():
            break
        final[totals[changed]] = sums[changed]
    return final, recomputed


def _per_row(at: pd.DataFrame, col, values, fill=np.nan) -> np.ndarray:
    """``values`` (one per cell) of the cell shown in each row's column ``col``."""
    cell = at[col] if col in at.columns else pd.Series(np.nan, index=at.index)
    return cell.map(pd.Series(values)).fillna(fill).to_numpy()


def _percentages(df, cells, at, final, lay: _Layout, prof: Profile) -> list:
    """A percentage of a hidden count or over a hidden denominator is redacted (with the
    count's action); with rounding, the others are recomputed from the rounded counts."""
    if PERCENT_COLUMN not in df.columns or "n" not in df.columns:
        return []
    had, out = df[PERCENT_COLUMN].notna().to_numpy(), []
    n_h = _per_row(at, "n", cells["hidden"], False).astype(bool)
    d_h = _per_row(at, lay.den_col, cells["hidden"], False).astype(bool)
    hide = had & (n_h | d_h)
    src = np.where(n_h, at.get("n", np.nan), at.get(lay.den_col, np.nan))[hide].astype(int)
    if hide.any():
        out.append(_actions(np.flatnonzero(hide), PERCENT_COLUMN, cells["action"].to_numpy()[src],
                            cells["rule"].to_numpy()[src] + " (percent of a redacted count)"))
    pct = np.where(hide, np.nan, df[PERCENT_COLUMN].to_numpy(dtype=float))
    if prof.rounding_method is not None:
        n, d = _per_row(at, "n", final), _per_row(at, lay.den_col, final)
        ok = had & ~hide & np.isfinite(n) & np.isfinite(d) & (d > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(ok, 100.0 * n / d, np.where(had & ~hide & (d == 0), np.nan, pct))
        if (had & ~hide).any():
            out.append(_actions(np.flatnonzero(had & ~hide), PERCENT_COLUMN, "rounded",
                                f"{prof.name}: percent recomputed from rounded counts"))
    df[PERCENT_COLUMN] = pct
    return out


def _flags(df, cells, at, rel: _Relations, lay: _Layout, prof: Profile) -> list:
    """0% and 100% cells (an attribute of everyone in the group), and zero levels that make
    the only non-zero level the whole group, are flagged (they stay published)."""
    if not prof.flag_zero_hundred or "n" not in df.columns:
        return []
    out, hidden, value = [], cells["hidden"].to_numpy(dtype=bool), cells["value"].to_numpy(dtype=float)
    if lay.den_col:
        n, d = _per_row(at, "n", value), _per_row(at, lay.den_col, value)
        published = ~_per_row(at, "n", hidden, True).astype(bool) & ~_per_row(at, lay.den_col, hidden, True).astype(bool)
        extreme = np.isfinite(n) & np.isfinite(d) & (d > 0) & ((n <= _EPS) | (np.abs(n - d) <= _EPS)) & published
        in_pct = df[PERCENT_COLUMN].notna().to_numpy() if PERCENT_COLUMN in df.columns else np.zeros(len(df), bool)
        for col, where in (("n", extreme & ~in_pct), (PERCENT_COLUMN, extreme & in_pct)):
            if where.any():
                out.append(_actions(np.flatnonzero(where), col, "flagged",
                                    f"{prof.name}: 0% or 100% of the group (an attribute of everyone in it)"))
    levels = rel.members[rel.partition & (np.abs(rel.remainder) <= _EPS)] * (cells["col"] == "n").to_numpy()
    one_nonzero = levels[(levels * (value > _EPS)).sum(axis=1) == 1]
    zero = (one_nonzero > 0).any(axis=0) & (value <= _EPS) & ~hidden
    if zero.any():
        out.append(_actions(np.unique(cells["row"].to_numpy()[zero]), "n", "flagged",
                            f"{prof.name}: zero cell makes its complement the whole group"))
    return out


def _remove_extremes(df, prof: Profile) -> list:
    """Minima and maxima describe single patients: removed."""
    out = []
    for c in [c for c in EXTREME_COLUMNS if c in df.columns and prof.remove_min_max]:
        if df[c].notna().any():
            out.append(_actions(np.flatnonzero(df[c].notna()), c, "removed",
                                f"{prof.name}: minima/maxima describe single patients"))
        df[c] = np.nan
    return out


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
        ``Int64`` when integral. For a Table-1 layout ``safe_df.attrs["group_sizes"]``
        maps each group to its publishable size (the column header: rounded, or ``None``
        when it must be shown as ``[REDACTED]``).
    report_df : DataFrame
        One row per action: ``output, row_key, column, kind, action, rule`` (the kind of
        statistic, never its value).

    Raises
    ------
    DisclosureError
        The table already carries companion columns, is wide, or a statistic is not
        numeric or negative.

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
    prof = _as_profile(profile)
    if not isinstance(long_df, pd.DataFrame):
        raise TypeError("long_df must be a pandas DataFrame")
    already = [c for c in COMPANION_COLUMNS if c in long_df.columns]
    if already:
        raise DisclosureError(f"{table_name}: the table already has {already}: it has been through "
                              "disclosure control once; pass the original long table")
    df = long_df.reset_index(drop=True).copy()
    for c in [c for c in STAT_COLUMNS if c in df.columns]:
        try:
            df[c] = pd.to_numeric(df[c]).astype(float)
        except (TypeError, ValueError) as exc:
            raise DisclosureError(f"{table_name}: column {c!r} must be numeric ({exc})") from None
    for c in [c for c in COUNT_COLUMNS if c in df.columns]:
        if (df[c] < 0).any():
            raise DisclosureError(f"{table_name}: column {c!r} has negative counts")
    lay = _layout(df, level_col, group_col, parent_col, tier_col)
    wide = [k for k in lay.keys if _STATLIKE.search(str(k)) and pd.api.types.is_numeric_dtype(df[k])]
    if wide:
        raise DisclosureError(
            f"{table_name}: columns {wide} look like statistics but are not among the known statistic "
            f"columns {list(STAT_COLUMNS)}; pass a tidy long table (one row per cell, statistics in those "
            "columns) so that they can be protected")
    if lay.den_col == "_denominator":
        with np.errstate(divide="ignore", invalid="ignore"):
            df["_denominator"] = np.where(df[PERCENT_COLUMN] > 0, np.rint(df["n"] * 100.0 / df[PERCENT_COLUMN]),
                                          np.nan)
    if not len(df):
        return _finish(df, [], lay, table_name)
    count_cols = [c for c in ("n", "n_missing", "denominator", "_denominator") if c in df.columns]
    cells, shown, coords, sizes = _cells(df, lay, count_cols)
    rel = _relations(cells, shown, coords, sizes, lay)
    cells = cells.assign(hidden=False, action="", rule="")
    k = prof.redact_counts_le
    if k > 0:
        _primary(cells, k, prof.name)
        if prof.secondary_suppression:
            _secondary(cells, rel, shown, k, prof.name)
    actions = _redact_summaries(df, prof)
    final, recomputed = _round_and_recompute(cells, rel, prof)
    at = shown.pivot(index="row", columns="col", values="cell").reindex(range(len(df)))
    actions += _percentages(df, cells, at, final, lay, prof) + _flags(df, cells, at, rel, lay, prof)
    actions += _remove_extremes(df, prof)
    # every displayed count: its published value, and what was done to it
    done = shown.join(cells[["action", "rule", "hidden"]], on="cell")
    for col in count_cols:
        here = shown[shown["col"] == col]
        df[col] = pd.Series(final[here["cell"]], index=here["row"]).reindex(range(len(df))).to_numpy()
    counts = [_actions(done["row"], done["col"], done["action"], done["rule"])[done["hidden"].to_numpy()]]
    if prof.rounding_method is not None:
        how = f"{prof.name}: rounded to {prof.rounding_method} {prof.rounding_base}"
        pub = done[~done["hidden"]]
        counts.append(_actions(pub["row"], pub["col"], "rounded", np.where(
            recomputed[pub["cell"]], f"{prof.name}: total recomputed as the sum of rounded counts", how)))
    safe, report = _finish(df, counts + actions, lay, table_name)
    if sizes is not None:  # the column headers of a Table-1 layout
        sc = cells[cells["is_size"]]
        safe.attrs["group_sizes"] = {
            g: None if h else int(round(v)) if abs(v - round(v)) < _EPS else float(v)
            for g, h, v in zip(sc["gkey"], sc["hidden"], final[sc.index])}
        hidden_headers = sc[(sc["row"] < 0) & sc["hidden"]]
        if len(hidden_headers):
            report = pd.concat([report, pd.DataFrame({
                "output": table_name, "row_key": [f"{lay.group_col}={g}" for g in hidden_headers["gkey"]],
                "column": "group_size", "kind": "group size", "action": hidden_headers["action"].to_numpy(),
                "rule": hidden_headers["rule"].to_numpy()}).astype("str")], ignore_index=True)
    return safe, report


def _finish(df, actions: list, lay: _Layout, table_name: str):
    """Counts as ``Int64`` when integral, the companion columns, and the report."""
    df = df.drop(columns="_denominator", errors="ignore")
    for col in [c for c in COUNT_COLUMNS if c in df.columns]:
        v = df[col].to_numpy(dtype=float)
        if np.all(np.abs(v[np.isfinite(v)] - np.round(v[np.isfinite(v)])) < _EPS):
            df[col] = pd.array(np.where(np.isfinite(v), np.round(v), np.nan), dtype="Float64").astype("Int64")
    acts = pd.concat(actions, ignore_index=True) if actions else _actions([], [], [], [])
    acts = acts[acts["column"] != "_denominator"]
    order = {"_c": acts["column"].map({c: i for i, c in enumerate(df.columns)}),
             "_a": acts["action"].map({a: i for i, a in enumerate(ACTIONS)})}
    acts = acts.assign(**order).sort_values(["row", "_c", "_a"], kind="stable")
    acts = acts.drop_duplicates(["row", "column", "action"])

    def listed(actions, sep):
        return acts[acts["action"].isin(actions)].groupby("row")["column"].agg(sep.join).reindex(
            range(len(df)), fill_value="")

    red = listed(["redacted", "redacted-secondary"], ";")
    parts = [(REDACTED_MARKER + " ", red.str.replace(";", ", ")), ("removed: ", listed(["removed"], ", ")),
             ("flagged: ", listed(["flagged"], ", "))]
    notes = zip(*[np.where(text != "", prefix + text, "") for prefix, text in parts])
    df["redacted"] = (red != "").to_numpy()
    df["redacted_columns"] = pd.Series(red.to_numpy(), dtype="str")
    df["disclosure_note"] = pd.Series(["; ".join(p for p in note if p) for note in notes], dtype="str")
    keys = [k for k in lay.keys if k != "kind"]
    row_key = ["; ".join(f"{k}={v}" for k, v in zip(keys, vals) if pd.notna(v))
               for vals in df[keys].astype(object).itertuples(index=False)] if keys else [""] * len(df)
    rows = acts["row"].to_numpy(dtype=int)
    kind = (df["kind"].astype(object).where(df["kind"].notna(), "").map(str).to_numpy()[rows]
            if "kind" in df.columns else acts["column"].map(_STAT_KIND).fillna("").to_numpy())
    report = pd.DataFrame({"output": [table_name] * len(acts), "row_key": np.asarray(row_key, dtype=object)[rows],
                           "column": acts["column"].to_numpy(), "kind": kind, "action": acts["action"].to_numpy(),
                           "rule": acts["rule"].to_numpy()})
    return df, report.astype({c: "str" for c in REPORT_COLUMNS})
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
