"""Between-service tests, with the test selection of the paper's Statistical Analysis written out.

Each comparison is one tidy row (a ``dict``), stacked by :func:`results_frame`. Tests are two-tailed; ``alpha``
defaults to 0.05 (the paper's "0.5" is a typo).

Categorical (:func:`compare_categorical`): Pearson chi-square, no continuity correction; if an expected count is < 5,
Fisher's exact test (2 x 2) or a seeded Monte-Carlo chi-square with the observed margins (R's ``simulate.p.value``).

Continuous (:func:`compare_continuous`): ANOVA and Kruskal-Wallis for >= 3 groups, t-test (Welch's if Levene's test,
``center="median"``, rejects equal variances) and Mann-Whitney U for two. The parametric test is reported if no group
rejects normality (Shapiro-Wilk up to :data:`SHAPIRO_MAX_N` = 5000 values, Royston's range; D'Agostino-Pearson K²
above) and, for ANOVA, Levene's test does not reject; else the rank test. A group of < 3 values or no spread means the
rank test; one of < 2 is dropped with a note. All variants (ANOVA, Welch's ANOVA, Kruskal-Wallis; Student t, Welch t,
Mann-Whitney U) are kept; ``conclusion_depends_on_test`` flags rows whose conclusion at ``alpha`` differs.

Effect sizes, 95% CIs (:data:`EFFECT_COLUMNS`): Cramér's V (categorical); eta- and epsilon-squared (>= 3 groups);
Hedges' g (pingouin, analytic CI) and rank-biserial r (two); epsilon-squared and r with percentile bootstrap CIs.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import special, stats
from statsmodels.stats.oneway import confint_effectsize_oneway

from .constants import SERVICE_TYPES

N_RESAMPLES = 10_000  # Monte-Carlo resamples of the chi-square test
MIN_EXPECTED = 5  # expected count below which the asymptotic chi-square p-value is not used
SHAPIRO_MIN_N, SHAPIRO_MAX_N = 3, 5000  # Shapiro-Wilk's range; D'Agostino-Pearson K² above
NORMALITY_SHAPIRO, NORMALITY_DAGOSTINO = "Shapiro-Wilk", "D'Agostino-Pearson"
TEST_CHI2, TEST_CHI2_MC, TEST_FISHER = "Pearson chi-square", "Pearson chi-square (Monte-Carlo p)", "Fisher's exact test"
TEST_ANOVA, TEST_KRUSKAL = "One-way ANOVA", "Kruskal-Wallis H"
TEST_STUDENT, TEST_WELCH, TEST_MANN_WHITNEY = "Student t-test", "Welch t-test", "Mann-Whitney U"
#: Short test names for display tables.
TEST_ABBREVIATIONS = {TEST_CHI2: "χ²", TEST_CHI2_MC: "χ² (MC)", TEST_FISHER: "Fisher", TEST_ANOVA: "ANOVA",
                      TEST_KRUSKAL: "KW", TEST_STUDENT: "t", TEST_WELCH: "Welch t", TEST_MANN_WHITNEY: "MWU"}
CI_LEVEL = 0.95  # of the effect sizes' confidence intervals
#: Bootstrap CIs are computed up to this many patients; above it the sampling error of the effect size is small
#: and resampling (n_resamples x n values) no longer fits a workstation's time and memory: the CI is left empty.
BOOTSTRAP_MAX_N = 5000
EFFECT_V, EFFECT_ETA2, EFFECT_EPSILON2 = "Cramér's V (bias-corrected)", "eta-squared", "epsilon-squared"
EFFECT_G, EFFECT_RRB = "Hedges' g", "rank-biserial r"
EFFECT_ABBREVIATIONS = {EFFECT_V: "V", EFFECT_ETA2: "η²", EFFECT_EPSILON2: "ε²", EFFECT_G: "g", EFFECT_RRB: "r_rb"}
EFFECT_COLUMNS = ["effect_size", "effect", "effect_ci_low", "effect_ci_high"]
RESULT_COLUMNS = ["variable", "comparison", "kind", "groups", "n_per_group", "n", "test", "statistic", "df",
                  "df2", "p_value", "significant", "alpha", *EFFECT_COLUMNS, "reason", "note"]
EFFECT_BOTH_COLUMNS = [f"{c}_{kind}" for kind in ("parametric", "nonparametric") for c in EFFECT_COLUMNS]
SENSITIVITY_COLUMNS = ["p_equal_var", "statistic_welch", "df_welch", "df2_welch", "p_welch",
                       "conclusion_depends_on_test"]
CONTINUOUS_EXTRA_COLUMNS = ["test_parametric", "statistic_parametric", "df_parametric", "df2_parametric",
                            "p_parametric", "test_nonparametric", "statistic_nonparametric", "p_nonparametric",
                            "shapiro_p_min", "normality_ok", "levene_statistic", "levene_p", "equal_variance",
                            *SENSITIVITY_COLUMNS, *EFFECT_BOTH_COLUMNS, "n_resamples", "seed"]
CATEGORICAL_EXTRA_COLUMNS = ["min_expected", "n_cells_expected_lt5", "n_cells", "n_resamples", "seed"]
PUBLIC_RESULT_COLUMNS = ["variable", "comparison", "kind", "groups", "test", "p_value", "significant", "alpha",
                         *EFFECT_COLUMNS, "test_parametric", "p_parametric", "test_nonparametric", "p_nonparametric",
                         "p_equal_var", "p_welch", "conclusion_depends_on_test",
                         *EFFECT_BOTH_COLUMNS]  # no counts
SENSITIVITY_MARK = "†"
#: The legend of the effect sizes and of :data:`SENSITIVITY_MARK` in the display tables.
TESTS_NOTE = (f"Effect sizes with {CI_LEVEL:.0%} CI: V, Cramér's V (bias-corrected); η², eta-squared; ε², "
              f"epsilon-squared; g, Hedges' g; r_rb, rank-biserial r (first group minus second). "
              f"{SENSITIVITY_MARK} the conclusion at alpha differs between ANOVA, Welch's ANOVA and Kruskal-Wallis "
              "(two groups: t, Welch t and Mann-Whitney U).")


@contextmanager
def _warnings_as_notes(notes: list[str]):
    """Record the warnings scipy raises on degenerate input as notes; let any other warning through."""
    ours = (stats.ConstantInputWarning, stats.NearConstantInputWarning, stats.DegenerateDataWarning, RuntimeWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = re.sub(r"\s+", " ", str(w.message)).strip()
        if not isinstance(w.message, ours):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif text not in notes:
            notes.append(text)


def _row(variable: str, comparison: str | None, levels: list, kind: str, alpha: float, extra: list) -> dict:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if comparison is None:
        comparison = " vs ".join(map(str, levels)) if len(levels) == 2 else "all groups"
    return {**dict.fromkeys(RESULT_COLUMNS + extra, np.nan), "variable": variable, "comparison": comparison,
            "kind": kind, "groups": "", "n_per_group": "", "n": 0, "test": None, "significant": pd.NA, "effect_size": None,
            "alpha": alpha, "reason": "", "note": ""}


def _finish(row: dict, notes: list[str]) -> dict:
    row["significant"] = bool(row["p_value"] < row["alpha"]) if np.isfinite(row["p_value"]) else pd.NA
    row["note"] = "; ".join(notes)
    return row


def cramers_v(table) -> tuple[float, float, float]:
    """Cramér's V, bias-corrected, of a contingency table, and its CI: ``(V, low, high)``.

    ``V = sqrt(phi2c / min(rc - 1, kc - 1))`` with ``phi2c = max(0, chi2/n - (r-1)(k-1)/(n-1))``,
    ``rc = r - (r-1)²/(n-1)``, ``kc`` likewise (Bergsma 2013, J Korean Stat Soc 42:323), ``chi2``
    Pearson's (scipy, uncorrected). CI: ``sqrt(lambda / (n (min(r, k) - 1)))`` at the limits of the
    chi-square's noncentrality ``lambda`` (scipy.special.chndtrinc; 0 when the chi-square p >= half
    of 1 - :data:`CI_LEVEL`; Smithson 2003), at most 1: asymptotic, rough where expected counts are small.

    Examples
    --------
    >>> [round(v, 3) for v in cramers_v([[20, 5], [5, 20]])]
    [0.589, 0.323, 0.877]
    """
    obs = np.asarray(table)
    (r, k), n, dof = obs.shape, obs.sum(), (obs.shape[0] - 1) * (obs.shape[1] - 1)
    chi2 = stats.chi2_contingency(obs, correction=False).statistic
    rc, kc = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    v = np.sqrt(max(0.0, chi2 / n - dof / (n - 1)) / min(rc - 1, kc - 1))
    tail = (1 - CI_LEVEL) / 2
    low, high = special.chndtrinc(chi2, dof, [1 - tail, tail])
    low = low if stats.chi2.sf(chi2, dof) < tail else 0.0
    return float(v), *(float(min(1.0, np.sqrt(lam / (n * (min(r, k) - 1))))) for lam in (low, high))


def eta_squared(f: float, df1: float, df2: float, n: int) -> tuple[float, float, float]:
    """Eta-squared of a one-way ANOVA, ``df1 F / (df1 F + df2)`` (= SS between / SS total, pingouin's
    ``np2``), and its CI inverting the noncentral F (Steiger 2004; statsmodels
    ``confint_effectsize_oneway``, lower limit 0 when the ANOVA p >= half of 1 - :data:`CI_LEVEL`).

    Examples
    --------
    >>> [round(v, 3) for v in eta_squared(6.79, 2, 123, 126)]
    [0.099, 0.016, 0.198]
    """
    with np.errstate(divide="ignore"):  # statsmodels divides by a lower limit of 0
        ci = confint_effectsize_oneway(f, (df1, df2), alpha=1 - CI_LEVEL, nobs=n).eta2
    return float(df1 * f / (df1 * f + df2)), float(ci[0]), float(ci[1])


def epsilon_squared(*samples, axis: int = -1):
    """Epsilon-squared of the Kruskal-Wallis H (scipy, tie-corrected): ``H / (n - 1)`` (Tomczak &
    Tomczak 2014, Trends Sport Sci 21:19), the eta-squared of the ranks; vectorised along ``axis``."""
    return stats.kruskal(*samples, axis=axis).statistic / (sum(np.shape(x)[axis] for x in samples) - 1)


def rank_biserial(x, y, axis: int = -1):
    """Rank-biserial r, ``2 U / (n1 n2) - 1`` with U of ``x`` (scipy's Mann-Whitney U; Kerby 2014):
    P(x > y) - P(x < y), positive when ``x`` tends to be larger (pingouin's ``RBC``)."""
    return 2 * stats.mannwhitneyu(x, y, axis=axis).statistic / (np.shape(x)[axis] * np.shape(y)[axis]) - 1


def _bootstrap_ci(statistic, samples: list, seed: int, n_resamples: int) -> tuple[float, float]:
    """Percentile CI of a vectorised ``statistic``, each sample resampled on its own (scipy.stats.bootstrap;
    not BCa, whose jackknife costs n evaluations of the statistic on n values), sorted first so that the
    draws do not depend on the order of the rows; (nan, nan) above :data:`BOOTSTRAP_MAX_N` patients."""
    if sum(len(x) for x in samples) > BOOTSTRAP_MAX_N:
        return np.nan, np.nan
    ci = stats.bootstrap([np.sort(x) for x in samples], statistic, n_resamples=int(n_resamples), confidence_level=CI_LEVEL,
                         method="percentile", rng=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)


def group_levels(df: pd.DataFrame, group: str, levels: Sequence | None = None) -> list:
    """The groups to compare: ``levels`` as given, else those present (service order, or sorted)."""
    if levels is not None:
        if len(set(levels)) != len(levels):
            raise ValueError(f"duplicated group levels in {list(levels)}")
        return list(levels)
    present = list(pd.unique(df[group].dropna()))
    return [s for s in SERVICE_TYPES if s in present] if set(present) <= set(SERVICE_TYPES) else sorted(present)


def contingency_table(df: pd.DataFrame, var: str, group: str, levels: Sequence | None = None) -> pd.DataFrame:
    """Patients by value of ``var`` (rows, sorted) and group (columns ``levels``), missing excluded.

    Examples
    --------
    >>> df = pd.DataFrame({"g": ["a", "a", "b"], "v": ["x", "y", "y"]})
    >>> contingency_table(df, "v", "g").to_numpy().tolist()
    [[1, 0], [1, 1]]
    """
    levels = group_levels(df, group, levels)
    counts = df.groupby([var, group], observed=True).size().unstack(group, fill_value=0)
    return counts.reindex(columns=pd.Index(levels, name=group), fill_value=0).astype("int64")


def group_samples(df: pd.DataFrame, var: str, group: str, levels: Sequence | None = None) -> dict:
    """The non-missing values of a numeric ``var`` in each group, ``{group: array}`` in ``levels`` order."""
    x = pd.to_numeric(df[var], errors="raise").astype("float64")
    return {g: x[df[group].isin([g])].dropna().to_numpy() for g in group_levels(df, group, levels)}


def compare_categorical(table: pd.DataFrame, variable: str = "variable", alpha: float = 0.05, seed: int = 0,
                        n_resamples: int = N_RESAMPLES, comparison: str | None = None,
                        min_expected: float = MIN_EXPECTED) -> dict:
    """Test a contingency table (:func:`contingency_table`; empty rows and columns left out): Pearson
    chi-square, Fisher's exact test or Monte-Carlo chi-square. ``statistic`` is the chi-square or
    Fisher's odds ratio; the row holds :data:`RESULT_COLUMNS` and :data:`CATEGORICAL_EXTRA_COLUMNS`.

    Examples
    --------
    A 2 x 2 table with an expected count below 5 goes to Fisher's exact test:

    >>> row = compare_categorical(pd.DataFrame({"a": [8, 2], "b": [3, 7]}, index=["x", "y"]), "v")
    >>> row["test"], round(row["p_value"], 4), row["reason"]
    ("Fisher's exact test", 0.0698, '2 x 2 table with expected count < 5')
    """
    row = _row(variable, comparison, list(table.columns), "categorical", alpha, CATEGORICAL_EXTRA_COLUMNS)
    notes: list[str] = []
    sizes = table.sum(axis=0)
    row["n_per_group"] = "; ".join(f"{g}={int(n)}" for g, n in sizes.items())
    if (sizes == 0).any():
        notes.append(f"group(s) without data left out: {', '.join(map(str, sizes.index[sizes == 0]))}")
    table = table.loc[table.sum(axis=1) > 0, sizes > 0]
    row.update(groups=", ".join(map(str, table.columns)), n=int(table.to_numpy().sum()))
    if table.shape[1] < 2 or table.shape[0] < 2:
        notes.append(f"no test: fewer than two {'groups' if table.shape[1] < 2 else f'levels of {variable}'} with data")
        return _finish(row, notes)
    obs = table.to_numpy()
    expected = stats.contingency.expected_freq(obs)
    n_small = int((expected < min_expected).sum())
    dof = (obs.shape[0] - 1) * (obs.shape[1] - 1)
    row.update(min_expected=float(expected.min()), n_cells_expected_lt5=n_small, n_cells=obs.size)
    with _warnings_as_notes(notes):
        if n_small == 0:
            res = stats.chi2_contingency(obs, correction=False)
            row.update(test=TEST_CHI2, df=dof, reason=f"all expected counts >= {min_expected:g}")
        elif obs.shape == (2, 2):
            res = stats.fisher_exact(obs, alternative="two-sided")
            row.update(test=TEST_FISHER, reason=f"2 x 2 table with expected count < {min_expected:g}")
            notes.append(f"expected count < {min_expected:g} in {n_small} of 4 cells; "
                         "Fisher's exact test, two-sided; statistic is the odds ratio")
        else:
            method = stats.MonteCarloMethod(n_resamples=int(n_resamples), rng=np.random.default_rng(seed))
            res = stats.chi2_contingency(obs, correction=False, method=method)
            row.update(test=TEST_CHI2_MC, df=dof, n_resamples=int(n_resamples), seed=seed,
                       reason=f"{obs.shape[0]} x {obs.shape[1]} table with expected count < {min_expected:g}")
            notes.append(f"expected count < {min_expected:g} in {n_small} of {obs.size} cells; "
                         f"Monte-Carlo {int(n_resamples)} resamples, seed {seed}")
        row.update(zip(EFFECT_COLUMNS, [EFFECT_V, *cramers_v(obs)]))
    row.update(statistic=float(res.statistic), p_value=float(res.pvalue))
    return _finish(row, notes)


def _normality(samples: dict, alpha: float, notes: list[str]) -> tuple[bool, float, str]:
    """(normal in every group, smallest p, reason)."""
    pvals, not_assessed, large = {}, [], []
    for g, x in samples.items():
        if len(x) < SHAPIRO_MIN_N:
            not_assessed.append(f"{g} has n={len(x)} < {SHAPIRO_MIN_N}")
        elif np.ptp(x) == 0:
            not_assessed.append(f"{g} is constant")
        elif len(x) > SHAPIRO_MAX_N:
            large.append(str(g))
            pvals[g] = float(stats.normaltest(x).pvalue)
        else:
            pvals[g] = float(stats.shapiro(x).pvalue)
    name = NORMALITY_SHAPIRO
    if large:
        notes.append(f"normality tested with {NORMALITY_DAGOSTINO} (scipy.stats.normaltest) instead of "
                     f"{NORMALITY_SHAPIRO} for n > {SHAPIRO_MAX_N} in {', '.join(large)}")
        name = (NORMALITY_DAGOSTINO if len(large) == len(pvals) else
                f"{NORMALITY_SHAPIRO} (n <= {SHAPIRO_MAX_N}) / {NORMALITY_DAGOSTINO} (n > {SHAPIRO_MAX_N})")
    p_min = min(pvals.values()) if pvals else np.nan
    rejected = [f"{g} (p={p:.3g})" for g, p in pvals.items() if p < alpha]
    if not_assessed:
        return False, p_min, "normality not assessable: " + "; ".join(not_assessed)
    if rejected:
        return False, p_min, f"{name} rejects normality in " + ", ".join(rejected)
    return True, p_min, f"{name} p >= {alpha:g} in all groups (min p={p_min:.3g})"


def compare_continuous(samples: dict, variable: str = "variable", alpha: float = 0.05,
                       comparison: str | None = None, seed: int = 0, n_resamples: int = N_RESAMPLES) -> dict:
    """Compare ``{group: values}`` (:func:`group_samples`) with the parametric and the rank test:
    :data:`RESULT_COLUMNS` of the one reported (``reason`` says why), ``reported_test`` and
    :data:`CONTINUOUS_EXTRA_COLUMNS` (both tests, the smallest normality p-value, Levene's test,
    the equal-variance and Welch tests, both effect sizes; ``seed`` and ``n_resamples`` bootstrap CIs).

    Examples
    --------
    Normal groups with equal variances: ANOVA is reported, Kruskal-Wallis kept beside it.

    >>> row = compare_continuous({"a": [1, 2, 3, 4], "b": [3, 4, 5, 6], "c": [5, 6, 7, 8]}, "x")
    >>> row["test"], round(row["p_parametric"], 4), round(row["p_nonparametric"], 4)
    ('One-way ANOVA', 0.0059, 0.0219)
    """
    row = _row(variable, comparison, list(samples), "continuous", alpha, CONTINUOUS_EXTRA_COLUMNS)
    row.update(test_parametric=None, test_nonparametric=None, normality_ok=pd.NA, equal_variance=pd.NA,
               reported_test=None, conclusion_depends_on_test=pd.NA, effect_size_parametric=None,
               effect_size_nonparametric=None)
    samples = {g: np.asarray(v, dtype="float64") for g, v in samples.items()}
    samples = {g: v[~np.isnan(v)] for g, v in samples.items()}
    notes: list[str] = []
    if any(len(v) < 2 for v in samples.values()):
        notes.append("group(s) with < 2 observations left out: "
                     + ", ".join(f"{g} (n={len(v)})" for g, v in samples.items() if len(v) < 2))
    samples = {g: v for g, v in samples.items() if len(v) >= 2}
    xs = list(samples.values())
    row.update(groups=", ".join(map(str, samples)), n=sum(map(len, xs)),
               n_per_group="; ".join(f"{g}={len(v)}" for g, v in samples.items()))
    if len(xs) < 2:
        notes.append("no test: fewer than two groups with >= 2 observations")
        return _finish(row, notes)
    if min(v.min() for v in xs) == max(v.max() for v in xs):
        notes.append("no test: all values identical")
        return _finish(row, notes)
    two = len(xs) == 2
    with _warnings_as_notes(notes):
        normal, p_min, normal_reason = _normality(samples, alpha, notes)
        levene = stats.levene(*xs, center="median")
        equal_var = bool(levene.pvalue >= alpha) if np.isfinite(levene.pvalue) else False
        if two:
            student, welch = stats.ttest_ind(*xs), stats.ttest_ind(*xs, equal_var=False)
            t, u = student if equal_var else welch, stats.mannwhitneyu(*xs, alternative="two-sided")
            par = (TEST_STUDENT if equal_var else TEST_WELCH, t.statistic, t.df, np.nan, t.pvalue)
            nonpar = (TEST_MANN_WHITNEY, u.statistic, np.nan, u.pvalue)
            row.update(p_equal_var=student.pvalue, statistic_welch=welch.statistic, df_welch=welch.df,
                       p_welch=welch.pvalue)
            g = pg.compute_effsize(*xs, eftype="hedges")
            effects = [(EFFECT_G, g, *pg.compute_esci(g, *map(len, xs), eftype="hedges", confidence=CI_LEVEL,
                                                       decimals=12)),
                       (EFFECT_RRB, rank_biserial(*xs), *_bootstrap_ci(rank_biserial, xs, seed, n_resamples))]
        else:
            f, h = stats.f_oneway(*xs), stats.kruskal(*xs)
            par = (TEST_ANOVA, f.statistic, len(xs) - 1, row["n"] - len(xs), f.pvalue)
            nonpar = (TEST_KRUSKAL, h.statistic, len(xs) - 1, h.pvalue)
            row["p_equal_var"] = f.pvalue
            if all(np.ptp(x) > 0 for x in xs):
                long = pd.DataFrame({"y": np.concatenate(xs), "group": np.repeat(range(len(xs)), list(map(len, xs)))})
                w = pg.welch_anova(long, dv="y", between="group").iloc[0]
                row.update(statistic_welch=w["F"], df_welch=w["ddof1"], df2_welch=w["ddof2"], p_welch=w["p_unc"])
            else:
                notes.append("no Welch's ANOVA: a group without spread")
            effects = [(EFFECT_ETA2, *eta_squared(*par[1:4], row["n"])),
                       (EFFECT_EPSILON2, epsilon_squared(*xs), *_bootstrap_ci(epsilon_squared, xs, seed, n_resamples))]
    row.update(zip(EFFECT_BOTH_COLUMNS, [v for effect in effects for v in effect]), n_resamples=int(n_resamples),
               seed=seed)
    p_all = [p for p in (row["p_equal_var"], row["p_welch"], nonpar[3]) if np.isfinite(p)]
    row["conclusion_depends_on_test"] = len({bool(p < alpha) for p in p_all}) > 1
    row.update(zip(CONTINUOUS_EXTRA_COLUMNS[:5], [par[0], *map(float, par[1:])]))
    row.update(test_nonparametric=nonpar[0], statistic_nonparametric=float(nonpar[1]),
               p_nonparametric=float(nonpar[3]), shapiro_p_min=p_min, normality_ok=normal,
               levene_statistic=float(levene.statistic), levene_p=float(levene.pvalue), equal_variance=equal_var)
    levene_text = (f"Levene (median) p={levene.pvalue:.3g}" if np.isfinite(levene.pvalue)
                   else "Levene not computable (no within-group spread)")
    if normal and (two or equal_var):
        row.update(zip(["test", "statistic", "df", "df2", "p_value"], [par[0], *map(float, par[1:])]))
        row.update(zip(EFFECT_COLUMNS, effects[0]))
        choice = ("one-way ANOVA" if not two else
                  "equal variances, Student t-test" if equal_var else "unequal variances, Welch t-test")
        row["reason"] = f"{normal_reason}; {levene_text} -> {choice}"
    else:
        row.update(zip(["test", "statistic", "df", "p_value"], [nonpar[0], *map(float, nonpar[1:])]))
        row.update(zip(EFFECT_COLUMNS, effects[1]))
        why = normal_reason if not normal else f"{levene_text} rejects equal variances"
        row["reason"] = f"{why} -> {nonpar[0]}"
    row["reported_test"] = row["test"]
    return _finish(row, notes)


def results_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Stack rows of :func:`compare_categorical` and :func:`compare_continuous`: :data:`RESULT_COLUMNS` first."""
    frame = pd.DataFrame(list(rows))
    order = dict.fromkeys([*RESULT_COLUMNS, "reported_test", *CONTINUOUS_EXTRA_COLUMNS, *CATEGORICAL_EXTRA_COLUMNS])
    return frame.reindex(columns=[c for c in order if c in RESULT_COLUMNS or c in frame.columns])


def public_results(frame: pd.DataFrame) -> pd.DataFrame:
    """The result columns that reveal no patient count (test names and p-values; not sizes, degrees
    of freedom, statistics, expected counts, nor ``reason``/``note``, which quote them).

    Examples
    --------
    >>> list(public_results(results_frame([compare_continuous({"a": [1, 2], "b": [3, 5]})])).columns)[:5]
    ['variable', 'comparison', 'kind', 'groups', 'test']
    """
    return frame[[c for c in PUBLIC_RESULT_COLUMNS if c in frame.columns]].copy()
