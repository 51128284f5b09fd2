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
    _given,
    _number,
    format_count_percent,
    format_mean_sd,
    format_p,
    require_columns,
    select_services,
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


def _units_for(data: pd.DataFrame, groups: list[str]) -> list[tuple[str, str]]:
    """(unit, service type) in canonical order; units not in the vocabulary follow, sorted."""
    known = [(u, v["service_type"]) for u, v in SERVICE_UNITS.items() if v["service_type"] in groups]
    observed = data[["service_unit", "service_type"]].drop_duplicates()
    extra = observed.loc[~observed["service_unit"].isin(SERVICE_UNITS)]
    mismatch = observed.loc[observed["service_unit"].isin(SERVICE_UNITS)
                            & (observed["service_unit"].map({u: v["service_type"] for u, v in SERVICE_UNITS.items()})
                               != observed["service_type"])]
    if len(mismatch):
        raise ValueError("service_unit and service_type disagree for "
                         f"{mismatch.to_dict('records')}; check the cleaned cohort")
    out = []
    for g in groups:
        out += [k for k in known if k[1] == g]
        out += sorted((u, t) for u, t in extra.itertuples(index=False) if t == g)
    return out


def _stacked(data: pd.DataFrame) -> pd.DataFrame:
    """Each patient three times: under its unit, its service type and the total."""
    keys = pd.concat([
        pd.DataFrame({"level": "unit", "unit": data["service_unit"], "service_type": data["service_type"]}),
        pd.DataFrame({"level": "service_type", "unit": ALL, "service_type": data["service_type"]}),
        pd.DataFrame({"level": "total", "unit": ALL, "service_type": ALL}, index=data.index),
    ], ignore_index=True)
    values = pd.concat([data[REQUIRED[2:]]] * 3, ignore_index=True)
    return pd.concat([keys, values], axis=1)


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
    require_columns(cohort, REQUIRED)
    data, groups = select_services(cohort, services)
    units = _units_for(data, groups)
    entities = pd.DataFrame(
        [("unit", u, t) for u, t in units]
        + [("service_type", ALL, t) for t in groups]
        + [("total", ALL, ALL)],
        columns=["level", "unit", "service_type"],
    )
    index = pd.MultiIndex.from_frame(entities)
    frame = _stacked(data)
    by = frame.groupby(["level", "unit", "service_type"], sort=False)
    patients = by.size().reindex(index, fill_value=0).astype("float64")
    n_total = float(len(data))
    parts = []

    def block(measure, n, denominator, **extra):
        out = entities.copy()
        out["measure"] = measure
        out["n"] = np.asarray(n, dtype="float64")
        out["denominator"] = np.asarray(denominator, dtype="float64")
        for k, v in extra.items():
            out[k] = np.asarray(v, dtype="float64")
        return out

    parts.append(block("patients", patients, np.full(len(entities), n_total)))
    fmt = frame["imr_format"]
    fmt_known = fmt.notna().groupby([frame["level"], frame["unit"], frame["service_type"]], sort=False).sum()
    fmt_group = fmt.eq("group").groupby([frame["level"], frame["unit"], frame["service_type"]], sort=False).sum()
    parts.append(block("group_format", fmt_group.reindex(index, fill_value=0),
                       fmt_known.reindex(index, fill_value=0)))
    for measure in CONTINUOUS_MEASURES:
        x = pd.to_numeric(frame[measure], errors="raise").astype("float64")
        agg = x.groupby([frame["level"], frame["unit"], frame["service_type"]], sort=False).agg(
            ["count", "mean", "std", "median", "min", "max"]).reindex(index)
        count = agg["count"].fillna(0)
        parts.append(block(measure, count, count, mean=agg["mean"], sd=agg["std"], median=agg["median"],
                           min=agg["min"], max=agg["max"]))
    mods = frame[MODULE_COLUMNS].astype("boolean").fillna(False).astype("int64")
    mod_sums = mods.groupby([frame["level"], frame["unit"], frame["service_type"]], sort=False).sum()
    mod_sums = mod_sums.reindex(index, fill_value=0)
    for c in MODULE_COLUMNS:
        parts.append(block(c, mod_sums[c], patients))
    long = pd.concat(parts, ignore_index=True).reindex(columns=LONG_COLUMNS)
    counted = ~long["measure"].isin(CONTINUOUS_MEASURES)
    long["percent"] = (100 * long["n"] / long["denominator"].where(long["denominator"] > 0)).where(counted)
    # order: entities as built, measures in MEASURES order
    long["_e"] = np.tile(np.arange(len(entities)), len(MEASURES))
    long["_m"] = long["measure"].map({m: i for i, m in enumerate(MEASURES)})
    long = long.sort_values(["_e", "_m"], kind="stable").drop(columns=["_e", "_m"]).reset_index(drop=True)
    for c in ["unit", "service_type", "level", "measure"]:
        long[c] = long[c].astype("str")
    return long


def table2_tests(cohort: pd.DataFrame, services: Sequence[str] | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Sessions, modules per patient and IMR duration compared between service types.

    One row per variable and comparison: ``"all services"`` (one-way ANOVA and
    Kruskal-Wallis) and ``"CMHC vs SerD"`` when both are included (t-test and
    Mann-Whitney U), each with the reported test and the reason
    (:func:`imr_analysis.stats.compare_continuous`).

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
    require_columns(cohort, ["service_type", *TEST_VARIABLES])
    data, groups = select_services(cohort, services)
    comparisons = [(ALL_SERVICES, groups)]
    if "CMHC" in groups and "SerD" in groups:
        comparisons.append(("CMHC vs SerD", ["CMHC", "SerD"]))
    rows = [st.compare_continuous(data, var, "service_type", levels=levels, alpha=alpha, comparison=label)
            for var in TEST_VARIABLES for label, levels in comparisons]
    return st.results_frame(rows)


def module_frequency(cohort: pd.DataFrame, services: Sequence[str] | None = None) -> pd.DataFrame:
    """Modules ranked by the number of patients who received them, overall and by service.

    Computed from :func:`table2_long` by :func:`module_frequency_from_long`, so a
    disclosure-protected long table gives the published ranking with the same code.

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
    return module_frequency_from_long(table2_long(cohort, services))


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
