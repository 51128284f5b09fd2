"""Agreement between user- and provider-rated IMR Scale (IMRS) scores.

Ferrara et al. (2023) report, for the post-intervention IMRS, item means 3.7 (0.5) /
3.6 (0.6), totals 55.1 (7.47) / 54.18 (8.45) for users / providers and
"r = 0.96, n = 15, p = 0.001". That r is the correlation of the 15 **user item
means** with the 15 **provider item means**: an item-profile (ecological)
correlation, reproduced here by :func:`item_profile_correlation` and explained in
plain words by :func:`describe_item_profile`. It says whether the items the group
of users rates high are also rated high by providers; it says nothing about whether
a given provider agrees with a given patient. That question is answered at the
patient level by :func:`patient_level_agreement` (Pearson/Spearman, ICC(A,1) and
ICC(C,1), Lin's concordance correlation coefficient, Bland-Altman bias and limits of
agreement, paired t and Wilcoxon tests), item by item by :func:`table3`
(quadratic-weighted kappa, Wilcoxon signed-rank with Holm adjustment; its numbers as a
tidy long table by :func:`table3_long`), and by service by :func:`agreement_by_service`.

Conventions
-----------
* Differences are **user - provider**.
* SDs use ``ddof=1``.
* Scores follow :func:`imrs_scores`: by default (``max_missing=0``) a version's total
  and item mean exist only when all 15 items are answered; with ``max_missing=k`` the
  item mean of the answered items is used when at most ``k`` are missing and the total
  is prorated (mean x 15). The same rule applies to both metrics, so the item mean is
  always total / 15 and scale-free measures (correlations, ICC, CCC, Wilcoxon) are the
  same on both metrics. (The cohort's own ``imrs_*_mean`` columns average whatever
  items are present; they are not used here.)
* Patient-level analyses use patients with both a user and a provider score; item
  analyses use the pairs available for that item.
* Every result is a tidy DataFrame; measures that cannot be estimated (too few
  patients, constant ratings) are NaN with the reason in ``note`` - never an error.

Statistics come from scipy, statsmodels and pingouin; Lin's CCC, which none of them
provides, is implemented from Lin (1989, 2000) and cross-checked in the tests.

References
----------
Lin LI-K (1989). A concordance correlation coefficient to evaluate reproducibility.
Biometrics 45:255-268; (2000) A note on the concordance correlation coefficient.
Biometrics 56:324-325.
McGraw KO, Wong SP (1996). Forming inferences about some intraclass correlation
coefficients. Psychol Methods 1:30-46.
Shrout PE, Fleiss JL (1979). Intraclass correlations: uses in assessing rater
reliability. Psychol Bull 86:420-428.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd

from .bland_altman import BIAS, LOA_LOWER, LOA_UPPER, SCALES, limits_of_agreement
from .constants import (
    IMRS_ITEMS,
    IMRS_MAX,
    IMRS_MIN,
    IMRS_PROVIDER_COLUMNS,
    IMRS_USER_COLUMNS,
    N_IMRS_ITEMS,
    SERVICE_TYPES,
)

VERSIONS = ("user", "provider")
_VERSION_COLUMNS = {"user": IMRS_USER_COLUMNS, "provider": IMRS_PROVIDER_COLUMNS}
CATEGORIES = tuple(range(IMRS_MIN, IMRS_MAX + 1))

#: Columns of the tidy agreement tables.
RESULT_COLUMNS = ["measure", "estimate", "ci_low", "ci_high", "n", "p", "note"]
SUMMARY_COLUMNS = ["section"] + RESULT_COLUMNS

# Measure labels of patient_level_agreement, in output order.
USER_MEAN = "user mean"
PROVIDER_MEAN = "provider mean"
PEARSON = "Pearson r"
SPEARMAN = "Spearman rho"
ICC_A1 = "ICC(A,1) absolute agreement, two-way random, single rater"
ICC_C1 = "ICC(C,1) consistency, two-way, single rater"
CCC = "Lin's concordance correlation coefficient"
PAIRED_T = "paired t-test: mean difference (user - provider)"
EXCLUDED = "patients excluded (no pair of scores)"
#: Rows whose estimate is itself a count of patients (disclosure control treats it as one).
COUNT_MEASURES = [EXCLUDED]
WILCOXON = "Wilcoxon signed-rank: median difference (user - provider)"
PATIENT_MEASURES = [EXCLUDED, USER_MEAN, PROVIDER_MEAN, PEARSON, SPEARMAN, ICC_A1, ICC_C1, CCC,
                    BIAS, LOA_LOWER, LOA_UPPER, PAIRED_T, WILCOXON]
#: Measures whose value depends on the metric (total vs item mean).
SCALE_DEPENDENT = [USER_MEAN, PROVIDER_MEAN, BIAS, LOA_LOWER, LOA_UPPER, PAIRED_T, WILCOXON]

ITEM_PROFILE_SECTION = "item profile (paper's analysis: ecological, n = items)"

#: pingouin (McGraw & Wong naming) -> Shrout & Fleiss (1979) naming.
ICC_SHROUT_FLEISS = {
    "ICC(1,1)": "ICC1", "ICC(A,1)": "ICC2", "ICC(C,1)": "ICC3",
    "ICC(1,k)": "ICC1k", "ICC(A,k)": "ICC2k", "ICC(C,k)": "ICC3k",
}
ICC_DESCRIPTIONS = {
    "ICC(1,1)": "one-way random, single rater",
    "ICC(A,1)": "two-way random, absolute agreement, single rater",
    "ICC(C,1)": "two-way mixed, consistency, single rater",
    "ICC(1,k)": "one-way random, mean of k raters",
    "ICC(A,k)": "two-way random, absolute agreement, mean of k raters",
    "ICC(C,k)": "two-way mixed, consistency, mean of k raters",
}

SMALL_N = 30
VERY_SMALL_N = 10
MIN_N = 3


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
@contextmanager
def _no_pandas4_warning():
    """Silence exactly ``pandas.errors.Pandas4Warning`` (pingouin under pandas 3)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=pd.errors.Pandas4Warning)
        yield


@contextmanager
def _pingouin_full_precision():
    """Disable pingouin's output rounding (e.g. CI95 to 2 decimals) temporarily."""
    import pingouin as pg

    old = dict(pg.options)
    for key in [k for k in pg.options if k.startswith("round.")]:
        del pg.options[key]
    pg.options["round"] = None
    try:
        yield
    finally:
        pg.options.clear()
        pg.options.update(old)


def _check_alpha(alpha) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")


def _check_max_missing(max_missing) -> None:
    if isinstance(max_missing, bool) or not isinstance(max_missing, (int, np.integer)) \
            or not 0 <= max_missing < N_IMRS_ITEMS:
        raise ValueError(
            f"max_missing must be an integer from 0 to {N_IMRS_ITEMS - 1}, got {max_missing!r}")


def _check_on(on) -> None:
    if on not in SCALES:
        raise ValueError(f"on must be one of {tuple(SCALES)}, got {on!r}")


