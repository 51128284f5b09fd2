"""Table 2: the services where IMR was implemented, and the modules and sessions administered.

:func:`table2_long` gives the numbers of each unit, service type and the total, :func:`table2_tests`
the tests, :func:`module_frequency_from_long` the modules ranked; ``format_*`` print them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from . import stats as st
from .constants import MODULE_COLUMNS, MODULES, SERVICE_UNITS
from .table1 import (compare_services, finite_number, format_count_percent, format_mean_sd, p_value_notes,
                     require_columns, result_cells, select_services)

ALL = "All"
LEVELS = ("unit", "service_type", "total")
CONTINUOUS_MEASURES = ("imr_duration_months", "n_sessions", "n_modules")
MEASURES = ("patients", "group_format") + CONTINUOUS_MEASURES + tuple(MODULE_COLUMNS)
MEASURE_LABELS = {"patients": "Patients, n (%)", "group_format": "Group format, n (%)",
                  "imr_duration_months": "IMR duration, months, mean (SD) [range]",
                  "n_sessions": "Sessions, mean (SD) [range]", "n_modules": "Modules per patient, mean (SD) [range]",
                  **{c: f"M{k}, n (%)" for k, c in zip(MODULES, MODULE_COLUMNS)}}
LONG_COLUMNS = ["unit", "service_type", "level", "measure", "n", "denominator", "percent",
                "mean", "sd", "median", "min", "max"]
LONG_DTYPES = {c: "str" if i < 4 else "float64" for i, c in enumerate(LONG_COLUMNS)}
REQUIRED = ["service_type", "service_unit", "imr_format", *CONTINUOUS_MEASURES, *MODULE_COLUMNS]
TEST_VARIABLES = ("n_sessions", "n_modules", "imr_duration_months")
#: Rows of the total only: patients with the fewest and the most sessions; the first start and last end date.
EXTREME_MEASURES = ("n_sessions_at_min", "n_sessions_at_max")
DATE_MEASURES = ("imr_start", "imr_end")
MODULE_FREQUENCY_NOTES = ("n (%): patients who received the module, percentage of all the patients of the group.",
                          "Rank 1: the module most patients received; ties share the lowest rank; "
                          "–: no rank (a count of the group is redacted).")


def _units(data: pd.DataFrame, groups: list[str], all_units: bool = True) -> list[tuple[str, str]]:
    """The (unit, type) rows: the codebook's units of each shown type (only those with patients unless
    ``all_units``), then others; a mismatch raises."""
    own = {u: v["service_type"] for u, v in SERVICE_UNITS.items()}
    pairs = data.groupby(["service_unit", "service_type"], observed=True).size().index.to_frame(index=False)
    pairs = pairs.astype("str")  # plain text: categoricals with different categories do not compare
    wrong = pairs.loc[pairs["service_unit"].isin(own) & pairs["service_unit"].map(own).ne(pairs["service_type"])]
    if len(wrong):
        raise ValueError(f"service_unit and service_type disagree for {wrong.to_dict('records')}; "
                         "check the cleaned cohort")
    extra = pairs.loc[~pairs["service_unit"].isin(own)]
    own = own if all_units else {u: t for u, t in own.items() if u in set(pairs["service_unit"])}
    return [(u, g) for g in groups for u in [u for u, t in own.items() if t == g]
            + sorted(extra.loc[extra["service_type"].eq(g), "service_unit"])]


def table2_long(cohort: pd.DataFrame, services: Sequence[str] | None = None, all_units: bool = True) -> pd.DataFrame:
    """Table 2 numbers, tidy: one row per (unit, service type or total) and measure (:data:`LONG_COLUMNS`).

    Units: the codebook's units of the service types shown, with or without patients (only those with patients
    unless ``all_units``), then others present.

    ``level``: "unit", "service_type" (``unit`` "All") or "total". Measures: ``patients``, ``group_format`` (of known
    format), :data:`CONTINUOUS_MEASURES` (summaries), the modules (patients receiving each); for the total only,
    :data:`EXTREME_MEASURES` and, with dates, :data:`DATE_MEASURES` (min and max as yyyymmdd numbers).

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "CMHC", "SerD"],
    ...     "service_unit": ["CMHC Cento", "CMHC Ferrara", "SerD Cento"],
    ...     "imr_format": ["group", "individual", "group"], "imr_duration_months": [3.0, 6.0, 9.0],
    ...     "n_sessions": [10, 20, 30], "n_modules": [1, 2, 1],
    ...     **{f"module_{k:02d}": [k == 1, k <= 2, k == 6] for k in range(1, 12)}})
    >>> table2_long(cohort).query("level == 'total' and measure == 'n_sessions'")[["n", "mean", "max"]].to_numpy()
    array([[ 3., 20., 30.]])
    """
    require_columns(cohort, REQUIRED)
    data, groups = select_services(cohort, services)
    entities = pd.MultiIndex.from_tuples(
        [("unit", u, t) for u, t in _units(data, groups, all_units)] + [("service_type", ALL, t) for t in groups]
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
    long = pd.concat(blocks, names=["measure"]).reorder_levels([1, 2, 3, 0])  # entity, then measure
    long = long.reindex([(*e, m) for e in entities for m in MEASURES])
    sessions, total = values["n_sessions"], ("total", ALL, ALL)
    extra = {(*total, f"n_sessions_at_{end}"): {"n": sessions.eq(sessions.agg(end)).sum(),
                                                 "denominator": sessions.count()} for end in ("min", "max")}
    for m in [m for m in DATE_MEASURES if m in data.columns]:
        day = pd.to_datetime(data[m]).dt.strftime("%Y%m%d").astype("float64")
        extra[(*total, m)] = {"n": day.count(), "denominator": day.count(), "min": day.min(), "max": day.max()}
    long = pd.concat([long, pd.DataFrame.from_dict(extra, orient="index").rename_axis(long.index.names)])
    counted = ~long.index.get_level_values("measure").isin(CONTINUOUS_MEASURES + DATE_MEASURES)
    long["percent"] = (100 * long["n"] / long["denominator"].where(long["denominator"] > 0)).where(counted)
    return long.reset_index().reindex(columns=LONG_COLUMNS).astype(LONG_DTYPES)


def table2_tests(cohort: pd.DataFrame, services: Sequence[str] | None = None, alpha: float = 0.05, seed: int = 0,
                 n_resamples: int = st.N_RESAMPLES) -> pd.DataFrame:
    """Sessions, modules per patient and IMR duration compared between service types.

    One row per variable and comparison (:func:`imr_analysis.table1.compare_services`; ``seed`` and
    ``n_resamples`` for the bootstrap CIs of the rank-based effect sizes).

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["CMHC"] * 3 + ["SerD"] * 3, "n_sessions": [10, 12, 14, 30, 33, 36],
    ...     "n_modules": [3, 4, 5, 1, 2, 3], "imr_duration_months": [2.0, 3.0, 4.0, 8.0, 9.0, 10.0]})
    >>> table2_tests(cohort)["test"].tolist()[:2]
    ['Student t-test', 'Student t-test']
    """
    require_columns(cohort, ["service_type", *TEST_VARIABLES])
    data, groups = select_services(cohort, services)
    return st.results_frame(row for var in TEST_VARIABLES
                            for row in compare_services(data, var, "continuous", groups, alpha, seed, n_resamples))


def module_frequency_from_long(long: pd.DataFrame) -> pd.DataFrame:
    """Modules ranked by the patients who received them, overall and by service type.

    From the module rows of a (possibly protected) :func:`table2_long`; ties share the lowest rank;
    a group with a redacted count gets no ranks (ranking the published counts would mislead).
    Columns: ``module``, ``label``, ``title``, ``n``, ``percent``, ``rank``, then the same per type.

    Examples
    --------
    >>> long = pd.DataFrame({"unit": "All", "service_type": "All", "level": "total",
    ...     "measure": ["module_01", "module_02"], "n": [3, 5], "percent": [30.0, 50.0]})
    >>> module_frequency_from_long(long)[["label", "n", "rank"]].head(3).to_numpy().tolist()
    [['M1', 3, <NA>], ['M2', 5, <NA>], ['M3', <NA>, <NA>]]
    """
    require_columns(long, ["service_type", "level", "measure", "n", "percent"], what="long Table 2")
    mods = long.loc[long["measure"].isin(MODULE_COLUMNS) & long["level"].isin(["total", "service_type"])]
    out = pd.DataFrame({"module": list(MODULES), "label": [f"M{k}" for k in MODULES], "title": list(MODULES.values())})

    def ranked(rows: pd.DataFrame) -> pd.DataFrame:
        r = pd.DataFrame({"module": rows["measure"].map(dict(zip(MODULE_COLUMNS, MODULES))).to_numpy(),
                          "n": pd.to_numeric(rows["n"], errors="coerce").to_numpy(dtype="float64"),
                          "percent": pd.to_numeric(rows["percent"], errors="coerce").to_numpy(dtype="float64")})
        r = r.set_index("module").reindex(list(MODULES))
        r["rank"] = r["n"].rank(ascending=False, method="min") if r["n"].notna().all() else np.nan
        return r.astype({"n": "Int64", "rank": "Int64"})

    out = out.join(ranked(mods.loc[mods["level"].eq("total")]), on="module")
    for g in pd.unique(mods.loc[mods["level"].eq("service_type"), "service_type"]):
        rows = mods.loc[mods["level"].eq("service_type") & mods["service_type"].eq(g)]
        out = out.join(ranked(rows).add_suffix(f"_{g}"), on="module")
    order = out["rank"].astype("Float64").fillna(np.inf)
    return out.assign(_r=order).sort_values(["_r", "module"], kind="stable").drop(columns="_r").reset_index(drop=True)


def module_frequency(cohort: pd.DataFrame, services: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`module_frequency_from_long` of :func:`table2_long` (the numbers before disclosure control)."""
    return module_frequency_from_long(table2_long(cohort, services))


