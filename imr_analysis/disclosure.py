"""Statistical disclosure control for every published output of the compendium.

Each output passes a *disclosure profile* (``resources/disclosure_profiles.yaml``; rules and sources: DISCLOSURE.md):
``none`` (default on synthetic data) changes nothing; ``opensafely`` (default on private data) redacts counts of 1-7
patients and rounds counts to the nearest 5; ``opensafely_midpoint6`` uses midpoint-6 rounding; ``sistan_min3``, the
SISTAN legal floor, redacts 1-2 with secondary suppression, no rounding.

:func:`apply_to_long` treats a tidy long table's counts as *cells* tied by *relations* "members (+ an unpublished
remainder) = total" (:func:`_relations`): it redacts counts of 1..k (primary suppression), without rounding redacts
more cells until none can be derived (secondary, :func:`_secondary`), rounds the published counts, recomputes totals
and percentages from them, removes minima/maxima and flags 0%/100% cells (DISCLOSURE.md, "What is applied to each
output"). Redacted values become missing, flagged in ``redacted``, ``redacted_columns``, ``disclosure_note``; the
report lists every action (never the value). Tables of statistics of ``n`` patients pass :func:`apply_to_statistics`.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.linalg import null_space

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


# --- Profiles ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Profile:
    """A named set of disclosure-control rules: the fields of ``disclosure_profiles.yaml``
    (``rounding`` split into method and base); :func:`resolve_profile` fills the last three.

    Examples
    --------
    >>> p = get_profile("opensafely")
    >>> p.redact_counts_le, p.rounding_base, p.allow_microdata, p.secondary_suppression
    (7, 5, False, False)
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
        return not (self.redact_counts_le or self.rounding_method or self.redact_summaries_le
                    or self.remove_min_max or self.flag_zero_hundred)

    def rule_text(self) -> str:
        """Human-readable summary of the rules, e.g. for a table caption."""
        rounding = {"nearest": f"counts rounded to the nearest {self.rounding_base}",
                    "midpoint": f"counts rounded to midpoint {self.rounding_base}"}.get(self.rounding_method)
        recomputed = self.recompute_totals and self.rounding_method
        parts = [self.redact_counts_le and f"counts of 1-{self.redact_counts_le} patients redacted",
                 self.secondary_suppression and "with secondary suppression", rounding,
                 recomputed and "totals and percentages recomputed from rounded counts",
                 self.redact_summaries_le and f"summaries of 1-{self.redact_summaries_le} patients redacted",
                 self.remove_min_max and "minima/maxima removed"]
        return "no disclosure control applied" if self.is_noop else "; ".join(p for p in parts if p)

    def describe(self) -> str:
        """One line for the run's colophon: name, version, rules, how it was chosen."""
        how = "chosen automatically" if self.requested in (None, "", "auto") else "requested explicitly"
        return (f"{self.name} (profile version {self.version}): {self.rule_text()}"
                + (f"; {how} for {self.data_mode} data" if self.data_mode is not None else "")
                + ("; WEAKER than the default for private data (allow_weaker_profile=True)"
                   if self.weaker_than_default else ""))


def _validate_profile(name: str, spec, version: int, path: Path) -> Profile:
    where = f"{path}: profile {name!r}"
    if not isinstance(spec, dict):
        raise DisclosureError(f"{where} must be a mapping")
    if set(spec) != set(_PROFILE_FIELDS):
        raise DisclosureError(f"{where}: missing fields {sorted(set(_PROFILE_FIELDS) - set(spec))}, unknown fields "
                              f"{sorted(set(spec) - set(_PROFILE_FIELDS))}")
    for field, typ in _PROFILE_FIELDS.items():
        if typ is int and (isinstance(spec[field], bool) or not isinstance(spec[field], int) or spec[field] < 0):
            raise DisclosureError(f"{where}: {field} must be a non-negative integer")
        if typ is not int and not isinstance(spec[field], typ):
            raise DisclosureError(f"{where}: {field} has the wrong type ({type(spec[field]).__name__})")
    method, base = (spec["rounding"] or {}).get("method"), (spec["rounding"] or {}).get("base")
    if spec["rounding"] is not None and (method not in ROUNDING_METHODS or type(base) is not int or base < 1):
        raise DisclosureError(f"{where}: rounding must be {{method: nearest|midpoint, base: positive int}}")
    if spec["rounding"] is not None and spec["secondary_suppression"]:
        raise DisclosureError(f"{where}: rounding and secondary_suppression cannot be combined; rounded counts already "
                              "prevent exact differencing (see DISCLOSURE.md, 'Secondary suppression and rounding'): "
                              "set secondary_suppression: false, or drop the rounding")
    fields = {f: v for f, v in spec.items() if f not in ("sources", "rounding")}
    return Profile(name=name, version=version, sources=tuple(str(s) for s in spec["sources"]),
                   rounding_method=method, rounding_base=base, **fields)


@functools.lru_cache(maxsize=8)
def _load(path=None) -> tuple[int, dict[str, str], dict[str, Profile]]:
    path = Path(path or PROFILES_FILE)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not {"version", "defaults", "profiles"} <= set(doc) \
            or type(doc["version"]) is not int:
        raise DisclosureError(f"{path}: expected top-level keys 'version' (an integer), 'defaults' and 'profiles'")
    profiles = {name: _validate_profile(name, spec, doc["version"], path) for name, spec in doc["profiles"].items()}
    defaults = dict(doc["defaults"])
    if set(defaults) != set(DATA_MODES) or not set(defaults.values()) <= set(profiles):
        raise DisclosureError(f"{path}: 'defaults' must map {list(DATA_MODES)} to defined profiles")
    return doc["version"], defaults, profiles


def load_profiles(path: str | Path | None = None) -> dict[str, Profile]:
    """Read and validate the disclosure profiles (None: the packaged YAML file): name -> Profile."""
    return dict(_load(path)[2])