def _item_codes(cohort: pd.DataFrame, version: str) -> np.ndarray:
    """The 15 IMRS items of one version as int8 codes (0 = missing, else the rating), validated.

    Fortran-ordered (one contiguous column per item), filled one column at a time:
    for nullable ``Int64`` columns at 10^6 patients this is far cheaper than a float
    copy of the whole frame. Ratings are integers, so sums and means computed from
    the codes equal those of the float ratings exactly.
    """
    if not isinstance(cohort, pd.DataFrame):
        raise TypeError(f"cohort must be a pandas DataFrame, got {type(cohort).__name__}")
    cols = _VERSION_COLUMNS[version]
    missing = [c for c in cols if c not in cohort.columns]
    if missing:
        raise ValueError(f"cohort lacks the {version} IMRS column(s) {missing}")
    codes = np.empty((len(cohort), len(cols)), dtype=np.int8, order="F")
    for j, col in enumerate(cols):
        s = cohort[col]
        # integer columns (e.g. Int64) go through float32: half the memory traffic, and
        # any value outside 1-5 stays outside after rounding; float columns need float64
        # to check that the values are integers
        integer = pd.api.types.is_integer_dtype(s.dtype)
        try:
            f = s.to_numpy(dtype=np.float32 if integer else float, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{version} IMRS items must be numeric (1-5 or missing): {exc}") from None
        if f.size:
            with np.errstate(invalid="ignore"):
                ok = not (np.fmin.reduce(f) < IMRS_MIN or np.fmax.reduce(f) > IMRS_MAX)
            if ok and not integer:
                ok = np.array_equal(f, np.round(f), equal_nan=True)
            if not ok:
                _raise_invalid_items(cohort, version)
        miss = np.isnan(f)
        if miss.any():
            f = np.where(miss, IMRS_MIN - 1, f)
        codes[:, j] = f - (IMRS_MIN - 1) if IMRS_MIN != 1 else f
    return codes


def _raise_invalid_items(cohort: pd.DataFrame, version: str) -> None:
    """Raise the ValueError describing the invalid ratings of one version."""
    cols = _VERSION_COLUMNS[version]
    arr = cohort[cols].to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isnan(arr) & ((arr < IMRS_MIN) | (arr > IMRS_MAX) | (arr != np.round(arr)))
    j = int(np.flatnonzero(bad.any(axis=0))[0])
    i = int(np.flatnonzero(bad[:, j])[0])
    raise ValueError(
        f"{cols[j]}: {int(bad[:, j].sum())} value(s) are not integers from {IMRS_MIN} "
        f"to {IMRS_MAX} (first at row position {i}); "
        f"{int(bad.sum())} invalid {version} IMRS value(s) in total")


def _ratings(codes: np.ndarray) -> np.ndarray:
    """Float ratings (NaN = missing) from :func:`_item_codes` (any shape, layout kept)."""
    if codes.all():
        return codes.astype(float) + (IMRS_MIN - 1) if IMRS_MIN != 1 else codes.astype(float)
    return np.where(codes == 0, np.nan, codes + float(IMRS_MIN - 1))


def _joint_counts(CU: np.ndarray, CP: np.ndarray) -> np.ndarray:
    """Counts of (user, provider) codes per item: shape (items, 6, 6), index 0 = missing.

    ``out[j, a, b]`` is the number of patients whose user rating of item ``j`` has
    code ``a`` and whose provider rating has code ``b`` (:func:`_item_codes`; codes
    1..5 are ``CATEGORIES``, 0 = missing), counted with ``numpy.bincount``.
    """
    k = len(CATEGORIES) + 1
    out = np.empty((CU.shape[1], k, k), dtype=np.int64)
    for j in range(CU.shape[1]):
        key = CU[:, j] * np.int8(k) + CP[:, j]          # 0..35, fits int8
        out[j] = np.bincount(key.view(np.uint8), minlength=k * k).reshape(k, k)
    return out


def _exact_mean(total: int, n: int) -> float:
    """``sum / n`` of integer ratings: what ``ndarray.mean`` returns, the sum being exact."""
    return float(np.float64(total) / n) if n else np.nan


def _row(measure, estimate=np.nan, ci=(np.nan, np.nan), n=0, p=np.nan, note="") -> dict:
    return {"measure": measure, "estimate": float(estimate), "ci_low": float(ci[0]),
            "ci_high": float(ci[1]), "n": int(n), "p": float(p), "note": note}


def holm(pvalues) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values; NaNs are kept and not counted.

    A thin wrapper of ``pingouin.multicomp(method="holm")`` that lets untestable
    items (NaN p) through. It gives the same values as
    ``statsmodels.stats.multitest.multipletests(method="holm")`` (checked in the
    tests), which calls ``gc.collect()`` on every use: about 0.1 s in a process that
    holds a cohort of 10^6 patients.

    Parameters
    ----------
    pvalues : array-like of float

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same shape, NaN where the input is NaN.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.005]).round(3).tolist()
    [0.03, 0.06, 0.06, 0.02]
    >>> holm([0.01, float("nan"), 0.04]).tolist()
    [0.02, nan, 0.04]
    """
    import pingouin as pg

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = pg.multicomp(p[ok], method="holm")[1]
    return out


# --------------------------------------------------------------------------------------
# scores
# --------------------------------------------------------------------------------------
def imrs_scores(cohort: pd.DataFrame, max_missing: int = 0) -> pd.DataFrame:
    """Per-patient IMRS total (15-75) and item mean (1-5) for users and providers.

    Parameters
    ----------
    cohort : pandas.DataFrame
        The cleaned cohort: ``imrs_user_01..15`` and ``imrs_provider_01..15`` (Int64,
        1-5, may be missing).
    max_missing : int, default 0
        How many of the 15 items may be missing. ``0``: complete items only (total
        and mean NaN if any item is missing). ``k > 0``: when at most ``k`` items are
        missing, the item mean is the mean of the answered items and the total is
        prorated (mean x 15); otherwise both are NaN.

    Returns
    -------
    pandas.DataFrame
        Same index as ``cohort``; ``patient_id`` and ``service_type`` when present,
        then for each version ``<v>_n_items`` (items answered, the n the score uses),
        ``<v>_total`` and ``<v>_mean``.

    Examples
    --------
    >>> import pandas as pd
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS, IMRS_PROVIDER_COLUMNS
    >>> row = [4] * 14 + [None] + [3] * 15
    >>> cohort = pd.DataFrame([row], columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS,
    ...                       dtype="Int64")
    >>> imrs_scores(cohort)[["user_total", "provider_total"]].iloc[0].tolist()
    [nan, 45.0]
    >>> imrs_scores(cohort, max_missing=1)[["user_n_items", "user_total"]].iloc[0].tolist()
    [14.0, 60.0]
    """
    _check_max_missing(max_missing)
    return _scores(cohort, {v: _item_codes(cohort, v) for v in VERSIONS}, max_missing)


def _scores(cohort: pd.DataFrame, codes: dict, max_missing: int) -> pd.DataFrame:
    """:func:`imrs_scores` from the item codes of :func:`_item_codes`."""
    cols = {col: cohort[col].array for col in ("patient_id", "service_type")
            if col in cohort.columns}
    for v in VERSIONS:
        c = codes[v]
        # integer sums of integer ratings: exactly numpy.nansum of the float ratings
        total_raw = c.sum(axis=1, dtype=np.int16).astype(float)
        if c.all():         # every item answered: the general branch gives these values
            cols[f"{v}_n_items"] = np.full(len(c), N_IMRS_ITEMS, dtype=np.int64)
            cols[f"{v}_total"] = total_raw
            cols[f"{v}_mean"] = total_raw / N_IMRS_ITEMS
            continue
        answered = (c != 0).sum(axis=1, dtype=np.int16).astype(np.int64)
        if IMRS_MIN != 1:
            total_raw += answered * (IMRS_MIN - 1)
        ok = (answered > 0) & (N_IMRS_ITEMS - answered <= max_missing)
        mean = np.divide(total_raw, answered, out=np.full(len(c), np.nan), where=ok)
        total = np.where(answered == N_IMRS_ITEMS, total_raw, mean * N_IMRS_ITEMS)
        cols[f"{v}_n_items"] = answered
        cols[f"{v}_total"] = np.where(ok, total, np.nan)
        cols[f"{v}_mean"] = mean
    return pd.DataFrame(cols, index=cohort.index, copy=False)


def _pairs(scores: pd.DataFrame, on: str) -> tuple[np.ndarray, np.ndarray]:
    u = scores[f"user_{on}"].to_numpy(dtype=float)
    p = scores[f"provider_{on}"].to_numpy(dtype=float)
    ok = ~(np.isnan(u) | np.isnan(p))
    return u[ok], p[ok]


# --------------------------------------------------------------------------------------
# item level: Table 3
# --------------------------------------------------------------------------------------
def weighted_kappa(rater_a, rater_b, categories=CATEGORIES, alpha: float = 0.05) -> pd.Series:
    """Quadratic-weighted Cohen's kappa with its asymptotic confidence interval.

    Computed by ``statsmodels.stats.inter_rater.cohens_kappa(table, wt="quadratic")``
    on the full ``len(categories)`` x ``len(categories)`` table, so categories that
    nobody used still count in the weights (as
    ``sklearn.metrics.cohen_kappa_score(..., weights="quadratic", labels=categories)``).

    Parameters
    ----------
    rater_a, rater_b : array-like
        Paired ordinal ratings; pairs with a missing value are dropped.
    categories : sequence of int, default (1, 2, 3, 4, 5)
    alpha : float, default 0.05

    Returns
    -------
    pandas.Series
        ``kappa, ci_low, ci_high, se, p`` (two-sided test of kappa = 0), ``n``, ``note``.

    Examples
    --------
    >>> res = weighted_kappa([1, 2, 3, 4, 5, 3], [1, 2, 3, 5, 4, 3])
    >>> round(res["kappa"], 4)
    0.9
    """
    from statsmodels.stats.inter_rater import cohens_kappa

    _check_alpha(alpha)
    cats = np.asarray(categories, dtype=float)
    a = np.asarray(rater_a, dtype=float).ravel()
    b = np.asarray(rater_b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"rater_a and rater_b differ in length ({a.size} vs {b.size})")
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    n = int(a.size)
    res = pd.Series({"kappa": np.nan, "ci_low": np.nan, "ci_high": np.nan, "se": np.nan,
                     "p": np.nan, "n": n, "note": ""}, dtype=object)
    k = cats.size
    ia, ib = np.searchsorted(cats, a), np.searchsorted(cats, b)
    if n and ((ia >= k).any() or (ib >= k).any() or (cats[np.minimum(ia, k - 1)] != a).any()
              or (cats[np.minimum(ib, k - 1)] != b).any()):
        raise ValueError(f"ratings outside the categories {tuple(categories)}")
    if n < 2:
        res["note"] = f"not estimable: {n} pair(s)"
        return res
    table = np.bincount(ia * k + ib, minlength=k * k).reshape(k, k)
    return _kappa_from_table(table, cats, alpha, res)


def _kappa_from_table(table: np.ndarray, cats: np.ndarray, alpha: float, res: pd.Series
                      ) -> pd.Series:
    """Fill ``res`` (see :func:`weighted_kappa`) from a k x k table of at least 2 pairs."""
    from statsmodels.stats.inter_rater import cohens_kappa

    rows, cols = table.sum(axis=1), table.sum(axis=0)
    if (rows > 0).sum() == 1 and (cols > 0).sum() == 1 and rows.argmax() == cols.argmax():
        res["note"] = "not estimable: both raters used a single, identical category"
        return res
    with np.errstate(invalid="ignore", divide="ignore"):
        kr = cohens_kappa(table, weights=cats, wt="quadratic")
        se = float(kr.std_kappa)
        res["kappa"] = float(kr.kappa)
        res["se"] = se
        res["p"] = float(kr.pvalue_two_sided)
        if np.isfinite(se) and se > 0:
            lo, hi = kr.distribution_kappa.interval(1 - alpha)
            res["ci_low"], res["ci_high"] = float(lo), float(hi)
        else:
            res["note"] = "confidence interval not estimable (zero or undefined variance)"
    if not np.isfinite(res["p"]):
        res["p"] = np.nan
    return res


def _sd(x) -> float:
    return float(np.std(x, ddof=1)) if x.size >= 2 else np.nan


#: Largest n for which scipy.stats.wilcoxon(method="auto") may use an exact or
#: permutation null distribution; above it scipy uses the normal approximation.
_WILCOXON_SMALL_N = 50


def _rank_order(d: np.ndarray) -> np.ndarray:
    """The differences ``d`` reordered by absolute value, zeros last (n > 50 only).

    The signed-rank test does not depend on the order of the pairs, and with this
    order scipy's ranking (a stable sort of ``|d|``, most of its cost at 10^6
    patients) runs on input that is already sorted. The ranks, the tie counts and the
    rank sums (exact sums of half-integers) do not depend on the order, so the result
    is bit-for-bit the same. Integer-valued differences (items, complete totals) are
    laid out from their counts (``numpy.bincount``) fully sorted by ``|d|``; others
    are sorted as two runs (negative ones by ``|d|``, then positive ones), which
    scipy's stable sort merges in one pass.
    """
    if d.size <= _WILCOXON_SMALL_N:
        return d
    di = d.astype(np.int64)
    if np.array_equal(di, d):
        lo, hi = int(di.min()), int(di.max())
        if hi - lo <= 4 * d.size:
            counts = np.bincount(di - lo)
            return _layout(np.arange(lo, hi + 1), counts)
    neg, pos = np.sort(d[d < 0])[::-1], np.sort(d[d > 0])
    return np.concatenate([neg, pos, d[d == 0]])


def _layout(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each integer ``values[i]`` repeated ``counts[i]`` times, by |value|, zeros last."""
    order = np.lexsort((values, np.abs(values), values == 0))
    return np.repeat(values[order].astype(float), counts[order])


