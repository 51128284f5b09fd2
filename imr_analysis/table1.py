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


def service_codes(cohort: pd.DataFrame, services: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Encode ``service_type`` once: each patient's position in the groups shown.

    The checks and the groups are those of :func:`select_services`; instead of a
    copy of the selected patients it returns one integer code per row of
    ``cohort`` (0, 1, ... = position in the groups; -1 = not selected or missing),
    which the table functions count with :func:`numpy.bincount`.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"service_type": ["SerD", "CMHC", "EDP"]})
    >>> codes, groups = service_codes(df, ["SerD", "CMHC"])
    >>> codes.tolist(), groups
    ([1, 0, -1], ['CMHC', 'SerD'])
    """
    require_columns(cohort, [GROUP_COLUMN])
    codes = st.level_codes(cohort[GROUP_COLUMN], SERVICE_TYPES)
    if codes is not None:  # only known service types: codes are positions in SERVICE_TYPES
        uniques = list(SERVICE_TYPES)
        present = np.bincount(codes + 1, minlength=len(uniques) + 1)[1:] > 0
        observed = {u for u, p in zip(uniques, present) if p}
    else:
        codes, uniques = pd.factorize(cohort[GROUP_COLUMN])
        observed = set(uniques)
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
    return st.level_lookup(uniques, groups)[codes], groups


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
        types are kept even when they have no patient, so they show as zero). When
        every patient is selected the frame is a (copy-on-write) shallow copy of
        ``cohort``, so no data are copied.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"service_type": ["SerD", "CMHC", "EDP"]})
    >>> select_services(df, ["SerD", "CMHC"])[1]
    ['CMHC', 'SerD']
    """
    codes, groups = service_codes(cohort, services)
    keep = codes >= 0
    return (cohort.copy(deep=False) if keep.all() else cohort.loc[keep]), groups


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
# Every function below encodes ``service_type`` once (:func:`service_codes`) and each
# variable once (:func:`imr_analysis.stats.level_codes`, else :func:`pandas.factorize`),
# then counts with :func:`numpy.bincount`; no groupby on strings, no copy of the cohort.
# Means and SDs come from pandas' grouped mean/std on the same stacked layout as the
# former ``groupby`` code (:func:`stacked_mean_sd`), medians and quartiles from each
# group's sorted values with pandas' own rule: the numbers are the same floats.