def profiles_version(path: str | Path | None = None) -> int:
    """The ``version`` of the profiles file (recorded in reports and the colophon)."""
    return _load(path)[0]


def get_profile(name: str | Profile, path: str | Path | None = None) -> Profile:
    """The profile called ``name`` (a Profile is returned as it is); unknown names are an error."""
    if isinstance(name, Profile):
        return name
    profiles = load_profiles(path)
    if name not in profiles:
        raise DisclosureError(f"unknown disclosure profile {name!r}; choose from {sorted(profiles)} or 'auto'")
    return profiles[name]


def resolve_profile(requested: str | None, data_mode: str, allow_weaker_profile: bool = False,
                    path: str | Path | None = None) -> Profile:
    """The disclosure profile of a run: ``requested`` by name, or ``"auto"`` (also None or "")
    for the default of ``data_mode``. On private data a profile weaker than the default is
    refused unless ``allow_weaker_profile``.

    Examples
    --------
    >>> resolve_profile("auto", "synthetic").name, resolve_profile("auto", "private").name
    ('none', 'opensafely')
    >>> resolve_profile("none", "private")
    Traceback (most recent call last):
    ...
    imr_analysis.disclosure.DisclosureError: disclosure profile 'none' is weaker than 'opensafely', the default for private data; pass allow_weaker_profile=True to use it (the choice is recorded in the run's colophon)
    """
    if data_mode not in DATA_MODES:
        raise DisclosureError(f"unknown data mode {data_mode!r}; expected one of {list(DATA_MODES)}")
    default = get_profile(_load(path)[1][data_mode], path)
    if requested in (None, "", "auto"):
        return dataclasses.replace(default, data_mode=data_mode, requested="auto")
    profile = get_profile(str(requested), path)
    weaker = data_mode == "private" and profile.strength < default.strength
    if weaker and not allow_weaker_profile:
        raise DisclosureError(
            f"disclosure profile {profile.name!r} is weaker than {default.name!r}, the default for private "
            "data; pass allow_weaker_profile=True to use it (the choice is recorded in the run's colophon)")
    return dataclasses.replace(profile, data_mode=data_mode, requested=str(requested), weaker_than_default=weaker)


def round_counts(values, base: int = 5, method: str = "nearest"):
    """Round non-negative counts: ``nearest`` multiple of ``base`` (halves up), or OpenSAFELY's
    ``midpoint`` rounding ``ceil(x / base) * base - floor(base / 2) * (x != 0)``; NaN stays NaN.

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


# --- Reading a table: layout, cells, relations -----------------------------------------
#: The part each key column plays (see :func:`apply_to_long`); ``den_col`` is ``denominator``,
#: ``_denominator`` (derived from n and percent) or None.
_Layout = collections.namedtuple("_Layout", "keys level_col group_col parent_col tier_col den_col")


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
    den_col = "denominator" if "denominator" in cols else "_denominator" if {PERCENT_COLUMN, "n"} <= set(cols) else None
    return _Layout(keys, level_col, group_col, parent_col, tier_col, den_col)


def _roles(df, lay: _Layout) -> np.ndarray:
    """Each row's place across groups: ``member``, ``subtotal``, ``total`` or None."""
    if lay.group_col is None:
        return np.full(len(df), None, dtype=object)
    if lay.tier_col is not None:
        return np.array([TIER_ROLES.get(str(v).lower()) if pd.notna(v) else None for v in df[lay.tier_col]], object)
    aggregate = _is_total(df[lay.group_col])
    if lay.parent_col is None:
        return np.where(aggregate, "total", "member").astype(object)
    aggregate = aggregate | df[lay.group_col].isna().to_numpy()
    p_total = _is_total(df[lay.parent_col]) | df[lay.parent_col].isna().to_numpy()
    return np.where(aggregate & p_total, "total", np.where(aggregate, "subtotal", "member")).astype(object)


def _group_sizes(df, lay: _Layout, gkey: pd.Series) -> pd.Series | None:
    """Each group's size, the column header "CMHC (n=69)" of a Table-1 layout: the most
    frequent denominator among rows without missing values, else of denominator + missing."""
    if None in (lay.level_col, lay.group_col, lay.den_col) or df[lay.den_col].isna().all():
        return None
    missing = df["n_missing"].fillna(0) if "n_missing" in df.columns else pd.Series(0.0, index=df.index)
    tab = pd.DataFrame({"g": gkey, "size": df[lay.den_col] + missing, "pref": missing.eq(0)}).dropna()
    tab = tab.groupby(["g", "size"]).agg(pref=("pref", "max"), n=("pref", "size")).reset_index()
    tab = tab.sort_values(["g", "pref", "n", "size"], ascending=[True, False, False, False])
    return tab.drop_duplicates("g").set_index("g")["size"]


