"""Table 2: services where IMR was implemented, modules and sessions administered.

* :func:`table2_long` - tidy numbers for each of the ten service units, each service
  type and the total: patients, group format, IMR duration, sessions, modules per
  patient and the patients receiving each module M1-M11.
* :func:`table2_tests` - sessions, modules per patient and duration compared across
  service types (ANOVA and Kruskal-Wallis) and CMHC vs SerD (t-test and
  Mann-Whitney U), with the reported test chosen as in :mod:`imr_analysis.stats`.
* :func:`module_frequency` - modules ranked by how many patients received them,
  overall and by service type.
* :func:`format_table2` - the display table.

Examples
--------
>>> import pandas as pd
>>> cohort = pd.DataFrame({"service_type": ["CMHC", "CMHC", "SerD"],
...     "service_unit": ["CMHC Cento", "CMHC Ferrara", "SerD Cento"],
...     "imr_format": ["group", "individual", "group"], "imr_duration_months": [3.0, 6.0, 9.0],
...     "n_sessions": [10, 20, 30], "n_modules": [1, 2, 1],
...     **{f"module_{k:02d}": [k == 1, k <= 2, k == 6] for k in range(1, 12)}})
>>> long = table2_long(cohort)
>>> long.query("level == 'total' and measure == 'n_sessions'")[["n", "mean", "min", "max"]].to_numpy().tolist()
[[3.0, 20.0, 10.0, 30.0]]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from . import stats as st
from .constants import MODULE_COLUMNS, MODULES, SERVICE_UNITS
from .table1 import (
    ALL_SERVICES,
    _float_values,
    _given,
    _median_sorted,
    _number,
    format_count_percent,
    format_mean_sd,
    format_p,
    require_columns,
    service_codes,
    stacked_mean_sd,
)

ALL = "All"
LEVELS = ("unit", "service_type", "total")
CONTINUOUS_MEASURES = ("imr_duration_months", "n_sessions", "n_modules")
MEASURES = ("patients", "group_format") + CONTINUOUS_MEASURES + tuple(MODULE_COLUMNS)
MEASURE_LABELS = {
    "patients": "Patients, n (%)",
    "group_format": "Group format, n (%)",
    "imr_duration_months": "IMR duration, months, mean (SD) [range]",
    "n_sessions": "Sessions, mean (SD) [range]",
    "n_modules": "Modules per patient, mean (SD) [range]",
    **{c: f"M{k}, n (%)" for k, c in zip(MODULES, MODULE_COLUMNS)},
}
LONG_COLUMNS = ["unit", "service_type", "level", "measure", "n", "denominator", "percent",
                "mean", "sd", "median", "min", "max"]
REQUIRED = ["service_type", "service_unit", "imr_format", *CONTINUOUS_MEASURES, *MODULE_COLUMNS]
TEST_VARIABLES = ("n_sessions", "n_modules", "imr_duration_months")


def _unit_entities(data_units: pd.Series, data_types: pd.Series, codes: np.ndarray,
                   groups: list[str]) -> tuple[list[tuple[str, str]], np.ndarray]:
    """The (unit, service type) rows of Table 2 and each patient's row among them (-1: none).

    Units of the vocabulary (:data:`SERVICE_UNITS`) of the included types come in
    its order, units outside it follow within their type, sorted; a unit recorded
    under a type other than its own raises ``ValueError``. One pass over the unit
    column (:func:`imr_analysis.stats.level_codes`, else :func:`pandas.factorize`).
    """
    known = list(SERVICE_UNITS)
    unit = st.level_codes(data_units, known)
    names = known
    if unit is None:
        unit, uniques = pd.factorize(data_units)
        names = list(uniques)
    n_groups = len(groups)
    selected = (codes >= 0) & (unit >= 0)
    pairs = np.bincount(unit[selected].astype(np.int64) * n_groups + codes[selected],
                        minlength=len(names) * n_groups).reshape(len(names), n_groups)
    own_type = {u: v["service_type"] for u, v in SERVICE_UNITS.items()}
    if any(names[u] in own_type and own_type[names[u]] != groups[g] for u, g in zip(*np.nonzero(pairs))):
        observed = pd.DataFrame({"service_unit": data_units, "service_type": data_types})[codes >= 0]
        observed = observed.astype("str")  # plain text: comparing categoricals needs equal categories
        observed = observed.drop_duplicates()
        mismatch = observed.loc[observed["service_unit"].isin(SERVICE_UNITS)
                                & (observed["service_unit"].map(own_type) != observed["service_type"])]
        raise ValueError("service_unit and service_type disagree for "
                         f"{mismatch.to_dict('records')}; check the cleaned cohort")
    entities: list[tuple[str, str]] = []
    for g_idx, g in enumerate(groups):
        entities += [(u, t) for u, t in own_type.items() if t == g]
        extra = [names[u] for u in np.flatnonzero(pairs[:, g_idx]) if names[u] not in own_type]
        entities += sorted((u, g) for u in extra)
    position = {e: i for i, e in enumerate(entities)}
    lookup = np.full((len(names), max(n_groups, 1)), -1, dtype=np.int64)
    for u_idx, name in enumerate(names):
        for g_idx, g in enumerate(groups):
            lookup[u_idx, g_idx] = position.get((name, g), -1)
    row_entity = np.full(len(codes), -1, dtype=np.int64)
    row_entity[selected] = lookup[unit[selected], codes[selected]]
    return entities, row_entity


def _table2_long(cohort: pd.DataFrame, services: Sequence[str] | None = None,
                 modules_only: bool = False) -> pd.DataFrame:
    """:func:`table2_long`; ``modules_only`` keeps the module rows of the type and total levels."""
    require_columns(cohort, REQUIRED)
    codes, groups = service_codes(cohort, services)
    selected = codes >= 0
    if not selected.all():  # copy only the columns used
        cohort, codes = cohort.loc[selected, REQUIRED], codes[selected]
    n_groups = len(groups)
    n_total = float(len(codes))
    if modules_only:
        units: list[tuple[str, str]] = []
        unit_codes = np.full(len(codes), -1, dtype=np.int64)
    else:
        units, unit_codes = _unit_entities(cohort["service_unit"], cohort["service_type"], codes, groups)
    entities = pd.DataFrame(
        [("unit", u, t) for u, t in units]
        + [("service_type", ALL, t) for t in groups]
        + [("total", ALL, ALL)],
        columns=["level", "unit", "service_type"],
    )
    n_units = len(units)
    n_entities = len(entities)
    # each patient counts under its unit, its service type and the total: count once per
    # cell (its unit, or its type when the unit is missing) and add the cells up
    cell = np.where(unit_codes >= 0, unit_codes, n_units + codes).astype(np.int32)
    cell_type = np.array([groups.index(t) for _, t in units] + list(range(n_groups)), dtype=np.int64)
    n_cells = n_units + n_groups
    cell2 = cell * np.int32(2)

    def roll_up(per_cell: np.ndarray) -> np.ndarray:
        """Cell counts -> counts of the units, the service types and the total (entity order)."""
        per_type = np.bincount(cell_type, weights=per_cell, minlength=n_groups)
        return np.concatenate([per_cell[:n_units], per_type, [per_cell.sum()]]).astype("float64")

    def count(mask: np.ndarray | None = None) -> np.ndarray:
        """Patients (with ``mask`` true) per entity."""
        if mask is None:
            return roll_up(np.bincount(cell, minlength=n_cells).astype("float64"))
        return roll_up(np.bincount(cell2 + mask.view(np.int8), minlength=2 * n_cells)[1::2].astype("float64"))

    def entity_sorted(x: np.ndarray) -> list[np.ndarray]:
        """Sorted non-missing values of each entity (units, service types, total)."""
        keep = ~np.isnan(x)
        xs, cs = (x, cell) if keep.all() else (x[keep], cell[keep])
        encoding = st._distinct_encoding(xs)
        if encoding is None:
            per_unit = st.sorted_by_group(xs, cs, n_units)
            per_type = st.sorted_by_group(xs, cell_type[cs], n_groups, total=True)
            return per_unit + per_type
        distinct, index = encoding
        width = len(distinct)
        per_cell = np.bincount(cs.astype(np.int64) * width + index,
                               minlength=n_cells * width).reshape(n_cells, width)
        per_type = np.zeros((n_groups, width), dtype=np.int64)
        np.add.at(per_type, cell_type, per_cell)
        rows = list(per_cell[:n_units]) + list(per_type) + [per_cell.sum(axis=0)]
        return [np.repeat(distinct, r) for r in rows]

    keys = [unit_codes, codes.astype(np.int64), np.zeros(len(codes), dtype=np.int64)]
    n_codes = [n_units, n_groups, 1]
    offsets = np.cumsum([0] + n_codes[:-1])

    measures = list(MODULE_COLUMNS) if modules_only else list(MEASURES)
    columns = {c: np.full((n_entities, len(measures)), np.nan) for c in LONG_COLUMNS[4:]}

    def put(measure: str, **values) -> None:
        j = measures.index(measure)
        for c, v in values.items():
            columns[c][:, j] = v

    patients = count()
    if not modules_only:
        put("patients", n=patients, denominator=np.full(n_entities, n_total))
        fmt = cohort["imr_format"]
        known = fmt.notna().to_numpy()
        is_group = (fmt == "group").to_numpy(dtype=bool, na_value=False)
        put("group_format", n=count(is_group), denominator=count(known))
        values = {m: _float_values(cohort[m]) for m in CONTINUOUS_MEASURES}
        moments = stacked_mean_sd(values, keys, n_codes)
        for m in CONTINUOUS_MEASURES:
            ordered = entity_sorted(values[m])
            n_obs = np.array([len(s) for s in ordered], dtype="float64")
            put(m, n=n_obs, denominator=n_obs,
                mean=np.concatenate([mean for mean, _ in moments[m]]),
                sd=np.concatenate([sd for _, sd in moments[m]]),
                median=[_median_sorted(s) for s in ordered],
                min=[float(s[0]) if len(s) else np.nan for s in ordered],
                max=[float(s[-1]) if len(s) else np.nan for s in ordered])
    for c in MODULE_COLUMNS:
        col = cohort[c]
        received = col.to_numpy() if col.dtype == bool else col.astype("boolean").to_numpy(dtype=bool, na_value=False)
        put(c, n=count(received), denominator=patients)
    counted = np.array([m not in CONTINUOUS_MEASURES for m in measures])
    with np.errstate(divide="ignore", invalid="ignore"):
        den = columns["denominator"]
        percent = 100 * columns["n"] / np.where(den > 0, den, np.nan)
    columns["percent"] = np.where(counted[None, :], percent, np.nan)
    if modules_only:  # the service type and total rows only
        keep = offsets[1]
        entities = entities.iloc[keep:]
        columns = {c: v[keep:] for c, v in columns.items()}
    n_rows = len(entities) * len(measures)
    long = pd.DataFrame({
        "unit": np.repeat(entities["unit"].to_numpy(dtype=object), len(measures)),
        "service_type": np.repeat(entities["service_type"].to_numpy(dtype=object), len(measures)),
        "level": np.repeat(entities["level"].to_numpy(dtype=object), len(measures)),
        "measure": np.tile(np.array(measures, dtype=object), len(entities)),
        **{c: columns[c].reshape(n_rows) for c in LONG_COLUMNS[4:]},
    })
    for c in ["unit", "service_type", "level", "measure"]:
        long[c] = long[c].astype("str")
    return long


def table2_long(cohort: pd.DataFrame, services: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 2 numbers, tidy: one row per (unit or aggregate, measure).

    Parameters
    ----------
    cohort : the cleaned cohort, one row per patient.
    services : service types to include (default all present).

    Returns
    -------
    DataFrame
        Columns ``unit, service_type, level, measure, n, denominator, percent, mean,
        sd, median, min, max``. ``level`` is ``"unit"`` (each of the service units of
        the included types, in :data:`imr_analysis.constants.SERVICE_UNITS` order,
        units without patients included), ``"service_type"`` (``unit`` = ``"All"``)
        or ``"total"`` (``unit`` = ``service_type`` = ``"All"``). Measures:

        * ``patients`` - n patients, denominator all included patients;
        * ``group_format`` - n in group format / patients with a known format;
        * ``imr_duration_months``, ``n_sessions``, ``n_modules`` - non-missing n
          (= denominator), mean, SD (ddof=1), median, min, max;
        * ``module_01`` ... ``module_11`` - n receiving the module / patients.

    Examples
    --------
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"service_type": ["SerD", "SerD"], "service_unit": ["SerD Cento"] * 2,
    ...     "imr_format": ["group", "group"], "imr_duration_months": [3.0, 5.0], "n_sessions": [8, 12],
    ...     "n_modules": [1, 1], **{f"module_{k:02d}": [k == 6, k == 6] for k in range(1, 12)}})
    >>> long = table2_long(cohort)
    >>> long.query("unit == 'SerD Cento' and measure == 'module_06'")[["n", "percent"]].to_numpy().tolist()
    [[2.0, 100.0]]
    """
    return _table2_long(cohort, services)


