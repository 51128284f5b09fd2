"""Table 2: services where IMR was implemented, and the modules and sessions administered.

* :func:`table2_long` - the numbers of each of the ten service units, each service type and
  the total: patients, group format, IMR duration, sessions, modules per patient and the
  patients who received each module M1-M11;
* :func:`table2_tests` - sessions, modules per patient and duration compared between service
  types (test selection in :mod:`imr_analysis.stats`);
* :func:`module_frequency_from_long` - the modules ranked by how many patients received them
  (the Results' 70.6% for M1), from the Table 2 numbers, protected or not;
* :func:`format_table2`, :func:`format_module_frequency` - the tables as printed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from . import stats as st
from .constants import MODULE_COLUMNS, MODULES, SERVICE_UNITS
from .table1 import (
    _given,
    _number,
    format_count_percent,
    format_mean_sd,
    format_p,
    require_columns,
    select_services,
    service_comparisons,
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


def _units(data: pd.DataFrame, groups: list[str]) -> list[tuple[str, str]]:
    """The (unit, service type) rows of Table 2.

    The units of :data:`~imr_analysis.constants.SERVICE_UNITS` of the shown types, in its
    order and with or without patients, then units outside it, sorted within their type. A
    unit recorded under a type other than its own raises ``ValueError``.
    """
    own = {u: v["service_type"] for u, v in SERVICE_UNITS.items()}
    pairs = data.groupby(["service_unit", "service_type"], observed=True).size().index.to_frame(index=False)
    pairs = pairs.astype("str")  # plain text: categoricals with different categories do not compare
    wrong = pairs.loc[pairs["service_unit"].isin(own) & pairs["service_unit"].map(own).ne(pairs["service_type"])]
    if len(wrong):
        raise ValueError(f"service_unit and service_type disagree for {wrong.to_dict('records')}; "
                         "check the cleaned cohort")
    extra = pairs.loc[~pairs["service_unit"].isin(own)]
    return [(u, g) for g in groups for u in [u for u, t in own.items() if t == g]
            + sorted(extra.loc[extra["service_type"].eq(g), "service_unit"])]


def table2_long(cohort: pd.DataFrame, services: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 2 numbers, tidy: one row per (service unit, service type or total) and measure.

    Parameters
    ----------
    cohort : the cleaned cohort, one row per patient.
    services : service types to include (default all present).

    Returns
    -------
    DataFrame
        :data:`LONG_COLUMNS`. ``level`` is ``"unit"`` (the units of the included types, see
        :func:`_units`), ``"service_type"`` (``unit`` = ``"All"``) or ``"total"`` (``unit`` =
        ``service_type`` = ``"All"``). Measures, in :data:`MEASURES` order:

        * ``patients`` - n patients / all included patients;
        * ``group_format`` - n treated in group format / patients with a known format;
        * ``imr_duration_months``, ``n_sessions``, ``n_modules`` - n with a value (= denominator),
          mean, SD (ddof 1), median, min, max;
        * ``module_01`` ... ``module_11`` - n who received the module / patients.

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "CMHC", "SerD"],
    ...     "service_unit": ["CMHC Cento", "CMHC Ferrara", "SerD Cento"],
    ...     "imr_format": ["group", "individual", "group"], "imr_duration_months": [3.0, 6.0, 9.0],
    ...     "n_sessions": [10, 20, 30], "n_modules": [1, 2, 1],
    ...     **{f"module_{k:02d}": [k == 1, k <= 2, k == 6] for k in range(1, 12)}})
    >>> long = table2_long(cohort)
    >>> long.query("level == 'total' and measure == 'n_sessions'")[["n", "mean", "min", "max"]].to_numpy().tolist()
    [[3.0, 20.0, 10.0, 30.0]]
    >>> long.query("unit == 'CMHC Cento' and measure == 'module_01'")[["n", "percent"]].to_numpy().tolist()
    [[1.0, 100.0]]
    """
    require_columns(cohort, REQUIRED)
    data, groups = select_services(cohort, services)
    entities = pd.MultiIndex.from_tuples(
        [("unit", u, t) for u, t in _units(data, groups)] + [("service_type", ALL, t) for t in groups]
        + [("total", ALL, ALL)], names=["level", "unit", "service_type"])
    values = pd.DataFrame({
        "group_format": data["imr_format"].eq("group").fillna(False), "format_known": data["imr_format"].notna(),
        **data[list(CONTINUOUS_MEASURES)].apply(pd.to_numeric, errors="raise").astype("float64"),
        **data[MODULE_COLUMNS].astype("boolean").fillna(False)})
    everyone = pd.Series(ALL, index=data.index)
    by_level = {level: values.groupby(keys, observed=True) for level, keys in [
        ("unit", [data["service_unit"], data["service_type"]]), ("service_type", [everyone, data["service_type"]]),
        ("total", [everyone, everyone])]}

    def per_entity(statistic) -> pd.DataFrame:
        """``statistic`` of each unit, service type and the total: a patient counts in all three."""
        out = pd.concat({level: statistic(by) for level, by in by_level.items()})
        return out.rename_axis(entities.names).reindex(entities)

    patients = per_entity(lambda by: by.size()).fillna(0)
    counts = per_entity(lambda by: by[["group_format", "format_known", *MODULE_COLUMNS]].sum()).fillna(0)
    summary = per_entity(lambda by: by[list(CONTINUOUS_MEASURES)].agg(["count", "mean", "std", "median", "min",
                                                                        "max"]))
    blocks = {"patients": pd.DataFrame({"n": patients, "denominator": len(data)}),
              "group_format": pd.DataFrame({"n": counts["group_format"], "denominator": counts["format_known"]})}
    for m in CONTINUOUS_MEASURES:
        block = summary[m].rename(columns={"count": "n", "std": "sd"}).fillna({"n": 0})
        blocks[m] = block.assign(denominator=block["n"])
    blocks |= {c: pd.DataFrame({"n": counts[c], "denominator": patients}) for c in MODULE_COLUMNS}
    long = pd.concat(blocks, names=["measure"]).reorder_levels([1, 2, 3, 0])
    long = long.reindex(pd.MultiIndex.from_tuples([(*e, m) for e in entities for m in MEASURES], names=long.index.names))
    long["percent"] = (100 * long["n"] / long["denominator"].where(long["denominator"] > 0)).where(
        ~long.index.get_level_values("measure").isin(CONTINUOUS_MEASURES))
    return long.reset_index().reindex(columns=LONG_COLUMNS).astype(dict.fromkeys(LONG_COLUMNS[:4], "str")
                                                                    | dict.fromkeys(LONG_COLUMNS[4:], "float64"))