def _cells(df, lay: _Layout, count_cols: list):
    """Every place a count is shown (``row, col, value, cell, role, ckey, parent, wid, gkey,
    is_size``) and the group sizes (or None). ``cell`` numbers the quantities: a row's ``n``
    is one of its own; a denominator or missing count repeated on the rows of a variable is
    one, and so is a group's size, also when only the column header shows it (``row`` -1).
    Without category levels (Table 2), equal non-zero counts of one row group are one cell
    (a unit's patients: ``n`` of its patient rows, denominator of its module rows). ``ckey``
    names the statistic summed across groups, ``wid`` a variable within a group."""
    K = pd.DataFrame({k: df[k].astype(object).where(df[k].notna(), "<NA>").map(str) for k in lay.keys}, df.index)

    def join(cols):  # key columns joined into one text key
        cols = [c for c in cols if c is not None]
        return functools.reduce(lambda a, b: a + "\x1f" + b, [K[c] for c in cols]) if cols else pd.Series("", df.index)

    dims = {lay.group_col, lay.parent_col, lay.tier_col} - {None}
    within = [k for k in lay.keys if k != lay.level_col]
    wkey, gkey = join(within), join([lay.group_col, lay.parent_col])
    link_key = join([lay.group_col, lay.parent_col, lay.tier_col])
    sizes = _group_sizes(df, lay, gkey)
    size_row = df[lay.den_col].eq(gkey.map(sizes)).to_numpy() if sizes is not None else np.zeros(len(df), bool)
    frames = []
    for col in count_cols:
        rows = np.flatnonzero(df[col].notna())
        value = df[col].to_numpy(dtype=float)[rows]
        key = [("n", r) if col == "n" else ("group_size", gkey.iat[r]) if col == lay.den_col and size_row[r]
               else (col, wkey.iat[r], v) for r, v in zip(rows, value)]
        if lay.level_col is None and lay.group_col is not None:
            key = [("link", link_key.iat[r], v) if v > _EPS else k for r, v, k in zip(rows, value, key)]
        cross = join([k for k in (lay.keys if col == "n" else within) if k not in dims])
        frames.append(pd.DataFrame({"row": rows, "col": col, "value": value, "key": pd.Series(key, dtype=object),
                                    "ckey": col + "\x1d" + cross.to_numpy()[rows]}))
    if sizes is not None:  # group sizes shown nowhere but in the column header
        shown = {k[1] for f in frames for k in f["key"] if k[0] == "group_size"}
        header = [g for g in sizes.index if g not in shown]
        first = pd.Series(np.arange(len(df))).groupby(gkey.to_numpy()).first()[header].to_numpy()
        frames.append(pd.DataFrame({"row": first, "col": "group_size", "value": sizes[header].to_numpy(),
                                    "key": pd.Series([("group_size", g) for g in header], dtype=object),
                                    "ckey": "group_size"}))
    places = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["row", "col", "value", "key"])
    r, ids = places["row"].to_numpy(dtype=int), {}
    parent = (K[lay.parent_col] if lay.parent_col else pd.Series("", df.index)).to_numpy()
    places = places.assign(role=_roles(df, lay)[r], parent=parent[r], wid=pd.factorize(wkey)[0][r],
                           gkey=gkey.to_numpy()[r], cell=[ids.setdefault(k, len(ids)) for k in places["key"]],
                           is_size=[k[0] == "group_size" for k in places["key"]])
    places.loc[places["col"] == "group_size", "row"] = -1
    return places.drop(columns="key"), sizes


#: Relations "members (+ remainder) = total" in the order they are mended: ``members[r, c]`` counts
#: cell ``c`` among the members of relation ``r``; ``total[r]`` is its total's cell, or -1 for a group
#: size read off the column header (known when above k); ``partition``: the levels of one variable.
_Relations = collections.namedtuple("_Relations", "members total total_value remainder partition")


