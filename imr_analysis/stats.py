"""Group comparisons with explicit, documented test selection.

The paper (Statistical Analysis) compared services with chi-square tests for
categorical variables and with t-tests, Mann-Whitney U tests and ANOVAs for
continuous ones, two-tailed. This module makes the choice between those tests
explicit and reproducible, and returns every result as one tidy row (a ``dict``)
so that many comparisons stack into a DataFrame.

Categorical variables (:func:`compare_categorical`)
    Pearson chi-square test of independence without continuity correction
    (:func:`scipy.stats.chi2_contingency`, ``correction=False``; the "Pearson
    Chi-Square" row SPSS reports). When any expected count is below 5 the
    asymptotic p-value is not trusted and the test switches to

    * Fisher's exact test (:func:`scipy.stats.fisher_exact`) for a 2 x 2 table;
    * otherwise a Monte-Carlo chi-square test: the Pearson statistic is referred to
      its distribution over tables with the observed margins, drawn with
      :func:`scipy.stats.random_table` through
      ``scipy.stats.chi2_contingency(..., method=scipy.stats.MonteCarloMethod(...))``
      (scipy >= 1.15), with a fixed seed and ``n_resamples`` resamples (default
      10000). This is the test R gives with ``chisq.test(simulate.p.value=TRUE)``.

    Missing values are excluded; levels observed in no patient are dropped from the
    contingency table (they carry no information and would make expected counts 0).

Continuous variables (:func:`compare_continuous`)
    With three or more groups, one-way ANOVA (:func:`scipy.stats.f_oneway`) and
    Kruskal-Wallis (:func:`scipy.stats.kruskal`) are both computed. ANOVA is
    *reported* only when the normality test (below) does not reject normality at
    ``alpha`` in any group and Levene's test (:func:`scipy.stats.levene`,
    ``center="median"``, i.e. Brown-Forsythe) does not reject equal variances;
    otherwise Kruskal-Wallis is reported.

    With two groups, the t-test (:func:`scipy.stats.ttest_ind`) and the two-sided
    Mann-Whitney U test (:func:`scipy.stats.mannwhitneyu`) are both computed. The
    t-test is Student's when Levene does not reject equal variances and Welch's
    when it does; it is reported when normality holds in both groups, otherwise
    Mann-Whitney U is reported.

    Normality is tested in each group with Shapiro-Wilk (:func:`scipy.stats.shapiro`)
    when the group has at most :data:`SHAPIRO_MAX_N` = 5000 observations, the range
    for which Royston's approximation of its p-value (Royston 1995, algorithm AS R94,
    the one scipy implements) is valid; scipy warns that the p-value may be
    inaccurate above it. Larger groups are tested with the D'Agostino-Pearson K²
    omnibus test of skewness and kurtosis (:func:`scipy.stats.normaltest`;
    D'Agostino & Pearson 1973; D'Agostino, Belanger & D'Agostino 1990, who
    recommend it for n >= 20), whose asymptotic chi-square p-value is accurate for
    large n and which costs O(n). The ``note`` of the result names the groups tested
    that way and the ``reason`` names the test. (At such sizes any normality test
    rejects trivial departures, so the rank test is then usually reported.)
    Normality can only be assessed in groups with at least 3 observations and a
    non-zero range; when it cannot be assessed in some group the non-parametric test
    is reported (the conservative choice) and the reason says why. Groups with fewer
    than 2 observations are left out with a note, never an exception.

Lower-level entry points for callers that encode their data once (e.g. Table 1 on
10^6 patients): :func:`compare_categorical_table` takes a contingency table and
:func:`compare_continuous_samples` the per-group samples; :func:`compare_categorical`
and :func:`compare_continuous` build those from a DataFrame and call them, so both
paths give the same results. The rank tests receive each group's values sorted
(ranks, and hence the Kruskal-Wallis and Mann-Whitney statistics, do not depend on
the order within a group; sorting first makes scipy's rank computation fast).

All tests are two-tailed. ``alpha`` defaults to 0.05 (the paper's "0.5" is a typo).

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"g": ["a"] * 6 + ["b"] * 6,
...                    "x": [1, 2, 3, 4, 5, 6, 5, 6, 7, 8, 9, 10]})
>>> row = compare_continuous(df, "x", "g")
>>> row["reported_test"], round(row["p_value"], 4)
('Student t-test', 0.0041)
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from .constants import SERVICE_TYPES

#: Default number of Monte-Carlo resamples of the chi-square test.
N_RESAMPLES = 10_000
#: Expected count below which the asymptotic chi-square p-value is not used.
MIN_EXPECTED = 5
#: Minimum group size of the Shapiro-Wilk test in scipy.
SHAPIRO_MIN_N = 3
#: Largest group tested with Shapiro-Wilk (the validity limit of Royston's p-value
#: approximation; scipy warns above it). Larger groups use D'Agostino-Pearson K².
SHAPIRO_MAX_N = 5000

NORMALITY_SHAPIRO = "Shapiro-Wilk"
NORMALITY_DAGOSTINO = "D'Agostino-Pearson"

TEST_CHI2 = "Pearson chi-square"
TEST_CHI2_MC = "Pearson chi-square (Monte-Carlo p)"
TEST_FISHER = "Fisher's exact test"
TEST_ANOVA = "One-way ANOVA"
TEST_KRUSKAL = "Kruskal-Wallis H"
TEST_STUDENT = "Student t-test"
TEST_WELCH = "Welch t-test"
TEST_MANN_WHITNEY = "Mann-Whitney U"

#: Short labels of the tests for display tables.
TEST_ABBREVIATIONS = {
    TEST_CHI2: "χ²",
    TEST_CHI2_MC: "χ² (MC)",
    TEST_FISHER: "Fisher",
    TEST_ANOVA: "ANOVA",
    TEST_KRUSKAL: "KW",
    TEST_STUDENT: "t",
    TEST_WELCH: "Welch t",
    TEST_MANN_WHITNEY: "MWU",
}

#: Column order of a stacked result table.
RESULT_COLUMNS = [
    "variable", "comparison", "kind", "groups", "n_per_group", "n",
    "test", "statistic", "df", "df2", "p_value", "significant", "alpha",
    "reason", "note",
]
CONTINUOUS_EXTRA_COLUMNS = [
    "test_parametric", "statistic_parametric", "df_parametric", "df2_parametric", "p_parametric",
    "test_nonparametric", "statistic_nonparametric", "p_nonparametric",
    "shapiro_p_min", "normality_ok", "levene_statistic", "levene_p", "equal_variance",
]
CATEGORICAL_EXTRA_COLUMNS = ["min_expected", "n_cells_expected_lt5", "n_cells", "n_resamples", "seed"]
#: Columns of a result table that reveal no patient count (see :func:`public_results`).
PUBLIC_RESULT_COLUMNS = [
    "variable", "comparison", "kind", "groups", "test", "p_value", "significant", "alpha",
    "test_parametric", "p_parametric", "test_nonparametric", "p_nonparametric",
]


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
@contextmanager
def _capture_scipy_warnings(notes: list[str]):
    """Turn the numerical warnings scipy emits on degenerate input into notes.

    Only the categories scipy uses for these situations are caught (its
    Constant/NearConstant/Degenerate input warnings, ``RuntimeWarning`` and the
    ``UserWarning`` of Shapiro-Wilk); any other warning propagates.
    """
    categories = (stats.ConstantInputWarning, stats.NearConstantInputWarning,
                  stats.DegenerateDataWarning, RuntimeWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        msg = str(w.message)
        if isinstance(w.message, categories) or (
            issubclass(w.category, UserWarning) and msg.startswith("scipy.stats.shapiro")
        ):
            text = re.sub(r"\s+", " ", msg).strip()
            if text not in notes:
                notes.append(text)
        else:  # not ours to swallow
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _require_columns(df: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not in the data; available: {list(df.columns)}")


def group_levels(df: pd.DataFrame, group: str, levels: Sequence | None = None) -> list:
    """Return the groups to compare, in a stable order.

    ``levels`` given: those, in that order (absent ones are kept; they are skipped
    later with a note). Otherwise the non-missing values of ``group``: in the
    canonical service order when they are service types, else sorted.

    Examples
    --------
    >>> import pandas as pd
    >>> group_levels(pd.DataFrame({"s": ["EDP", "CMHC", "SerD"]}), "s")
    ['CMHC', 'SerD', 'EDP']
    """
    if levels is not None:
        levels = list(levels)
        if len(set(levels)) != len(levels):
            raise ValueError(f"duplicated group levels in {levels}")
        return levels
    present = pd.unique(df[group].dropna())
    present = [p for p in present]
    if set(present) <= set(SERVICE_TYPES):
        return [s for s in SERVICE_TYPES if s in present]
    return sorted(present)


def _default_comparison(levels: Sequence) -> str:
    return " vs ".join(map(str, levels)) if len(levels) == 2 else "all groups"


def _base_row(var: str, comparison: str, kind: str, alpha: float) -> dict:
    return {
        "variable": var, "comparison": comparison, "kind": kind, "groups": "",
        "n_per_group": "", "n": 0, "test": None, "statistic": np.nan, "df": np.nan,
        "df2": np.nan, "p_value": np.nan, "significant": pd.NA, "alpha": alpha,
        "reason": "", "note": "",
    }


def _check_alpha(alpha: float) -> None:
    if not (0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


# --------------------------------------------------------------------------------------
# categorical
# --------------------------------------------------------------------------------------
def contingency_table(df: pd.DataFrame, var: str, group: str, levels: Sequence | None = None) -> pd.DataFrame:
    """Counts of ``var`` (rows) by ``group`` (columns), missing values excluded.

    Columns are ``levels`` (see :func:`group_levels`); rows are the observed values
    of ``var``. Vectorised (:func:`pandas.crosstab`).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": ["a", "a", "b"], "v": ["x", "y", "y"]})
    >>> contingency_table(df, "v", "g").to_numpy().tolist()
    [[1, 0], [1, 1]]
    """
    _require_columns(df, [var, group])
    levels = group_levels(df, group, levels)
    sub = df.loc[df[group].isin(levels) & df[var].notna(), [group, var]]
    table = pd.crosstab(sub[var], sub[group])
    return table.reindex(columns=levels, fill_value=0).astype("int64")


def compare_categorical(df: pd.DataFrame, var: str, group: str, levels: Sequence | None = None,
                        alpha: float = 0.05, seed: int = 0, n_resamples: int = N_RESAMPLES,
                        comparison: str | None = None, min_expected: float = MIN_EXPECTED) -> dict:
    """Test the association of a categorical ``var`` with ``group``.

    Pearson chi-square (no continuity correction) when every expected count is at
    least ``min_expected``; otherwise Fisher's exact test for a 2 x 2 table and a
    Monte-Carlo chi-square test (``n_resamples`` tables with the observed margins,
    seeded with ``seed``) for larger tables. See the module docstring.

    Parameters
    ----------
    df : DataFrame, one row per patient.
    var : categorical (or boolean) column to test.
    group : column holding the groups (e.g. ``service_type``).
    levels : groups to compare, in order; default all groups present.
    alpha : significance level (two-tailed).
    seed : seed of the Monte-Carlo resampling (``numpy.random.default_rng(seed)``).
    n_resamples : number of Monte-Carlo tables.
    comparison : label of the comparison; default ``"A vs B"`` or ``"all groups"``.
    min_expected : expected count below which the asymptotic test is not used.

    Returns
    -------
    dict
        ``variable, comparison, kind, groups, n_per_group, n, test, statistic, df,
        df2, p_value, significant, alpha, reason, note, min_expected,
        n_cells_expected_lt5, n_cells, n_resamples, seed``. ``statistic`` is the
        Pearson chi-square (the odds ratio for Fisher's test); ``df`` is the table's
        degrees of freedom (NaN for Fisher). ``p_value`` is NaN when no test is
        possible (fewer than two groups or two levels with data); ``note`` says why.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": ["a"] * 10 + ["b"] * 10,
    ...                    "v": ["x"] * 8 + ["y"] * 2 + ["x"] * 3 + ["y"] * 7})
    >>> row = compare_categorical(df, "v", "g")
    >>> row["test"], round(row["p_value"], 4)
    ("Fisher's exact test", 0.0698)
    """
    _check_alpha(alpha)
    _require_columns(df, [var, group])
    levels = group_levels(df, group, levels)
    table = contingency_table(df, var, group, levels)
    return compare_categorical_table(table, var, alpha=alpha, seed=seed, n_resamples=n_resamples,
                                     comparison=comparison or _default_comparison(levels),
                                     min_expected=min_expected)


def compare_categorical_table(table: pd.DataFrame, var: str = "variable", alpha: float = 0.05, seed: int = 0,
                              n_resamples: int = N_RESAMPLES, comparison: str | None = None,
                              min_expected: float = MIN_EXPECTED) -> dict:
    """The test of :func:`compare_categorical` on a contingency table already built.

    For callers that encode the data once and count with :func:`numpy.bincount`
    (e.g. :func:`imr_analysis.table1.table1_tests`); :func:`compare_categorical`
    calls it on :func:`contingency_table`, so both give the same result.

    Parameters
    ----------
    table : DataFrame of counts, one row per level of ``var`` (in the order of
        :func:`contingency_table`: sorted levels) and one column per group (the
        groups to compare, in order). Rows and columns without any count are left
        out (a group without data with a note).
    var : name of the variable (the ``variable`` of the result).
    alpha, seed, n_resamples, min_expected : as in :func:`compare_categorical`.
    comparison : label of the comparison; default ``"A vs B"`` or ``"all groups"``
        from the columns of ``table``.

    Returns
    -------
    dict
        The row of :func:`compare_categorical`.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"a": [8, 2], "b": [3, 7]}, index=["x", "y"])
    >>> row = compare_categorical_table(table, "v")
    >>> row["test"], round(row["p_value"], 4)
    ("Fisher's exact test", 0.0698)
    """
    _check_alpha(alpha)
    levels = list(table.columns)
    row = _base_row(var, comparison or _default_comparison(levels), "categorical", alpha)
    row.update({"min_expected": np.nan, "n_cells_expected_lt5": np.nan, "n_cells": np.nan,
                "n_resamples": np.nan, "seed": np.nan})
    notes: list[str] = []

    sizes = table.sum(axis=0)
    row["n_per_group"] = "; ".join(f"{g}={int(n)}" for g, n in sizes.items())
    empty = [str(g) for g, n in sizes.items() if n == 0]
    if empty:
        notes.append(f"group(s) without data left out: {', '.join(empty)}")
    table = table.loc[table.sum(axis=1) > 0, sizes > 0]
    row["groups"] = ", ".join(map(str, table.columns))
    row["n"] = int(table.to_numpy().sum())
    if table.shape[1] < 2 or table.shape[0] < 2:
        what = "groups" if table.shape[1] < 2 else f"levels of {var}"
        notes.append(f"no test: fewer than two {what} with data")
        row["note"] = "; ".join(notes)
        return row

    obs = table.to_numpy()
    expected = stats.contingency.expected_freq(obs)
    n_small = int((expected < min_expected).sum())
    row.update({"min_expected": float(expected.min()), "n_cells_expected_lt5": n_small,
                "n_cells": int(obs.size)})
    dof = int((obs.shape[0] - 1) * (obs.shape[1] - 1))
    with _capture_scipy_warnings(notes):
        if n_small == 0:
            res = stats.chi2_contingency(obs, correction=False)
            row.update({"test": TEST_CHI2, "statistic": float(res.statistic), "df": dof,
                        "p_value": float(res.pvalue)})
            row["reason"] = f"all expected counts >= {min_expected:g}"
        elif obs.shape == (2, 2):
            res = stats.fisher_exact(obs, alternative="two-sided")
            row.update({"test": TEST_FISHER, "statistic": float(res.statistic),
                        "p_value": float(res.pvalue)})
            row["reason"] = f"2 x 2 table with expected count < {min_expected:g}"
            notes.append(f"expected count < {min_expected:g} in {n_small} of 4 cells; "
                         "Fisher's exact test, two-sided; statistic is the odds ratio")
        else:
            method = stats.MonteCarloMethod(n_resamples=int(n_resamples), rng=np.random.default_rng(seed))
            res = stats.chi2_contingency(obs, correction=False, method=method)
            row.update({"test": TEST_CHI2_MC, "statistic": float(res.statistic), "df": dof,
                        "p_value": float(res.pvalue), "n_resamples": int(n_resamples), "seed": seed})
            row["reason"] = f"{obs.shape[0]} x {obs.shape[1]} table with expected count < {min_expected:g}"
            notes.append(f"expected count < {min_expected:g} in {n_small} of {obs.size} cells; "
                         f"Monte-Carlo {int(n_resamples)} resamples, seed {seed}")
    row["significant"] = bool(row["p_value"] < alpha) if np.isfinite(row["p_value"]) else pd.NA
    row["note"] = "; ".join(notes)
    return row


# --------------------------------------------------------------------------------------
# encoding helpers (shared with table1 / table2)
# --------------------------------------------------------------------------------------
def level_lookup(uniques: Sequence, levels: Sequence) -> np.ndarray:
    """Position in ``levels`` of each of ``uniques`` (-1 when not a level), followed by a
    final -1: index it with :func:`pandas.factorize` codes (-1 for missing takes the last).

    Examples
    --------
    >>> level_lookup(["b", "x", "a"], ["a", "b"])[[0, 1, 2, -1]].tolist()
    [1, -1, 0, -1]
    """
    position = {lvl: i for i, lvl in enumerate(levels)}
    return np.array([position.get(u, -1) for u in uniques] + [-1], dtype=np.int32)


def level_codes(values: pd.Series, levels: Sequence) -> np.ndarray | None:
    """Position of each value in ``levels`` (0, 1, ...), -1 for missing; None if a value is not in ``levels``.

    One pass over the column: :func:`pyarrow.compute.index_in` for pyarrow-backed
    strings (the cleaned cohort's text columns), :func:`pandas.factorize` otherwise.
    ``None`` tells the caller that the column holds values outside ``levels``.

    Examples
    --------
    >>> import pandas as pd
    >>> level_codes(pd.Series(["b", None, "a"], dtype="string[pyarrow]"), ["a", "b"]).tolist()
    [1, -1, 0]
    >>> level_codes(pd.Series(["b", "c"]), ["a", "b"]) is None
    True
    """
    levels = list(levels)
    dtype = values.dtype
    if (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow" and levels
            and all(isinstance(v, str) for v in levels)):
        arr = values.array.__arrow_array__()
        found = pc.index_in(arr, value_set=pa.array(levels, type=arr.type))
        if found.null_count != arr.null_count:
            return None
        return np.asarray(pc.fill_null(found, -1).to_numpy(), dtype=np.int32)
    codes, uniques = pd.factorize(values)
    lookup = level_lookup(uniques, levels)
    if (lookup[:-1] < 0).any():
        return None
    return lookup[codes]


def group_codes(values: pd.Series, levels: Sequence) -> np.ndarray:
    """Position of each value in ``levels`` (0, 1, ...), -1 for missing or other values.

    The column is encoded once (:func:`level_codes`, else :func:`pandas.factorize`),
    so encoding a 10^6-row string column costs one pass; the codes then feed
    :func:`numpy.bincount`.

    Examples
    --------
    >>> import pandas as pd
    >>> group_codes(pd.Series(["SerD", "CMHC", None, "EDP"]), ["CMHC", "SerD"]).tolist()
    [1, 0, -1, -1]
    """
    codes = level_codes(values, levels)
    if codes is not None:
        return codes
    codes, uniques = pd.factorize(values)
    return level_lookup(uniques, levels)[codes]


def split_by_group(x: np.ndarray, codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """The non-missing values of ``x`` in each group ``0 .. n_groups-1``, in row order.

    Examples
    --------
    >>> import numpy as np
    >>> [a.tolist() for a in split_by_group(np.array([1.0, np.nan, 3.0, 4.0]), np.array([0, 0, 1, -1]), 2)]
    [[1.0], [3.0]]
    """
    x = np.asarray(x, dtype=np.float64)
    codes = np.asarray(codes)
    missing = np.isnan(x)
    if missing.any():
        codes = np.where(missing, -1, codes)
    return [x[codes == g] for g in range(n_groups)]


class GroupSample:
    """One group's values for :func:`compare_continuous_samples`, with cached derived results.

    Passing the same object to several comparisons (all services, then CMHC vs SerD)
    sorts the values for the rank tests and tests their normality once (the warnings
    scipy raised are raised again at each use, so every comparison notes them).
    Missing values (NaN) are dropped.

    Examples
    --------
    >>> s = GroupSample([3.0, float("nan"), 1.0])
    >>> len(s), s.values.tolist(), s.sorted.tolist()
    (2, [3.0, 1.0], [1.0, 3.0])
    """

    def __init__(self, values) -> None:
        x = np.asarray(values, dtype=np.float64)
        missing = np.isnan(x)
        self.values = x[~missing] if missing.any() else x
        self._sorted: np.ndarray | None = None
        self._normality: tuple[float, list] | None = None

    def __len__(self) -> int:
        return len(self.values)

    @property
    def sorted(self) -> np.ndarray:
        """The values sorted (:func:`sorted_values`), computed once."""
        if self._sorted is None:
            self._sorted = sorted_values(self.values)
        return self._sorted

    def normality_p(self) -> float:
        """p-value of the normality test of the module docstring (Shapiro-Wilk up to
        :data:`SHAPIRO_MAX_N` values, D'Agostino-Pearson K² above), computed once."""
        if self._normality is None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                test = stats.normaltest if len(self.values) > SHAPIRO_MAX_N else stats.shapiro
                p = float(test(self.values).pvalue)
            self._normality = (p, list(caught))
        p, caught = self._normality
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return p


#: Largest value range sorted by counting (integer-valued data such as ages).
_COUNTING_SORT_MAX_RANGE = 1 << 16


def _integer_range(x: np.ndarray) -> tuple[int, int] | None:
    """(min, number of distinct possible values) when ``x`` holds only small integers."""
    if x.size < 64:
        return None
    lo, hi = x.min(), x.max()
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi - lo >= _COUNTING_SORT_MAX_RANGE:
        return None
    if not np.array_equal(x, np.trunc(x)) or _has_negative_zero(x):  # fractions, or -0.0
        return None
    return int(lo), int(hi - lo) + 1


def _has_negative_zero(x: np.ndarray) -> bool:
    return bool(np.signbit(x[x == 0]).any())


def _distinct_encoding(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(sorted distinct values, index of each value among them) when ``x`` has many ties, else None.

    Integer-valued data with a range below 65536 use the range itself (no hashing);
    other data with at most n/4 distinct values (e.g. durations in days / 365.25)
    are hashed with :func:`pandas.factorize`. ``x`` has no NaN.
    """
    rng = _integer_range(x)
    if rng is not None:
        lo, width = rng
        return np.arange(width, dtype=np.float64) + lo, (x - lo).astype(np.int64)
    n = len(x)
    if n >= 20_000:
        probe = x[:: max(1, n // 4096)]
        if len(pd.unique(probe)) < 0.9 * len(probe) and not _has_negative_zero(x):
            codes, distinct = pd.factorize(x)
            if len(distinct) <= n // 4:
                order = np.argsort(distinct)
                rank = np.empty(len(distinct), dtype=np.int64)
                rank[order] = np.arange(len(distinct))
                return distinct[order], rank[codes]
    return None


def sorted_values(x: np.ndarray) -> np.ndarray:
    """A sorted float64 copy of ``x`` (no missing values).

    Data with many ties are sorted by counting, O(n): integer-valued data with a
    range below 65536 with :func:`numpy.bincount`, other data with few distinct
    values (e.g. durations in days / 365.25) by sorting the distinct values found
    with :func:`pandas.factorize`. Other data go to :func:`numpy.sort`. The result
    is the same array whichever way is used.

    Examples
    --------
    >>> import numpy as np
    >>> sorted_values(np.array([3.0, 1.0, 2.0, 1.0])).tolist()
    [1.0, 1.0, 2.0, 3.0]
    """
    x = np.asarray(x, dtype=np.float64)
    encoding = _distinct_encoding(x)
    if encoding is None:
        return np.sort(x)
    distinct, index = encoding
    return np.repeat(distinct, np.bincount(index, minlength=len(distinct)))


def sorted_by_group(x: np.ndarray, codes: np.ndarray, n_groups: int, total: bool = False) -> list[np.ndarray]:
    """Sorted non-missing values of ``x`` in each group ``0 .. n_groups-1`` (and, last, in all of them).

    Codes < 0 leave a row out. With many ties (see :func:`sorted_values`) the values
    are encoded once and counted per group; otherwise each group is sorted with
    :func:`numpy.sort`. The arrays equal ``numpy.sort`` of each group's values.

    Examples
    --------
    >>> import numpy as np
    >>> [a.tolist() for a in sorted_by_group(np.array([3.0, 1.0, np.nan, 2.0]), np.array([0, 0, 1, 1]), 2, total=True)]
    [[1.0, 3.0], [2.0], [1.0, 2.0, 3.0]]
    """
    x = np.asarray(x, dtype=np.float64)
    codes = np.asarray(codes)
    keep = (codes >= 0) & ~np.isnan(x)
    if not keep.all():
        x, codes = x[keep], codes[keep]
    encoding = _distinct_encoding(x)
    if encoding is None:
        out = [np.sort(x[codes == g]) for g in range(n_groups)]
        if total:
            out.append(np.sort(np.concatenate(out), kind="stable") if n_groups > 1 else out[0].copy())
        return out
    distinct, index = encoding
    width = len(distinct)
    counts = np.bincount(codes.astype(np.int64) * width + index,
                         minlength=n_groups * width).reshape(n_groups, width)
    out = [np.repeat(distinct, counts[g]) for g in range(n_groups)]
    if total:
        out.append(np.repeat(distinct, counts.sum(axis=0)))
    return out


# --------------------------------------------------------------------------------------
# continuous
# --------------------------------------------------------------------------------------
def _continuous_samples(df: pd.DataFrame, var: str, group: str, levels: Sequence) -> dict:
    """{level: non-missing values of ``var`` in that group, in row order} for every level."""
    x = pd.to_numeric(df[var], errors="raise")
    x = x.to_numpy(dtype="float64", na_value=np.nan) if x.dtype != np.float64 else x.to_numpy()
    codes = group_codes(df[group], levels)
    return dict(zip(levels, split_by_group(x, codes, len(levels))))


def _normality(samples: Mapping[str, GroupSample], alpha: float, notes: list[str]) -> tuple[bool, float, str]:
    """Normality per group (see the module docstring); return (all normal, smallest p, reason).

    Shapiro-Wilk for groups of at most :data:`SHAPIRO_MAX_N`, D'Agostino-Pearson K²
    (:func:`scipy.stats.normaltest`) above.
    """
    pvals, not_assessed, large = {}, [], []
    for g, sample in samples.items():
        x = sample.values
        if len(x) < SHAPIRO_MIN_N:
            not_assessed.append(f"{g} has n={len(x)} < {SHAPIRO_MIN_N}")
        elif np.ptp(x) == 0:
            not_assessed.append(f"{g} is constant")
        else:
            if len(x) > SHAPIRO_MAX_N:
                large.append(str(g))
            pvals[g] = sample.normality_p()
    if large:
        notes.append(f"normality tested with {NORMALITY_DAGOSTINO} (scipy.stats.normaltest) instead of "
                     f"{NORMALITY_SHAPIRO} for n > {SHAPIRO_MAX_N} in {', '.join(large)}")
    if not large:
        name = NORMALITY_SHAPIRO
    elif len(large) == len(pvals):
        name = NORMALITY_DAGOSTINO
    else:
        name = f"{NORMALITY_SHAPIRO} (n <= {SHAPIRO_MAX_N}) / {NORMALITY_DAGOSTINO} (n > {SHAPIRO_MAX_N})"
    p_min = min(pvals.values()) if pvals else np.nan
    rejected = [f"{g} (p={p:.3g})" for g, p in pvals.items() if p < alpha]
    if not_assessed:
        return False, p_min, "normality not assessable: " + "; ".join(not_assessed)
    if rejected:
        return False, p_min, f"{name} rejects normality in " + ", ".join(rejected)
    return True, p_min, f"{name} p >= {alpha:g} in all groups (min p={p_min:.3g})"


def compare_continuous(df: pd.DataFrame, var: str, group: str, levels: Sequence | None = None,
                       alpha: float = 0.05, comparison: str | None = None) -> dict:
    """Compare a continuous ``var`` across ``group``: parametric and rank test, one reported.

    Three or more groups: one-way ANOVA and Kruskal-Wallis; two groups: t-test
    (Student, or Welch when Levene rejects equal variances) and two-sided
    Mann-Whitney U. The parametric test is reported when the normality test
    (Shapiro-Wilk; D'Agostino-Pearson K² in groups above 5000) does not reject
    normality in any group (and, for ANOVA, Levene with ``center="median"`` does not
    reject equal variances); otherwise the rank test is. See the module docstring
    for the details and the degenerate cases.

    Parameters
    ----------
    df : DataFrame, one row per patient.
    var : numeric column (nullable integers allowed; missing values are excluded).
    group : column holding the groups.
    levels : groups to compare, in order; default all groups present. Groups with
        fewer than 2 observations are left out with a note.
    alpha : significance level of the assumption checks and of ``significant``.
    comparison : label of the comparison; default ``"A vs B"`` or ``"all groups"``.

    Returns
    -------
    dict
        The common result columns (``test``/``statistic``/``df``/``df2``/``p_value``
        of the reported test, ``reason`` for the choice, ``note``) plus
        ``test_parametric, statistic_parametric, df_parametric, df2_parametric,
        p_parametric, test_nonparametric, statistic_nonparametric, p_nonparametric,
        shapiro_p_min, normality_ok, levene_statistic, levene_p, equal_variance``.
        ``shapiro_p_min`` is the smallest normality p-value over the groups
        (Shapiro-Wilk, or D'Agostino-Pearson for groups above 5000; the column keeps
        its name).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": list("aaaabbbbcccc"),
    ...                    "x": [1, 2, 3, 4, 3, 4, 5, 6, 5, 6, 7, 8]})
    >>> row = compare_continuous(df, "x", "g")
    >>> row["reported_test"], round(row["p_parametric"], 4), round(row["p_nonparametric"], 4)
    ('One-way ANOVA', 0.0059, 0.0219)
    """
    _check_alpha(alpha)
    _require_columns(df, [var, group])
    levels = group_levels(df, group, levels)
    samples = _continuous_samples(df, var, group, levels)
    return compare_continuous_samples(samples, var, alpha=alpha,
                                      comparison=comparison or _default_comparison(levels))


def compare_continuous_samples(samples: Mapping, var: str = "variable", alpha: float = 0.05,
                               comparison: str | None = None) -> dict:
    """The comparison of :func:`compare_continuous` on per-group samples already split.

    For callers that encode the groups once (e.g. :func:`imr_analysis.table1.table1_tests`
    on 10^6 patients); :func:`compare_continuous` calls it, so both give the same result.

    Parameters
    ----------
    samples : mapping ``{group: values}`` in the order of comparison (1-D numeric
        arrays, or :class:`GroupSample` objects to share between comparisons;
        missing values are dropped). Groups with fewer than 2 observations are left
        out with a note.
    var : name of the variable (the ``variable`` of the result).
    alpha : as in :func:`compare_continuous`.
    comparison : label of the comparison; default ``"A vs B"`` or ``"all groups"``
        from the keys of ``samples``.

    Returns
    -------
    dict
        The row of :func:`compare_continuous`.

    Examples
    --------
    >>> row = compare_continuous_samples({"a": [1, 2, 3, 4, 5, 6], "b": [5, 6, 7, 8, 9, 10]}, "x")
    >>> row["reported_test"], round(row["p_value"], 4)
    ('Student t-test', 0.0041)
    """
    _check_alpha(alpha)
    levels = list(samples)
    row = _base_row(var, comparison or _default_comparison(levels), "continuous", alpha)
    row.update({c: np.nan for c in CONTINUOUS_EXTRA_COLUMNS})
    row.update({"test_parametric": None, "test_nonparametric": None,
                "normality_ok": pd.NA, "equal_variance": pd.NA, "reported_test": None})
    notes: list[str] = []
    groups = {g: x if isinstance(x, GroupSample) else GroupSample(x) for g, x in samples.items()}
    small = [f"{g} (n={len(x)})" for g, x in groups.items() if len(x) < 2]
    if small:
        notes.append(f"group(s) with < 2 observations left out: {', '.join(small)}")
    groups = {g: x for g, x in groups.items() if len(x) >= 2}
    samples = {g: x.values for g, x in groups.items()}
    row["groups"] = ", ".join(map(str, samples))
    row["n_per_group"] = "; ".join(f"{g}={len(x)}" for g, x in samples.items())
    row["n"] = int(sum(len(x) for x in samples.values()))
    if len(samples) < 2:
        notes.append("no test: fewer than two groups with >= 2 observations")
        row["note"] = "; ".join(notes)
        return row
    n_tot = row["n"]
    if min(x.min() for x in samples.values()) == max(x.max() for x in samples.values()):
        notes.append("no test: all values identical")
        row["note"] = "; ".join(notes)
        return row

    xs = list(samples.values())
    # the rank tests get each group sorted: same ranks per group, so the same statistics
    # (rank sums of half-integers are exact), and scipy's stable argsort merges sorted runs fast
    ranked_xs = [x.sorted for x in groups.values()]
    two = len(xs) == 2
    with _capture_scipy_warnings(notes):
        normal, p_min, normal_reason = _normality(groups, alpha, notes)
        lev = stats.levene(*xs, center="median")
        lev_p = float(lev.pvalue)
        equal_var = bool(lev_p >= alpha) if np.isfinite(lev_p) else False
        lev_reason = (f"Levene (median) p={lev_p:.3g}" if np.isfinite(lev_p)
                      else "Levene not computable (no within-group spread)")
        if two:
            t = stats.ttest_ind(xs[0], xs[1], equal_var=equal_var)
            par = {"test_parametric": TEST_STUDENT if equal_var else TEST_WELCH,
                   "statistic_parametric": float(t.statistic), "df_parametric": float(t.df),
                   "p_parametric": float(t.pvalue)}
            u = stats.mannwhitneyu(ranked_xs[0], ranked_xs[1], alternative="two-sided")
            nonpar = {"test_nonparametric": TEST_MANN_WHITNEY,
                      "statistic_nonparametric": float(u.statistic), "p_nonparametric": float(u.pvalue)}
        else:
            f = stats.f_oneway(*xs)
            k = len(xs)
            par = {"test_parametric": TEST_ANOVA, "statistic_parametric": float(f.statistic),
                   "df_parametric": float(k - 1), "df2_parametric": float(n_tot - k),
                   "p_parametric": float(f.pvalue)}
            h = stats.kruskal(*ranked_xs)
            nonpar = {"test_nonparametric": TEST_KRUSKAL, "statistic_nonparametric": float(h.statistic),
                      "p_nonparametric": float(h.pvalue)}
    row.update(par)
    row.update(nonpar)
    row.update({"shapiro_p_min": p_min, "normality_ok": normal, "levene_statistic": float(lev.statistic),
                "levene_p": lev_p, "equal_variance": equal_var})

    use_parametric = normal and (two or equal_var)
    if use_parametric:
        row.update({"test": par["test_parametric"], "statistic": par["statistic_parametric"],
                    "df": par["df_parametric"], "df2": par.get("df2_parametric", np.nan),
                    "p_value": par["p_parametric"]})
        if two:
            row["reason"] = (f"{normal_reason}; {lev_reason} -> "
                             + ("equal variances, Student t-test" if equal_var
                                else "unequal variances, Welch t-test"))
        else:
            row["reason"] = f"{normal_reason}; {lev_reason} -> one-way ANOVA"
    else:
        row.update({"test": nonpar["test_nonparametric"], "statistic": nonpar["statistic_nonparametric"],
                    "df": float(len(xs) - 1) if not two else np.nan,
                    "p_value": nonpar["p_nonparametric"]})
        why = normal_reason if not normal else f"{lev_reason} rejects equal variances"
        row["reason"] = f"{why} -> {nonpar['test_nonparametric']}"
    row["reported_test"] = row["test"]
    row["significant"] = bool(row["p_value"] < alpha) if np.isfinite(row["p_value"]) else pd.NA
    row["note"] = "; ".join(notes)
    return row


def results_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Stack result rows of :func:`compare_categorical`/:func:`compare_continuous`.

    The common columns come first (:data:`RESULT_COLUMNS`), then the continuous- and
    categorical-specific ones; absent values are NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": list("aabb"), "x": [1, 2, 3, 5]})
    >>> results_frame([compare_continuous(df, "x", "g")]).shape[0]
    1
    """
    frame = pd.DataFrame(list(rows))
    extra = ["reported_test"] + CONTINUOUS_EXTRA_COLUMNS + CATEGORICAL_EXTRA_COLUMNS
    cols = RESULT_COLUMNS + [c for c in extra if c in frame.columns]
    cols += [c for c in frame.columns if c not in cols]
    frame = frame.reindex(columns=cols)
    return frame.reset_index(drop=True)


def public_results(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep only the result columns that reveal no patient count.

    Group sizes (``n``, ``n_per_group``), degrees of freedom (which give group
    sizes), test statistics (which, with published margins, can give cell counts),
    expected counts, and the free-text ``reason``/``note`` (which quote group sizes)
    are dropped; the test names and p-values stay. Use it when outputs go through
    disclosure control.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": list("aabb"), "x": [1, 2, 3, 5]})
    >>> list(public_results(results_frame([compare_continuous(df, "x", "g")])).columns)[:5]
    ['variable', 'comparison', 'kind', 'groups', 'test']
    """
    return frame[[c for c in PUBLIC_RESULT_COLUMNS if c in frame.columns]].copy()
