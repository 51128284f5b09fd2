"""The replication comparison: a department's cohort beside the published one, beyond chance.

Notebook 06 audits the compendium's synthetic reproduction of the published cohort (:mod:`.reproduce`) and
compares any other cohort with it (:func:`audit_mode`). :func:`compare` takes each published percentage, mean
(with its SD) and r with the paper's ``n``, reads the department's value where :data:`.reproduce.WHERE` finds it
in its disclosure-controlled tables, and gives its 95% CI and the difference's, which counts the published
figure's own sampling error (:data:`NOTES`); :func:`context` lists the figures not tested, and why.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats
from statsmodels.stats.oneway import anova_generic
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from . import reproduce, sources

AUDIT_MODES, LEVEL = ("auto", "reproduction", "replication"), 0.95
#: The department's inputs of each tested kind, read beside its value (:func:`.reproduce.row_of`).
INPUTS = {"percent": ("n", "denominator"), "mean": ("sd", "n"), "r": ("n",)}
COLUMNS = ["id", "quote", "kind", "verdict", "reason", "published", "published_sd", "published_n", "decimals",
           "estimate", "ci_low", "ci_high", "sd", "n", "difference", "difference_ci_low", "difference_ci_high",
           "published_outside_ci", "note"]
CONTEXT_COLUMNS = ["id", "quote", "kind", "published", "decimals", "department", "why_not_tested"]
_EXTREME = "an extreme: it grows with the cohort, no sampling distribution to compare"
_WHY = {"count": "a count: it grows with the cohort (its percentage is compared where the paper gives one)",
        "min": _EXTREME, "max": _EXTREME, "p": "a p-value: it depends on the cohort's size; the estimates are compared",
        "statement": "a yes/no statement about the cohort (department: 1 yes, 0 no)",
        "setting": "the setting: the services and units that delivered IMR", "n_patients": "the cohort's size",
        "imrs_item_profile_n": "the n of the item-profile r: the IMRS items"}


def audit_mode(raw_dir, audit: str = "auto") -> tuple[str, str]:
    """The audit for the exports in ``raw_dir``, and why: ``auto`` chooses ``reproduction`` when every export opens
    with the synthetic marker naming no ``department=``, else ``replication``; the other two force it.

    >>> from imr_analysis import paths
    >>> audit_mode(paths.raw_dir()), audit_mode(paths.raw_dir(), "replication")[0]
    (('reproduction', "the compendium's synthetic reproduction of the published cohort"), 'replication')
    """
    if audit not in AUDIT_MODES:
        raise ValueError(f"audit must be one of {', '.join(map(repr, AUDIT_MODES))}, not {audit!r}")
    if audit != "auto":
        return audit, f"chosen by the parameter audit = {audit!r}"
    if sources.detect_data_mode(raw_dir) != "synthetic":
        return "replication", "exports without the synthetic marker: a department's own data"
    names = sources.marked_departments(raw_dir) - {None}
    return (("replication", f"synthetic exports of another department ({', '.join(sorted(names))})") if names else
            ("reproduction", "the compendium's synthetic reproduction of the published cohort"))


def welch_interval(mean1, sd1, n1, mean2, sd2, n2, level: float = LEVEL) -> tuple[float, float]:
    """Welch's t interval of ``mean1 - mean2`` from summary statistics (df: statsmodels' two-group Welch ANOVA)."""
    means, variances, nobs = np.array([mean1, mean2]), np.array([sd1, sd2]) ** 2, np.array([n1, n2])
    df = anova_generic(means, variances, nobs, use_var="unequal").df_denom
    return stats.t.interval(level, df, loc=mean1 - mean2, scale=np.sqrt((variances / nobs).sum()))


def zou_interval(r1, n1, r2, n2, level: float = LEVEL) -> tuple[tuple, tuple[float, float]]:
    """The Fisher z interval of ``r1`` (pingouin), and Zou's (2007) interval of ``r1 - r2`` (independent) from the two."""
    (l1, u1), (l2, u2) = (pg.compute_esci(stat=r, nx=n, ny=n, eftype="r", confidence=level, decimals=15)
                          for r, n in ((r1, n1), (r2, n2)))
    return (l1, u1), (r1 - r2 - np.hypot(r1 - l1, u2 - r2), r1 - r2 + np.hypot(u1 - r1, r2 - l2))


def _intervals(kind, est, row, pub, sd_pub, n_pub) -> dict:
    n = row["denominator"] if kind == "percent" else row["n"]
    if kind == "percent":
        ci = 100 * np.array(proportion_confint(row["n"], n, alpha=1 - LEVEL, method="wilson"))
        diff = 100 * np.array(confint_proportions_2indep(row["n"], n, pub / 100 * n_pub, n_pub, method="newcomb",
                                                         compare="diff", alpha=1 - LEVEL))
    elif kind == "mean":
        ci = stats.t.interval(LEVEL, n - 1, loc=est, scale=row["sd"] / np.sqrt(n))
        diff = welch_interval(est, row["sd"], n, pub, sd_pub, n_pub)
    else:
        ci, diff = zou_interval(est, n, pub, n_pub)
    return {"estimate": est, "ci_low": ci[0], "ci_high": ci[1], "sd": row["sd"] if kind == "mean" else np.nan,
            "n": n, "difference": est - pub, "difference_ci_low": diff[0], "difference_ci_high": diff[1],
            "published_outside_ci": not ci[0] <= pub <= ci[1]}