def _relations(places, cells, at, sizes, lay: _Layout) -> _Relations:
    """The relations of the table: the levels of each variable, yes/no rows, denominator +
    missing and levels + missing = group size, then the groups summing to the Total."""
    size_cell = cells.loc[cells["is_size"]].reset_index().set_index("gkey")["cell"]

    def header(g, value):  # the group's size cell, when the group size is this value
        return int(size_cell[g]) if g in size_cell.index and abs(sizes[g] - value) <= _EPS else -1

    parts, rowwise, beside, den_missing, levels_missing, across = [], [], [], [], [], []
    nc = cells[cells["col"] == "n"]
    if lay.den_col is not None and len(nc):
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
            parts.append((list(levels[i]) + ([int(r.M_cell)] if incl[i] else []), int(r.D_cell), r.D,
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
    if lay.group_col is not None and len(cells):  # members sum to the Total (units -> subtotal -> total)
        c = pd.concat([places, cells[cells["is_size"]].reset_index().assign(ckey="group_size")], ignore_index=True)
        c = c.drop_duplicates(["cell", "ckey"]).dropna(subset="role")
        role, ckey = c["role"], c["ckey"]
        if lay.parent_col is not None or lay.tier_col is not None:  # units -> subtotal, subtotals -> total
            has_sub = role.eq("subtotal").groupby(ckey).transform("any")
            steps = [(ckey + "\x1c" + c["parent"].astype(str), role == "member", role == "subtotal"),
                     (ckey, role == np.where(has_sub, "subtotal", "member"), role == "total")]
        else:
            steps = [(ckey, role == "member", role == "total")]
        for skey, is_member, is_total in steps:
            f = c.assign(skey=skey)
            totals = f[is_total].drop_duplicates("skey").set_index("skey")
            for key, m in f[is_member & f["skey"].isin(totals.index)].groupby("skey"):
                t, rem = totals.loc[key], totals.at[key, "value"] - m["value"].sum()
                if rem >= -_EPS:
                    across.append((list(m["cell"]), int(t["cell"]), t["value"], rem, False))
    rels = parts + rowwise + den_missing + levels_missing + beside + across
    members = np.array([np.bincount(rel[0], minlength=len(cells)) for rel in rels], int).reshape(len(rels), len(cells))
    return _Relations(members, *(np.array([rel[i] for rel in rels], dtype=t)
                                 for i, t in ((1, int), (2, float), (3, float), (4, bool))))


# --- Rules ------------------------------------------------------------------------------
def _actions(rows, column, action, rule) -> pd.DataFrame:
    return pd.DataFrame({"row": rows, "column": column, "action": action, "rule": rule})


def _secondary(cells, rel: _Relations, shown, k: int, name: str) -> None:
    """Hide more cells until no redacted cell can be derived from the published ones (and the
    column headers above k). Unsafe relations are mended in order: those revealing a hidden
    cell (by peeling sweep, then relation order), then those whose known total leaves 1..k
    patients unknown; when none is left, one fixing a cell through the whole system. The cell
    hidden is the smallest published non-zero member that is not itself a total (group size,
    denominator, Total or subtotal cell); failing that, among the members and the total, the
    one shown in the fewest places. Ties: the fewest unsafe relations left, the smallest, order.
    """
    value, hidden = cells["value"].to_numpy(dtype=float), cells["hidden"].to_numpy(dtype=bool).copy()
    totals = (rel.total[:, None] == np.arange(len(cells))).astype(int)  # totals[r, c]: c is the total of r
    cells_of = rel.members + totals  # every cell of each relation
    header_unknown = (rel.total < 0) & (rel.total_value <= k + _EPS)  # a column header of 1..k is not published
    own_unknown = (rel.remainder > _EPS) | header_unknown  # relations with an unknown of their own
    total_like = (cells["is_size"] | cells["role"].isin(["total", "subtotal"]) | cells.index.isin(rel.total)
                  | cells.index.isin(shown.loc[shown["col"].isin(["denominator", "_denominator"]), "cell"])).to_numpy()
    places = np.bincount(shown["cell"], minlength=len(cells)) + cells["is_size"].to_numpy(dtype=int)

    def peel(hidden):  # solve relations with one unknown: who revealed each cell, in which sweep
        unknown, by, sweep = hidden.copy(), np.full(len(hidden), -1), np.zeros(len(hidden))
        for n_sweep in itertools.count(1):
            single = np.flatnonzero((cells_of @ unknown == 1) & ~own_unknown)
            revealed = [np.flatnonzero(cells_of[r] * unknown)[0] for r in single]
            for r, c in reversed(list(zip(single, revealed))):  # the first relation wins
                by[c], sweep[c] = r, n_sweep
            if not revealed:
                return unknown, by, sweep
            unknown[revealed] = False

    def unsafe(hidden):
        unknown, by, sweep = peel(hidden)
        leaked = np.flatnonzero(hidden & ~unknown)
        total_known = np.where(rel.total >= 0, ~unknown[rel.total], ~header_unknown)
        mass = rel.members @ np.where(unknown, value, 0.0) + np.where(rel.remainder > _EPS, rel.remainder, 0)
        small = np.flatnonzero(total_known & (mass > _EPS) & (mass <= k + _EPS))
        todo = np.r_[by[leaked], small]
        return todo[np.lexsort((todo, np.r_[sweep[leaked], np.zeros(len(small))],
                                np.r_[np.zeros(len(leaked)), np.ones(len(small))]))]

    def determined(hidden):
        """Relations fixing a hidden cell through the whole system: a cell is fixed iff its coordinate
        vanishes on the null space of the relations on the unknowns; they are those of y'A = e_cell."""
        unk = np.flatnonzero(hidden)
        A = np.hstack([(rel.members - totals)[:, unk], np.eye(len(own_unknown))[:, own_unknown]])
        rows = np.flatnonzero(np.abs(A).sum(axis=1) > 0)
        if not len(unk) or not len(rows):
            return []
        A = A[rows]
        fixed = np.flatnonzero(np.all(np.abs(null_space(A)[: len(unk)]) < 1e-8, axis=1))
        return [rows[np.abs(np.linalg.lstsq(A.T, np.eye(A.shape[1])[i], rcond=None)[0]) > 1e-8] for i in fixed]

    def choose(relations):  # the cell to hide to mend the first relation that can be mended
        for r in relations:
            cand = np.flatnonzero((rel.members[r] > 0) & ~hidden & (value > _EPS))
            own = [rel.total[r]] if rel.total[r] >= 0 and not hidden[rel.total[r]] else []
            if len(plain := cand[~total_like[cand]]):
                best = plain[value[plain] <= value[plain].min() + _EPS]
            elif len(pool := np.union1d(cand, own).astype(int)):
                best = pool[places[pool] == places[pool].min()]
            else:
                continue
            return min(best, key=lambda c: (len(best) > 1 and len(unsafe(hidden | (np.arange(len(hidden)) == c))),
                                            value[c], c))
        return None

    for _ in range(len(cells) + 1):
        pick = choose(unsafe(hidden))
        if pick is None:  # nothing left to mend by peeling: check the whole system
            pick = next((p for chain in determined(hidden) if (p := choose(chain)) is not None), None)
        if pick is None:
            break
        hidden[pick] = True
        cells.loc[pick, ["hidden", "action", "rule"]] = [
            True, "redacted-secondary", f"{name}: secondary suppression (else derivable from published cells)"]


def _round_and_recompute(cells, rel: _Relations, prof: Profile):
    """Published counts rounded; a total whose members are all published becomes their sum (first
    relation, repeated until totals of totals settle). Returns each cell's published value (NaN:
    hidden) and which totals were recomputed."""
    hidden = cells["hidden"].to_numpy(dtype=bool)
    final = np.where(hidden, np.nan, cells["value"].to_numpy(dtype=float))
    recomputed = np.zeros(len(cells), dtype=bool)
    if prof.rounding_method is not None:
        final[~hidden] = round_counts(final[~hidden], prof.rounding_base, prof.rounding_method)
    exact = np.flatnonzero((rel.total >= 0) & (np.abs(rel.remainder) <= _EPS))
    for _ in range(32 if prof.rounding_method is not None and prof.recompute_totals else 0):
        ok = exact[(rel.members[exact] @ hidden == 0) & ~hidden[rel.total[exact]]]
        totals, first = np.unique(rel.total[ok], return_index=True)  # the first relation of each total
        sums = rel.members[ok[first]] @ np.where(hidden, 0.0, final)
        recomputed[totals] = True
        if not (changed := np.abs(final[totals] - sums) > _EPS).any():
            break
        final[totals[changed]] = sums[changed]
    return final, recomputed


def _per_row(at: pd.DataFrame, col, values) -> np.ndarray:
    """``values[cell]`` of the cell shown in each row's column ``col`` (NaN where none)."""
    cell = at[col] if col in at.columns else pd.Series(np.nan, index=at.index)
    return cell.map(pd.Series(values)).to_numpy(dtype=float)


def _percentages(df, cells, at, final, lay: _Layout, prof: Profile) -> list:
    """A percentage of a hidden count or over a hidden denominator is redacted (with the
    count's action); with rounding, the others are recomputed from the rounded counts."""
    if PERCENT_COLUMN not in df.columns or "n" not in df.columns:
        return []
    n_h, d_h = (_per_row(at, col, cells["hidden"].to_numpy(dtype=float)) == 1 for col in ("n", lay.den_col))
    hide = (had := df[PERCENT_COLUMN].notna().to_numpy()) & (n_h | d_h)
    src = np.where(n_h, at.get("n", np.nan), at.get(lay.den_col, np.nan))[hide].astype(int)
    out = [_actions(np.flatnonzero(hide), PERCENT_COLUMN, cells["action"].to_numpy()[src],
                    cells["rule"].to_numpy()[src] + " (percent of a redacted count)")]
    pct = np.where(hide, np.nan, df[PERCENT_COLUMN].to_numpy(dtype=float))
    if prof.rounding_method is not None:
        n, d = _per_row(at, "n", final), _per_row(at, lay.den_col, final)
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(had & ~hide & np.isfinite(n) & np.isfinite(d) & (d > 0), 100.0 * n / d,
                           np.where(had & ~hide & (d == 0), np.nan, pct))
        out.append(_actions(np.flatnonzero(had & ~hide), PERCENT_COLUMN, "rounded",
                            f"{prof.name}: percent recomputed from rounded counts"))
    df[PERCENT_COLUMN] = pct
    return out


def _flags(df, cells, at, rel: _Relations, lay: _Layout, prof: Profile) -> list:
    """0% and 100% cells (an attribute of everyone in the group), and zero levels that make
    the only non-zero level the whole group, are flagged (they stay published)."""
    if not prof.flag_zero_hundred or "n" not in df.columns:
        return []
    value, hidden = cells["value"].to_numpy(dtype=float), cells["hidden"].to_numpy(dtype=bool)
    n, d = _per_row(at, "n", value), _per_row(at, lay.den_col, value)
    published = (_per_row(at, "n", hidden) == 0) & (_per_row(at, lay.den_col, hidden) == 0)  # both cells shown
    extreme = published & (d > 0) & ((n <= _EPS) | (np.abs(n - d) <= _EPS))
    in_pct = df[PERCENT_COLUMN].notna().to_numpy() if PERCENT_COLUMN in df.columns else np.zeros(len(df), bool)
    rule = f"{prof.name}: 0% or 100% of the group (an attribute of everyone in it)"
    out = [_actions(np.flatnonzero(extreme & ~in_pct), "n", "flagged", rule),
           _actions(np.flatnonzero(extreme & in_pct), PERCENT_COLUMN, "flagged", rule)]
    levels = rel.members[rel.partition & (np.abs(rel.remainder) <= _EPS)] * (cells["col"] == "n").to_numpy()
    one_nonzero = levels[(levels * (value > _EPS)).sum(axis=1) == 1]
    zero = (one_nonzero > 0).any(axis=0) & (value <= _EPS) & ~hidden
    return out + [_actions(np.unique(cells["row"].to_numpy()[zero]), "n", "flagged",
                           f"{prof.name}: zero cell makes its complement the whole group")]


def _summaries(df, prof: Profile) -> list:
    """Means, SDs, medians and quartiles of rows whose ``n`` is 1..k are redacted; minima
    and maxima, which describe single patients, are removed."""
    ks, out = prof.redact_summaries_le, []
    small = ((df["n"] > _EPS) & (df["n"] <= ks + _EPS)).to_numpy() if "n" in df.columns else np.zeros(len(df), bool)
    for c in [c for c in SUMMARY_COLUMNS if c in df.columns and ks > 0]:
        out.append(_actions(np.flatnonzero(hit := small & df[c].notna().to_numpy()), c, "redacted",
                            f"{prof.name}: summary of <= {ks} patients"))
        df.loc[hit, c] = np.nan
    for c in [c for c in EXTREME_COLUMNS if c in df.columns and prof.remove_min_max]:
        out.append(_actions(np.flatnonzero(df[c].notna()), c, "removed",
                            f"{prof.name}: minima/maxima describe single patients"))
        df[c] = np.nan
    return out


# --- The disclosure-control pass --------------------------------------------------------
def apply_to_long(long_df, profile, table_name: str, *, level_col="auto", group_col="auto",
                  parent_col="auto", tier_col="auto"):
    """Apply a disclosure profile (a Profile or its name) to a tidy long table.

    ``long_df`` has key columns (Table 1: ``variable, level, group, kind``; Table 2: ``unit, service_type, level,
    measure``, ``level`` the tier unit/type/total; a simple table: a row "Total", "Overall" or "All") and statistics
    among :data:`STAT_COLUMNS` (without ``denominator``, it comes from ``n`` and ``percent``); ``*_col`` override the
    detected layout. Returns the protected table (redacted values missing, counts ``Int64``, the companion columns;
    ``attrs["group_sizes"]``: each Table-1 column's size, None if redacted) and the report, one row per action.

    Examples
    --------
    >>> long = pd.DataFrame({
    ...     "variable": "sex", "level": ["M", "F"] * 4,
    ...     "group": ["CMHC", "CMHC", "SerD", "SerD", "EDP", "EDP", "Total", "Total"],
    ...     "n": [40, 29, 30, 22, 2, 3, 72, 54], "denominator": [69, 69, 52, 52, 5, 5, 126, 126]})
    >>> safe, report = apply_to_long(long, "opensafely", "demo")
    >>> safe["n"].tolist()  # EDP redacted; rounding keeps Total - CMHC - SerD from revealing it
    [40, 30, 30, 20, <NA>, <NA>, 70, 55]
    >>> safe["denominator"].tolist()  # recomputed: 40 + 30 = 70, 30 + 20 = 50, 70 + 55 = 125
    [70, 70, 50, 50, <NA>, <NA>, 125, 125]

    Without rounding (``sistan_min3``) EDP's 2 men need secondary cells among the members: EDP's women (else
    5 - 3), SerD's men (else 72 - 40 - 30) and, in turn, SerD's women:

    >>> safe, report = apply_to_long(long, "sistan_min3", "demo")
    >>> safe["n"].tolist()
    [40, 29, <NA>, <NA>, <NA>, <NA>, 72, 54]
    >>> safe.attrs["group_sizes"]
    {'CMHC': 69, 'SerD': 52, 'EDP': 5, 'Total': 126}
    """
    prof = get_profile(profile)
    if not isinstance(long_df, pd.DataFrame):
        raise TypeError("long_df must be a pandas DataFrame")
    if already := [c for c in COMPANION_COLUMNS if c in long_df.columns]:
        raise DisclosureError(f"{table_name}: the table already has {already}: it has been through "
                              "disclosure control once; pass the original long table")
    df = long_df.reset_index(drop=True).copy()
    for c in [c for c in STAT_COLUMNS if c in df.columns]:
        try:
            df[c] = pd.to_numeric(df[c]).astype(float)
        except (TypeError, ValueError) as exc:
            raise DisclosureError(f"{table_name}: column {c!r} must be numeric ({exc})") from None
    for c in [c for c in COUNT_COLUMNS if c in df.columns and (df[c] < 0).any()]:
        raise DisclosureError(f"{table_name}: column {c!r} has negative counts")
    lay = _layout(df, level_col, group_col, parent_col, tier_col)
    if wide := [k for k in lay.keys if _STATLIKE.search(str(k)) and pd.api.types.is_numeric_dtype(df[k])]:
        raise DisclosureError(f"{table_name}: columns {wide} look like statistics but are not among the known "
                              f"statistic columns {list(STAT_COLUMNS)}; pass a tidy long table (one row per cell, "
                              "statistics in those columns) so that they can be protected")
    if lay.den_col == "_denominator":
        with np.errstate(divide="ignore", invalid="ignore"):
            df["_denominator"] = np.where(df[PERCENT_COLUMN] > 0, np.rint(df["n"] * 100.0 / df[PERCENT_COLUMN]), np.nan)
    if not len(df):
        return _finish(df, [], lay, table_name)
    count_cols = [c for c in ("n", "n_missing", "denominator", "_denominator") if c in df.columns]
    places, sizes = _cells(df, lay, count_cols)
    shown = places[places["row"] >= 0]
    cells = places.drop_duplicates("cell").set_index("cell").assign(hidden=False, action="", rule="")
    at = shown.pivot(index="row", columns="col", values="cell").reindex(range(len(df)))
    rel = _relations(places, cells, at, sizes, lay)
    if (k := prof.redact_counts_le) > 0:  # primary suppression: counts of 1..k patients (zero is kept)
        small = (cells["value"] > _EPS) & (cells["value"] <= k + _EPS)
        cells.loc[small, ["hidden", "action", "rule"]] = [True, "redacted", f"{prof.name}: count <= {k}"]
        if prof.secondary_suppression:
            _secondary(cells, rel, shown, k, prof.name)
    actions = _summaries(df, prof)
    final, recomputed = _round_and_recompute(cells, rel, prof)
    actions += _percentages(df, cells, at, final, lay, prof) + _flags(df, cells, at, rel, lay, prof)
    for col in count_cols:  # the published counts, and what was done to each
        here = shown[shown["col"] == col]
        df[col] = pd.Series(final[here["cell"]], index=here["row"]).reindex(range(len(df))).to_numpy()
    done = shown.join(cells[["action", "rule", "hidden"]], on="cell")
    red, pub = done[done["hidden"]], done[~done["hidden"]]
    actions.insert(0, _actions(red["row"], red["col"], red["action"], red["rule"]))
    if prof.rounding_method is not None:
        actions.insert(1, _actions(pub["row"], pub["col"], "rounded", np.where(
            recomputed[pub["cell"]], f"{prof.name}: total recomputed as the sum of rounded counts",
            f"{prof.name}: rounded to {prof.rounding_method} {prof.rounding_base}")))
    safe, report = _finish(df, actions, lay, table_name)
    if sizes is not None:  # the column headers of a Table-1 layout
        sc = cells[cells["is_size"]]
        safe.attrs["group_sizes"] = {g: None if h else int(round(v)) if abs(v - round(v)) < _EPS else float(v)
                                     for g, h, v in zip(sc["gkey"], sc["hidden"], final[sc.index])}
        sc = sc[(sc["row"] < 0) & sc["hidden"]]
        report = pd.concat([report, pd.DataFrame({
            "output": table_name, "row_key": [f"{lay.group_col}={g}" for g in sc["gkey"]], "column": "group_size",
            "kind": "group size", "action": sc["action"], "rule": sc["rule"]}).astype("str")], ignore_index=True)
    return safe, report


def _finish(df, actions: list, lay: _Layout, table_name: str):
    """Counts as ``Int64`` when integral, the companion columns, and the report."""
    df = df.drop(columns="_denominator", errors="ignore")
    for col in [c for c in COUNT_COLUMNS if c in df.columns]:
        v = df[col].to_numpy(dtype=float)
        if np.all(np.abs(v[np.isfinite(v)] - np.round(v[np.isfinite(v)])) < _EPS):
            df[col] = pd.array(np.where(np.isfinite(v), np.round(v), np.nan), dtype="Float64").astype("Int64")
    actions = [a for a in actions if len(a)]
    acts = pd.concat(actions, ignore_index=True) if actions else _actions([], [], [], [])
    acts = acts[acts["column"] != "_denominator"].assign(
        _c=acts["column"].map({c: i for i, c in enumerate(df.columns)}),
        _a=acts["action"].map({a: i for i, a in enumerate(ACTIONS)}))
    acts = acts.sort_values(["row", "_c", "_a"], kind="stable").drop_duplicates(["row", "column", "action"])

    def listed(actions, sep=", "):  # per row: the columns that had these actions
        cols = acts[acts["action"].isin(actions)].groupby("row")["column"].agg(sep.join)
        return cols.astype("str").reindex(range(len(df)), fill_value="")

    red, removed, flagged = listed(["redacted", "redacted-secondary"], ";"), listed(["removed"]), listed(["flagged"])
    notes = zip(np.where(red != "", REDACTED_MARKER + " " + red.str.replace(";", ", "), ""),
                np.where(removed != "", "removed: " + removed, ""), np.where(flagged != "", "flagged: " + flagged, ""))
    df["redacted"], df["redacted_columns"] = (red != "").to_numpy(), pd.Series(red.to_numpy(), dtype="str")
    df["disclosure_note"] = pd.Series(["; ".join(p for p in note if p) for note in notes], dtype="str")
    keys = [k for k in lay.keys if k != "kind"]
    row_key = np.array(["; ".join(f"{k}={v!s}" for k, v in zip(keys, vals) if pd.notna(v))
                        for vals in df[keys].astype(object).itertuples(index=False)] if keys else [""] * len(df))
    rows = acts["row"].to_numpy(dtype=int)
    kind = (df["kind"].astype(object).where(df["kind"].notna(), "").map(str).to_numpy()[rows]
            if "kind" in df.columns else acts["column"].map(_STAT_KIND).fillna("").to_numpy())
    return df, pd.DataFrame({"output": [table_name] * len(acts), "row_key": row_key[rows], "kind": kind,
                             **acts[["column", "action", "rule"]].reset_index(drop=True)})[REPORT_COLUMNS].astype("str")


# --- Tables of statistics (the agreement tables) -----------------------------------------
def _subgroup_secondary(table, n, primary, count_row, counts) -> np.ndarray:
    """Rows to hide so that a lone hidden subgroup (service) cannot be derived from the others."""
    secondary = np.zeros(len(table), bool)
    section = table["section"].astype(str) if "section" in table.columns else pd.Series("", index=table.index)
    group = table["service_type"].astype(object) if "service_type" in table.columns \
        else section.where(section.str.startswith("by service:"))
    g, in_group = group.to_numpy(dtype=object), group.notna().to_numpy()
    stat = in_group & ~count_row
    size = pd.Series(n[stat]).groupby(g[stat], sort=False).max()   # a subgroup's size: its largest n
    hidden = set(g[stat & primary])
    shown = size[(size > 0) & ~size.index.isin(hidden)]
    if len(hidden) == 1 and len(shown):
        secondary |= stat & (g == shown.sort_values(kind="stable").index[0])
    for measure in counts if count_row.any() else []:   # counts per subgroup: the same rule
        rows = in_group & count_row & (table["measure"] == measure).to_numpy()
        open_rows = np.flatnonzero(rows & ~primary & (n > 0))
        if len(set(g[rows & primary])) == 1 and len(open_rows):
            secondary[open_rows[np.argsort(n[open_rows], kind="stable")[0]]] = True
    return secondary


def apply_to_statistics(table, profile, table_name: str, counts=()):
    """Apply a disclosure profile to a table whose rows are statistics of ``n`` patients.

    *Primary*: redact the statistics (numeric columns but ``n``, ``item``, ``n_items``) of rows of
    1..``redact_summaries_le`` patients, ``n`` of 1..``redact_counts_le``, a row whose ``measure`` is in ``counts``
    (a count, published as its ``n``) likewise, and a percentage row ("... (%)") with 1..``redact_counts_le`` patients
    in or out of it. *Secondary*, without rounding: if a single subgroup (``service_type``, or a section "by service:
    ...") is hidden, so is the smallest other. Counts are then rounded. Returns the table and report as
    :func:`apply_to_long`.

    Examples
    --------
    >>> t = pd.DataFrame({"service_type": ["CMHC", "SerD", "EDP"], "measure": "Pearson r",
    ...                   "estimate": [0.8, 0.7, 0.9], "n": [69, 52, 5], "note": ""})
    >>> safe, report = apply_to_statistics(t, "opensafely", "demo")
    >>> safe["estimate"].tolist(), safe["n"].tolist(), report["action"].tolist()
    ([0.8, 0.7, nan], [70, 50, <NA>], ['rounded', 'rounded', 'redacted', 'redacted'])
    >>> apply_to_statistics(t.assign(n=[69, 52, 2]), "sistan_min3", "demo")[0]["n"].tolist()  # secondary
    [69, <NA>, <NA>]
    """
    prof = get_profile(profile)
    if "n" not in table.columns:
        raise DisclosureError(f"{table_name}: apply_to_statistics needs an 'n' column (patients)")
    out = table.copy()
    if prof.is_noop:
        return out, empty_report()
    n = pd.to_numeric(out["n"], errors="coerce").to_numpy(dtype=float)
    count_row = out["measure"].isin(counts).to_numpy() if "measure" in out else np.zeros(len(out), bool)
    stat_cols = [c for c in out.columns if c not in ("n", "item", "n_items", *COMPANION_COLUMNS)
                 and pd.api.types.is_numeric_dtype(out[c])]
    small_count = (n >= 1) & (n <= prof.redact_counts_le)
    # a percentage of the row's n patients (measure "... (%)") implies two counts, k and n - k: both must pass
    pct_row = out["measure"].astype(str).str.endswith("(%)").to_numpy() if "measure" in out else count_row & False
    k = np.rint(pd.to_numeric(out.get("estimate", np.nan), errors="coerce") / 100 * n)
    small_part = pct_row & (np.fmin(k, n - k) >= 1) & (np.fmin(k, n - k) <= prof.redact_counts_le)
    small_group = ((n >= 1) & (n <= prof.redact_summaries_le)) | (count_row & small_count)
    primary = small_group | small_part  # a percentage hides its own row, not its subgroup
    secondary = (_subgroup_secondary(out, n, small_group, count_row, counts) if prof.secondary_suppression
                 else np.zeros(len(out), bool))
    hide = primary | secondary
    new_n = np.where(hide | small_count, np.nan, n)
    new_n = round_counts(new_n, prof.rounding_base, prof.rounding_method) if prof.rounding_method else new_n
    values = {c: np.where(hide, np.nan, out[c].to_numpy(dtype=float, na_value=np.nan)) for c in stat_cols}
    rule_sum = f"{prof.name}: statistics of 1-{prof.redact_summaries_le} patients"
    rule_sec = f"{prof.name}: secondary suppression (single hidden subgroup)"
    keys = [c for c in ("section", "service_type", "version", "item", "label", "item_label", "measure") if c in out]
    cells = out[keys].astype(object).where(out[keys].notna(), "")
    row_keys = ["|".join(f"{c}={v}" for c, v in zip(keys, row)) if keys else f"row={i}"
                for i, row in enumerate(cells.itertuples(index=False))]
    n_sec = secondary & ~primary & ~small_count  # an n hidden only to protect another subgroup
    est = values.get("estimate", np.full(len(out), np.nan))
    # what was done where: (rows, column, kind, action, rule), actions and rules one per row or for all
    done = [(hide & out[c].notna().to_numpy(), c, "summary", np.where(primary, "redacted", "redacted-secondary"),
             np.where(primary, rule_sum, rule_sec)) for c in stat_cols]
    done += [(~np.isnan(n) & np.isnan(new_n), "n", "count", np.where(n_sec, "redacted-secondary", "redacted"),
              np.where(n_sec, rule_sec, f"{prof.name}: counts of 1-{prof.redact_counts_le} patients")),
             (~np.isnan(new_n) & bool(prof.rounding_method), "n", "count", "rounded",
              f"{prof.name}: {prof.rounding_method} {prof.rounding_base}"),
             (count_row & ~np.isnan(est) & (est != new_n), "estimate", "count",  # a count is published as its n
              np.where(np.isnan(new_n), "redacted", "rounded"), f"{prof.name}: count row follows its n")]
    acts = pd.concat([pd.DataFrame({"row": np.flatnonzero(rows), "column": col, "kind": kind,
                                    "action": np.broadcast_to(action, rows.shape)[rows],
                                    "rule": np.broadcast_to(rule, rows.shape)[rows]})
                      for rows, col, kind, action, rule in done]).sort_values("row", kind="stable")
    red = acts[acts["action"].str.startswith("redacted")].groupby("row")["column"].agg(";".join)
    red = red.reindex(range(len(out)), fill_value="")
    for c in stat_cols:
        out[c] = np.where(count_row, new_n, values[c]) if c == "estimate" else values[c]
    out["n"] = pd.array(np.where(np.isnan(new_n), None, new_n), dtype="Int64") if len(out) else out["n"].astype("Int64")
    if "note" in out.columns:
        out["note"] = np.where(hide, REDACTED_MARKER, out["note"].astype(object))
    out["redacted"], out["redacted_columns"] = (red != "").to_numpy(), red.to_numpy()
    out["disclosure_note"] = np.select([secondary, hide, small_count], [rule_sec, rule_sum, "n redacted"], "")
    report = acts.assign(output=table_name, row_key=np.array(row_keys, dtype=object)[acts["row"].to_numpy(dtype=int)])
    return out, report[REPORT_COLUMNS].reset_index(drop=True) if len(report) else empty_report()


# --- Report, display and figure policy ----------------------------------------
def empty_report():
    """An empty report with the report's columns."""
    return pd.DataFrame({c: pd.Series(dtype="str") for c in REPORT_COLUMNS})


def mark_redacted(safe_df, marker: str = REDACTED_MARKER):
    """A display copy of a protected table: ``marker`` in every redacted cell, without
    ``redacted`` and ``redacted_columns`` (a table without them is copied as it is).

    Examples
    --------
    >>> t = pd.DataFrame({"group": ["A", "B", "Total"], "n": [3, 20, 23]})
    >>> mark_redacted(apply_to_long(t, "opensafely", "t")[0])["n"].tolist()
    ['[REDACTED]', 20, 25]
    """
    if "redacted_columns" not in safe_df.columns:
        return safe_df.copy()
    out = safe_df.drop(columns=["redacted", "redacted_columns"]).astype(object)
    redacted = safe_df["redacted_columns"].fillna("").astype(str).str.split(";")
    for col in out.columns:
        hit = redacted.map(lambda cols, c=col: c in cols).to_numpy(dtype=bool)
        if hit.any():
            out[col] = np.where(hit, marker, out[col].to_numpy(dtype=object))
    return out


def figure_policy(profile) -> dict:
    """What figures may draw under a profile: ``figure1`` (``"per_patient"`` or ``"aggregate"``),
    ``bland_altman_show_points``, ``min_count`` (the smallest count shown), ``rounding``, a ``note``.

    Examples
    --------
    >>> figure_policy("opensafely")["figure1"], figure_policy("none")["bland_altman_show_points"]
    ('aggregate', True)
    """
    prof = get_profile(profile)
    allow = bool(prof.allow_microdata)
    note = (("" if prof.is_noop else f"Disclosure control: {prof.rule_text()}.") if allow else
            f"Disclosure control ({prof.name}): per-patient marks are not shown; aggregated counts follow the "
            f"table rules ({prof.rule_text()}).")
    return {"profile": prof.name, "allow_microdata": allow, "figure1": "per_patient" if allow else "aggregate",
            "bland_altman_show_points": allow, "min_count": prof.redact_counts_le + 1,
            "rounding": None if prof.rounding_method is None else f"{prof.rounding_method} {prof.rounding_base}",
            "note": note}