def _wilcoxon(d, ordered: bool = False) -> tuple[float, float, str]:
    """(W, p, note) of scipy's Wilcoxon signed-rank test on differences ``d``.

    ``scipy.stats.wilcoxon(zero_method="wilcox", method="auto")``: zero differences
    are discarded; with more than 50 pairs scipy uses the normal approximation (with
    tie correction), otherwise an exact or permutation distribution. When more than
    50 differences are non-zero the zeros are dropped before the call (what
    ``zero_method="wilcox"`` means; scipy would otherwise carry them as NaN through
    its ranking), and the rest is passed in :func:`_rank_order`; the statistic and
    p-value are unchanged (the tests compare with the plain call).
    ``ordered=True`` says ``d`` is already laid out as :func:`_rank_order` would.
    """
    from scipy import stats

    nz = int(np.count_nonzero(d))
    if d.size == 0:
        return np.nan, np.nan, "no pairs"
    if nz == 0:
        return np.nan, np.nan, "Wilcoxon not estimable: all differences are zero"
    x = d if ordered else _rank_order(d)
    if nz > _WILCOXON_SMALL_N:
        x = x[:nz]          # zeros are last in the layout of _rank_order
    res = stats.wilcoxon(x, zero_method="wilcox", method="auto")
    return float(res.statistic), float(res.pvalue), "zero differences dropped"


def _differences_from_table(table: np.ndarray) -> np.ndarray:
    """User - provider differences of a category table, laid out as :func:`_rank_order`."""
    k = table.shape[0]
    i, j = np.indices(table.shape)
    counts = np.bincount((i - j).ravel() + k - 1, weights=table.ravel(),
                         minlength=2 * k - 1).astype(np.int64)
    return _layout(np.arange(-(k - 1), k), counts)