def format_module_frequency(freq: pd.DataFrame, decimals: int = 1, na_rep: str = "[REDACTED]") -> pd.DataFrame:
    """The module ranking as printed: ``n (%)`` and rank overall and per service type ("–": no rank).

    Examples
    --------
    >>> long = pd.DataFrame({"unit": "All", "service_type": "All", "level": "total",
    ...     "measure": ["module_01", "module_02"], "n": [3, None], "percent": [30.0, None]})
    >>> format_module_frequency(module_frequency_from_long(long)).iloc[:2].to_numpy().tolist()
    [['M1 Recovery Strategies', '3 (30.0%)', '–'], ['M2 Basic Facts About Mental Illness', '[REDACTED]', '–']]
    """
    require_columns(freq, ["label", "title", "n", "percent", "rank"], what="module frequency table")
    out = pd.DataFrame({"Module": (freq["label"] + " " + freq["title"]).astype("str")})
    for t in ["", *[c[2:] for c in freq.columns if c.startswith("n_")]]:
        suffix = f"_{t}" if t else ""
        out[f"{t or 'All services'}, n (%)"] = [format_count_percent(n, p, decimals, na_rep)
                                                for n, p in zip(freq[f"n{suffix}"], freq[f"percent{suffix}"])]
        out[f"Rank in {t}" if t else "Rank"] = ["–" if finite_number(v) is None else f"{finite_number(v):.0f}"
                                                 for v in freq[f"rank{suffix}"]]
    return out