def table2_tests(cohort: pd.DataFrame, services: Sequence[str] | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Sessions, modules per patient and IMR duration compared between service types.

    One row per variable and comparison: ``"all services"`` (one-way ANOVA and
    Kruskal-Wallis) and ``"CMHC vs SerD"`` when both are included (t-test and
    Mann-Whitney U), each with the reported test and the reason
    (:func:`imr_analysis.stats.compare_continuous`; normality by Shapiro-Wilk, or by
    D'Agostino-Pearson K² in groups of more than 5000 patients, as the ``note`` says).
    ``service_type`` is encoded once and each variable split into its groups once
    (:func:`imr_analysis.stats.compare_continuous_samples`).

    Returns
    -------
    DataFrame
        :func:`imr_analysis.stats.results_frame` columns.

    Examples
    --------
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"service_type": ["CMHC"] * 3 + ["SerD"] * 3,
    ...     "n_sessions": [10, 12, 14, 30, 33, 36], "n_modules": [3, 4, 5, 1, 2, 3],
    ...     "imr_duration_months": [2.0, 3.0, 4.0, 8.0, 9.0, 10.0]})
    >>> table2_tests(cohort)["test"].tolist()[:2]
    ['Student t-test', 'Student t-test']
    """
    st._check_alpha(alpha)
    require_columns(cohort, ["service_type", *TEST_VARIABLES])
    codes, groups = service_codes(cohort, services)
    comparisons = [(ALL_SERVICES, groups)]
    if "CMHC" in groups and "SerD" in groups:
        comparisons.append(("CMHC vs SerD", ["CMHC", "SerD"]))
    rows = []
    for var in TEST_VARIABLES:
        parts = st.split_by_group(_float_values(cohort[var]), codes, len(groups))
        samples = {g: st.GroupSample(x) for g, x in zip(groups, parts)}  # sorted once for both comparisons
        rows += [st.compare_continuous_samples({g: samples[g] for g in levels}, var, alpha=alpha, comparison=label)
                 for label, levels in comparisons]
    return st.results_frame(rows)


def module_frequency(cohort: pd.DataFrame, services: Sequence[str] | None = None) -> pd.DataFrame:
    """Modules ranked by the number of patients who received them, overall and by service.

    Computed from the module rows of :func:`table2_long` (service type and total
    levels; the other rows are not computed) by :func:`module_frequency_from_long`,
    so a disclosure-protected long table gives the published ranking with the same code.

    Returns
    -------
    DataFrame
        One row per module, sorted by overall rank then module number: ``module``
        (1-11), ``label`` ("M1"), ``title``, ``n``, ``percent`` (of included
        patients), ``rank`` (1 = most frequent; ties share the lowest rank), then
        ``n_<type>``, ``percent_<type>``, ``rank_<type>`` for each service type.

    Examples
    --------
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "SerD"], "service_unit": ["CMHC Cento", "SerD Cento"],
    ...     "imr_format": ["group"] * 2, "imr_duration_months": [3.0, 4.0], "n_sessions": [5, 6],
    ...     "n_modules": [2, 1], **{f"module_{k:02d}": [k in (1, 6), k == 6] for k in range(1, 12)}})
    >>> module_frequency(cohort)[["label", "n", "rank", "n_SerD"]].head(2).to_numpy().tolist()
    [['M6', 2, 1, 1], ['M1', 1, 2, 0]]
    """
    return module_frequency_from_long(_table2_long(cohort, services, modules_only=True))


def module_frequency_from_long(long: pd.DataFrame) -> pd.DataFrame:
    """The module ranking of :func:`module_frequency` from a (possibly protected) Table 2 long table.

    Uses the ``module_XX`` rows of the ``total`` and ``service_type`` levels. When
    disclosure control redacted (left missing) any module count of a group, no rank
    is given in that group (a rank among the published counts only would be wrong
    and would hint at the redacted ones). Counts and ranks are ``Int64``.

    Examples
    --------
    >>> import pandas as pd
    >>> long = pd.DataFrame({"unit": "All", "service_type": "All", "level": "total",
    ...     "measure": ["module_01", "module_02"], "n": [3, 5], "percent": [30.0, 50.0]})
    >>> module_frequency_from_long(long)[["label", "n", "rank"]].head(3).to_numpy().tolist()
    [['M1', 3, <NA>], ['M2', 5, <NA>], ['M3', <NA>, <NA>]]
    """
    require_columns(long, ["service_type", "level", "measure", "n", "percent"], what="long Table 2")
    mods = long.loc[long["measure"].isin(MODULE_COLUMNS) & long["level"].isin(["total", "service_type"])]
    number = dict(zip(MODULE_COLUMNS, MODULES))
    out = pd.DataFrame({"module": list(MODULES), "label": [f"M{k}" for k in MODULES],
                        "title": list(MODULES.values())})

    def ranked(rows: pd.DataFrame) -> pd.DataFrame:
        r = pd.DataFrame({"module": rows["measure"].map(number).to_numpy(),
                          "n": pd.to_numeric(rows["n"], errors="coerce").to_numpy(dtype="float64"),
                          "percent": pd.to_numeric(rows["percent"], errors="coerce").to_numpy(dtype="float64")})
        r = r.set_index("module").reindex(list(MODULES))
        r["rank"] = r["n"].rank(ascending=False, method="min", na_option="keep")
        if r["n"].isna().any():  # a rank among the published counts only would mislead
            r["rank"] = np.nan
        r["n"], r["rank"] = r["n"].astype("Int64"), r["rank"].astype("Int64")
        return r

    total = ranked(mods.loc[mods["level"].eq("total")])
    out = out.join(total, on="module")
    for g in pd.unique(mods.loc[mods["level"].eq("service_type"), "service_type"]):
        r = ranked(mods.loc[mods["level"].eq("service_type") & mods["service_type"].eq(g)])
        out = out.join(r.add_suffix(f"_{g}"), on="module")
    out["_r"] = out["rank"].astype("Float64").fillna(np.inf)
    return out.sort_values(["_r", "module"], kind="stable").drop(columns="_r").reset_index(drop=True)


def format_module_frequency(freq: pd.DataFrame, decimals: int = 1, na_rep: str = "[REDACTED]") -> pd.DataFrame:
    """Display version of :func:`module_frequency`: one string cell per service and rank.

    Parameters
    ----------
    freq : output of :func:`module_frequency` or :func:`module_frequency_from_long`
        (redacted counts are missing).
    decimals : decimals of the percentages.
    na_rep : text of a redacted count.

    Returns
    -------
    DataFrame of strings
        ``Module`` ("M1 Recovery Strategies"), ``All services, n (%)``, ``Rank``, then
        ``<type>, n (%)`` and ``Rank in <type>`` for each service type; a missing rank
        prints "–".

    Examples
    --------
    >>> import pandas as pd
    >>> long = pd.DataFrame({"unit": "All", "service_type": "All", "level": "total",
    ...     "measure": ["module_01", "module_02"], "n": [3, None], "percent": [30.0, None]})
    >>> format_module_frequency(module_frequency_from_long(long)).iloc[:2].to_numpy().tolist()
    [['M1 Recovery Strategies', '3 (30.0%)', '–'], ['M2 Basic Facts About Mental Illness', '[REDACTED]', '–']]
    """
    require_columns(freq, ["label", "title", "n", "percent", "rank"], what="module frequency table")
    types = [c[2:] for c in freq.columns if c.startswith("n_")]

    def rank_text(values):
        return [("–" if _number(v) is None else f"{_number(v):.0f}") for v in values]

    out = pd.DataFrame({"Module": (freq["label"] + " " + freq["title"]).astype("str")})
    out["All services, n (%)"] = [format_count_percent(n, p, decimals, na_rep)
                                  for n, p in zip(freq["n"], freq["percent"])]
    out["Rank"] = rank_text(freq["rank"])
    for t in types:
        out[f"{t}, n (%)"] = [format_count_percent(n, p, decimals, na_rep)
                              for n, p in zip(freq[f"n_{t}"], freq[f"percent_{t}"])]
        out[f"Rank in {t}"] = rank_text(freq[f"rank_{t}"])
    return out


def format_mean_sd_range(mean, sd, vmin, vmax, decimals: int = 1, na_rep: str = "[REDACTED]") -> str:
    """``"9.6 (7.5) [2-38]"``; the range prints without decimals when both ends are whole.

    A string (disclosure control) is printed as given; a missing range is omitted.

    Examples
    --------
    >>> format_mean_sd_range(9.64, 7.49, 2, 38), format_mean_sd_range(2.0, float("nan"), 2, 2)
    ('9.6 (7.5) [2-38]', '2.0 (–) [2-2]')
    """
    if _given(mean):
        return mean
    if _number(mean) is None:
        return na_rep
    out = format_mean_sd(mean, sd, decimals=decimals, na_rep=na_rep)
    lo, hi = _number(vmin), _number(vmax)
    if lo is not None and hi is not None:
        whole = float(lo).is_integer() and float(hi).is_integer()
        d = 0 if whole else decimals
        out += f" [{lo:.{d}f}-{hi:.{d}f}]"
    elif _given(vmin) or _given(vmax):
        out += f" [{_given(vmin) or lo}-{_given(vmax) or hi}]"
    return out


def format_table2(long: pd.DataFrame, tests: pd.DataFrame | None = None, decimals: dict | None = None,
                  na_rep: str = "[REDACTED]") -> pd.DataFrame:
    """The display Table 2: units grouped by service type, type subtotals, total.

    Parameters
    ----------
    long : output of :func:`table2_long` (possibly after disclosure control: strings
        in numeric cells are printed as given, missing numbers as ``na_rep``;
        ``min``/``max`` may be dropped).
    tests : output of :func:`table2_tests`; adds one row per comparison with the
        p-value and test in the sessions, modules and duration columns.
    decimals : dict with keys ``percent`` (1), ``mean`` (1) and ``p`` (3).

    Returns
    -------
    DataFrame of strings
        Columns ``Service type, Service unit``, then one column per measure (see
        :data:`MEASURE_LABELS`). Rows: the units of each type, then ``All <type>
        units`` for each type, then ``Total``.

    Examples
    --------
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"service_type": ["EDP"] * 2, "service_unit": ["EDP Ferrara"] * 2,
    ...     "imr_format": ["group"] * 2, "imr_duration_months": [3.0, 5.0], "n_sessions": [8, 12],
    ...     "n_modules": [2, 2], **{f"module_{k:02d}": [k in (3, 8)] * 2 for k in range(1, 12)}})
    >>> format_table2(table2_long(cohort)).iloc[-1, :5].tolist()
    ['Total', '', '2 (100.0%)', '2 (100.0%)', '4.0 (1.4) [3-5]']
    """
    dec = {"percent": 1, "mean": 1, "p": 3}
    dec.update(decimals or {})
    require_columns(long, ["unit", "service_type", "level", "measure", "n"], what="long Table 2")
    long = long.copy()
    for c in ["denominator", "percent", "mean", "sd", "median", "min", "max"]:
        if c not in long.columns:
            long[c] = np.nan
    measures = [m for m in MEASURES if m in set(long["measure"])]
    columns = ["Service type", "Service unit"] + [MEASURE_LABELS[m] for m in measures]
    entities = long.drop_duplicates(["level", "unit", "service_type"])[["level", "unit", "service_type"]]
    order = {lvl: i for i, lvl in enumerate(LEVELS)}
    entities = entities.assign(_o=entities["level"].map(order)).sort_values("_o", kind="stable")
    indexed = long.set_index(["level", "unit", "service_type", "measure"])
    rows = []
    for level, unit, stype in entities[["level", "unit", "service_type"]].itertuples(index=False):
        row = {"Service type": stype if level != "total" else "Total",
               "Service unit": unit if level == "unit" else ("" if level == "total" else f"All {stype} units")}
        for m in measures:
            r = indexed.loc[(level, unit, stype, m)]
            if m in CONTINUOUS_MEASURES:
                row[MEASURE_LABELS[m]] = ("–" if _number(r["n"]) == 0 else
                                          format_mean_sd_range(r["mean"], r["sd"], r["min"], r["max"],
                                                               dec["mean"], na_rep))
            else:
                row[MEASURE_LABELS[m]] = format_count_percent(r["n"], r["percent"], dec["percent"], na_rep)
        rows.append(row)
    if tests is not None and len(tests):
        for comp in pd.unique(tests["comparison"]):
            row = {c: "" for c in columns}
            row["Service type"] = f"p ({comp})"
            for r in tests.loc[tests["comparison"].eq(comp)].itertuples(index=False):
                if r.variable in measures:
                    abbr = st.TEST_ABBREVIATIONS.get(r.test, r.test or "")
                    p = format_p(r.p_value, dec["p"])
                    row[MEASURE_LABELS[r.variable]] = f"{p} ({abbr})" if p else ""
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)