def table2_tests(cohort: pd.DataFrame, services: Sequence[str] | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Sessions, modules per patient and IMR duration compared between service types.

    One row per variable and comparison: ``"all services"`` (one-way ANOVA and
    Kruskal-Wallis) and ``"CMHC vs SerD"`` when both are included (t-test and Mann-Whitney U),
    the reported test chosen by :func:`imr_analysis.stats.compare_continuous`.

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["CMHC"] * 3 + ["SerD"] * 3,
    ...     "n_sessions": [10, 12, 14, 30, 33, 36], "n_modules": [3, 4, 5, 1, 2, 3],
    ...     "imr_duration_months": [2.0, 3.0, 4.0, 8.0, 9.0, 10.0]})
    >>> table2_tests(cohort)[["variable", "comparison", "test"]].head(2).to_numpy().tolist()
    [['n_sessions', 'all services', 'Student t-test'], ['n_sessions', 'CMHC vs SerD', 'Student t-test']]
    """
    require_columns(cohort, ["service_type", *TEST_VARIABLES])
    data, groups = select_services(cohort, services)
    rows = []
    for var in TEST_VARIABLES:
        samples = st.group_samples(data, var, "service_type", groups)
        rows += [st.compare_continuous({g: samples[g] for g in levels}, var, alpha, comparison=label)
                 for label, levels in service_comparisons(groups)]
    return st.results_frame(rows)


def module_frequency(cohort: pd.DataFrame, services: Sequence[str] | None = None) -> pd.DataFrame:
    """Modules ranked by the number of patients who received them: :func:`module_frequency_from_long`
    of :func:`table2_long`.

    Examples
    --------
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