def _float_values(col: pd.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for missing (errors on non-numbers)."""
    x = pd.to_numeric(col, errors="raise")
    return x.to_numpy() if x.dtype == np.float64 else x.to_numpy(dtype="float64", na_value=np.nan)


def _median_sorted(s: np.ndarray) -> float:
    """Median of sorted values as pandas computes it (mean of the two middle values)."""
    n = len(s)
    if n == 0:
        return np.nan
    return float(s[n // 2]) if n % 2 else float((s[n // 2 - 1] + s[n // 2]) / 2)


def _quantile_sorted(s: np.ndarray, q: float) -> float:
    """Quantile of sorted values with linear interpolation (numpy/R type 7).

    Written as :meth:`pandas.core.groupby.GroupBy.quantile` computes it (the value at
    ``floor(q (n-1))`` plus the fraction of the gap to the next value), so the result
    is the same float as the grouped pandas call.
    """
    n = len(s)
    if n == 0:
        return np.nan
    q_idx = q * (n - 1)
    idx = int(q_idx)
    frac = q_idx % 1
    val = s[idx]
    return float(val) if frac == 0.0 else float(val + (s[idx + 1] - val) * frac)


def stacked_mean_sd(columns: dict[str, np.ndarray], keys: Sequence[np.ndarray],
                    n_codes: Sequence[int]) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Mean and SD (ddof=1) of each column in each group of several groupings stacked together.

    ``keys`` are integer codes ``0 .. n_codes[i]-1``, one array per grouping (e.g. the
    service type, then 0 for the total), each as long as the columns; a code < 0
    leaves the row out of that grouping (like a missing label). The rows are
    stacked once per grouping and go through pandas ``groupby(sort=False)`` mean and
    std, as a groupby on the stacked table of (grouping, group) labels would: the
    floats are those of pandas' grouped mean (its compensated sum, or
    ``numpy.add.reduceat`` when the stacked groups are contiguous and the column has
    no NaN) and grouped variance (Welford), whatever the order of the rows. The
    columns share one groupby unless the groups are contiguous (then pandas' choice
    depends on each column's NaN, so each column gets its own).

    Returns
    -------
    dict
        For each column, a list with, for each grouping, the means and SDs of its
        codes (NaN for a code without non-missing values, and for the SD of one value).

    Examples
    --------
    >>> import numpy as np
    >>> out = stacked_mean_sd({"x": np.array([1.0, 2.0, 4.0])},
    ...                       [np.array([0, 1, 0]), np.zeros(3, dtype=int)], [2, 1])
    >>> [(m.tolist(), s.round(3).tolist()) for m, s in out["x"]]
    [([2.5, 2.0], [2.121, nan]), ([2.3333333333333335], [1.528])]
    """
    stride = max(max(n_codes), 1)
    if any((np.asarray(k) < 0).any() for k in keys):
        # rows left out of a grouping get a NaN key, which pandas drops (as a missing label)
        stacked_key = np.concatenate([np.where(np.asarray(k) >= 0, np.asarray(k) + i * stride, np.nan)
                                      for i, k in enumerate(keys)])
        contiguous = True  # let pandas choose per column
    else:
        dtype = np.int8 if stride * len(keys) < 127 else np.int64
        stacked_key = np.concatenate([np.asarray(k).astype(dtype) + dtype(i * stride)
                                      for i, k in enumerate(keys)])
        n_runs = 1 + np.count_nonzero(stacked_key[1:] != stacked_key[:-1]) if len(stacked_key) else 0
        contiguous = n_runs == len(np.unique(stacked_key))

    def moments(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        by = frame.groupby(stacked_key, sort=False)
        return by.mean(), by.std()

    names = list(columns)
    n_rows = len(stacked_key) // max(len(keys), 1)
    if contiguous:
        results = [moments(pd.DataFrame({c: np.tile(np.asarray(columns[c], dtype=np.float64), len(keys))},
                                        copy=False)) for c in names]
        mean = pd.concat([m for m, _ in results], axis=1)
        sd = pd.concat([d for _, d in results], axis=1)
    else:
        # one float block (columns x stacked rows), filled in place: no further copy
        block = np.empty((len(names), len(stacked_key)), dtype=np.float64)
        for j, c in enumerate(names):
            for i in range(len(keys)):
                block[j, i * n_rows:(i + 1) * n_rows] = columns[c]
        mean, sd = moments(pd.DataFrame(block.T, columns=names, copy=False))
    out: dict[str, list] = {c: [] for c in names}
    for i, n in enumerate(n_codes):
        labels = np.arange(n) + i * stride
        m, d = mean.reindex(labels), sd.reindex(labels)
        for c in names:
            out[c].append((m[c].to_numpy(dtype="float64"), d[c].to_numpy(dtype="float64")))
    return out


def _continuous_long(cohort: pd.DataFrame, variables: list[Variable], codes: np.ndarray,
                     groups: list[str]) -> dict[str, pd.DataFrame]:
    """The rows of the continuous variables, keyed by column."""
    n_groups = len(groups)
    columns = list(dict.fromkeys(v.column for v in variables))
    selected = codes >= 0
    sel_codes = codes if selected.all() else codes[selected]
    keys = [sel_codes, np.zeros(len(sel_codes), dtype=np.int64)]  # each group, then the total
    sizes = np.bincount(sel_codes, minlength=n_groups)
    sizes = np.append(sizes, sizes.sum())
    values = {}
    for c in columns:
        x = _float_values(cohort[c])
        values[c] = x if selected.all() else x[selected]
    moments = stacked_mean_sd(values, keys, [n_groups, 1])
    out = {}
    for c in columns:
        (g_mean, g_sd), (t_mean, t_sd) = moments[c]
        ordered = st.sorted_by_group(values[c], sel_codes, n_groups, total=True)
        n = np.array([len(s) for s in ordered], dtype="int64")
        out[c] = pd.DataFrame({
            "group": groups + [TOTAL], "n": n,
            "mean": np.append(g_mean, t_mean), "sd": np.append(g_sd, t_sd),
            "median": [_median_sorted(s) for s in ordered],
            "min": [float(s[0]) if len(s) else np.nan for s in ordered],
            "max": [float(s[-1]) if len(s) else np.nan for s in ordered],
            "q1": [_quantile_sorted(s, 0.25) for s in ordered],
            "q3": [_quantile_sorted(s, 0.75) for s in ordered],
            "n_missing": sizes - n, "denominator": n,
            "variable": c, "level": "", "kind": "continuous", "percent": np.nan,
        })
    return out


def _level_codes(col: pd.Series, levels: Sequence[str] = ()) -> tuple[np.ndarray, list[str]]:
    """Codes of the values of ``col`` as text (the Table 1 levels); -1 for missing."""
    if levels:
        codes = st.level_codes(col, levels)
        if codes is not None and isinstance(col.dtype, pd.StringDtype):  # text already
            return codes, list(levels)
    codes, uniques = pd.factorize(col)
    labels = pd.Index(uniques).astype("str")
    if labels.is_unique:
        return codes, list(labels)
    merged, names = pd.factorize(np.asarray(labels, dtype=object))  # e.g. 1 and "1"
    return np.append(merged, -1)[codes], list(names)


def _count_by_group(level: np.ndarray, n_levels: int, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Patients per (group, level code + 1): column 0 counts the missing (code -1), one pass."""
    selected = codes >= 0
    if not selected.all():
        level, codes = level[selected], codes[selected]
    # 32-bit arithmetic: a fifth of the memory traffic of int64 on 10^6 rows
    cell = codes.astype(np.int32, copy=False) * np.int32(n_levels + 1) + level.astype(np.int32, copy=False)
    cell += 1
    return np.bincount(cell, minlength=n_groups * (n_levels + 1)).reshape(n_groups, n_levels + 1)


def _categorical_long(col: pd.Series, var: Variable, codes: np.ndarray, groups: list[str]) -> pd.DataFrame:
    n_groups = len(groups)
    if var.kind == "binary":
        if col.dtype == bool:
            level = col.to_numpy().view(np.int8)
        else:
            values = col.astype("boolean")
            level = values.fillna(False).to_numpy(dtype=bool).astype(np.int8)
            level[values.isna().to_numpy()] = -1
        table = _count_by_group(level, 2, codes, n_groups)  # missing, no, yes
        shown = ["yes"]
        counts = table[:, 2][None, :]
        denominators = table[:, 1] + table[:, 2]
    else:
        level, labels = _level_codes(col, var.levels)
        table = _count_by_group(level, len(labels), codes, n_groups)
        observed = [lab for lab, k in zip(labels, table[:, 1:].sum(axis=0)) if k > 0]
        shown = list(var.levels) + sorted(set(observed) - set(var.levels))
        row = {lab: i + 1 for i, lab in enumerate(labels)}
        counts = np.array([table[:, row[lv]] if lv in row else np.zeros(n_groups, dtype=np.int64)
                           for lv in shown], dtype=np.int64).reshape(len(shown), n_groups)
        denominators = table[:, 1:].sum(axis=1)
    n_missing = table[:, 0]
    counts = np.column_stack([counts, counts.sum(axis=1)]).astype(np.int64)
    denominators = np.append(denominators, denominators.sum()).astype(np.int64)
    n_missing = np.append(n_missing, n_missing.sum()).astype(np.int64)
    n_levels, width = counts.shape
    n = counts.ravel()
    den = np.tile(denominators, n_levels)
    with np.errstate(divide="ignore", invalid="ignore"):
        percent = np.where(den > 0, 100 * n / np.where(den > 0, den, 1), np.nan)
    return pd.DataFrame({
        "level": np.repeat(np.array(shown, dtype=object), width),
        "group": np.tile(np.array(groups + [TOTAL], dtype=object), n_levels),
        "n": n, "denominator": den, "n_missing": np.tile(n_missing, n_levels), "percent": percent,
        "variable": var.column, "kind": "categorical",
    })


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

    Notes
    -----
    Vectorised for large cohorts: ``service_type`` and each categorical variable are
    encoded once and counted with :func:`numpy.bincount`; means and SDs are pandas'
    grouped mean/std; medians and quartiles are read off each group's sorted values
    (integer-valued variables sorted by counting) with the linear interpolation of
    :meth:`pandas.core.groupby.GroupBy.quantile`.

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
    codes, groups = service_codes(cohort, services)
    continuous = [v for v in variables if v.kind == "continuous"]
    cont = _continuous_long(cohort, continuous, codes, groups) if continuous else {}
    parts = [cont[v.column] if v.kind == "continuous" else _categorical_long(cohort[v.column], v, codes, groups)
             for v in variables]
    return typed_long(pd.concat(parts, ignore_index=True))


def typed_long(long: pd.DataFrame) -> pd.DataFrame:
    """Table 1's long format: :data:`LONG_COLUMNS` in order, with their dtypes."""
    long = long.reindex(columns=LONG_COLUMNS)
    for c in ["variable", "level", "group", "kind"]:
        long[c] = long[c].astype("str")
    for c in ["n", "denominator", "n_missing"]:
        long[c] = long[c].astype("int64")
    for c in ["percent", "mean", "sd", "median", "q1", "q3", "min", "max"]:
        long[c] = long[c].astype("float64")
    return long


def _contingency(col: pd.Series, codes: np.ndarray, groups: list[str], levels: Sequence = ()) -> pd.DataFrame:
    """Counts of ``col`` (rows: its values, sorted) by group (columns), missing excluded.

    The same table as :func:`imr_analysis.stats.contingency_table` (plus rows of
    values seen only outside the groups, which count zero and are dropped by the test).
    """
    n_groups = len(groups)
    level = None
    if col.dtype == bool:
        level, uniques = col.to_numpy().view(np.int8), pd.Index([False, True])
    elif levels:
        uniques = sorted(levels)  # pandas.crosstab sorts the rows
        level = st.level_codes(col, uniques)
    if level is None:
        level, uniques = pd.factorize(col, sort=True)
    table = _count_by_group(level, len(uniques), codes, n_groups)[:, 1:].T
    return pd.DataFrame(table.astype(np.int64), index=pd.Index(uniques, name=col.name),
                        columns=pd.Index(groups, name=GROUP_COLUMN))


def table1_tests(cohort: pd.DataFrame, services: Sequence[str] | None = None, alpha: float = 0.05,
                 seed: int = 0, n_resamples: int = st.N_RESAMPLES,
                 variables: Sequence[str | Variable] | None = None) -> pd.DataFrame:
    """Between-service tests of the Table 1 variables.

    One row per variable and comparison: ``"all services"`` (the included service
    types; chi-square / Monte-Carlo chi-square / Fisher, or ANOVA / Kruskal-Wallis)
    and ``"CMHC vs SerD"`` when both are included (chi-square / Fisher, or t-test /
    Mann-Whitney U). Test selection as in :mod:`imr_analysis.stats` (normality:
    Shapiro-Wilk, or D'Agostino-Pearson K² in groups of more than 5000 patients; the
    ``note`` column says when).

    Returns
    -------
    DataFrame
        :func:`imr_analysis.stats.results_frame` columns (``variable, comparison,
        kind, groups, n_per_group, n, test, statistic, df, df2, p_value,
        significant, alpha, reason, note, ...``).

    Notes
    -----
    Each variable is encoded once; the contingency table (:func:`numpy.bincount`) or
    the per-group samples are built once and passed to
    :func:`imr_analysis.stats.compare_categorical_table` /
    :func:`imr_analysis.stats.compare_continuous_samples` for every comparison, which
    give the same results as :func:`~imr_analysis.stats.compare_categorical` /
    :func:`~imr_analysis.stats.compare_continuous` on the selected patients.

    Examples
    --------
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"service_type": ["CMHC"] * 4 + ["SerD"] * 4,
    ...                        "age_at_imr_start": [20, 22, 24, 26, 40, 42, 44, 47]})
    >>> tests = table1_tests(cohort, variables=["age_at_imr_start"])
    >>> tests[["comparison", "test"]].to_numpy().tolist()
    [['all services', 'Student t-test'], ['CMHC vs SerD', 'Student t-test']]
    """
    st._check_alpha(alpha)
    variables = _resolve_variables(variables)
    require_columns(cohort, [v.column for v in variables])
    codes, groups = service_codes(cohort, services)
    comparisons = [(ALL_SERVICES, groups)]
    if "CMHC" in groups and "SerD" in groups:
        comparisons.append(("CMHC vs SerD", ["CMHC", "SerD"]))
    rows = []
    for v in variables:
        if v.kind == "continuous":
            parts = st.split_by_group(_float_values(cohort[v.column]), codes, len(groups))
            samples = {g: st.GroupSample(x) for g, x in zip(groups, parts)}  # sorted once for both comparisons
            rows += [st.compare_continuous_samples({g: samples[g] for g in levels}, v.column,
                                                   alpha=alpha, comparison=label)
                     for label, levels in comparisons]
        else:
            table = _contingency(cohort[v.column], codes, groups, v.levels if v.kind != "binary" else ())
            rows += [st.compare_categorical_table(table[levels], v.column, alpha=alpha, seed=seed,
                                                  n_resamples=n_resamples, comparison=label)
                     for label, levels in comparisons]
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