def format_table2(long: pd.DataFrame, tests: pd.DataFrame | None = None, decimals: dict | None = None,
                  na_rep: str = "[REDACTED]") -> pd.DataFrame:
    """The display Table 2: units by service type, the service types, the total, the p-values.

    ``long``: :func:`table2_long`, maybe after disclosure control (text in a numeric cell printed as is, a missing
    number as ``na_rep``); ``tests`` (:func:`table2_tests`) adds per comparison a p-value row (test,
    :func:`~imr_analysis.table1.result_cells`) and an effect-size row; ``decimals``: ``percent`` 1, ``mean`` 1, ``p`` 3.

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["EDP"] * 2, "service_unit": ["EDP Ferrara"] * 2,
    ...     "imr_format": ["group"] * 2, "imr_duration_months": [3.0, 5.0], "n_sessions": [8, 12],
    ...     "n_modules": [2, 2], **{f"module_{k:02d}": [k in (3, 8)] * 2 for k in range(1, 12)}})
    >>> format_table2(table2_long(cohort)).iloc[-1, :5].tolist()
    ['Total', '', '2 (100.0%)', '2 (100.0%)', '4.0 (1.4) [3-5]']
    """
    dec = {"percent": 1, "mean": 1, "p": 3} | (decimals or {})
    require_columns(long, ["unit", "service_type", "level", "measure", "n"], what="long Table 2")
    long = long.reindex(columns=list(dict.fromkeys([*long.columns, *LONG_COLUMNS])))
    measures = [m for m in MEASURES if m in set(long["measure"])]
    columns = ["Service type", "Service unit"] + [MEASURE_LABELS[m] for m in measures]
    entities = long[["level", "unit", "service_type"]].drop_duplicates()
    entities = entities.sort_values("level", key=lambda lv: lv.map(LEVELS.index), kind="stable")
    indexed = long.set_index(["level", "unit", "service_type", "measure"])
    rows = []
    for level, unit, stype in entities.itertuples(index=False):
        row = {"Service type": stype if level != "total" else "Total",
               "Service unit": unit if level == "unit" else ("" if level == "total" else f"All {stype} units")}
        for m in measures:
            r = indexed.loc[(level, unit, stype, m)]
            row[MEASURE_LABELS[m]] = (
                format_count_percent(r["n"], r["percent"], dec["percent"], na_rep) if m not in CONTINUOUS_MEASURES
                else "–" if finite_number(r["n"]) == 0 else
                format_mean_sd(r["mean"], r["sd"], dec["mean"], na_rep, r["min"], r["max"]))
        rows.append(row)
    for comp, comp_tests in ([] if tests is None else tests.groupby("comparison", sort=False)):
        row, effects = (dict.fromkeys(columns, "") | {"Service type": f"{what} ({comp})"} for what in ("p", "Effect"))
        for r in comp_tests.loc[comp_tests["variable"].isin(measures)].itertuples(index=False):
            p, test, effect = result_cells(r, dec["p"])
            row[MEASURE_LABELS[r.variable]], effects[MEASURE_LABELS[r.variable]] = f"{p} ({test})" if p else "", effect
        rows += [row, effects]
    return pd.DataFrame(rows, columns=columns)


def table2_notes(tests: pd.DataFrame | None, alpha: float = 0.05, n_resamples: int = st.N_RESAMPLES,
                 seed: int = 0) -> list[str]:
    """The footnotes of Table 2 and its numbers: denominators, SD, and the p-values
    (:func:`imr_analysis.table1.p_value_notes`)."""
    return ["Patients: n (% of all patients); group format: n (% of the patients whose format is known); "
            "M1-M11: n (% of the patients of the unit, service type or total).",
            "Duration, sessions and modules per patient: mean (SD with denominator n - 1) [minimum-maximum].",
            *p_value_notes(tests, alpha, n_resamples, seed)]
