"""Table 1: demographic and clinical characteristics by service type and in total.

Three steps, each a function:

* :func:`table1_long` - the numbers, one tidy row per (variable, level, group); the
  input of disclosure control (which may redact/round ``n`` and drop min/max).
* :func:`table1_tests` - one row per variable and comparison ("all services",
  "CMHC vs SerD"), with the test chosen as documented in :mod:`imr_analysis.stats`.
* :func:`format_table1` - the display table a researcher pastes into a manuscript.

Percentages of categorical variables use the patients with a non-missing value as
denominator; the number missing is reported on its own "Missing" row. Quartiles use
linear interpolation (``pandas.Series.quantile`` default, numpy/R type 7).

Examples
--------
>>> import pandas as pd
>>> cohort = pd.DataFrame({"service_type": ["CMHC", "CMHC", "SerD"], "sex": ["M", "F", "M"],
...                        "age_at_imr_start": [30, 40, 50]})
>>> long = table1_long(cohort, variables=["sex", "age_at_imr_start"])
>>> long.loc[long["group"].eq("Total") & long["level"].eq("M"), ["n", "denominator", "percent"]].round(1).to_numpy().tolist()
[[2.0, 3.0, 66.7]]
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from . import stats as st
from .constants import (
    DIAGNOSIS_GROUP_LABELS,
    DIAGNOSIS_GROUPS,
    DISTRICTS,
    EMPLOYMENT_STATUS,
    LIVING_CONDITION,
    MARITAL_STATUS,
    MEDICATION_CLASS_LABELS,
    SERVICE_TYPES,
    SEXES,
)

GROUP_COLUMN = "service_type"
TOTAL = "Total"
ALL_SERVICES = "all services"
LONG_COLUMNS = ["variable", "level", "group", "kind", "n", "denominator", "percent", "n_missing",
                "mean", "sd", "median", "q1", "q3", "min", "max"]


@dataclass(frozen=True)
class Variable:
    """A Table 1 variable: cohort column, display label, kind and canonical levels.

    ``kind`` is ``"categorical"``, ``"continuous"`` or ``"binary"`` (a boolean shown
    as its ``"yes"`` level; it is ``"categorical"`` in the long table).
    """

    column: str
    label: str
    kind: str
    levels: tuple = ()
    section: str | None = None


MEDICATION_SECTION = "Psychotropic medication at IMR start"

TABLE1_VARIABLES: tuple[Variable, ...] = (
    Variable("sex", "Sex", "categorical", SEXES),
    Variable("age_at_imr_start", "Age at IMR start, years", "continuous"),
    Variable("age_at_first_treatment", "Age at first mental health treatment, years", "continuous"),
    Variable("residence_district", "Residence (health district)", "categorical", DISTRICTS),
    Variable("education_years", "Education, years", "continuous"),
    Variable("marital_status", "Marital status", "categorical", MARITAL_STATUS),
    Variable("living_condition", "Living condition", "categorical", LIVING_CONDITION),
    Variable("employment_status", "Employment", "categorical", EMPLOYMENT_STATUS),
    Variable("diagnosis_group", "Diagnosis (ICD-10)", "categorical", DIAGNOSIS_GROUPS),
    Variable("illness_duration_years", "Duration of illness, years", "continuous"),
    *(Variable(f"med_{c}", MEDICATION_CLASS_LABELS[c], "binary", ("yes",), MEDICATION_SECTION)
      for c in ("antipsychotic", "antidepressant", "mood_stabilizer", "anxiolytic_sedative",
                "addiction", "none")),
)
VARIABLES_BY_COLUMN = {v.column: v for v in TABLE1_VARIABLES}

LEVEL_LABELS: dict[str, dict[str, str]] = {
    "sex": {"M": "Male", "F": "Female"},
    "residence_district": {"Centro-Nord": "Centro-Nord", "Ovest": "Ovest", "Sud-Est": "Sud-Est",
                           "outside": "Outside the province"},
    "marital_status": {"never_married": "Never married", "married_cohabiting": "Married or cohabiting",
                       "separated_divorced": "Separated or divorced", "widowed": "Widowed"},
    "living_condition": {"alone": "Alone", "family_of_origin": "With family of origin",
                         "partner_children": "With partner and/or children",
                         "supported_housing": "Supported housing or residential facility",
                         "other": "Other"},
    "employment_status": {"employed": "Employed", "unemployed": "Unemployed", "student": "Student",
                          "pensioner": "Pensioner", "other": "Other"},
    "diagnosis_group": dict(DIAGNOSIS_GROUP_LABELS),
}

DEFAULT_DECIMALS = {"percent": 1, "mean": 2, "quantile": 1, "p": 3}


# --------------------------------------------------------------------------------------
# selection helpers (shared by table2 and figure1)
# --------------------------------------------------------------------------------------
def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str = "cohort") -> None:
    """Raise a clear ``KeyError`` when ``df`` lacks any of ``columns``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"the {what} lacks column(s) {missing}; is it the cleaned cohort "
                       "(imr_analysis.cohort.load_cohort)?")


