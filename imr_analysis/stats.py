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
    *reported* only when Shapiro-Wilk (:func:`scipy.stats.shapiro`) does not reject
    normality at ``alpha`` in any group and Levene's test
    (:func:`scipy.stats.levene`, ``center="median"``, i.e. Brown-Forsythe) does not
    reject equal variances; otherwise Kruskal-Wallis is reported.

    With two groups, the t-test (:func:`scipy.stats.ttest_ind`) and the two-sided
    Mann-Whitney U test (:func:`scipy.stats.mannwhitneyu`) are both computed. The
    t-test is Student's when Levene does not reject equal variances and Welch's
    when it does; it is reported when normality holds in both groups, otherwise
    Mann-Whitney U is reported.

    Normality can only be assessed in groups with at least 3 observations and a
    non-zero range; when it cannot be assessed in some group the non-parametric test
    is reported (the conservative choice) and the reason says why. Groups with fewer
    than 2 observations are left out with a note, never an exception.

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
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .constants import SERVICE_TYPES

#: Default number of Monte-Carlo resamples of the chi-square test.
N_RESAMPLES = 10_000
#: Expected count below which the asymptotic chi-square p-value is not used.
MIN_EXPECTED = 5
#: Minimum group size of the Shapiro-Wilk test in scipy.
SHAPIRO_MIN_N = 3
#: Group size above which scipy warns that Shapiro-Wilk p-values are approximate.
SHAPIRO_MAX_N = 5000

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
    row = _base_row(var, comparison or _default_comparison(levels), "categorical", alpha)
    row.update({"min_expected": np.nan, "n_cells_expected_lt5": np.nan, "n_cells": np.nan,
                "n_resamples": np.nan, "seed": np.nan})
    notes: list[str] = []

    table = contingency_table(df, var, group, levels)
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
# continuous
# --------------------------------------------------------------------------------------
def _continuous_samples(df: pd.DataFrame, var: str, group: str, levels: Sequence,
                        notes: list[str]) -> dict:
    sub = df.loc[df[group].isin(levels), [group, var]]
    values = pd.to_numeric(sub[var], errors="raise").astype("float64")
    values = values[values.notna()]
    by_group = values.groupby(sub.loc[values.index, group], sort=False)
    samples = {g: by_group.get_group(g).to_numpy() if g in by_group.groups else np.empty(0)
               for g in levels}
    small = [f"{g} (n={len(x)})" for g, x in samples.items() if len(x) < 2]
    if small:
        notes.append(f"group(s) with < 2 observations left out: {', '.join(small)}")
    return {g: x for g, x in samples.items() if len(x) >= 2}


def _normality(samples: dict, alpha: float, notes: list[str]) -> tuple[bool, float, str]:
    """Shapiro-Wilk per group; return (all normal, smallest p, reason)."""
    pvals, not_assessed, large = {}, [], []
    for g, x in samples.items():
        if len(x) < SHAPIRO_MIN_N:
            not_assessed.append(f"{g} has n={len(x)} < {SHAPIRO_MIN_N}")
        elif np.ptp(x) == 0:
            not_assessed.append(f"{g} is constant")
        else:
            if len(x) > SHAPIRO_MAX_N:
                large.append(str(g))
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=r"scipy\.stats\.shapiro: For N > 5000",
                                            category=UserWarning)
                    pvals[g] = float(stats.shapiro(x).pvalue)
            else:
                pvals[g] = float(stats.shapiro(x).pvalue)
    if large:
        notes.append(f"Shapiro-Wilk p-value approximate for n > {SHAPIRO_MAX_N} in {', '.join(large)}")
    p_min = min(pvals.values()) if pvals else np.nan
    rejected = [f"{g} (p={p:.3g})" for g, p in pvals.items() if p < alpha]
    if not_assessed:
        return False, p_min, "normality not assessable: " + "; ".join(not_assessed)
    if rejected:
        return False, p_min, "Shapiro-Wilk rejects normality in " + ", ".join(rejected)
    return True, p_min, f"Shapiro-Wilk p >= {alpha:g} in all groups (min p={p_min:.3g})"


def compare_continuous(df: pd.DataFrame, var: str, group: str, levels: Sequence | None = None,
                       alpha: float = 0.05, comparison: str | None = None) -> dict:
    """Compare a continuous ``var`` across ``group``: parametric and rank test, one reported.

    Three or more groups: one-way ANOVA and Kruskal-Wallis; two groups: t-test
    (Student, or Welch when Levene rejects equal variances) and two-sided
    Mann-Whitney U. The parametric test is reported when Shapiro-Wilk does not
    reject normality in any group (and, for ANOVA, Levene with ``center="median"``
    does not reject equal variances); otherwise the rank test is. See the module
    docstring for the details and the degenerate cases.

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
    row = _base_row(var, comparison or _default_comparison(levels), "continuous", alpha)
    row.update({c: np.nan for c in CONTINUOUS_EXTRA_COLUMNS})
    row.update({"test_parametric": None, "test_nonparametric": None,
                "normality_ok": pd.NA, "equal_variance": pd.NA, "reported_test": None})
    notes: list[str] = []
    samples = _continuous_samples(df, var, group, levels, notes)
    row["groups"] = ", ".join(map(str, samples))
    row["n_per_group"] = "; ".join(f"{g}={len(x)}" for g, x in samples.items())
    row["n"] = int(sum(len(x) for x in samples.values()))
    if len(samples) < 2:
        notes.append("no test: fewer than two groups with >= 2 observations")
        row["note"] = "; ".join(notes)
        return row
    pooled = np.concatenate(list(samples.values()))
    if np.ptp(pooled) == 0:
        notes.append("no test: all values identical")
        row["note"] = "; ".join(notes)
        return row

    xs = list(samples.values())
    two = len(xs) == 2
    with _capture_scipy_warnings(notes):
        normal, p_min, normal_reason = _normality(samples, alpha, notes)
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
            u = stats.mannwhitneyu(xs[0], xs[1], alternative="two-sided")
            nonpar = {"test_nonparametric": TEST_MANN_WHITNEY,
                      "statistic_nonparametric": float(u.statistic), "p_nonparametric": float(u.pvalue)}
        else:
            f = stats.f_oneway(*xs)
            n_tot, k = len(pooled), len(xs)
            par = {"test_parametric": TEST_ANOVA, "statistic_parametric": float(f.statistic),
                   "df_parametric": float(k - 1), "df2_parametric": float(n_tot - k),
                   "p_parametric": float(f.pvalue)}
            h = stats.kruskal(*xs)
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
