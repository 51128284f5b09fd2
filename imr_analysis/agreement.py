"""Agreement between user- and provider-rated IMR Scale (IMRS) scores (notebook 05, Table 3).

The paper's "r = 0.96, n = 15" correlates the 15 user item means with the 15 provider item means
(:func:`item_profile_correlation`): whether the items users rate high are those providers rate
high, not whether a provider agrees with their own patient, which is measured patient by patient
(:func:`patient_level_agreement`), item by item (:func:`table3`) and by service. Differences are
user - provider, SDs have ``ddof=1``, what cannot be estimated is NaN with the reason in ``note``.
Lin's CCC, which scipy, statsmodels and pingouin lack, follows Lin (1989, 2000)."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats
from scipy.stats.contingency import crosstab
from statsmodels.stats.inter_rater import cohens_kappa

from . import scores
from .bland_altman import (BIAS, LOA_INSIDE, LOA_LOWER, LOA_UPPER, PROPORTIONAL, SCALES, BlandAltmanData,
                           limits_of_agreement)
from .constants import IMRS_ITEMS, IMRS_MAX, IMRS_MIN, N_IMRS_ITEMS, SERVICE_TYPES
from .stats import BOOTSTRAP_MAX_N
from .table1 import format_p

CATEGORIES = tuple(range(IMRS_MIN, IMRS_MAX + 1))
RESULT_COLUMNS = ["measure", "estimate", "ci_low", "ci_high", "n", "p", "note"]
SUMMARY_COLUMNS = ["section"] + RESULT_COLUMNS
EXCLUDED, USER_MEAN, PROVIDER_MEAN = "patients excluded (no pair of scores)", "user mean", "provider mean"
PEARSON, SPEARMAN, CCC = "Pearson r", "Spearman rho", "Lin's concordance correlation coefficient"
PEARSON_BOOTSTRAP = "Pearson r, patient-bootstrap CI"
ICC_A1 = "ICC(A,1) absolute agreement, two-way random, single rater"
ICC_C1 = "ICC(C,1) consistency, two-way, single rater"
PAIRED_T = "paired t-test: mean difference (user - provider)"
WILCOXON = "Wilcoxon signed-rank: median difference (user - provider)"
#: Rows of :func:`patient_level_agreement`, in order.
PATIENT_MEASURES = [EXCLUDED, USER_MEAN, PROVIDER_MEAN, PEARSON, SPEARMAN, ICC_A1, ICC_C1, CCC,
                    BIAS, LOA_LOWER, LOA_UPPER, LOA_INSIDE, PROPORTIONAL, PAIRED_T, WILCOXON]
#: Rows whose estimate is a count of patients (disclosure control treats it as one).
COUNT_MEASURES = [EXCLUDED]
#: Measures whose value depends on the metric (total or item mean).
SCALE_DEPENDENT = [USER_MEAN, PROVIDER_MEAN, BIAS, LOA_LOWER, LOA_UPPER, PAIRED_T, WILCOXON]
ITEM_PROFILE_SECTION = "item profile (paper's analysis: ecological, n = items)"
#: Kappa weightings and their measure names; the first is Table 3's primary.
KAPPAS = {"quadratic": "quadratic-weighted kappa", "linear": "linear-weighted kappa", "unweighted": "unweighted kappa"}
#: ``scipy.stats.wilcoxon``'s handling of zero differences; the first is the primary.
ZERO_METHODS = {"wilcox": "zero differences dropped", "pratt": "zero differences ranked, then dropped (Pratt)"}
#: pingouin's ICC types (McGraw & Wong 1996) -> Shrout & Fleiss (1979) names.
ICC_SHROUT_FLEISS = {"ICC(1,1)": "ICC1", "ICC(A,1)": "ICC2", "ICC(C,1)": "ICC3",
                     "ICC(1,k)": "ICC1k", "ICC(A,k)": "ICC2k", "ICC(C,k)": "ICC3k"}
MIN_N = 3
#: The small-sample caveat of :func:`agreement_by_service` below each n.
CAVEATS = {MIN_N: "most measures not estimable",
           10: "very small; estimates unstable and intervals unreliable, read descriptively",
           30: "small; wide intervals, asymptotic CIs approximate"}


@contextmanager
def _pingouin_quietly():
    """pingouin unrounded and without the Pandas4Warning it raises under pandas 3 (only that)."""
    saved = dict(pg.options)
    pg.options.update({key: None for key in pg.options if key.startswith("round")})
    try:
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.filterwarnings("ignore", category=pd.errors.Pandas4Warning)
            yield
    finally:
        pg.options.update(saved)


def _check(alpha=0.05, on="total", max_missing=0) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")
    if on not in SCALES:
        raise ValueError(f"on must be one of {tuple(SCALES)}, got {on!r}")
    if isinstance(max_missing, bool) or not isinstance(max_missing, (int, np.integer)) \
            or not 0 <= max_missing < N_IMRS_ITEMS:
        raise ValueError(f"max_missing must be an integer from 0 to {N_IMRS_ITEMS - 1}, got {max_missing!r}")


def _ratings(cohort: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each version's 15 items as floats (NaN = missing); anything but ratings 1-5 is refused."""
    if not isinstance(cohort, pd.DataFrame):
        raise TypeError(f"cohort must be a pandas DataFrame, got {type(cohort).__name__}")
    ratings = {}
    for version, cols in scores.VERSIONS.items():
        if missing := [c for c in cols if c not in cohort.columns]:
            raise ValueError(f"cohort lacks the {version} IMRS column(s) {missing}")
        try:
            values = cohort[cols].astype("Float64").to_numpy("float64", na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{version} IMRS items must be numeric (1-5 or missing): {exc}") from None
        bad = ((values < IMRS_MIN) | (values > IMRS_MAX) | (values != np.round(values))) & ~np.isnan(values)
        if bad.any():
            j = bad.any(axis=0).argmax()
            raise ValueError(f"{cols[j]}: {bad[:, j].sum()} value(s) are not integers from {IMRS_MIN} to {IMRS_MAX} "
                             f"(first at row position {bad[:, j].argmax()}); "
                             f"{bad.sum()} invalid {version} IMRS value(s) in total")
        ratings[version] = pd.DataFrame(values, index=cohort.index, columns=cols)
    return ratings


def _item_pairs(cohort: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """User and provider items, each item kept where both versions rated it."""
    user, provider = _ratings(cohort).values()
    both = user.notna().to_numpy() & provider.notna().to_numpy()
    return user.where(both), provider.where(both)


def patient_scores(cohort: pd.DataFrame, max_missing: int = 0) -> pd.DataFrame:
    """Each patient's user and provider IMRS scores (:func:`imr_analysis.scores.imrs_scores`).

    ``max_missing`` items may be missing per version (the total is then prorated). Returns
    ``patient_id``, ``service_type`` (if present), ``{user,provider}_{n_items,total,mean}``.
    """
    ratings = _ratings(cohort)
    _check(max_missing=max_missing)
    ids = cohort[[c for c in ("patient_id", "service_type") if c in cohort.columns]]
    return pd.concat([ids] + [scores.imrs_scores(items, max_missing=max_missing).add_prefix(f"{version}_")
                              for version, items in ratings.items()], axis=1)


def _pairs(scored: pd.DataFrame, on: str) -> tuple[np.ndarray, np.ndarray]:
    both = scored[[f"user_{on}", f"provider_{on}"]].dropna()
    return both.iloc[:, 0].to_numpy(dtype=float), both.iloc[:, 1].to_numpy(dtype=float)


def _row(measure, estimate=np.nan, ci=(np.nan, np.nan), n=0, p=np.nan, note="") -> dict:
    return {"measure": measure, "estimate": float(estimate), "ci_low": float(ci[0]),
            "ci_high": float(ci[1]), "n": int(n), "p": float(p), "note": note}


def _mean(x) -> float:
    return x.mean() if x.size else np.nan


# --- one function per statistic ----------------------------------------------------------
def _wilcoxon(d: np.ndarray, zero_method: str = "wilcox") -> tuple[float, float, str]:
    """(W, p, note) of ``scipy.stats.wilcoxon`` on the differences, ranked as exact multiples
    (:func:`~imr_analysis.scores.exact`): an item mean's ties are the total's."""
    if d.size == 0:
        return np.nan, np.nan, "no pairs"
    if not d.any():
        return np.nan, np.nan, "Wilcoxon not estimable: all differences are zero"
    res = stats.wilcoxon(scores.exact(d), zero_method=zero_method, method="auto")
    return float(res.statistic), float(res.pvalue), ZERO_METHODS[zero_method]


def weighted_kappa(rater_a, rater_b, categories=CATEGORIES, alpha: float = 0.05,
                   weights: str = "quadratic") -> pd.Series:
    """Cohen's kappa, ``weights`` one of :data:`KAPPAS`, and its asymptotic CI (statsmodels ``cohens_kappa``).

    The table spans every category, used or not (as scikit-learn's ``cohen_kappa_score(...,
    weights=weights, labels=categories)``, None there for unweighted); pairs with a missing rating are dropped.
    Returns ``kappa, ci_low, ci_high, se, p`` (test of kappa = 0), ``n``, ``note``.

    Examples
    --------
    >>> round(weighted_kappa([1, 2, 3, 4, 5, 3], [1, 2, 3, 5, 4, 3])["kappa"], 4)  # near misses cost little
    0.9
    """
    _check(alpha)
    if weights not in KAPPAS:
        raise ValueError(f"weights must be one of {tuple(KAPPAS)}, got {weights!r}")
    cats = np.asarray(categories, dtype=float)
    a, b = np.asarray(rater_a, dtype=float).ravel(), np.asarray(rater_b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"rater_a and rater_b differ in length ({a.size} vs {b.size})")
    a, b = a[~(np.isnan(a) | np.isnan(b))], b[~(np.isnan(a) | np.isnan(b))]
    if not (np.isin(a, cats).all() and np.isin(b, cats).all()):
        raise ValueError(f"ratings outside the categories {tuple(categories)}")
    res = pd.Series(dict.fromkeys(["kappa", "ci_low", "ci_high", "se", "p"], np.nan) | {"n": a.size, "note": ""})
    if a.size < 2 or np.ptp(np.r_[a, b]) == 0:
        res["note"] = (f"not estimable: {a.size} pair(s)" if a.size < 2
                       else "not estimable: both raters used a single, identical category")
        return res
    with np.errstate(invalid="ignore", divide="ignore"):
        kr = cohens_kappa(crosstab(a, b, levels=(cats, cats)).count, **(
            {} if weights == "unweighted" else {"weights": cats, "wt": weights}))
        res["kappa"], res["se"] = float(kr.kappa), float(kr.std_kappa)
        res["p"] = float(kr.pvalue_two_sided) if np.isfinite(kr.pvalue_two_sided) else np.nan
        if np.isfinite(res["se"]) and res["se"] > 0:
            res["ci_low"], res["ci_high"] = map(float, kr.distribution_kappa.interval(1 - alpha))
        else:
            res["note"] = "confidence interval not estimable (zero or undefined variance)"
    return res


def correlations(x, y, alpha: float = 0.05, unit: str = "pairs") -> pd.DataFrame:
    """Pearson r and Spearman rho with p-values and Fisher-z confidence intervals.

    ``scipy.stats.pearsonr`` and ``spearmanr`` (t-approximation p); the Spearman CI is
    ``pingouin.compute_esci`` (SE ``1/sqrt(n - 3)``). One row each (:data:`RESULT_COLUMNS`);
    NaN below 3 pairs or for a constant variable, no CI below 4; ``unit`` names a pair.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = x.size
    if n < MIN_N or np.ptp(x) == 0 or np.ptp(y) == 0:
        note = f"not estimable: {n} {unit}, at least {MIN_N} needed" if n < MIN_N else \
            "not estimable: constant ratings"
        return pd.DataFrame([_row(m, n=n, note=note) for m in (PEARSON, SPEARMAN)], columns=RESULT_COLUMNS)
    no_ci = (np.nan, np.nan), f"CI needs at least 4 {unit}"
    pr = stats.pearsonr(x, y)
    ci, note = no_ci
    if n >= 4:
        c = pr.confidence_interval(confidence_level=1 - alpha)
        ci, note = (c.low, c.high), "Fisher z CI"
    rows = [_row(PEARSON, pr.statistic, ci, n, pr.pvalue, note)]
    sr = stats.spearmanr(x, y)
    rho = float(sr.statistic)
    ci, note = no_ci
    if n >= 4 and abs(rho) < 1:
        ci = tuple(pg.compute_esci(stat=rho, nx=n, ny=n, eftype="r", confidence=1 - alpha, decimals=15))
        note = "Fisher z CI (SE 1/sqrt(n - 3)); p from t approximation"
    elif abs(rho) == 1:
        ci, note = (rho, rho), "perfect rank correlation"
    rows.append(_row(SPEARMAN, rho, ci, n, sr.pvalue, note))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def intraclass_correlations(ratings, alpha: float = 0.05) -> pd.DataFrame:
    """The six ICCs of a complete targets x raters table (``pingouin.intraclass_corr``), unrounded.

    ICC(A,1) = Shrout & Fleiss ICC2 (two-way random, absolute agreement); ICC(C,1) = ICC3
    (consistency). Returns ``type, shrout_fleiss, icc, ci_low, ci_high, F, df1, df2, p``;
    pingouin gives 95% CIs only (NaN for another ``alpha``).

    Examples
    --------
    >>> sf = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]  # S&F Table 2
    >>> intraclass_correlations(sf).set_index("shrout_fleiss")["icc"].round(2)[:3].tolist()
    [0.17, 0.29, 0.71]
    """
    _check(alpha)
    r = np.asarray(ratings, dtype=float)
    if r.ndim != 2 or r.shape[0] < 2 or r.shape[1] < 2:
        raise ValueError(f"ratings must be a 2-D table with at least 2 targets and 2 raters, got shape {r.shape}")
    if np.isnan(r).any():
        raise ValueError("ratings must not contain missing values (drop incomplete targets)")
    long = pd.DataFrame(r).stack().rename_axis(["target", "rater"]).rename("rating").reset_index()
    with _pingouin_quietly():
        res = pg.intraclass_corr(long, targets="target", raters="rater", ratings="rating")
    ci = np.vstack(res["CI95"].to_numpy()).astype(float) if np.isclose(alpha, 0.05) else np.full((len(res), 2), np.nan)
    out = pd.DataFrame({"type": res["Type"], "shrout_fleiss": res["Type"].map(ICC_SHROUT_FLEISS), "icc": res["ICC"],
                        "ci_low": ci[:, 0], "ci_high": ci[:, 1], "F": res["F"], "df1": res["df1"], "df2": res["df2"],
                        "p": res["pval"]}).astype({c: float for c in ("icc", "F", "df1", "df2", "p")})
    cols = ["icc", "ci_low", "ci_high", "F", "p"]
    out[cols] = out[cols].where(np.isfinite(out[cols]))
    return out


def concordance_correlation(x, y, alpha: float = 0.05) -> pd.Series:
    """Lin's concordance correlation coefficient with its Fisher-z confidence interval.

    ``rho_c = 2 s_xy / (s_x^2 + s_y^2 + (xbar - ybar)^2)`` (moments over n); CI ``tanh(atanh(rho_c) -/+ q se_z)``,
    Lin's (2000) variance, ``u = (xbar - ybar) / sqrt(s_x s_y)``::

        var_z = [ (1 - r^2) rho_c^2 / ((1 - rho_c^2) r^2) + 2 rho_c^3 (1 - rho_c) u^2 / (r (1 - rho_c^2)^2)
                  - rho_c^4 u^4 / (2 r^2 (1 - rho_c^2)^2) ] / (n - 2)

    Returns ``ccc, ci_low, ci_high, se_z, n, pearson_r, bias_correction`` (C_b: rho_c = r C_b), ``location_shift``
    (u), ``scale_shift`` (s_x / s_y), ``note``; incomplete pairs dropped.

    Examples
    --------
    >>> res = concordance_correlation([1, 2, 3, 4, 5], [2, 3, 4, 5, 6])
    >>> round(float(res["ccc"]), 4), float(res["pearson_r"])  # shifted by one: correlated, not concordant
    (0.8, 1.0)
    """
    _check(alpha)
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length ({x.size} vs {y.size})")
    x, y = x[~(np.isnan(x) | np.isnan(y))], y[~(np.isnan(x) | np.isnan(y))]
    n = x.size
    res = pd.Series(dict.fromkeys(["ccc", "ci_low", "ci_high", "se_z"], np.nan) | {"n": n} | dict.fromkeys(
        ["pearson_r", "bias_correction", "location_shift", "scale_shift"], np.nan) | {"note": ""}, dtype=object)
    if n < 2:
        res["note"] = f"not estimable: {n} pair(s)"
        return res
    mx, my, sx2, sy2 = x.mean(), y.mean(), x.var(), y.var()
    sxy = np.mean((x - mx) * (y - my))
    if sx2 + sy2 + (mx - my) ** 2 == 0:
        res["note"] = "not estimable: all ratings identical"
        return res
    ccc = 2 * sxy / (sx2 + sy2 + (mx - my) ** 2)
    res["ccc"] = float(ccc)
    if sx2 == 0 or sy2 == 0:
        res["note"] = "confidence interval not estimable: constant ratings"
        return res
    r, u = sxy / np.sqrt(sx2 * sy2), (mx - my) / (sx2 * sy2) ** 0.25
    res["pearson_r"], res["location_shift"], res["scale_shift"] = float(r), float(u), float(np.sqrt(sx2 / sy2))
    res["bias_correction"] = float(ccc / r) if r != 0 else np.nan
    c2 = ccc**2
    var_z = np.nan if n < 3 or r == 0 or abs(ccc) >= 1 else (
        (1 - r**2) * c2 / ((1 - c2) * r**2) + 2 * ccc**3 * (1 - ccc) * u**2 / (r * (1 - c2) ** 2)
        - ccc**4 * u**4 / (2 * r**2 * (1 - c2) ** 2)) / (n - 2)
    if not var_z > 0:
        res["note"] = "confidence interval not estimable: " + (
            "at least 3 pairs needed" if n < 3 else "Pearson r = 0" if r == 0
            else "perfect concordance" if abs(ccc) >= 1 else "non-positive variance estimate")
        return res
    se, q, z = np.sqrt(var_z), stats.norm.ppf(1 - alpha / 2), np.arctanh(ccc)
    res["se_z"], res["ci_low"], res["ci_high"] = float(se), float(np.tanh(z - q * se)), float(np.tanh(z + q * se))
    res["note"] = "Fisher z CI, variance of Lin (1989, 2000)"
    return res


# --- Table 3: item by item ---------------------------------------------------------------
def _paired_summary(u: np.ndarray, p: np.ndarray) -> tuple[dict, str]:
    """Table 3's columns for paired ratings, and the Wilcoxon note when it gives no p."""
    (w, pw, note), (wp, pp, _) = (_wilcoxon(u - p, zero_method) for zero_method in ZERO_METHODS)
    sd_u, sd_p = (float(np.std(x, ddof=1)) if x.size >= 2 else np.nan for x in (u, p))
    return ({"n": u.size, "user_mean": _mean(u), "user_sd": sd_u, "provider_mean": _mean(p), "provider_sd": sd_p,
             "mean_difference": _mean(u - p), "wilcoxon_W": w, "p_wilcoxon": pw, "wilcoxon_W_pratt": wp,
             "p_pratt": pp}, note if np.isnan(pw) else "")


def table3(cohort: pd.DataFrame, max_missing: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Table 3: IMRS at post-intervention, users vs providers, item by item.

    Per item (its pairs): ``n``, mean and SD of each version, mean difference, Wilcoxon signed-rank test
    (``scipy.stats.wilcoxon``, Holm-adjusted over the 15 items, ``pingouin.multicomp``), zeros dropped (``p_wilcoxon,
    p_holm``) or Pratt's (``p_pratt, p_holm_pratt``), :func:`weighted_kappa` per :data:`KAPPAS` (``kappa_<weights>``,
    ``_ci_low``, ``_ci_high``, ``_p``). Then the patient scores (item mean, total; ``max_missing`` as in
    :func:`patient_scores`): unadjusted p, no kappa, ``item`` NA.

    Examples
    --------
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS as U, IMRS_PROVIDER_COLUMNS as P
    >>> cohort = pd.DataFrame([[4] * 15 + [3] * 15, [3] * 30, [5] * 15 + [4] * 15], columns=U + P)
    >>> table3(cohort).iloc[-2:][["label", "user_mean", "provider_mean"]].round(2).values.tolist()
    [['Item mean (1-5)', 4.0, 3.33], ['Total (15-75)', 60.0, 50.0]]
    """
    _check(alpha)
    scored = patient_scores(cohort, max_missing)
    user, provider = _item_pairs(cohort)
    rows = []
    for (item, label), (_, u), (_, p) in zip(IMRS_ITEMS.items(), user.items(), provider.items()):
        u, p = u.dropna().to_numpy(), p.dropna().to_numpy()
        summary, wnote = _paired_summary(u, p)
        kappas = {w: weighted_kappa(u, p, alpha=alpha, weights=w) for w in KAPPAS}
        rows.append({"item": item, "label": label, **summary, "p_holm": np.nan, "p_holm_pratt": np.nan,
                     **{f"kappa_{w}{s}": k[c] for w, k in kappas.items() for s, c in KAPPA_COLUMNS.items()},
                     "note": "; ".join(x for x in (wnote, kappas["quadratic"]["note"]) if x)})
    for raw, holm in (("p_wilcoxon", "p_holm"), ("p_pratt", "p_holm_pratt")):
        for row, p_holm in zip(rows, pg.multicomp([r[raw] for r in rows], method="holm")[1]):
            row[holm] = p_holm    # Holm over the items with a p
    for on, label in (("mean", "Item mean (1-5)"), ("total", "Total (15-75)")):
        summary, wnote = _paired_summary(*_pairs(scored, on))
        rows.append({"item": pd.NA, "label": label, **summary,
                     "note": f"patient scores, max_missing = {max_missing}; Wilcoxon p unadjusted"
                     + (f"; {wnote}" if wnote else "")})
    return pd.DataFrame(rows).astype({"item": "Int64", "n": "int64"})


def sensitivity(t3: pd.DataFrame, alpha: float = 0.05) -> pd.Series:
    """For each row of :func:`table3`, the choices that change its conclusion at ``alpha``.

    Wilcoxon's zero handling (:data:`ZERO_METHODS`), unadjusted and after Holm; the kappa weights
    (:data:`KAPPAS`; conclusion: p < ``alpha`` in the test of kappa = 0). Unknown p-values abstain.
    """
    choices = {"Wilcoxon zeros (unadjusted p)": ["p_wilcoxon", "p_pratt"],
               "Wilcoxon zeros (Holm p)": ["p_holm", "p_holm_pratt"], "kappa weights": [f"kappa_{w}_p" for w in KAPPAS]}

    def differ(cols):
        p = t3.reindex(columns=cols).astype(float)
        return p.lt(alpha).where(p.notna()).nunique(axis=1) > 1

    flags = pd.DataFrame({name: differ(cols) for name, cols in choices.items()})
    return flags.apply(lambda row: "; ".join(row.index[row]), axis=1).astype(str)


def format_table3(t3: pd.DataFrame, digits: int = 2, alpha: float = 0.05, marker="[REDACTED]") -> pd.DataFrame:
    """Table 3 as published: "mean (SD)" text, formatted p and kappa.

    ``t3`` is :func:`table3`, possibly after disclosure control (its rows listing
    ``redacted_columns`` print ``marker``); the last column is :func:`sensitivity` at ``alpha``.
    """
    def num(x, *paren):
        """``x``, then ``paren`` in parentheses if all are known: "mean (SD)", "kappa (low to high)"."""
        text = "" if pd.isna(x) else f"{x:.{digits}f}"
        return text if not paren or pd.isna([x, *paren]).any() else f"{text} ({' to '.join(map(num, paren))})"

    def p_text(pw, ph):
        return format_p(ph) if pd.notna(ph) else f"{format_p(pw)} (unadjusted)" if pd.notna(pw) else ""

    out = pd.DataFrame({
        "Item": [lab if pd.isna(i) else f"{int(i)}. {lab}" for i, lab in zip(t3["item"], t3["label"])],
        "n": ["" if pd.isna(v) else str(int(v)) for v in t3["n"]],
        "User, mean (SD)": list(map(num, t3["user_mean"], t3["user_sd"])),
        "Provider, mean (SD)": list(map(num, t3["provider_mean"], t3["provider_sd"])),
        "Difference (user - provider)": list(map(num, t3["mean_difference"])),
        "Wilcoxon p (Holm)": list(map(p_text, t3["p_wilcoxon"], t3["p_holm"])),
        "Wilcoxon-Pratt p (Holm)": list(map(p_text, t3["p_pratt"], t3["p_holm_pratt"])),
        f"Quadratic-weighted kappa, primary ({round(100 * (1 - alpha))}% CI)":
            list(map(num, t3["kappa_quadratic"], t3["kappa_quadratic_ci_low"], t3["kappa_quadratic_ci_high"])),
        "Linear-weighted kappa": list(map(num, t3["kappa_linear"])),
        "Unweighted kappa": list(map(num, t3["kappa_unweighted"])),
        f"Conclusion at alpha = {alpha:g} changes with": sensitivity(t3, alpha).to_numpy()})
    if "redacted_columns" in t3.columns:
        redacted = t3["redacted_columns"].fillna("").astype(str).ne("").to_numpy()
        out.loc[redacted & out["n"].eq("").to_numpy(), "n"] = marker
        out.loc[redacted, out.columns[2:]] = marker
    return out


T3_USER, T3_PROVIDER, T3_DIFFERENCE = "user", "provider", "difference (user - provider)"
T3_WILCOXON, T3_PRATT = "Wilcoxon signed-rank test", "Wilcoxon signed-rank test, Pratt"
T3_KAPPA = KAPPAS["quadratic"]
#: :func:`weighted_kappa`'s results in Table 3's ``kappa_<weights><suffix>`` columns.
KAPPA_COLUMNS = {"": "kappa", "_ci_low": "ci_low", "_ci_high": "ci_high", "_p": "p"}
#: Measures of :func:`table3_long`, in their order within an item, and the columns they fill.
TABLE3_BLOCKS = {T3_USER: {"mean": "user_mean", "sd": "user_sd"},
                 T3_PROVIDER: {"mean": "provider_mean", "sd": "provider_sd"},
                 T3_DIFFERENCE: {"mean": "mean_difference"},
                 T3_WILCOXON: {"statistic": "wilcoxon_W", "p_value": "p_wilcoxon", "p_holm": "p_holm"},
                 T3_PRATT: {"statistic": "wilcoxon_W_pratt", "p_value": "p_pratt", "p_holm": "p_holm_pratt"},
                 **{name: {"kappa": f"kappa_{w}", "ci_low": f"kappa_{w}_ci_low", "ci_high": f"kappa_{w}_ci_high",
                           "p_value": f"kappa_{w}_p"} for w, name in KAPPAS.items()}}
TABLE3_MEASURES = list(TABLE3_BLOCKS)
TABLE3_LONG_COLUMNS = ["item", "item_label", "measure", "n", "mean", "sd", "statistic", "p_value",
                       "p_holm", "kappa", "ci_low", "ci_high", "note"]


def table3_long(t3: pd.DataFrame) -> pd.DataFrame:
    """Table 3's numbers as a tidy long table: one row per item (or score) and measure.

    Each measure of :data:`TABLE3_BLOCKS` fills its own columns (kappa: items only), the
    others are NaN. ``t3`` is :func:`table3` before disclosure control (ValueError
    otherwise): disclosure control protects the long table itself.
    """
    if done := [c for c in ("redacted", "redacted_columns", "disclosure_note") if c in t3.columns]:
        raise ValueError(f"table3_long needs the table of table3(), not a protected one (it has {done}); "
                         "protect the long table instead")
    base = pd.DataFrame({"item": t3["item"].astype("Int64").to_numpy(), "item_label": t3["label"].astype(str).to_numpy(),
                         "n": t3["n"].to_numpy(dtype=np.int64), "note": t3["note"].fillna("").astype(str).to_numpy()})
    out = pd.concat([base.assign(measure=m, **{k: t3[v].to_numpy(dtype=float) for k, v in cols.items()})
                     for m, cols in TABLE3_BLOCKS.items()], keys=range(len(TABLE3_BLOCKS)), names=["block", "row"])
    out = out.reset_index().sort_values(["row", "block"])
    out = out[~out["measure"].isin(KAPPAS.values()) | out["item"].notna()].reindex(columns=TABLE3_LONG_COLUMNS)
    numbers = dict.fromkeys(TABLE3_LONG_COLUMNS[4:-1], "float64")
    return out.astype({**numbers, "item": "Int64", "n": "int64"}).reset_index(drop=True)


# --- the paper's analysis: item-profile correlation --------------------------------------
def item_profile_correlation(cohort: pd.DataFrame, alpha: float = 0.05, n_resamples: int = 9999,
                             seed: int = 2023) -> pd.DataFrame:
    """The paper's r: the 15 user item means against the 15 provider item means.

    Each item is a point (user and provider mean over the pairs rating it, as in :func:`table3`): :func:`correlations`
    with ``n`` = items, under ``analysis``. Their CIs treat the 15 items as a sample, but they are the whole scale,
    rated on the same patients. The last row asks how r would move with other patients: a percentile bootstrap CI
    (``scipy.stats.bootstrap``, ``n_resamples`` patient resamples, ``seed``) recomputing both item means (``n`` =
    patients). Resampling adds noise to the item means, so most resampled r lie below r (``note``: their median) and
    the interval leans low; BCa's bias correction would be so large its upper limit rests on the extreme resamples.

    Examples
    --------
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS as U, IMRS_PROVIDER_COLUMNS as P
    >>> u = [1, 2, 3, 4, 5] * 3
    >>> cohort = pd.DataFrame([u + u, [min(x + 1, 5) for x in u] + u], columns=U + P)
    >>> item_profile_correlation(cohort)[["measure", "estimate", "n"]].round(3).values.tolist()[:2]
    [['Pearson r', 0.994, 15], ['Spearman rho', 1.0, 15]]
    """
    _check(alpha)
    user, provider = _item_pairs(cohort)
    means = pd.DataFrame({"user": user.mean().to_numpy(), "provider": provider.mean().to_numpy()}).dropna()
    out = correlations(means["user"], means["provider"], alpha=alpha, unit="items")
    out["note"] += ("; n = items: an ecological correlation between item profiles (item means over "
                    "the patients), not patient-level agreement")
    rated = user.notna().any(axis=1).to_numpy()
    u, p, r, n = user.to_numpy()[rated], provider.to_numpy()[rated], out["estimate"].iloc[0], int(rated.sum())
    boot = _row(PEARSON_BOOTSTRAP, r, n=n, note=f"not estimable: needs r and at least {MIN_N} patients")
    if n > BOOTSTRAP_MAX_N:
        boot["note"] = f"bootstrap CI not computed above {BOOTSTRAP_MAX_N} patients (see imr_analysis.stats)"
    elif np.isfinite(r) and n >= MIN_N:
        def profile_r(rows, axis=-1):  # rows: resampled patients, (resamples, n): item means, then r per resample
            return stats.pearsonr(np.nanmean(u[rows], axis=-2), np.nanmean(p[rows], axis=-2), axis=-1).statistic

        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.bootstrap((np.arange(n),), profile_r, n_resamples=n_resamples, batch=max(1, 10**7 // u.size),
                                  confidence_level=1 - alpha, method="percentile", rng=np.random.default_rng(seed))
        boot = _row(PEARSON_BOOTSTRAP, r, res.confidence_interval, n, note=(
            f"percentile CI of r over {n_resamples} resamples of the patients (seed {seed}; their median "
            f"{np.median(res.bootstrap_distribution):.3f}, lower than r: resampling adds noise to the item means): "
            "how much r moves with another sample of patients; n = patients"))
    out = pd.concat([out, pd.DataFrame([boot])], ignore_index=True)
    out.insert(0, "analysis", ITEM_PROFILE_SECTION)
    return out


def describe_item_profile(result: pd.DataFrame, digits: int = 2) -> str:
    """What :func:`item_profile_correlation` measures, in plain words."""
    r = result.set_index("measure").loc[PEARSON]
    n = int(r["n"])
    if pd.isna(r["estimate"]):
        stat = f"cannot be computed here (n = {n} items)"
    else:
        ci = "" if pd.isna(r["ci_low"]) else f"95% CI {r['ci_low']:.{digits}f} to {r['ci_high']:.{digits}f}, "
        p = "p < 0.001" if r["p"] < 0.001 else f"p = {r['p']:.3f}"
        stat = f"correlate with Pearson r = {r['estimate']:.{digits}f} ({ci}n = {n} items, {p})"
    b = result.set_index("measure").reindex([PEARSON_BOOTSTRAP]).iloc[0]
    if pd.notna(b["ci_low"]):
        stat += (f". That CI treats the items as a sample of items; resampling the patients instead, the "
                 f"bootstrap 95% CI is {b['ci_low']:.{digits}f} to {b['ci_high']:.{digits}f}: how much r "
                 "would move with another sample of patients")
    return (f"Across the {n} IMRS items, the users' mean rating of each item and the providers' "
            f"mean rating of the same item {stat}. This item-profile (ecological) correlation "
            "measures whether the items that users as a group rate high are also the items "
            "providers rate high. It does not measure whether a given provider agrees with a "
            "given patient: that is patient-level agreement (ICC, Lin's CCC, Bland-Altman "
            "limits of agreement), reported separately.")


# --- patient level -----------------------------------------------------------------------
def _agreement_rows(scored: pd.DataFrame, on: str, alpha: float, loa_ci: str) -> pd.DataFrame:
    """The rows of :func:`patient_level_agreement` for the patients of ``scored`` (:func:`patient_scores`)."""
    u, p = _pairs(scored, on)
    n, d, n_excluded = u.size, u - p, len(scored) - u.size
    rows = [_row(EXCLUDED, n_excluded, n=n_excluded,
                 note="patients without both a user and a provider score (estimate = count)")]
    for measure, x in ((USER_MEAN, u), (PROVIDER_MEAN, p)):
        if n >= 2 and np.ptp(x) > 0:
            ci = stats.ttest_1samp(x, 0.0).confidence_interval(1 - alpha)
            rows.append(_row(measure, x.mean(), (ci.low, ci.high), n, note=f"SD = {x.std(ddof=1):.4g}; t interval"))
        else:
            rows.append(_row(measure, _mean(x), n=n, note="SD = 0" if n >= 2 else "SD not estimable"))
    rows += correlations(u, p, alpha, unit="patients").to_dict("records")
    if n < MIN_N or np.ptp(np.r_[u, p]) == 0:
        note = f"not estimable: {n} patients, at least {MIN_N} needed" if n < MIN_N else \
            "not estimable: all ratings identical"
        rows += [_row(m, n=n, note=note) for m in (ICC_A1, ICC_C1)]
    else:
        icc = intraclass_correlations(np.column_stack([u, p]), alpha=alpha).set_index("type")
        for measure, key in ((ICC_A1, "ICC(A,1)"), (ICC_C1, "ICC(C,1)")):
            rec = icc.loc[key]
            note = f"pingouin {key} (Shrout & Fleiss {rec['shrout_fleiss']}); p: F test of ICC = 0" + (
                "" if np.isclose(alpha, 0.05) else "; CI not available (pingouin gives 95% CIs only)")
            rows.append(_row(measure, rec["icc"], (rec["ci_low"], rec["ci_high"]), n, rec["p"], note))
    c = concordance_correlation(u, p, alpha=alpha)
    rows.append(_row(CCC, c["ccc"], (c["ci_low"], c["ci_high"]), n, note=c["note"] + (
        "" if pd.isna(c["bias_correction"]) else
        f"; precision r = {c['pearson_r']:.3f}, accuracy C_b = {c['bias_correction']:.3f}")))
    rows += limits_of_agreement(d, alpha=alpha, loa_ci=loa_ci, means=(u + p) / 2).to_dict("records")
    if n >= 2 and np.ptp(d) > 0:
        tt = stats.ttest_rel(u, p)
        ci = tt.confidence_interval(1 - alpha)
        rows.append(_row(PAIRED_T, d.mean(), (ci.low, ci.high), n, tt.pvalue, f"t = {tt.statistic:.3f}"))
    else:
        rows.append(_row(PAIRED_T, _mean(d), n=n, note="not estimable: " + (
            "all differences equal" if n >= 2 else f"{n} patient(s)")))
    w, pw, wnote = _wilcoxon(d)
    rows.append(_row(WILCOXON, np.median(d) if n else np.nan, n=n, p=pw,
                     note=wnote if np.isnan(w) else f"W = {w:g}; zero differences dropped"))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS).astype({"n": "int64"})


def patient_level_agreement(cohort: pd.DataFrame, on: str = "total", max_missing: int = 0,
                            alpha: float = 0.05, loa_ci: str = "exact") -> pd.DataFrame:
    """Agreement between each patient's own IMRS (``on``: total or item mean) and their provider's.

    One row (:data:`RESULT_COLUMNS`) per :data:`PATIENT_MEASURES`; ``n``: patients with both scores (``max_missing``
    as in :func:`patient_scores`); ``loa_ci`` goes to :func:`~imr_analysis.bland_altman.limits_of_agreement`.

    Examples
    --------
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS as U, IMRS_PROVIDER_COLUMNS as P
    >>> cohort = pd.DataFrame([[k] * 15 + [min(k + 1, 5)] * 15 for k in (1, 2, 3, 4, 2, 3)], columns=U + P)
    >>> res = patient_level_agreement(cohort).set_index("measure")["estimate"]
    >>> res[["Pearson r", "Lin's concordance correlation coefficient", BIAS]].round(2).tolist()
    [1.0, 0.65, -15.0]
    """
    _check(alpha, on)
    return _agreement_rows(patient_scores(cohort, max_missing=max_missing), on, alpha, loa_ci)


def internal_consistency(cohort: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Cronbach's alpha of each version's 15 items, complete scales only (``pingouin.cronbach_alpha``).

    pingouin's F-based interval (``alpha``: 1 - confidence level), rounded by pingouin to 3
    decimals. One row per version.
    """
    _check(alpha)
    rows = []
    for version, items in _ratings(cohort).items():
        items = items.dropna()
        rec = {"version": version, "measure": "Cronbach's alpha", "estimate": np.nan, "ci_low": np.nan,
               "ci_high": np.nan, "n": len(items), "n_items": N_IMRS_ITEMS, "note": ""}
        if len(items) < MIN_N:
            rec["note"] = f"not estimable: {len(items)} complete {version} IMRS, at least {MIN_N} needed"
        elif items.sum(axis=1).nunique() == 1:
            rec["note"] = "not estimable: all patients have the same total"
        else:
            with _pingouin_quietly():
                est, ci = pg.cronbach_alpha(data=items, nan_policy="listwise", ci=1 - alpha)
            rec.update(estimate=float(est), ci_low=float(ci[0]), ci_high=float(ci[1]),
                       note="complete cases; F-based CI (pingouin, 3 decimals)")
        rows.append(rec)
    return pd.DataFrame(rows).astype({"n": "int64"})


def agreement_by_service(cohort: pd.DataFrame, on: str = "total", max_missing: int = 0,
                         alpha: float = 0.05, loa_ci: str = "exact", services=None) -> pd.DataFrame:
    """:func:`patient_level_agreement` within each service type, with a small-n ``caveat`` (:data:`CAVEATS`).

    ``services``: service types in output order (default CMHC, SerD, EDP; absent ones have n = 0).
    """
    _check(alpha, on)
    if "service_type" not in cohort.columns:
        raise ValueError("cohort lacks the service_type column")
    services = list(SERVICE_TYPES if services is None else services)
    if unknown := sorted(set(services) - set(SERVICE_TYPES)):
        raise ValueError(f"unknown service type(s) {unknown}; choose from {list(SERVICE_TYPES)}")
    scored = patient_scores(cohort, max_missing=max_missing)
    parts = []
    for service in services:
        rows = _agreement_rows(scored[scored["service_type"] == service], on, alpha, loa_ci)
        n = rows["n"].iloc[-1]  # the last row's: the patients with both scores
        parts.append(rows.assign(caveat=next((f"n < {k}: {text}" for k, text in CAVEATS.items() if n < k), "")))
    return pd.concat(parts, keys=services, names=["service_type", None]).reset_index(0).reset_index(drop=True)


def agreement_summary(cohort: pd.DataFrame, max_missing: int = 0, alpha: float = 0.05,
                      loa_ci: str = "exact", services=None) -> pd.DataFrame:
    """Every agreement result in one tidy table (``tables/imrs_agreement.*``).

    Sections: the item profile; patient level on the total and, for the scale-dependent
    measures, on the item mean; item level (each item's kappa, and its mean difference
    with the Holm-adjusted Wilcoxon p); internal consistency; by service type (when the
    cohort has ``service_type``; caveats in ``note``). Arguments as in
    :func:`agreement_by_service`; columns :data:`SUMMARY_COLUMNS`.
    """
    parts = [item_profile_correlation(cohort, alpha=alpha).rename(columns={"analysis": "section"})]
    for on in ("total", "mean"):
        res = patient_level_agreement(cohort, on=on, max_missing=max_missing, alpha=alpha, loa_ci=loa_ci)
        parts.append(res[res["measure"].isin(SCALE_DEPENDENT) | (on == "total")].assign(
            section=f"patient level: {SCALES[on][2]}"))
    t3 = table3(cohort, max_missing=max_missing, alpha=alpha).dropna(subset=["item"])
    key = "item " + t3["item"].map("{:02d}".format) + " " + t3["label"]
    kappa = [pd.DataFrame({"measure": key + f": {name}", "estimate": t3[f"kappa_{w}"], "n": t3["n"],
                           "ci_low": t3[f"kappa_{w}_ci_low"], "ci_high": t3[f"kappa_{w}_ci_high"], "p": t3[f"kappa_{w}_p"],
                           "note": ("primary" if w == "quadratic" else "sensitivity analysis")
                           + f"; asymptotic {round(100 * (1 - alpha))}% CI (statsmodels); p: test of kappa = 0"})
             for w, name in KAPPAS.items()]
    fp = {c: t3[c].map(lambda p: "" if pd.isna(p) else format_p(p)) for c in ("p_wilcoxon", "p_pratt", "p_holm_pratt")}
    difference = pd.DataFrame({
        "measure": key + ": mean difference (user - provider)", "estimate": t3["mean_difference"], "ci_low": np.nan,
        "ci_high": np.nan, "n": t3["n"], "p": t3["p_holm"],
        "note": "p: Wilcoxon signed-rank, Holm-adjusted over 15 items" + fp["p_wilcoxon"].where(
            fp["p_wilcoxon"] == "", " (unadjusted " + fp["p_wilcoxon"] + "); Pratt: " + fp["p_holm_pratt"]
            + " (unadjusted " + fp["p_pratt"] + ")")
        + sensitivity(t3, alpha).map(lambda s: f"; conclusion at alpha changes with: {s}" if s else "")
        + t3["note"].map(lambda s: f"; {s}" if s else "")})
    parts.append(pd.concat([*kappa, difference]).sort_index(kind="stable").assign(section="item level"))
    ic = internal_consistency(cohort, alpha=alpha)
    parts.append(ic.assign(section="internal consistency", p=np.nan, measure=ic["measure"] + " (" + ic["version"] + ")"))
    if "service_type" in cohort.columns:
        by = agreement_by_service(cohort, on="total", max_missing=max_missing, alpha=alpha,
                                  loa_ci=loa_ci, services=services)
        by["section"] = "by service: " + by["service_type"] + f", {SCALES['total'][2]}"
        by["note"] = np.where(by["caveat"] != "", "CAVEAT " + by["caveat"] + "; " + by["note"], by["note"])
        parts.append(by)
    out = pd.concat([part[SUMMARY_COLUMNS] for part in parts], ignore_index=True)
    return out.astype({"n": "int64"}).assign(note=out["note"].fillna("").astype(str))


def bland_altman_data(cohort: pd.DataFrame, on: str = "total", max_missing: int = 0, alpha: float = 0.05,
                      coverage: float = 0.95, loa_ci: str = "exact") -> BlandAltmanData:
    """Figure 2's data for :func:`~imr_analysis.bland_altman.plot_bland_altman`: each patient's
    mean and difference of the two IMRS, and :func:`~imr_analysis.bland_altman.limits_of_agreement`.

    Examples
    --------
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS as U, IMRS_PROVIDER_COLUMNS as P
    >>> cohort = pd.DataFrame([[4] * 15 + [3] * 15, [3] * 30, [5] * 15 + [4] * 15], columns=U + P)
    >>> data = bland_altman_data(cohort)
    >>> data.n, data.points.to_dict("list")
    (3, {'mean': [45.0, 52.5, 67.5], 'difference': [0.0, 15.0, 15.0], 'count': [1, 1, 1]})
    """
    _check(alpha, on)
    u, p = _pairs(patient_scores(cohort, max_missing=max_missing), on)
    points = pd.DataFrame({"mean": (u + p) / 2, "difference": u - p}).value_counts().sort_index().reset_index()
    return BlandAltmanData(on=on, n=u.size, points=points.astype({"count": "int64"}), alpha=alpha, stats=(
        limits_of_agreement(u - p, alpha=alpha, coverage=coverage, loa_ci=loa_ci, means=(u + p) / 2)))


def table3_notes(alpha: float = 0.05, max_missing: int = 0) -> list[str]:
    """The footnotes of Table 3 (:func:`table3`) and of its numbers."""
    scored = "a complete scale in both versions" if max_missing == 0 else \
        f"at most {max_missing} missing item(s) per version (total prorated)"
    return [f"n: patients with both ratings of the item; item mean and total: patients with {scored}. "
            "Mean (SD): SD with denominator n - 1; difference: mean of user - provider.",
            "Wilcoxon p: two-sided signed-rank test of the paired ratings (scipy.stats.wilcoxon, zero differences "
            "dropped), Holm-adjusted over the family of the 15 items; the item mean and total rows are unadjusted "
            "(ranked on exact differences, so both give the same test). Wilcoxon-Pratt p: the same with zero "
            "differences ranked (Pratt), a sensitivity analysis.",
            "Kappa: Cohen's kappa over the categories 1-5 (statsmodels); the primary analysis uses quadratic weights, "
            f"with its asymptotic {round(100 * (1 - alpha))}% CI; linear weights and no weights are sensitivity "
            "analyses. The last column names the choices that change the conclusion at alpha for the item."]


def agreement_notes(alpha: float = 0.05) -> list[str]:
    """The footnotes of the agreement table (:func:`agreement_summary`)."""
    return [f"ci_low, ci_high: {round(100 * (1 - alpha))}% confidence interval; note: the method of each row. "
            "n: patients with both ratings (item level: of that item; item profile: the 15 items).",
            "p: two-sided and unadjusted, except the item-level Wilcoxon p, Holm-adjusted over the family of the "
            "15 items. Kappa: quadratic weights. Limits of agreement: bias -/+ 1.96 SD of the differences.",
            "By service: small groups carry a CAVEAT in note; their intervals are wide."]