def _tested(published) -> tuple[pd.DataFrame, pd.Series]:
    """The figures compared (one per metric: consistent, most precise, the Results' first) and each one's SD."""
    pub = published[published["metric"].isin(list(reproduce.WHERE))]
    key = pub.assign(a=pub["verdict"].ne("consistent"), b=-pub["decimals"], c=pub["section"].ne("Results"))
    pub = pub.loc[key.sort_values(["a", "b", "c"], kind="stable").drop_duplicates("metric").index.sort_values()]
    return pub[pub["kind"].isin(list(INPUTS))], pub[pub["kind"] == "sd"].set_index("metric")["value"]


def compare(outputs, published=None) -> pd.DataFrame:
    """Each tested published figure beside the department's estimate (:data:`COLUMNS`, footnotes :data:`NOTES`).

    ``outputs``: the department's tables (:func:`.reproduce.read_outputs`); ``published`` default
    :func:`.reproduce.published_figures`. A figure whose inputs are withheld or absent gets a ``note``.

    >>> got = compare(reproduce.read_outputs()).set_index("id").loc["res_men_pct"]
    >>> got[["published", "estimate", "ci_low", "ci_high", "published_outside_ci"]].astype(float).round(1).tolist()
    [61.1, 61.1, 52.4, 69.2, 0.0]
    """
    tested, sds = _tested(reproduce.published_figures() if published is None else published)
    rows = []
    for e in tested.to_dict("records"):
        table, _, column = reproduce.WHERE[e["metric"]]
        row = {k: e[k] for k in ("id", "quote", "kind", "verdict", "decimals")} | {
            "reason": e["reason"] if e["verdict"] != "consistent" else "", "published": e["value"],
            "published_sd": sds.get(e["metric"].removesuffix("_mean") + "_sd", np.nan), "published_n": e["n"]}
        try:
            found = reproduce.row_of(outputs, e["metric"])
            lacking = [c for c in (column, *INPUTS[e["kind"]]) if np.isnan(found[c])]
            row["note"] = f"{', '.join(lacking)} withheld or absent in the department's {table}" if lacking else ""
        except LookupError as err:  # e.g. a service the department does not have
            row["note"] = f"not in the department's tables: {err}"
        if row["note"]:
            row["note"] = "not computable: " + row["note"]
        else:
            row |= _intervals(e["kind"], found[column], found, e["value"], row["published_sd"], e["n"])
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS).astype({"published_outside_ci": "boolean", "decimals": "int64"})


def _why(e, compared) -> str:
    """Why the published figure ``e`` is not tested (``compared``: the id of each compared metric)."""
    metric, kind = e["metric"], e["kind"]
    if not metric:
        return e["reason"] or "not about the cohort"
    if mean := compared.get(metric.removesuffix("_sd") + "_mean") if kind == "sd" else None:
        return f"the SD of {mean}: it enters that interval"
    if metric in compared:
        return f"the same figure as {compared[metric]}, compared once"
    return _WHY["setting"] if kind == "count" and metric in reproduce.STATEMENTS else _WHY.get(metric, _WHY[kind])


def context(outputs, published=None) -> pd.DataFrame:
    """The published figures :func:`compare` does not test, the department's value and why (:data:`CONTEXT_COLUMNS`)."""
    pub = reproduce.published_figures() if published is None else published
    compared, rows = _tested(pub)[0].set_index("metric")["id"], []
    for e in pub.loc[~pub["id"].isin(compared)].to_dict("records"):
        value = np.nan
        with contextlib.suppress(LookupError, IndexError, ValueError):  # a group the department does not have
            value = reproduce.read_metrics(outputs, [e["metric"]])[e["metric"]] if e["metric"] else np.nan
        rows.append({k: e[k] for k in ("id", "quote", "kind", "decimals")} | {
            "published": e["value"], "department": value, "why_not_tested": _why(e, compared)})
    return pd.DataFrame(rows, columns=CONTEXT_COLUMNS)


def summary_line(comparison, context_table) -> str:
    """How many figures were compared, flagged, not computable, and listed as context."""
    flags = comparison["published_outside_ci"]
    return (f"{len(flags)} published figures compared: {int(flags.sum())} outside the department's 95% CI, "
            f"{int(flags.isna().sum())} not computable; {len(context_table)} listed as context, not tested")


#: The footnotes of ``tables/replication_comparison`` (of ``replication_context``: :data:`CONTEXT_NOTES`).
NOTES = (
    "estimate: the department's value in its tables of notebooks 02-05, after disclosure control (under a profile "
    "from rounded counts; not computable where withheld); ci_low, ci_high: its 95% interval: Wilson's for a "
    "percentage (statsmodels proportion_confint), t for a mean (scipy), Fisher z for Pearson's r (pingouin).",
    "difference: estimate minus published, its 95% interval counting the published figure's own sampling error "
    "(published_n, published_sd): Newcombe's hybrid score interval for percentages (statsmodels "
    "confint_proportions_2indep), Welch's t for means (Welch-Satterthwaite df: statsmodels), Zou's (2007) for two "
    "independent correlations, from their Fisher z intervals.",
    "published_outside_ci: the published value lies outside the department's 95% interval (empty: not computable). "
    "It ignores the published figure's own sampling error, which the difference's interval counts: a flagged figure "
    "whose difference interval holds 0 is no difference beyond chance. Not adjusted for multiplicity: of twenty "
    "figures, one is flagged by chance alone on average.",
    "The paper publishes no median or interquartile range. A figure printed twice is compared once, as printed most "
    "precisely; a paper-inconsistent one as printed (verdict, reason). Counts, extremes, p-values, statements and "
    "the setting are in replication_context.",
)
CONTEXT_NOTES = ("The published figures not tested, the department's value where the audit reads one (empty when "
                 "withheld or not recomputable; statements: 1 yes, 0 no), and why the figure is not tested.",)