def table3(cohort: pd.DataFrame, max_missing: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Table 3: IMRS at post-intervention, users vs providers, item by item.

    One row per item (complete user-provider pairs for that item): ``n`` pairs, user
    and provider mean and SD, mean paired difference (user - provider), Wilcoxon
    signed-rank test (``scipy.stats.wilcoxon``: zeros dropped, exact/permutation for
    small samples, normal approximation otherwise) with Holm adjustment across the 15
    items, and quadratic-weighted Cohen's kappa with its asymptotic CI
    (:func:`weighted_kappa`). Then two summary rows on the patient scores of
    :func:`imrs_scores` (patients with both scores): the item mean (1-5 metric) and
    the total (15-75 metric); their Wilcoxon p is unadjusted and they have no kappa.

    Parameters
    ----------
    cohort : pandas.DataFrame
    max_missing : int, default 0
        Passed to :func:`imrs_scores` for the two summary rows.
    alpha : float, default 0.05
        1 - confidence level of the kappa intervals.

    Returns
    -------
    pandas.DataFrame
        Columns ``item`` (Int64, NA on summary rows), ``label``, ``n``, ``user_mean``,
        ``user_sd``, ``provider_mean``, ``provider_sd``, ``mean_difference``,
        ``wilcoxon_W``, ``p_wilcoxon``, ``p_holm``, ``kappa_quadratic``,
        ``kappa_ci_low``, ``kappa_ci_high``, ``note``.

    Examples
    --------
    >>> import pandas as pd
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS, IMRS_PROVIDER_COLUMNS
    >>> rows = [[4] * 15 + [3] * 15, [3] * 15 + [3] * 15, [5] * 15 + [4] * 15]
    >>> cohort = pd.DataFrame(rows, columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS)
    >>> t3 = table3(cohort)
    >>> t3["label"].tolist()[-2:]
    ['Item mean (1-5)', 'Total (15-75)']
    >>> t3.loc[15, ["user_mean", "provider_mean"]].round(2).tolist()
    [4.0, 3.33]
    """
    _check_alpha(alpha)
    _check_max_missing(max_missing)
    codes = {v: _item_codes(cohort, v) for v in VERSIONS}
    CU, CP = codes["user"], codes["provider"]
    joint = _joint_counts(CU, CP)
    cats = np.asarray(CATEGORIES, dtype=float)
    rows, tests = [], []            # tests: arguments of _wilcoxon, one per row
    for j, item in enumerate(IMRS_ITEMS):
        # everything but the SDs comes from the item's 5 x 5 table of rating pairs:
        # counts are exact, so the means equal those of the rating arrays bit for bit
        table = joint[j, 1:, 1:]
        n = int(table.sum())
        su, sp = int(table.sum(axis=1) @ CATEGORIES), int(table.sum(axis=0) @ CATEGORIES)
        if n == len(CU):
            u, p = CU[:, j], CP[:, j]
        else:
            ok = (CU[:, j] != 0) & (CP[:, j] != 0)
            u, p = CU[ok, j], CP[ok, j]
        if IMRS_MIN != 1:           # codes are the ratings themselves when IMRS_MIN == 1
            u, p = _ratings(u), _ratings(p)
        # numpy.std of the int8 ratings computes in float64: the same as on float ratings
        tests.append((_differences_from_table(table), True) if n > _WILCOXON_SMALL_N
                     else (u.astype(float) - p, False))
        kap = pd.Series({"kappa": np.nan, "ci_low": np.nan, "ci_high": np.nan, "se": np.nan,
                         "p": np.nan, "n": n, "note": ""}, dtype=object)
        if n < 2:
            kap["note"] = f"not estimable: {n} pair(s)"
        else:
            kap = _kappa_from_table(table, cats, alpha, kap)
        rows.append({
            "item": item, "label": IMRS_ITEMS[item], "n": n,
            "user_mean": _exact_mean(su, n), "user_sd": _sd(u),
            "provider_mean": _exact_mean(sp, n), "provider_sd": _sd(p),
            "mean_difference": _exact_mean(su - sp, n),
            "kappa_quadratic": kap["kappa"], "kappa_ci_low": kap["ci_low"],
            "kappa_ci_high": kap["ci_high"], "note": kap["note"],
        })
    scores = _scores(cohort, codes, max_missing)
    summary = []
    for on, label in (("mean", "Item mean (1-5)"), ("total", "Total (15-75)")):
        u, p = _pairs(scores, on)
        d = u - p
        tests.append((d, False))
        summary.append({
            "item": pd.NA, "label": label, "n": int(u.size),
            "user_mean": u.mean() if u.size else np.nan, "user_sd": _sd(u),
            "provider_mean": p.mean() if p.size else np.nan, "provider_sd": _sd(p),
            "mean_difference": d.mean() if d.size else np.nan, "p_holm": np.nan,
            "kappa_quadratic": np.nan, "kappa_ci_low": np.nan, "kappa_ci_high": np.nan,
            "note": f"patient scores, max_missing = {max_missing}; Wilcoxon p unadjusted",
        })
    results = [_wilcoxon(d, ordered) for d, ordered in tests]
    for rec, (w, pw, wnote) in zip(rows + summary, results):
        rec["wilcoxon_W"], rec["p_wilcoxon"] = w, pw
        if np.isnan(pw):
            rec["note"] = ("; ".join(x for x in (wnote, rec["note"]) if x)
                           if rec["item"] is not pd.NA else f"{rec['note']}; {wnote}")
    items = pd.DataFrame(rows)
    items["p_holm"] = holm(items["p_wilcoxon"].to_numpy(dtype=float))
    out = pd.concat([items, pd.DataFrame(summary)], ignore_index=True)
    out["item"] = out["item"].astype("Int64")
    out["n"] = out["n"].astype("int64")
    cols = ["item", "label", "n", "user_mean", "user_sd", "provider_mean", "provider_sd",
            "mean_difference", "wilcoxon_W", "p_wilcoxon", "p_holm", "kappa_quadratic",
            "kappa_ci_low", "kappa_ci_high", "note"]
    return out[cols]


def _fmt_p(p) -> str:
    if p is None or pd.isna(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_table3(t3: pd.DataFrame, digits: int = 2, alpha: float = 0.05) -> pd.DataFrame:
    """Publication layout of :func:`table3`: "mean (SD)" strings, formatted p and kappa.

    Parameters
    ----------
    t3 : pandas.DataFrame
        The result of :func:`table3`, possibly protected by :func:`apply_disclosure`
        (redacted rows print ``[REDACTED]``).
    digits : int, default 2
        Decimals for means, SDs, differences and kappa (the same for every row).
    alpha : float, default 0.05
        The alpha :func:`table3` was computed with (only labels the kappa header).

    Returns
    -------
    pandas.DataFrame
        Columns ``Item``, ``n``, ``User, mean (SD)``, ``Provider, mean (SD)``,
        ``Difference (user - provider)``, ``Wilcoxon p (Holm)``,
        ``Weighted kappa (95% CI)`` (the level in the header follows ``alpha``).

    Examples
    --------
    >>> import pandas as pd
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS, IMRS_PROVIDER_COLUMNS
    >>> rows = [[4] * 15 + [3] * 15, [3] * 15 + [3] * 15, [5] * 15 + [4] * 15]
    >>> cohort = pd.DataFrame(rows, columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS)
    >>> format_table3(table3(cohort)).iloc[-1, 2]
    '60.00 (15.00)'
    """
    def ms(m, s):
        if pd.isna(m):
            return ""
        return f"{m:.{digits}f} ({s:.{digits}f})" if not pd.isna(s) else f"{m:.{digits}f}"

    item_label = [
        f"{int(i)}. {lab}" if not pd.isna(i) else lab for i, lab in zip(t3["item"], t3["label"])
    ]
    redacted = (t3["redacted_columns"].fillna("").astype(str).str.len() > 0).to_numpy() \
        if "redacted_columns" in t3.columns else np.zeros(len(t3), bool)
    p_col = [
        _fmt_p(ph) if not pd.isna(ph) else (f"{_fmt_p(pw)} (unadjusted)" if not pd.isna(pw) else "")
        for pw, ph in zip(t3["p_wilcoxon"], t3["p_holm"])
    ]
    kap = [
        "" if pd.isna(k) else (f"{k:.{digits}f}" + ("" if pd.isna(lo) else
                                                   f" ({lo:.{digits}f} to {hi:.{digits}f})"))
        for k, lo, hi in zip(t3["kappa_quadratic"], t3["kappa_ci_low"], t3["kappa_ci_high"])
    ]
    out = pd.DataFrame({
        "Item": item_label,
        "n": ["" if pd.isna(v) else str(int(v)) for v in t3["n"]],
        "User, mean (SD)": [ms(m, s) for m, s in zip(t3["user_mean"], t3["user_sd"])],
        "Provider, mean (SD)": [ms(m, s) for m, s in zip(t3["provider_mean"], t3["provider_sd"])],
        "Difference (user - provider)": ["" if pd.isna(d) else f"{d:.{digits}f}"
                                         for d in t3["mean_difference"]],
        "Wilcoxon p (Holm)": p_col,
        f"Weighted kappa ({round(100 * (1 - alpha))}% CI)": kap,
    })
    if redacted.any():
        from .disclosure import REDACTED_MARKER

        for col in out.columns[1:]:
            out[col] = np.where(redacted & (out[col] == ""), REDACTED_MARKER, out[col])
        stat = out.columns[2:]
        out.loc[redacted, stat] = REDACTED_MARKER
    return out


#: Measures of :func:`table3_long`, in their order within an item.
T3_USER = "user"
T3_PROVIDER = "provider"
T3_DIFFERENCE = "difference (user - provider)"
T3_WILCOXON = "Wilcoxon signed-rank test"
T3_KAPPA = "quadratic-weighted kappa"
TABLE3_MEASURES = [T3_USER, T3_PROVIDER, T3_DIFFERENCE, T3_WILCOXON, T3_KAPPA]
#: Columns of :func:`table3_long`.
TABLE3_LONG_COLUMNS = ["item", "item_label", "measure", "n", "mean", "sd", "statistic", "p_value",
                       "p_holm", "kappa", "ci_low", "ci_high", "note"]


def table3_long(t3: pd.DataFrame) -> pd.DataFrame:
    """Table 3 as a tidy long table of numbers: one row per item (or summary) and measure.

    Every number of :func:`format_table3` is here, unformatted: the formatted Table 3 is
    these values at display precision. Protect it like the other agreement tables, with
    :func:`apply_disclosure` (statistics of pairs of 1..k patients redacted, ``n``
    rounded), before writing it.

    Parameters
    ----------
    t3 : pandas.DataFrame
        The result of :func:`table3` (not yet protected: the long table is protected on
        its own).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE3_LONG_COLUMNS`: ``item`` (Int64; NA on the two summary rows,
        item mean and total), ``item_label``, ``measure`` (:data:`TABLE3_MEASURES`), ``n``
        (pairs), then, as the measure has them:

        * ``user`` / ``provider``: ``mean``, ``sd`` of the ratings (or scores);
        * ``difference (user - provider)``: ``mean`` of the paired differences;
        * ``Wilcoxon signed-rank test``: ``statistic`` (W), ``p_value`` (unadjusted) and
          ``p_holm`` (Holm over the 15 items; NaN on the summary rows);
        * ``quadratic-weighted kappa`` (items only): ``kappa``, ``ci_low``, ``ci_high``;

        NaN elsewhere; ``note`` is the row's note in :func:`table3`. Statistic columns
        are float64, ``n`` int64.

    Raises
    ------
    ValueError
        ``t3`` has already been through :func:`apply_disclosure`.

    Examples
    --------
    >>> import pandas as pd
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS, IMRS_PROVIDER_COLUMNS
    >>> rows = [[4] * 15 + [3] * 15, [3] * 15 + [3] * 15, [5] * 15 + [4] * 15]
    >>> cohort = pd.DataFrame(rows, columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS)
    >>> long = table3_long(table3(cohort))
    >>> long["measure"].head(5).tolist()
    ['user', 'provider', 'difference (user - provider)', 'Wilcoxon signed-rank test', 'quadratic-weighted kappa']
    >>> total = long[long["item_label"] == "Total (15-75)"].set_index("measure")
    >>> int(total.loc["user", "n"]), total.loc["user", ["mean", "sd"]].tolist()
    (3, [60.0, 15.0])
    >>> len(long) == 15 * 5 + 2 * 4
    True
    """
    from .disclosure import COMPANION_COLUMNS

    done = [c for c in COMPANION_COLUMNS if c in t3.columns]
    if done:
        raise ValueError(f"table3_long needs the table of table3(), not a protected one (it has {done}); "
                         "protect the long table with apply_disclosure")
    base = pd.DataFrame({"item": t3["item"].astype("Int64").to_numpy(),
                         "item_label": t3["label"].astype(str).to_numpy(),
                         "n": t3["n"].to_numpy(dtype=np.int64),
                         "note": t3["note"].fillna("").astype(str).to_numpy(),
                         "_row": np.arange(len(t3))})

    def block(measure, keep=None, **cols):
        out = base.assign(measure=measure, **{k: pd.to_numeric(t3[v], errors="coerce").to_numpy(dtype=float)
                                             for k, v in cols.items()})
        return out if keep is None else out[keep]

    parts = [
        block(T3_USER, mean="user_mean", sd="user_sd"),
        block(T3_PROVIDER, mean="provider_mean", sd="provider_sd"),
        block(T3_DIFFERENCE, mean="mean_difference"),
        block(T3_WILCOXON, statistic="wilcoxon_W", p_value="p_wilcoxon", p_holm="p_holm"),
        block(T3_KAPPA, keep=base["item"].notna().to_numpy(), kappa="kappa_quadratic",
              ci_low="kappa_ci_low", ci_high="kappa_ci_high"),
    ]
    order = {m: i for i, m in enumerate(TABLE3_MEASURES)}
    out = pd.concat(parts, ignore_index=True)
    out = out.assign(_m=out["measure"].map(order)).sort_values(["_row", "_m"], kind="stable")
    out = out.reindex(columns=TABLE3_LONG_COLUMNS).reset_index(drop=True)
    stats_cols = ["mean", "sd", "statistic", "p_value", "p_holm", "kappa", "ci_low", "ci_high"]
    out[stats_cols] = out[stats_cols].astype(float)
    out["item"] = out["item"].astype("Int64")
    out["n"] = out["n"].astype("int64")
    return out


# --------------------------------------------------------------------------------------
# the paper's analysis: item-profile correlation
# --------------------------------------------------------------------------------------
def item_means(cohort: pd.DataFrame) -> pd.DataFrame:
    """Mean user and provider rating of each IMRS item (complete pairs of that item).

    These are the ``user_mean`` / ``provider_mean`` columns of :func:`table3`'s item
    rows, so the item-profile correlation can be recomputed from Table 3.

    Returns
    -------
    pandas.DataFrame
        ``item, label, n, user_mean, provider_mean``.

    Examples
    --------
    >>> import pandas as pd
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS, IMRS_PROVIDER_COLUMNS
    >>> rows = [[4] * 15 + [3] * 15, [2] * 15 + [3] * 15]
    >>> cohort = pd.DataFrame(rows, columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS)
    >>> item_means(cohort).loc[0, ["user_mean", "provider_mean"]].tolist()
    [3.0, 3.0]
    """
    joint = _joint_counts(_item_codes(cohort, "user"), _item_codes(cohort, "provider"))
    tables = joint[:, 1:, 1:]
    n = tables.sum(axis=(1, 2))
    su = tables.sum(axis=2) @ np.asarray(CATEGORIES)
    sp = tables.sum(axis=1) @ np.asarray(CATEGORIES)
    rows = [{"item": item, "label": IMRS_ITEMS[item], "n": int(n[j]),
             "user_mean": _exact_mean(int(su[j]), int(n[j])),
             "provider_mean": _exact_mean(int(sp[j]), int(n[j]))}
            for j, item in enumerate(IMRS_ITEMS)]
    return pd.DataFrame(rows)


def _small_integers(*arrays):
    """The arrays as int16 if all hold integers within int16 range, else unchanged.

    Ranks (and so Spearman's rho and its p) are the same for the integer copy, and
    numpy sorts 16-bit integers with a radix sort: at 10^6 patients this makes
    ``scipy.stats.spearmanr`` on IMRS totals several times faster.
    """
    out = []
    for a in arrays:
        if a.size <= _WILCOXON_SMALL_N:       # short arrays: nothing to gain
            return arrays
        if not (np.iinfo(np.int16).min <= a.min() and a.max() <= np.iinfo(np.int16).max):
            return arrays
        ai = a.astype(np.int16)
        if not np.array_equal(ai, a):
            return arrays
        out.append(ai)
    return tuple(out)


def _corr_rows(x, y, alpha, measures=(PEARSON, SPEARMAN), unit="pairs") -> list[dict]:
    """Pearson (scipy, Fisher-z CI) and Spearman (scipy p, pingouin Fisher-z CI) rows."""
    import pingouin as pg
    from scipy import stats

    n = int(x.size)
    if n < MIN_N:
        return [_row(m, n=n, note=f"not estimable: {n} {unit}, at least {MIN_N} needed")
                for m in measures]
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return [_row(m, n=n, note="not estimable: constant ratings") for m in measures]
    out = []
    pr = stats.pearsonr(x, y)
    ci, note = (np.nan, np.nan), f"CI needs at least 4 {unit}"
    if n >= 4:
        c = pr.confidence_interval(confidence_level=1 - alpha)
        ci, note = (c.low, c.high), "Fisher z CI"
    out.append(_row(measures[0], pr.statistic, ci, n, pr.pvalue, note))
    sr = stats.spearmanr(*_small_integers(x, y))
    rho = float(sr.statistic)
    ci, note = (np.nan, np.nan), f"CI needs at least 4 {unit}"
    if n >= 4 and abs(rho) < 1:
        ci = tuple(pg.compute_esci(stat=rho, nx=n, ny=n, eftype="r", confidence=1 - alpha,
                                   decimals=15))
        note = "Fisher z CI (SE 1/sqrt(n - 3)); p from t approximation"
    elif abs(rho) == 1:
        ci, note = (rho, rho), "perfect rank correlation"
    out.append(_row(measures[1], rho, ci, n, sr.pvalue, note))
    return out


def item_profile_correlation(cohort: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """The paper's analysis: correlation of the 15 user item means with the 15 provider ones.

    Each of the 15 IMRS items gives one point (mean user rating, mean provider
    rating), so ``n`` is the number of items, not of patients. Pearson r with p
    (``scipy.stats.pearsonr``) and Fisher-z CI, and the Spearman version (the paper's
    "Pearson's rank") with the t-approximation p and a Fisher-z CI
    (``pingouin.compute_esci``). See :func:`describe_item_profile` for what it means.

    Parameters
    ----------
    cohort : pandas.DataFrame
    alpha : float, default 0.05

    Returns
    -------
    pandas.DataFrame
        Two rows, columns ``analysis, measure, estimate, ci_low, ci_high, n, p, note``,
        with ``analysis`` = :data:`ITEM_PROFILE_SECTION`.

    Examples
    --------
    >>> import pandas as pd
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS, IMRS_PROVIDER_COLUMNS
    >>> u = [1, 2, 3, 4, 5] * 3
    >>> rows = [u + u, [min(x + 1, 5) for x in u] + u]
    >>> cohort = pd.DataFrame(rows, columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS)
    >>> res = item_profile_correlation(cohort)
    >>> res["measure"].tolist(), int(res.loc[0, "n"])
    (['Pearson r', 'Spearman rho'], 15)
    """
    _check_alpha(alpha)
    im = item_means(cohort).dropna(subset=["user_mean", "provider_mean"])
    rows = _corr_rows(im["user_mean"].to_numpy(float), im["provider_mean"].to_numpy(float),
                      alpha, unit="items")
    out = pd.DataFrame(rows)
    out["note"] = out["note"] + (
        "; n = items: an ecological correlation between item profiles (item means over "
        "the patients), not patient-level agreement")
    out.insert(0, "analysis", ITEM_PROFILE_SECTION)
    return out


def describe_item_profile(result: pd.DataFrame, digits: int = 2) -> str:
    """A plain-language sentence on what the item-profile correlation measures.

    Parameters
    ----------
    result : pandas.DataFrame
        The output of :func:`item_profile_correlation`.
    digits : int, default 2

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> res = pd.DataFrame({"measure": ["Pearson r"], "estimate": [0.96], "ci_low": [0.88],
    ...                     "ci_high": [0.99], "n": [15], "p": [0.0001]})
    >>> print(describe_item_profile(res))  # doctest: +NORMALIZE_WHITESPACE
    Across the 15 IMRS items, the users' mean rating of each item and the providers'
    mean rating of the same item correlate with Pearson r = 0.96 (95% CI 0.88 to 0.99,
    n = 15 items, p < 0.001). This item-profile (ecological) correlation measures
    whether the items that users as a group rate high are also the items providers
    rate high. It does not measure whether a given provider agrees with a given
    patient: that is patient-level agreement (ICC, Lin's CCC, Bland-Altman limits of
    agreement), reported separately.
    """
    r = result.set_index("measure").loc[PEARSON]
    n = int(r["n"])
    if pd.isna(r["estimate"]):
        stat = f"cannot be computed here (n = {n} items)"
    else:
        ci = ("" if pd.isna(r["ci_low"]) else
              f"95% CI {r['ci_low']:.{digits}f} to {r['ci_high']:.{digits}f}, ")
        p = "p < 0.001" if r["p"] < 0.001 else f"p = {r['p']:.3f}"
        stat = f"correlate with Pearson r = {r['estimate']:.{digits}f} ({ci}n = {n} items, {p})"
    return (
        f"Across the {n} IMRS items, the users' mean rating of each item and the providers' "
        f"mean rating of the same item {stat}. This item-profile (ecological) correlation "
        "measures whether the items that users as a group rate high are also the items "
        "providers rate high. It does not measure whether a given provider agrees with a "
        "given patient: that is patient-level agreement (ICC, Lin's CCC, Bland-Altman "
        "limits of agreement), reported separately."
    )


# --------------------------------------------------------------------------------------
# patient level
# --------------------------------------------------------------------------------------
def intraclass_correlations(ratings, alpha: float = 0.05) -> pd.DataFrame:
    """All six ICCs of a complete targets x raters table (``pingouin.intraclass_corr``).

    pingouin 0.7 labels them in McGraw & Wong (1996) notation; the Shrout & Fleiss
    (1979) names are given too: ICC(A,1) = ICC2 (two-way random, absolute agreement)
    and ICC(C,1) = ICC3 (two-way mixed, consistency). Results are unrounded.

    Always computed by pingouin (its long-format ANOVA costs about 1.5 s for 10^6
    patients; the statistic is not re-implemented here).

    Parameters
    ----------
    ratings : array-like, shape (n_targets, n_raters)
        No missing values; at least 2 targets and 2 raters.
    alpha : float, default 0.05
        pingouin only provides 95% intervals: with another alpha the CIs are NaN.

    Returns
    -------
    pandas.DataFrame
        ``type, shrout_fleiss, description, icc, ci_low, ci_high, F, df1, df2, p``.

    Examples
    --------
    >>> sf = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9],
    ...       [6, 2, 4, 7]]  # Shrout & Fleiss (1979), Table 2
    >>> intraclass_correlations(sf).set_index("shrout_fleiss")["icc"].round(2)[:3].tolist()
    [0.17, 0.29, 0.71]
    """
    import pingouin as pg

    _check_alpha(alpha)
    r = np.asarray(ratings, dtype=float)
    if r.ndim != 2 or r.shape[0] < 2 or r.shape[1] < 2:
        raise ValueError(f"ratings must be a 2-D table with at least 2 targets and 2 raters, "
                         f"got shape {r.shape}")
    if np.isnan(r).any():
        raise ValueError("ratings must not contain missing values (drop incomplete targets)")
    n, k = r.shape
    # targets and raters as categoricals: pingouin's group-bys then use their codes (same results, faster)
    long = pd.DataFrame({"target": pd.Categorical.from_codes(np.repeat(np.arange(n), k), categories=pd.RangeIndex(n)),
                         "rater": pd.Categorical.from_codes(np.tile(np.arange(k), n), categories=pd.RangeIndex(k)),
                         "rating": r.ravel()}, copy=False)
    with _no_pandas4_warning(), _pingouin_full_precision(), np.errstate(divide="ignore", invalid="ignore"):
        res = pg.intraclass_corr(long, targets="target", raters="rater", ratings="rating")
    ci = np.vstack(res["CI95"].to_numpy())
    out = pd.DataFrame({
        "type": res["Type"].to_numpy(),
        "shrout_fleiss": res["Type"].map(ICC_SHROUT_FLEISS).to_numpy(),
        "description": res["Type"].map(ICC_DESCRIPTIONS).to_numpy(),
        "icc": res["ICC"].to_numpy(float),
        "ci_low": ci[:, 0].astype(float), "ci_high": ci[:, 1].astype(float),
        "F": res["F"].to_numpy(float), "df1": res["df1"].to_numpy(float),
        "df2": res["df2"].to_numpy(float), "p": res["pval"].to_numpy(float),
    })
    if not np.isclose(alpha, 0.05):
        out[["ci_low", "ci_high"]] = np.nan
    for c in ("icc", "ci_low", "ci_high", "F", "p"):
        out[c] = out[c].where(np.isfinite(out[c]))
    return out


def concordance_correlation(x, y, alpha: float = 0.05) -> pd.Series:
    """Lin's concordance correlation coefficient with its Fisher-z confidence interval.

    ``rho_c = 2 s_xy / (s_x^2 + s_y^2 + (xbar - ybar)^2)`` with moments divided by n
    (Lin 1989). The interval is ``tanh(z +/- q * se_z)``, ``z = atanh(rho_c)``, with
    the variance of ``z`` from Lin (1989) as corrected in Lin (2000)::

        var_z = 1/(n-2) * [ (1 - r^2) rho_c^2 / ((1 - rho_c^2) r^2)
                            + 2 rho_c^3 (1 - rho_c) u^2 / (r (1 - rho_c^2)^2)
                            - rho_c^4 u^4 / (2 r^2 (1 - rho_c^2)^2) ]

    where ``r`` is Pearson's r and ``u = (xbar - ybar) / sqrt(s_x s_y)``. No library in
    the compendium's stack provides it; the tests cross-check it against the closed
    form ``r * C_b`` and an independent transcription of the asymptotic formula.

    Parameters
    ----------
    x, y : array-like
        Paired measurements; pairs with a missing value are dropped.
    alpha : float, default 0.05

    Returns
    -------
    pandas.Series
        ``ccc, ci_low, ci_high, se_z, n, pearson_r, bias_correction`` (C_b, accuracy),
        ``location_shift`` (u), ``scale_shift`` (v = s_x / s_y), ``note``.

    Examples
    --------
    >>> res = concordance_correlation([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    >>> float(res["ccc"])
    1.0
    >>> round(float(concordance_correlation([1, 2, 3, 4, 5], [2, 3, 4, 5, 6])["ccc"]), 4)
    0.8
    """
    from scipy import stats

    _check_alpha(alpha)
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length ({x.size} vs {y.size})")
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    n = int(x.size)
    res = pd.Series({"ccc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "se_z": np.nan,
                     "n": n, "pearson_r": np.nan, "bias_correction": np.nan,
                     "location_shift": np.nan, "scale_shift": np.nan, "note": ""}, dtype=object)
    if n < 2:
        res["note"] = f"not estimable: {n} pair(s)"
        return res
    mx, my = x.mean(), y.mean()
    sx2, sy2 = x.var(), y.var()
    sxy = np.mean((x - mx) * (y - my))
    denom = sx2 + sy2 + (mx - my) ** 2
    if denom == 0:
        res["note"] = "not estimable: all ratings identical"
        return res
    ccc = 2 * sxy / denom
    res["ccc"] = float(ccc)
    if sx2 == 0 or sy2 == 0:
        res["note"] = "confidence interval not estimable: constant ratings"
        return res
    r = sxy / np.sqrt(sx2 * sy2)
    u = (mx - my) / (sx2 * sy2) ** 0.25
    res["pearson_r"] = float(r)
    res["bias_correction"] = float(ccc / r) if r != 0 else np.nan
    res["location_shift"] = float(u)
    res["scale_shift"] = float(np.sqrt(sx2 / sy2))
    if n < 3:
        res["note"] = "confidence interval not estimable: at least 3 pairs needed"
        return res
    if r == 0 or abs(ccc) >= 1:
        res["note"] = ("confidence interval not estimable: "
                       + ("Pearson r = 0" if r == 0 else "perfect concordance"))
        return res
    c2 = ccc**2
    var_z = ((1 - r**2) * c2 / ((1 - c2) * r**2)
             + 2 * ccc**3 * (1 - ccc) * u**2 / (r * (1 - c2) ** 2)
             - ccc**4 * u**4 / (2 * r**2 * (1 - c2) ** 2)) / (n - 2)
    if not var_z > 0:
        res["note"] = "confidence interval not estimable: non-positive variance estimate"
        return res
    se = np.sqrt(var_z)
    q = stats.norm.ppf(1 - alpha / 2)
    z = np.arctanh(ccc)
    res["se_z"] = float(se)
    res["ci_low"], res["ci_high"] = float(np.tanh(z - q * se)), float(np.tanh(z + q * se))
    res["note"] = "Fisher z CI, variance of Lin (1989, 2000)"
    return res


def _agreement_rows(u, p, on, alpha, loa_ci, n_excluded=None) -> pd.DataFrame:
    """All patient-level rows for paired scores ``u`` (user) and ``p`` (provider)."""
    from scipy import stats

    n = int(u.size)
    rows = []
    if n_excluded is not None:
        rows.append(_row(EXCLUDED, n_excluded, n=n_excluded,
                         note="patients without both a user and a provider score (estimate = count)"))
    for m, x in ((USER_MEAN, u), (PROVIDER_MEAN, p)):
        if n >= 2 and np.ptp(x) > 0:
            ci = stats.ttest_1samp(x, 0.0).confidence_interval(1 - alpha)
            rows.append(_row(m, x.mean(), (ci.low, ci.high), n,
                             note=f"SD = {x.std(ddof=1):.4g}; t interval"))
        else:
            rows.append(_row(m, x.mean() if n else np.nan, n=n,
                             note="SD = 0" if n >= 2 else "SD not estimable"))
    rows += _corr_rows(u, p, alpha, unit="patients")

    # ICC
    if n < MIN_N:
        rows += [_row(m, n=n, note=f"not estimable: {n} patients, at least {MIN_N} needed")
                 for m in (ICC_A1, ICC_C1)]
    elif np.ptp(np.concatenate([u, p])) == 0:
        rows += [_row(m, n=n, note="not estimable: all ratings identical") for m in (ICC_A1, ICC_C1)]
    else:
        icc = intraclass_correlations(np.column_stack([u, p]), alpha=alpha).set_index("type")
        for m, key in ((ICC_A1, "ICC(A,1)"), (ICC_C1, "ICC(C,1)")):
            rec = icc.loc[key]
            note = f"pingouin {key} (Shrout & Fleiss {ICC_SHROUT_FLEISS[key]}); p: F test of ICC = 0"
            if not np.isclose(alpha, 0.05):
                note += "; CI not available (pingouin gives 95% CIs only)"
            rows.append(_row(m, rec["icc"], (rec["ci_low"], rec["ci_high"]), n, rec["p"], note))

    # Lin's CCC
    c = concordance_correlation(u, p, alpha=alpha)
    rows.append(_row(CCC, c["ccc"], (c["ci_low"], c["ci_high"]), n, note=(
        c["note"] + ("" if pd.isna(c["bias_correction"]) else
                     f"; precision r = {c['pearson_r']:.3f}, accuracy C_b = {c['bias_correction']:.3f}"))))

    # Bland-Altman
    ba = limits_of_agreement(u - p, alpha=alpha, loa_ci=loa_ci)
    rows += ba.to_dict("records")

    # paired tests
    d = u - p
    if n >= 2 and np.ptp(d) > 0:
        tt = stats.ttest_rel(u, p)
        ci = tt.confidence_interval(1 - alpha)
        rows.append(_row(PAIRED_T, d.mean(), (ci.low, ci.high), n, tt.pvalue,
                         f"t = {tt.statistic:.3f}"))
    else:
        rows.append(_row(PAIRED_T, d.mean() if n else np.nan, n=n,
                         note="not estimable: " + ("all differences equal" if n >= 2
                                                   else f"{n} patient(s)")))
    w, pw, wnote = _wilcoxon(d)
    rows.append(_row(WILCOXON, np.median(d) if n else np.nan, n=n, p=pw,
                     note=wnote if np.isnan(w) else f"W = {w:g}; zero differences dropped"))
    out = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    out["n"] = out["n"].astype("int64")
    return out


def patient_level_agreement(cohort: pd.DataFrame, on: str = "total", max_missing: int = 0,
                            alpha: float = 0.05, loa_ci: str = "exact") -> pd.DataFrame:
    """Agreement between each patient's own IMRS and their provider's IMRS.

    Rows (``measure``): the number of patients excluded for lack of a user or a
    provider score (:data:`EXCLUDED`, estimate = count); user and provider mean (t CI;
    SD in ``note``); Pearson r
    (``scipy.stats.pearsonr``, Fisher-z CI) and Spearman rho (``scipy.stats.spearmanr``,
    Fisher-z CI via ``pingouin.compute_esci``); ICC(A,1) two-way random absolute
    agreement and ICC(C,1) consistency (``pingouin.intraclass_corr`` at every size, F-based
    95% CI; see :func:`intraclass_correlations`);
    Lin's CCC (:func:`concordance_correlation`); Bland-Altman bias and limits of
    agreement (:func:`imr_analysis.bland_altman.limits_of_agreement`, exact CIs by
    default); paired t-test (``scipy.stats.ttest_rel``) and Wilcoxon signed-rank test
    (``scipy.stats.wilcoxon``; estimate = median difference).

    Parameters
    ----------
    cohort : pandas.DataFrame
    on : {"total", "mean"}, default "total"
        IMRS total (15-75) or item mean (1-5).
    max_missing : int, default 0
        See :func:`imrs_scores`.
    alpha : float, default 0.05
        1 - confidence level.
    loa_ci : {"exact", "approximate"}, default "exact"

    Returns
    -------
    pandas.DataFrame
        Columns ``measure, estimate, ci_low, ci_high, n, p, note``; ``n`` is the number
        of patients with both scores. Unestimable values are NaN with the reason.

    Examples
    --------
    >>> import pandas as pd
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS, IMRS_PROVIDER_COLUMNS
    >>> rows = [[k] * 15 + [min(k + 1, 5)] * 15 for k in (1, 2, 3, 4, 2, 3)]
    >>> cohort = pd.DataFrame(rows, columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS)
    >>> res = patient_level_agreement(cohort).set_index("measure")
    >>> float(res.loc["Bland-Altman bias (user - provider)", "estimate"])
    -15.0
    """
    _check_on(on)
    _check_alpha(alpha)
    scores = imrs_scores(cohort, max_missing=max_missing)
    u, p = _pairs(scores, on)
    return _agreement_rows(u, p, on, alpha, loa_ci, n_excluded=len(scores) - u.size)


def internal_consistency(cohort: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Cronbach's alpha of the 15 IMRS items, for each version (``pingouin.cronbach_alpha``).

    Listwise deletion (patients with all 15 items of that version); the CI is
    pingouin's F-based (Feldt) interval, which pingouin rounds to 3 decimals.

    Parameters
    ----------
    cohort : pandas.DataFrame
    alpha : float, default 0.05
        1 - confidence level (not Cronbach's alpha).

    Returns
    -------
    pandas.DataFrame
        Columns ``version, measure, estimate, ci_low, ci_high, n, n_items, note``.

    Examples
    --------
    >>> import pandas as pd
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS, IMRS_PROVIDER_COLUMNS
    >>> rows = [[k] * 15 + [k] * 14 + [3] for k in (1, 2, 3, 4, 5)]
    >>> cohort = pd.DataFrame(rows, columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS)
    >>> internal_consistency(cohort)["estimate"].round(3).tolist()
    [1.0, 0.995]
    """
    import pingouin as pg

    _check_alpha(alpha)
    rows = []
    for v in VERSIONS:
        codes = _item_codes(cohort, v)
        complete = codes.all(axis=1)
        if not complete.all():
            codes = codes[complete]
        n = int(codes.shape[0])
        totals = codes.sum(axis=1, dtype=np.int16)      # exact: a constant total <=> var 0
        rec = {"version": v, "measure": "Cronbach's alpha", "estimate": np.nan,
               "ci_low": np.nan, "ci_high": np.nan, "n": n, "n_items": N_IMRS_ITEMS, "note": ""}
        if n < MIN_N:
            rec["note"] = f"not estimable: {n} complete {v} IMRS, at least {MIN_N} needed"
        elif totals.min() == totals.max():
            rec["note"] = "not estimable: all patients have the same total"
        else:
            with _no_pandas4_warning(), np.errstate(divide="ignore", invalid="ignore"):
                est, ci = pg.cronbach_alpha(
                    data=pd.DataFrame(_ratings(codes), columns=_VERSION_COLUMNS[v], copy=False),
                    nan_policy="listwise", ci=1 - alpha)
            rec.update(estimate=float(est), ci_low=float(ci[0]), ci_high=float(ci[1]),
                       note="complete cases; F-based CI (pingouin, 3 decimals)")
        rows.append(rec)
    out = pd.DataFrame(rows)
    out["n"] = out["n"].astype("int64")
    return out


def _caveat(n: int) -> str:
    if n < MIN_N:
        return f"n < {MIN_N}: most measures not estimable"
    if n < VERY_SMALL_N:
        return (f"n < {VERY_SMALL_N}: very small; estimates unstable and intervals "
                "unreliable, read descriptively")
    if n < SMALL_N:
        return f"n < {SMALL_N}: small; wide intervals, asymptotic CIs approximate"
    return ""


def agreement_by_service(cohort: pd.DataFrame, on: str = "total", max_missing: int = 0,
                         alpha: float = 0.05, loa_ci: str = "exact",
                         services=None) -> pd.DataFrame:
    """:func:`patient_level_agreement` within each service type, with small-n caveats.

    Parameters
    ----------
    cohort : pandas.DataFrame
        Must have ``service_type``.
    on, max_missing, alpha, loa_ci
        As in :func:`patient_level_agreement`.
    services : sequence of str, optional
        Service types, in output order (default: CMHC, SerD, EDP; all are listed even
        when absent, with n = 0).

    Returns
    -------
    pandas.DataFrame
        ``service_type`` then the columns of :func:`patient_level_agreement`, plus
        ``caveat`` (non-empty when n < 30, stronger when n < 10; measures not
        estimable with n < 3 are NaN with the reason in ``note``).

    Examples
    --------
    >>> import pandas as pd
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS, IMRS_PROVIDER_COLUMNS
    >>> rows = [[k] * 15 + [min(k + 1, 5)] * 15 for k in (1, 2, 3, 4, 2)]
    >>> cohort = pd.DataFrame(rows, columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS)
    >>> cohort["service_type"] = ["CMHC", "CMHC", "CMHC", "CMHC", "EDP"]
    >>> res = agreement_by_service(cohort, services=["CMHC", "EDP"])
    >>> res.groupby("service_type")["caveat"].first().str[:6].tolist()
    ['n < 10', 'n < 3:']
    """
    _check_on(on)
    _check_alpha(alpha)
    if "service_type" not in cohort.columns:
        raise ValueError("cohort lacks the service_type column")
    services = list(SERVICE_TYPES if services is None else services)
    unknown = sorted(set(services) - set(SERVICE_TYPES))
    if unknown:
        raise ValueError(f"unknown service type(s) {unknown}; choose from {list(SERVICE_TYPES)}")
    scores = imrs_scores(cohort, max_missing=max_missing)
    parts = []
    for s in services:
        sub = scores[scores["service_type"] == s]
        u, p = _pairs(sub, on)
        res = _agreement_rows(u, p, on, alpha, loa_ci, n_excluded=len(sub) - u.size)
        res.insert(0, "service_type", s)
        res["caveat"] = _caveat(int(u.size))
        parts.append(res)
    return pd.concat(parts, ignore_index=True)


def agreement_summary(cohort: pd.DataFrame, max_missing: int = 0, alpha: float = 0.05,
                      loa_ci: str = "exact", services=None) -> pd.DataFrame:
    """Every agreement result in one tidy table (``tables/imrs_agreement.*``).

    Sections, in order: the paper's item-profile correlation; patient-level agreement
    on the total (all measures); on the item mean (the scale-dependent measures only:
    the others equal those of the total); item level (per item: quadratic-weighted
    kappa, and mean difference with the Holm-adjusted Wilcoxon p); Cronbach's alpha;
    patient-level agreement on the total within each service type (caveats in
    ``note``).

    Parameters
    ----------
    cohort : pandas.DataFrame
    max_missing, alpha, loa_ci
        As in :func:`patient_level_agreement`.
    services : sequence of str, optional
        As in :func:`agreement_by_service`; skipped when the cohort has no
        ``service_type``.

    Returns
    -------
    pandas.DataFrame
        Columns ``section, measure, estimate, ci_low, ci_high, n, p, note``.

    Examples
    --------
    >>> import pandas as pd
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS, IMRS_PROVIDER_COLUMNS
    >>> rows = [[k] * 15 + [min(k + 1, 5)] * 15 for k in (1, 2, 3, 4, 2, 3)]
    >>> cohort = pd.DataFrame(rows, columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS)
    >>> agreement_summary(cohort)["section"].unique().tolist()[:2]
    ["item profile (paper's analysis: ecological, n = items)", 'patient level: IMRS total (15-75)']
    """
    parts = []
    prof = item_profile_correlation(cohort, alpha=alpha).rename(columns={"analysis": "section"})
    parts.append(prof[SUMMARY_COLUMNS])
    for on in ("total", "mean"):
        res = patient_level_agreement(cohort, on=on, max_missing=max_missing, alpha=alpha,
                                      loa_ci=loa_ci)
        if on == "mean":
            res = res[res["measure"].isin(SCALE_DEPENDENT)]
        res.insert(0, "section", f"patient level: {SCALES[on][2]}")
        parts.append(res)
    t3 = table3(cohort, max_missing=max_missing, alpha=alpha)
    t3 = t3[t3["item"].notna()]
    conf = f"{round(100 * (1 - alpha))}%"
    item_rows = []
    for rec in t3.to_dict("records"):
        key = f"item {int(rec['item']):02d} {rec['label']}"
        item_rows.append({
            "section": "item level", "measure": f"{key}: quadratic-weighted kappa",
            "estimate": rec["kappa_quadratic"], "ci_low": rec["kappa_ci_low"],
            "ci_high": rec["kappa_ci_high"], "n": rec["n"], "p": np.nan,
            "note": f"asymptotic {conf} CI (statsmodels)"})
        item_rows.append({
            "section": "item level", "measure": f"{key}: mean difference (user - provider)",
            "estimate": rec["mean_difference"], "ci_low": np.nan, "ci_high": np.nan,
            "n": rec["n"], "p": rec["p_holm"],
            "note": ("p: Wilcoxon signed-rank, Holm-adjusted over 15 items"
                     + ("" if pd.isna(rec["p_wilcoxon"]) else
                        f" (unadjusted {_fmt_p(rec['p_wilcoxon'])})")
                     + ("; " + rec["note"] if rec["note"] else ""))})
    parts.append(pd.DataFrame(item_rows, columns=SUMMARY_COLUMNS))
    ic = internal_consistency(cohort, alpha=alpha)
    ic = ic.assign(section="internal consistency", p=np.nan,
                   measure=ic["measure"] + " (" + ic["version"] + ")")
    parts.append(ic[SUMMARY_COLUMNS])
    if "service_type" in cohort.columns:
        by = agreement_by_service(cohort, on="total", max_missing=max_missing, alpha=alpha,
                                  loa_ci=loa_ci, services=services)
        by["section"] = "by service: " + by["service_type"] + ", IMRS total (15-75)"
        by["note"] = np.where(by["caveat"] != "", "CAVEAT " + by["caveat"] + "; " + by["note"],
                              by["note"])
        parts.append(by[SUMMARY_COLUMNS])
    out = pd.concat(parts, ignore_index=True)
    out["n"] = out["n"].astype("int64")
    out["note"] = out["note"].fillna("").astype(str)
    return out[SUMMARY_COLUMNS]


# --------------------------------------------------------------------------------------
# disclosure control of the agreement tables
# --------------------------------------------------------------------------------------
#: Columns never treated as statistics of patients.
_NON_STAT_COLUMNS = ("n", "item", "n_items")


def _row_keys(df: pd.DataFrame) -> list[str]:
    keys = [c for c in ("section", "service_type", "version", "item", "label", "item_label", "measure")
            if c in df.columns]
    if not keys:
        return [f"row={i}" for i in range(len(df))]
    parts = [[f"{c}={'' if pd.isna(v) else v}" for v in df[c].to_numpy(dtype=object)]
             for c in keys]
    return ["|".join(t) for t in zip(*parts)]


def _subgroups(df: pd.DataFrame) -> pd.Series | None:
    """The subgroup (service) of each row, NA outside subgroup blocks; None if no subgroups."""
    if "service_type" in df.columns:
        return df["service_type"].astype(object)
    if "section" in df.columns:
        sec = df["section"].astype(str)
        return sec.where(sec.str.startswith("by service:"))
    return None


def apply_disclosure(table: pd.DataFrame, profile, table_name: str
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply a disclosure profile to an agreement table (Table 3, summaries, by service).

    The rules of :mod:`imr_analysis.disclosure` applied to tables whose rows are
    statistics of ``n`` patients:

    1. *primary*: every statistic (all numeric columns except ``n``, ``item``,
       ``n_items``) of a row describing 1..``redact_summaries_le`` patients is redacted,
       and its ``note`` replaced; ``n`` of 1..``redact_counts_le`` is redacted; rows
       whose estimate is a count (:data:`COUNT_MEASURES`) are treated as counts;
    2. *secondary* (profiles without rounding, e.g. ``sistan_min3``): when the table
       has subgroups (``service_type``, or ``by service`` sections) and exactly one
       subgroup is redacted, the smallest other subgroup is redacted too, so the hidden
       one cannot be derived from the overall results. Rounding profiles
       (``opensafely``) have no secondary suppression: with the counts rounded, the
       overall results no longer give a hidden subgroup away exactly;
    3. *rounding*: the remaining counts are rounded as the profile says.

    Numeric columns stay numeric: a redacted statistic is NaN (``n`` is ``Int64``, NA
    when redacted) and the row says so in ``redacted`` / ``redacted_columns``. Only the
    display copy of :func:`mark_redacted` (and the formatted Table 3) prints
    ``[REDACTED]``; :func:`export_protected_table` writes both.

    Parameters
    ----------
    table : pandas.DataFrame
        A table of this module with an ``n`` column (e.g. :func:`agreement_summary`,
        :func:`table3`, :func:`agreement_by_service`, :func:`internal_consistency`).
    profile : imr_analysis.disclosure.Profile or str
        The resolved profile (or its name).
    table_name : str
        Name of the output, used in the report.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The protected table and the report (columns of
        :data:`imr_analysis.disclosure.REPORT_COLUMNS`; never the values). Under a
        profile that changes nothing the table is returned unchanged (a copy) with an
        empty report; otherwise ``n`` becomes Int64 and the companion columns
        ``redacted``, ``redacted_columns`` and ``disclosure_note`` are added.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"service_type": ["CMHC", "SerD", "EDP"], "measure": "Pearson r",
    ...                   "estimate": [0.8, 0.7, 0.9], "n": [69, 52, 5], "note": ""})
    >>> safe, report = apply_disclosure(t, "opensafely", "demo")
    >>> safe["estimate"].tolist(), safe["n"].tolist()
    ([0.8, 0.7, nan], [70, 50, <NA>])
    >>> safe["estimate"].dtype, safe[["redacted", "redacted_columns"]].values.tolist()[2]
    (dtype('float64'), [True, 'estimate;n'])
    >>> report[["row_key", "column", "action"]].values.tolist()[2:]  # doctest: +NORMALIZE_WHITESPACE
    [['service_type=EDP|measure=Pearson r', 'estimate', 'redacted'],
     ['service_type=EDP|measure=Pearson r', 'n', 'redacted']]

    Without rounding (``sistan_min3``, statistics of 1-2 patients) a lone hidden service
    takes the smallest other one with it:

    >>> t2 = t.assign(n=[69, 52, 2])
    >>> safe2, report2 = apply_disclosure(t2, "sistan_min3", "demo")
    >>> safe2["estimate"].isna().tolist(), safe2["n"].tolist()
    ([False, True, True], [69, <NA>, <NA>])
    >>> report2.loc[report2["action"] == "redacted-secondary", ["row_key", "column"]].values.tolist()
    [['service_type=SerD|measure=Pearson r', 'estimate'], ['service_type=SerD|measure=Pearson r', 'n']]
    """
    from . import disclosure as D

    prof = profile if isinstance(profile, D.Profile) else D.get_profile(str(profile))
    if "n" not in table.columns:
        raise ValueError(f"{table_name}: apply_disclosure needs an 'n' column (patients)")
    out = table.copy()
    if prof.is_noop:
        return out, D.empty_report()
    n_rows = len(out)
    n = pd.to_numeric(out["n"], errors="coerce").to_numpy(dtype=float)
    is_count_row = (out["measure"].isin(COUNT_MEASURES).to_numpy()
                    if "measure" in out.columns else np.zeros(n_rows, bool))
    stat_cols = [c for c in out.columns if c not in _NON_STAT_COLUMNS
                 and c not in D.COMPANION_COLUMNS and pd.api.types.is_numeric_dtype(out[c])]
    k_sum, k_cnt = prof.redact_summaries_le, prof.redact_counts_le
    primary = (n >= 1) & (n <= k_sum)
    primary |= is_count_row & (n >= 1) & (n <= k_cnt)
    secondary = np.zeros(n_rows, bool)
    groups = _subgroups(out)
    if prof.secondary_suppression and groups is not None:
        g = groups.to_numpy(dtype=object)
        in_group = pd.notna(groups).to_numpy()
        stat_rows = in_group & ~is_count_row
        if stat_rows.any():
            # a subgroup's statistics: hide the smallest other subgroup with a lone hidden one
            size = pd.Series(n[stat_rows]).groupby(g[stat_rows], sort=False).max()
            hidden_groups = set(pd.Series(g[stat_rows & primary]).unique())
            shown = size[(size > 0) & ~size.index.isin(hidden_groups)]
            if len(hidden_groups) == 1 and len(shown):
                victim = shown.sort_values(kind="stable").index[0]
                secondary |= stat_rows & (g == victim)
        for measure in COUNT_MEASURES:
            # a count row per subgroup: same rule among that measure's rows
            rows = in_group & is_count_row & (out["measure"] == measure).to_numpy()
            if rows.any():
                hidden = rows & (primary | secondary)
                open_rows = np.flatnonzero(rows & ~hidden & (n > 0))
                if len(set(g[hidden])) == 1 and len(open_rows):
                    secondary[open_rows[np.argsort(n[open_rows], kind="stable")[0]]] = True
    hide = primary | secondary
    keys = _row_keys(out)
    rule_sum = f"{prof.name}: statistics of 1-{k_sum} patients"
    rule_sec = f"{prof.name}: secondary suppression (single hidden subgroup)"
    report = []
    red_cols = [[] for _ in range(n_rows)]
    for col in stat_cols:
        vals = out[col].to_numpy(dtype=float, na_value=np.nan)
        for i in np.flatnonzero(hide & ~np.isnan(vals)):
            red_cols[i].append(col)
            report.append((i, table_name, keys[i], col, "summary",
                           "redacted" if primary[i] else "redacted-secondary",
                           rule_sum if primary[i] else rule_sec))
        out[col] = np.where(hide, np.nan, vals)
    n_hide = hide | ((n >= 1) & (n <= k_cnt))
    new_n = n.copy()
    new_n[n_hide] = np.nan
    if prof.rounding_method:
        keep = ~n_hide & ~np.isnan(n)
        new_n[keep] = D.round_counts(n[keep], prof.rounding_base, prof.rounding_method)
    for i in range(n_rows):
        if np.isnan(n[i]):
            continue
        if n_hide[i]:
            red_cols[i].append("n")
            sec = secondary[i] and not primary[i] and not (1 <= n[i] <= k_cnt)
            report.append((i, table_name, keys[i], "n", "count",
                           "redacted-secondary" if sec else "redacted",
                           rule_sec if sec else f"{prof.name}: counts of 1-{k_cnt} patients"))
        elif prof.rounding_method:
            report.append((i, table_name, keys[i], "n", "count", "rounded",
                           f"{prof.name}: {prof.rounding_method} {prof.rounding_base}"))
    if "estimate" in out.columns and is_count_row.any():
        # a count row's estimate is the count itself: publish it exactly as its n
        est = out["estimate"].to_numpy(dtype=float)
        for i in np.flatnonzero(is_count_row & ~np.isnan(est) & (est != new_n)):
            if "estimate" not in red_cols[i] and np.isnan(new_n[i]):
                red_cols[i].append("estimate")
            report.append((i, table_name, keys[i], "estimate", "count",
                           "rounded" if not np.isnan(new_n[i]) else "redacted",
                           f"{prof.name}: count row follows its n"))
        out["estimate"] = np.where(is_count_row, new_n, est)
    out["n"] = pd.array(np.where(np.isnan(new_n), None, new_n), dtype="Int64") \
        if n_rows else out["n"].astype("Int64")
    if "note" in out.columns:
        out["note"] = np.where(hide, D.REDACTED_MARKER, out["note"].astype(object))
    out["redacted"] = [bool(c) for c in red_cols]
    out["redacted_columns"] = [";".join(c) for c in red_cols]
    out["disclosure_note"] = np.where(
        secondary, rule_sec, np.where(hide, rule_sum, np.where(n_hide, "n redacted", "")))
    if report:
        report.sort(key=lambda r: r[0])          # stable: row order, then column order
        rep = pd.DataFrame([r[1:] for r in report], columns=D.REPORT_COLUMNS)
    else:
        rep = D.empty_report()
    return out, rep


def export_protected_table(safe: pd.DataFrame, out_dir, stem: str, formats=("csv", "md", "tex", "html"),
                           caption: str | None = None) -> list:
    """Write a table from :func:`apply_disclosure`: numbers in the CSV, markers for people.

    The CSV is the machine-readable table: numeric columns stay numeric (a redacted
    value is an empty cell) and ``redacted``, ``redacted_columns`` and
    ``disclosure_note`` say which cells were redacted, as in the long tables of
    :func:`imr_analysis.disclosure.apply_to_long`. Markdown, LaTeX and HTML are for
    reading: they are written from :func:`mark_redacted`, with ``[REDACTED]`` in the
    redacted cells.

    Parameters
    ----------
    safe : pandas.DataFrame
        First value returned by :func:`apply_disclosure` (a table that went through the
        ``none`` profile, without companion columns, is written as it is).
    out_dir, stem, formats, caption
        As in :func:`imr_analysis.export.export_table`.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``formats``.

    Examples
    --------
    >>> import pandas as pd, tempfile
    >>> t = pd.DataFrame({"measure": ["Pearson r", "Pearson r"], "estimate": [0.8, 0.9],
    ...                   "n": [69, 5], "note": ""})
    >>> safe, _ = apply_disclosure(t, "opensafely", "demo")
    >>> paths = export_protected_table(safe, tempfile.mkdtemp(), "demo", formats=["csv", "md"])
    >>> back = pd.read_csv(paths[0])
    >>> back["estimate"].tolist(), back["redacted"].tolist()
    ([0.8, nan], [False, True])
    >>> "[REDACTED]" in paths[1].read_text()
    True
    """
    from .export import export_table

    formats = [str(f).lower().lstrip(".") for f in formats]
    written = {}
    if "csv" in formats:
        written["csv"] = export_table(safe, out_dir, stem, formats=["csv"])[0]
    display = [f for f in formats if f != "csv"]
    if display:
        for f, path in zip(display, export_table(mark_redacted(safe), out_dir, stem, formats=display,
                                                 caption=caption)):
            written[f] = path
    return [written[f] for f in formats]


def mark_redacted(safe: pd.DataFrame, marker: str | None = None) -> pd.DataFrame:
    """Display copy of a table from :func:`apply_disclosure` with a marker in redacted cells.

    Parameters
    ----------
    safe : pandas.DataFrame
        First value returned by :func:`apply_disclosure`. A table without the companion
        columns (profile ``none``) is returned unchanged (a copy).
    marker : str, optional
        Text of redacted cells (default ``imr_analysis.disclosure.REDACTED_MARKER``).

    Returns
    -------
    pandas.DataFrame
        Object-dtype copy without ``redacted`` and ``redacted_columns`` (the
        ``disclosure_note`` is kept).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"measure": ["Pearson r", "Pearson r"], "estimate": [0.8, 0.9],
    ...                   "n": [69, 5], "note": ""})
    >>> mark_redacted(apply_disclosure(t, "opensafely", "demo")[0])["estimate"].tolist()
    [0.8, '[REDACTED]']
    """
    from .disclosure import REDACTED_MARKER

    if "redacted_columns" not in safe.columns:
        return safe.copy()
    marker = REDACTED_MARKER if marker is None else marker
    out = safe.drop(columns=["redacted", "redacted_columns"]).astype(object)
    red = safe["redacted_columns"].fillna("").astype(str).str.split(";")
    for col in out.columns:
        hit = red.map(lambda cols, c=col: c in cols).to_numpy(dtype=bool)
        if hit.any():
            out[col] = np.where(hit, marker, out[col].to_numpy(dtype=object))
    return out