def select_services(cohort: pd.DataFrame, services: Sequence[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Keep the patients of ``services`` and return them with the groups to show.

    Parameters
    ----------
    cohort : the cleaned cohort (needs ``service_type``).
    services : service types to keep, any of ``CMHC``, ``SerD``, ``EDP``; ``None``
        means every service type present in the data.

    Returns
    -------
    (DataFrame, list of str)
        The selected patients and the service types in canonical order (requested
        types are kept even when they have no patient, so they show as zero).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"service_type": ["SerD", "CMHC", "EDP"]})
    >>> select_services(df, ["SerD", "CMHC"])[1]
    ['CMHC', 'SerD']
    """
    require_columns(cohort, [GROUP_COLUMN])
    observed = set(cohort[GROUP_COLUMN].dropna().unique())
    unknown_data = sorted(map(str, observed - set(SERVICE_TYPES)))
    if unknown_data:
        raise ValueError(f"unknown service type(s) in the data: {unknown_data}; expected {list(SERVICE_TYPES)}")
    if services is None:
        groups = [s for s in SERVICE_TYPES if s in observed]
    else:
        if isinstance(services, str):
            services = [services]
        unknown = sorted(set(services) - set(SERVICE_TYPES))
        if unknown:
            raise ValueError(f"unknown service type(s) {unknown}; choose from {list(SERVICE_TYPES)}")
        groups = [s for s in SERVICE_TYPES if s in set(services)]
    if not groups:
        raise ValueError("no service type selected (empty cohort or empty 'services')")
    return cohort.loc[cohort[GROUP_COLUMN].isin(groups)], groups


def _resolve_variables(variables: Sequence[str | Variable] | None) -> list[Variable]:
    if variables is None:
        return list(TABLE1_VARIABLES)
    out = []
    for v in variables:
        if isinstance(v, Variable):
            out.append(v)
        elif v in VARIABLES_BY_COLUMN:
            out.append(VARIABLES_BY_COLUMN[v])
        else:
            raise KeyError(f"unknown Table 1 variable {v!r}; known: {list(VARIABLES_BY_COLUMN)}")
    return out


# --------------------------------------------------------------------------------------
# the numbers
# --------------------------------------------------------------------------------------
def _categorical_long(data: pd.DataFrame, var: Variable, groups: list[str]) -> pd.DataFrame:
    col = data[var.column]
    if var.kind == "binary":
        values = col.astype("boolean").map({True: "yes", False: "no"})
        shown = ["yes"]
    else:
        values = col.astype("str").where(col.notna())
        extra = sorted(set(values.dropna().unique()) - set(var.levels))
        shown = list(var.levels) + extra
    group = data[GROUP_COLUMN]
    counts = pd.crosstab(values, group).reindex(columns=groups, fill_value=0)
    counts[TOTAL] = counts.sum(axis=1)
    denominators = counts.sum(axis=0)
    counts = counts.reindex(index=shown, fill_value=0)
    missing = values.isna().groupby(group).sum().reindex(groups, fill_value=0)
    missing[TOTAL] = missing.sum()
    long = counts.rename_axis(index="level", columns="group").stack().rename("n").reset_index()
    long["denominator"] = long["group"].map(denominators).astype("int64")
    long["n_missing"] = long["group"].map(missing).astype("int64")
    long["percent"] = 100 * long["n"] / long["denominator"].where(long["denominator"] > 0)
    long["variable"] = var.column
    long["kind"] = "categorical"
    # canonical order: levels, then groups
    long["_l"] = long["level"].map({lv: i for i, lv in enumerate(shown)})
    long["_g"] = long["group"].map({g: i for i, g in enumerate(groups + [TOTAL])})
    return long.sort_values(["_l", "_g"]).drop(columns=["_l", "_g"])


def _continuous_long(data: pd.DataFrame, var: Variable, groups: list[str]) -> pd.DataFrame:
    x = pd.to_numeric(data[var.column], errors="raise").astype("float64")
    group = data[GROUP_COLUMN]
    both = pd.concat([
        pd.DataFrame({"group": group, "x": x}),
        pd.DataFrame({"group": TOTAL, "x": x}),
    ], ignore_index=True)
    g = both.groupby("group", sort=False)["x"]
    summary = g.agg(n="count", mean="mean", sd="std", median="median", min="min", max="max")
    quart = g.quantile([0.25, 0.75]).unstack()
    summary["q1"], summary["q3"] = quart[0.25], quart[0.75]
    summary["n_missing"] = both["x"].isna().groupby(both["group"], sort=False).sum()
    summary = summary.reindex(groups + [TOTAL])
    summary["n"] = summary["n"].fillna(0).astype("int64")
    summary["n_missing"] = summary["n_missing"].fillna(0).astype("int64")
    summary["denominator"] = summary["n"]
    long = summary.rename_axis("group").reset_index()
    long["variable"], long["level"], long["kind"], long["percent"] = var.column, "", "continuous", np.nan
    return long


def table1_long(cohort: pd.DataFrame, services: Sequence[str] | None = None,
                variables: Sequence[str | Variable] | None = None) -> pd.DataFrame:
    """Table 1 numbers, tidy: one row per (variable, level, group).

    Parameters
    ----------
    cohort : the cleaned cohort, one row per patient.
    services : service types to include (default all present); each is a group,
        plus ``"Total"`` (all included patients).
    variables : subset of :data:`TABLE1_VARIABLES` (column names), default all.

    Returns
    -------
    DataFrame
        Columns ``variable, level, group, kind, n, denominator, percent, n_missing,
        mean, sd, median, q1, q3, min, max``. Categorical rows: ``n`` patients with
        the level, ``denominator`` patients with a non-missing value, ``percent`` =
        100 n / denominator, ``n_missing`` patients with a missing value (repeated on
        every level). Continuous rows (``level`` ""): ``n`` = ``denominator`` =
        non-missing count and the summary statistics (SD with ddof=1). Medication
        classes are categorical with the single level ``"yes"``. Levels follow
        :mod:`imr_analysis.constants`; unexpected values follow, sorted.

    Examples
    --------
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "SerD", "SerD"],
    ...                        "age_at_imr_start": [30, 40, 50]})
    >>> long = table1_long(cohort, variables=["age_at_imr_start"])
    >>> long[["group", "n", "mean"]].to_numpy().tolist()
    [['CMHC', 1, 30.0], ['SerD', 2, 45.0], ['Total', 3, 40.0]]
    """
    variables = _resolve_variables(variables)
    require_columns(cohort, [v.column for v in variables])
    data, groups = select_services(cohort, services)
    parts = [
        (_continuous_long if v.kind == "continuous" else _categorical_long)(data, v, groups)
        for v in variables
    ]
    long = pd.concat(parts, ignore_index=True).reindex(columns=LONG_COLUMNS)
    long["level"] = long["level"].astype("str")
    for c in ["n", "denominator", "n_missing"]:
        long[c] = long[c].astype("int64")
    for c in ["percent", "mean", "sd", "median", "q1", "q3", "min", "max"]:
        long[c] = long[c].astype("float64")
    return long


def table1_tests(cohort: pd.DataFrame, services: Sequence[str] | None = None, alpha: float = 0.05,
                 seed: int = 0, n_resamples: int = st.N_RESAMPLES,
                 variables: Sequence[str | Variable] | None = None) -> pd.DataFrame:
    """Between-service tests of the Table 1 variables.

    One row per variable and comparison: ``"all services"`` (the included service
    types; chi-square / Monte-Carlo chi-square / Fisher, or ANOVA / Kruskal-Wallis)
    and ``"CMHC vs SerD"`` when both are included (chi-square / Fisher, or t-test /
    Mann-Whitney U). Test selection as in :mod:`imr_analysis.stats`.

    Returns
    -------
    DataFrame
        :func:`imr_analysis.stats.results_frame` columns (``variable, comparison,
        kind, groups, n_per_group, n, test, statistic, df, df2, p_value,
        significant, alpha, reason, note, ...``).

    Examples
    --------
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"service_type": ["CMHC"] * 4 + ["SerD"] * 4,
    ...                        "age_at_imr_start": [20, 22, 24, 26, 40, 42, 44, 47]})
    >>> tests = table1_tests(cohort, variables=["age_at_imr_start"])
    >>> tests[["comparison", "test"]].to_numpy().tolist()
    [['all services', 'Student t-test'], ['CMHC vs SerD', 'Student t-test']]
    """
    variables = _resolve_variables(variables)
    require_columns(cohort, [v.column for v in variables])
    data, groups = select_services(cohort, services)
    comparisons = [(ALL_SERVICES, groups)]
    if "CMHC" in groups and "SerD" in groups:
        comparisons.append(("CMHC vs SerD", ["CMHC", "SerD"]))
    rows = []
    for v in variables:
        for label, levels in comparisons:
            if v.kind == "continuous":
                rows.append(st.compare_continuous(data, v.column, GROUP_COLUMN, levels=levels,
                                                  alpha=alpha, comparison=label))
            else:
                rows.append(st.compare_categorical(data, v.column, GROUP_COLUMN, levels=levels,
                                                   alpha=alpha, seed=seed, n_resamples=n_resamples,
                                                   comparison=label))
    return st.results_frame(rows)


# --------------------------------------------------------------------------------------
# display
# --------------------------------------------------------------------------------------
def _number(x) -> float | None:
    """A finite float, or None for missing; strings are returned as None too."""
    if x is None or isinstance(x, str):
        return None
    if x is pd.NA:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _given(x) -> str | None:
    """A string placed in a numeric cell by disclosure control (e.g. "[REDACTED]", "~")."""
    return x if isinstance(x, str) and x.strip() != "" else None


def _int_text(x) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:g}"


def format_p(p, digits: int = 3) -> str:
    """Format a p-value: ``"<0.001"`` below 10**-digits, else ``digits`` decimals.

    Examples
    --------
    >>> format_p(0.00002), format_p(0.0456), format_p(float("nan"))
    ('<0.001', '0.046', '')
    """
    if _given(p):
        return p
    v = _number(p)
    if v is None:
        return ""
    threshold = 10 ** -digits
    return f"<{threshold:.{digits}f}" if v < threshold else f"{v:.{digits}f}"


def format_count_percent(n, percent, decimals: int = 1, na_rep: str = "[REDACTED]") -> str:
    """``"77 (61.1%)"``; a string in ``n`` is printed as given, a missing ``n`` as ``na_rep``.

    Examples
    --------
    >>> format_count_percent(77, 61.111), format_count_percent("~", None), format_count_percent(0, None)
    ('77 (61.1%)', '~', '0 (–)')
    """
    if _given(n):
        return n
    v = _number(n)
    if v is None:
        return na_rep
    pv = _number(percent)
    pct = f"{pv:.{decimals}f}%" if pv is not None else (_given(percent) or "–")
    return f"{_int_text(v)} ({pct})"


def format_mean_sd(mean, sd, decimals: int = 2, na_rep: str = "[REDACTED]") -> str:
    """``"40.14 (12.92)"``; SD missing (n = 1) gives ``"40.00 (–)"``.

    Examples
    --------
    >>> format_mean_sd(40.1428, 12.921), format_mean_sd(3.0, float("nan"))
    ('40.14 (12.92)', '3.00 (–)')
    """
    if _given(mean):
        return mean
    m = _number(mean)
    if m is None:
        return na_rep
    s = _number(sd)
    return f"{m:.{decimals}f} ({s:.{decimals}f})" if s is not None else f"{m:.{decimals}f} (–)"


def _quantile_texts(values: list, decimals: int) -> list[str]:
    nums = [_number(v) for v in values]
    if all(v is None or float(v).is_integer() for v in nums):
        return [f"{v:.0f}" if v is not None else (_given(o) or "–") for v, o in zip(nums, values)]
    return [f"{v:.{decimals}f}" if v is not None else (_given(o) or "–") for v, o in zip(nums, values)]


def format_median_iqr(median, q1, q3, vmin=None, vmax=None, decimals: int = 1,
                      na_rep: str = "[REDACTED]") -> str:
    """``"40 [29-50]; 18-70"``: median [Q1-Q3]; min-max (range omitted when absent).

    The median and quartiles print without decimals when all three are whole
    numbers, else with ``decimals``; the same rule applies to the range.

    Examples
    --------
    >>> format_median_iqr(40, 29, 50, 18, 70), format_median_iqr(48.5, 35.75, 58.5, 18, 69)
    ('40 [29-50]; 18-70', '48.5 [35.8-58.5]; 18-69')
    """
    if _given(median):
        return median
    if _number(median) is None:
        return na_rep
    has_range = _number(vmin) is not None or _number(vmax) is not None or _given(vmin) or _given(vmax)
    texts = _quantile_texts([median, q1, q3], decimals)
    out = f"{texts[0]} [{texts[1]}-{texts[2]}]"
    if has_range:
        lo, hi = _quantile_texts([vmin, vmax], decimals)
        out += f"; {lo}-{hi}"
    return out


def _group_sizes(long: pd.DataFrame) -> dict:
    """Patients per group: the most frequent ``denominator + n_missing`` over the rows.

    Without disclosure control every row gives the same value; after rounding the
    per-variable sums can differ by a rounding step, and the mode is the value most
    variables agree on (ties: the smallest). Groups with no usable row are absent.
    """
    size = (pd.to_numeric(long["denominator"], errors="coerce")
            + pd.to_numeric(long["n_missing"], errors="coerce"))
    frame = pd.DataFrame({"group": long["group"], "size": size}).dropna()
    counts = frame.groupby(["group", "size"], sort=False).size().rename("k").reset_index()
    counts = counts.sort_values(["group", "k", "size"], ascending=[True, False, True], kind="stable")
    return counts.drop_duplicates("group").set_index("group")["size"].to_dict()


def _group_header(group: str, size) -> str:
    v = _number(size)
    return f"{group} (n={v:.0f})" if v is not None else group


def format_table1(long: pd.DataFrame, tests: pd.DataFrame | None = None, decimals: dict | int | None = None,
                  na_rep: str = "[REDACTED]", missing_rows: bool = True) -> pd.DataFrame:
    """The display Table 1: one row per variable/level, one column per group, p-values.

    Parameters
    ----------
    long : output of :func:`table1_long`, possibly after disclosure control (``n``
        rounded or redacted - a string such as ``"[REDACTED]"`` or ``"~"`` is printed
        as given, a missing value as ``na_rep``; ``min``/``max`` may be dropped).
    tests : output of :func:`table1_tests`; adds ``p`` and ``Test`` columns for the
        "all services" comparison and ``p (<comparison>)``/``Test (<comparison>)`` for
        each other comparison.
    decimals : dict with keys ``percent`` (1), ``mean`` (2, also the SD),
        ``quantile`` (1) and ``p`` (3); an int sets ``mean``.
    na_rep : text of a missing (redacted) number.
    missing_rows : add a "Missing" row under variables with missing values.

    Returns
    -------
    DataFrame
        Columns ``Characteristic, Level``, then ``<group> (n=N)`` for each group in
        the order of ``long``, then the test columns; all cells are strings.
        Categorical cells are ``"n (%)"``; a continuous variable has a ``Mean (SD)``
        row and a ``Median [IQR]; range`` row.

    Examples
    --------
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "CMHC", "SerD"], "sex": ["M", "F", "M"]})
    >>> table = format_table1(table1_long(cohort, variables=["sex"]))
    >>> table.iloc[1].tolist()
    ['', 'Male', '1 (50.0%)', '1 (100.0%)', '2 (66.7%)']
    """
    dec = dict(DEFAULT_DECIMALS)
    if isinstance(decimals, int):
        dec["mean"] = decimals
    elif decimals:
        dec.update(decimals)
    require_columns(long, ["variable", "level", "group", "kind", "n"], what="long Table 1")
    long = long.copy()
    for c in ["denominator", "percent", "n_missing", "mean", "sd", "median", "q1", "q3", "min", "max"]:
        if c not in long.columns:
            long[c] = np.nan
    groups = list(pd.unique(long["group"]))
    sizes = _group_sizes(long)
    headers = {g: _group_header(g, sizes.get(g)) for g in groups}

    test_cols: list[tuple[str, str, str]] = []  # (comparison, p column, test column)
    pvals: dict[tuple[str, str], tuple[str, str]] = {}
    if tests is not None and len(tests):
        for comp in pd.unique(tests["comparison"]):
            suffix = "" if comp == ALL_SERVICES else f" ({comp})"
            test_cols.append((comp, f"p{suffix}", f"Test{suffix}"))
        for r in tests.itertuples(index=False):
            pvals[(r.variable, r.comparison)] = (format_p(r.p_value, dec["p"]),
                                                 st.TEST_ABBREVIATIONS.get(r.test, r.test or ""))

    columns = ["Characteristic", "Level"] + [headers[g] for g in groups]
    columns += [c for _, p, t in test_cols for c in (p, t)]
    rows: list[dict] = []

    def add(characteristic: str, level: str, cells: dict, variable: str | None = None) -> None:
        row = {"Characteristic": characteristic, "Level": level}
        row.update({headers[g]: cells.get(g, "") for g in groups})
        for comp, pcol, tcol in test_cols:
            p, t = pvals.get((variable, comp), ("", "")) if variable else ("", "")
            row[pcol], row[tcol] = p, t
        rows.append(row)

    section_done: set[str] = set()
    for variable, block in long.groupby("variable", sort=False):
        spec = VARIABLES_BY_COLUMN.get(variable, Variable(variable, variable, block["kind"].iloc[0]))
        by_group = {lvl: b.set_index("group") for lvl, b in block.groupby("level", sort=False)}
        first = block.drop_duplicates("group").set_index("group")
        if block["kind"].iloc[0] == "continuous":
            b = by_group[next(iter(by_group))]
            add(spec.label, "", {}, variable)
            add("", "Mean (SD)", {g: ("–" if _number(b.at[g, "n"]) == 0 else
                                      format_mean_sd(b.at[g, "mean"], b.at[g, "sd"], dec["mean"], na_rep))
                                  for g in b.index})
            has_range = any(_number(b.at[g, c]) is not None or _given(b.at[g, c])
                            for g in b.index for c in ("min", "max"))
            add("", "Median [IQR]; range" if has_range else "Median [IQR]",
                {g: ("–" if _number(b.at[g, "n"]) == 0 else
                     format_median_iqr(b.at[g, "median"], b.at[g, "q1"], b.at[g, "q3"],
                                       b.at[g, "min"], b.at[g, "max"], dec["quantile"], na_rep))
                 for g in b.index})
        elif spec.kind == "binary":
            if spec.section and spec.section not in section_done:
                add(f"{spec.section}, n (%)", "", {})
                section_done.add(spec.section)
            b = by_group.get("yes", next(iter(by_group.values())))
            add("", spec.label, {g: format_count_percent(b.at[g, "n"], b.at[g, "percent"],
                                                         dec["percent"], na_rep) for g in b.index}, variable)
        else:
            add(f"{spec.label}, n (%)", "", {}, variable)
            labels = LEVEL_LABELS.get(variable, {})
            for lvl, b in by_group.items():
                add("", labels.get(lvl, lvl), {g: format_count_percent(b.at[g, "n"], b.at[g, "percent"],
                                                                       dec["percent"], na_rep)
                                               for g in b.index})
        if missing_rows:
            miss = first["n_missing"]
            if any((_number(m) or 0) > 0 or _given(m) for m in miss):
                cells = {}
                for g in first.index:
                    m = miss.at[g]
                    size = _number(sizes.get(g))
                    mv = _number(m)
                    pct = 100 * mv / size if (mv is not None and size) else None
                    cells[g] = format_count_percent(m, pct, dec["percent"], na_rep)
                level = "Missing" if spec.kind != "binary" else f"Missing ({spec.label})"
                add("", level, cells)
    return pd.DataFrame(rows, columns=columns)
