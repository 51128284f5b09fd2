"""Pooling departments: random-effects meta-analysis of what their aggregate bundles publish (notebook 08).

A site (a department's bundle, or the paper's published figures) gives for each measure of :data:`MEASURES` an
estimate ``y`` and its standard error ``se`` on the pooling scale, read off the disclosure-controlled tables it
published; nothing is recomputed from patients. Proportions: count and denominator, on the logit scale (intercept
and SE of an intercept-only binomial GLM, statsmodels). Means: mean, SD and n, SE = SD / sqrt(n). The ICC and the item-profile r:
Fisher's z, the SE read back from the site's interval (its z half-width over the normal quantile: exact for r's
Fisher interval, an approximation for the ICC's F-based one; the paper's r, without an interval: 1 / sqrt(n - 3)).
The Bland-Altman bias: the half-width of its t interval over the t quantile. ``combine_effects`` (statsmodels) pools
them: fixed effect (inverse variance) and random effects with the DerSimonian-Laird tau^2, Cochran's Q with its
chi-square p, and I^2. statsmodels 0.15 leaves a negative DerSimonian-Laird tau^2 (Q < df) as it is: here it is 0, as
the estimator defines it, so the random-effects results are the fixed-effect ones and I^2 is 0. (Its Paule-Mandel
iteration resets tau^2 to 0 whenever a step overshoots, which it does for strongly heterogeneous sites.) The paper's
figures come through :mod:`imr_analysis.reproduce`, the one module reading them.
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm
from matplotlib.transforms import blended_transform_factory
from scipy import stats
from scipy.special import expit
from statsmodels.stats.meta_analysis import combine_effects

from .agreement import ICC_A1
from .bland_altman import BIAS
from .constants import MODULE_COLUMNS
from .figio import setup_matplotlib
from .reproduce import published_figures

PUBLISHED_SITE = "Ferrara et al. 2023 (published)"
_T1, _T2 = "variable == '{}' and level == '{}' and group == 'Total'", "level == 'total' and measure == '{}'"
_T3, _TOTAL = "item_label == 'Total (15-75)' and measure == '{}'", "section.str.startswith('patient level: IMRS total')"
#: measure -> (label, kind, table, its row as a pandas query, the paper's metric: for a mean, of ``<metric>_mean``/_sd)
MEASURES = {
    "men": ("Men (%)", "proportion", "table1_long", _T1.format("sex", "M"), "pct_men"),
    "antipsychotic": ("On antipsychotics (%)", "proportion", "table1_long", _T1.format("med_antipsychotic", "yes"),
                      "pct_med_antipsychotic"),
    "group_format": ("IMR in group format (%)", "proportion", "table2_long", _T2.format("group_format"), "pct_group"),
    **{m: (f"Received module {int(m[-2:])} (%)", "proportion", "table2_long", _T2.format(m), f"pct_{m}")
       for m in MODULE_COLUMNS},
    "age": ("Age at IMR start (years)", "mean", "table1_long", _T1.format("age_at_imr_start", ""), "age_imr"),
    "imr_duration": ("IMR duration (months)", "mean", "table2_long", _T2.format("imr_duration_months"), "imr_duration"),
    "sessions": ("IMR sessions", "mean", "table2_long", _T2.format("n_sessions"), "sessions"),
    "imrs_user_total": ("User-rated IMRS total (15-75)", "mean", "table3_imrs_long", _T3.format("user"),
                        "imrs_user_total"),
    "imrs_provider_total": ("Provider-rated IMRS total (15-75)", "mean", "table3_imrs_long", _T3.format("provider"),
                            "imrs_provider_total"),
    "icc_total": ("ICC(A,1) of the IMRS totals, user vs provider", "correlation", "imrs_agreement",
                  f"{_TOTAL} and measure == '{ICC_A1}'", None),
    "bias_total": ("Bland-Altman bias of the IMRS total (user - provider)", "difference", "imrs_agreement",
                   f"{_TOTAL} and measure == '{BIAS}'", None),
    "item_profile_r": ("Item-profile r of the IMRS (n = 15 items)", "correlation", "imrs_agreement",
                       "section.str.startswith('item profile') and measure == 'Pearson r'", "imrs_item_profile_pearson_r"),
}
#: Each kind's pooling scale, back-transformation and decimals shown.
SCALES = {"proportion": ("logit", lambda y: 100 * expit(y), 1), "mean": ("identity", np.asarray, 2),
          "correlation": ("Fisher z", np.tanh, 2), "difference": ("identity", np.asarray, 2)}
#: ``y`` and ``variance`` (``se^2``: an SE of a mean over a square n, sd / 20, can end on a rounding tie): pooling scale
SITE_COLUMNS = ["site", "measure", "estimate", "ci_low", "ci_high", "n", "events", "y", "variance", "note"]
POOLED_COLUMNS = ["measure", "label", "sites", "k", "n", "events", "estimate", "ci_low", "ci_high", "fixed_estimate",
                  "fixed_ci_low", "fixed_ci_high", "tau2", "i2", "q", "q_df", "q_p", "scale", "note"]


def _measure(key: str) -> tuple:
    if key not in MEASURES:
        raise ValueError(f"unknown measure {key!r}; choose from {', '.join(MEASURES)}")
    return MEASURES[key]


def _site_row(site: str, key: str, v: dict, alpha: float) -> dict:
    """One site's row of :data:`SITE_COLUMNS` from its published values ``v`` (see the module's docstring)."""
    kind, (_, back, _) = MEASURES[key][1], SCALES[MEASURES[key][1]]
    y = se = np.nan
    note, n = "", v["n"]
    if kind == "proportion":
        x, estimate = v["events"], 100 * v["events"] / n
        if 0 < x < n:
            fit = sm.GLM(np.array([1.0, 0.0]), np.ones((2, 1)), family=sm.families.Binomial(),
                         freq_weights=np.array([x, n - x], dtype=float)).fit(tol=1e-13)
            y, se = fit.params[0], fit.bse[0]
        else:
            note = "no logit: redacted, 0% or 100%"
    elif kind == "mean":
        estimate, y, se = v["mean"], v["mean"], v["sd"] / np.sqrt(n)
    else:
        f = np.arctanh if kind == "correlation" else np.asarray
        q = stats.norm.ppf(1 - alpha / 2) if kind == "correlation" else stats.t.ppf(1 - alpha / 2, n - 1)
        estimate, y = v["estimate"], f(v["estimate"])
        se = v.get("se", (f(v.get("ci_high", np.nan)) - f(v.get("ci_low", np.nan))) / (2 * q))
    if not np.isfinite([y, se]).all():
        y, se, note = np.nan, np.nan, note or "no estimate or interval (redacted or not estimable)"
    z = stats.norm.ppf(1 - alpha / 2)
    return {"site": site, "measure": key, "estimate": float(estimate), "ci_low": float(back(y - z * se)),
            "ci_high": float(back(y + z * se)), "n": n, "events": v.get("events", np.nan), "y": float(y),
            "variance": float(se) ** 2, "note": note}


def site_estimates(outputs: dict, site: str, measures=None, alpha: float = 0.05) -> pd.DataFrame:
    """Each of ``measures`` (default all of :data:`MEASURES`) as ``site`` published it.

    ``outputs``: the tables of :data:`imr_analysis.reproduce.OUTPUTS` (a bundle's, or made in memory); ``alpha``: that
    of the site's intervals. One row per measure, :data:`SITE_COLUMNS` (``estimate``: natural scale, % for
    proportions; ``y, variance``: pooling scale; CI: ``y -/+ z se`` back-transformed; NaN with a ``note`` when
    redacted).
    """
    rows = []
    for key in measures or MEASURES:
        _, kind, table, query, _ = _measure(key)
        frame = outputs[table].fillna(dict.fromkeys(outputs[table].select_dtypes(exclude="number").columns, ""))
        hit = frame.query(query, engine="python")
        if len(hit) != 1:
            raise LookupError(f"{site}: {table} has {len(hit)} rows for {key} ({query}), expected one")
        v = pd.to_numeric(hit.iloc[0], errors="coerce")
        values = ({"events": v["n"], "n": v["denominator"]} if kind == "proportion" else
                  {"mean": v["mean"], "sd": v["sd"], "n": v["n"]} if kind == "mean" else
                  {"estimate": v["estimate"], "ci_low": v["ci_low"], "ci_high": v["ci_high"], "n": v["n"]})
        rows.append(_site_row(site, key, values, alpha))
    return pd.DataFrame(rows, columns=SITE_COLUMNS)


def published_estimates(measures=None, alpha: float = 0.05) -> pd.DataFrame:
    """The paper's consistent figures as one more site (:data:`PUBLISHED_SITE`), for the measures it published.

    Percentages become counts of its 126 patients (``round(percent x 126 / 100)``: 61.1% -> 77 men); means take the
    published SD; the r its 15 items.

    Examples
    --------
    >>> published_estimates(["men", "icc_total"])[["site", "measure", "events", "n"]].values.tolist()
    [['Ferrara et al. 2023 (published)', 'men', 77, 126]]
    """
    pub = published_figures()
    pub = pub[(pub["verdict"] == "consistent") & pub["metric"].notna()].sort_values("decimals", kind="stable")
    value = pub.drop_duplicates("metric", keep="last").set_index("metric")["value"]
    n, rows = int(value["n_patients"]), []
    for key in measures or MEASURES:
        _, kind, _, _, metric = _measure(key)
        if kind == "proportion" and metric in value:
            rows.append(_site_row(PUBLISHED_SITE, key, {"events": round(value[metric] * n / 100), "n": n}, alpha))
        elif kind == "mean" and f"{metric}_mean" in value:
            v = {"mean": value[f"{metric}_mean"], "sd": value[f"{metric}_sd"], "n": n}
            rows.append(_site_row(PUBLISHED_SITE, key, v, alpha))
        elif kind == "correlation" and metric in value:
            items = int(value["imrs_item_profile_n"])
            v = {"estimate": value[metric], "n": items, "se": 1 / np.sqrt(items - 3)}
            rows.append(_site_row(PUBLISHED_SITE, key, v, alpha))
    return pd.DataFrame(rows, columns=SITE_COLUMNS)


def site_table(bundles, measures=None, include_published: bool = True, alpha: float = 0.05) -> pd.DataFrame:
    """:func:`site_estimates` of every bundle (objects with ``name``, ``outputs``, ``alpha``:
    :class:`imr_workflow.bundle.Bundle`), then the paper's (:func:`published_estimates`); empty without bundles."""
    parts = [site_estimates(b.outputs, b.name, measures, b.alpha) for b in bundles]
    if parts and include_published:
        parts.append(published_estimates(measures, alpha))
    order = list(measures or MEASURES)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SITE_COLUMNS)
    return out.sort_values("measure", key=lambda s: s.map(order.index), kind="stable", ignore_index=True)


def pool(sites: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Pool each measure of :func:`site_table` over the departments and, where the paper published it, over the
    departments and the paper: one row each, :data:`POOLED_COLUMNS` (natural scale; ``tau2`` on the pooling scale;
    ``i2`` in %; ``n``, ``events``: sums over the sites; ``k < 2``: not pooled)."""
    rows = []
    for key, frame in sites.groupby("measure", sort=False):
        label, kind = MEASURES[key][:2]
        scale, back, _ = SCALES[kind]
        sets = {"departments": frame[frame["site"] != PUBLISHED_SITE]}
        if frame["site"].eq(PUBLISHED_SITE).any():
            sets[f"departments and {PUBLISHED_SITE}"] = frame
        for name, part in sets.items():
            use = part.dropna(subset=["y", "variance"])
            left = part.loc[~part.index.isin(use.index), "site"].tolist()
            row = {"measure": key, "label": label, "sites": name, "k": len(use), "n": use["n"].sum(),
                   "events": use["events"].sum(min_count=1), "scale": scale,
                   "note": f"without {', '.join(left)} (no estimate)" if left else ""}
            if len(use) < 2:
                rows.append(row | {"note": f"not pooled: {len(use)} site(s) with an estimate"})
                continue
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                res = combine_effects(use["y"].to_numpy(float), use["variance"].to_numpy(float), method_re="dl",
                                      alpha=alpha)
                fixed, random = res.conf_int()[:2]  # (the HKSJ intervals it also computes are not used)
            tau2, mean_re = float(res.tau2), res.mean_effect_re
            if tau2 < 0:  # Q < df: DerSimonian-Laird's tau^2 is 0, random effects are the fixed effect
                tau2, mean_re, random = 0.0, res.mean_effect_fe, fixed
            hom = res.test_homogeneity()
            rows.append(row | {
                "estimate": float(back(mean_re)), "ci_low": float(back(random[0])), "ci_high": float(back(random[1])),
                "fixed_estimate": float(back(res.mean_effect_fe)), "fixed_ci_low": float(back(fixed[0])),
                "fixed_ci_high": float(back(fixed[1])), "tau2": tau2,
                "i2": 100 * max(float(np.nan_to_num(res.i2, nan=0.0)), 0.0), "q": float(hom.statistic),
                "q_df": int(hom.df), "q_p": float(hom.pvalue)})
    return pd.DataFrame(rows, columns=POOLED_COLUMNS).astype({"k": "int64", "q_df": "Int64"})


def pooled_notes(alpha: float = 0.05) -> list[str]:
    """The footnotes of ``tables/pooled_estimates``."""
    level = f"{round(100 * (1 - alpha))}%"
    return [f"estimate, ci_low, ci_high: random effects (DerSimonian-Laird tau^2, 0 when Q < df), normal {level} "
            "interval; fixed_*: "
            "fixed effect (inverse variance); both statsmodels combine_effects. tau2 on the pooling scale (scale: "
            "logit for percentages, Fisher z for the ICC and r); i2: I^2 in %, 0 when Q < df; q: Cochran's Q with "
            "q_df degrees of freedom and its chi-square p q_p.",
            "Sites: each department's aggregate bundle (its disclosure-controlled tables, so rounded counts under a "
            f"profile) and, where it published the figure, {PUBLISHED_SITE}: its percentages as counts of its 126 "
            "patients, its means with their SDs, its r with its 15 items. n, events: sums over the sites (patients; "
            "for the item-profile r, items; under a rounding profile, the published rounded counts).",
            "Standard errors (pooled_sites: y and variance = se^2 on the pooling scale): proportions from count and "
            "denominator (binomial GLM, logit); means SD / sqrt(n); the bias from its t interval; the ICC and r from "
            "their intervals on Fisher's z scale (exact for r, an approximation for the ICC's F-based interval)."]


def forest_plot(sites: pd.DataFrame, pooled: pd.DataFrame, measure: str, alpha: float = 0.05):
    """The forest plot of ``measure``: each site's estimate and interval, each pooled estimate as a diamond, the
    figures on the right and the heterogeneity below."""
    setup_matplotlib()
    label, kind = _measure(measure)[:2]
    scale, _, digits = SCALES[kind]
    s = sites[sites["measure"] == measure].reset_index(drop=True)
    p = pooled[(pooled["measure"] == measure) & (pooled["k"] >= 2)].reset_index(drop=True)
    names = s["site"].tolist() + [f"Pooled, {'departments' if j == 0 else 'with the paper'} (k = {k})"
                                  for j, k in enumerate(p["k"])]
    ypos = np.arange(len(names))[::-1].astype(float)
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.36 * len(names)))
    for i, r in s.iterrows():
        ax.plot([r["ci_low"], r["ci_high"]], [ypos[i]] * 2, color="0.25", lw=1.2)
        ax.plot(r["estimate"], ypos[i], "s", ms=6, mec="0.25", color="white" if r["site"] == PUBLISHED_SITE else "0.25")
    for j, r in p.iterrows():
        yy = ypos[len(s) + j]
        ax.fill([r["ci_low"], r["estimate"], r["ci_high"], r["estimate"]], [yy, yy + 0.28, yy, yy - 0.28],
                color="#2c6e9b" if j == 0 else "#9bbcd4", ec="#1d4a69")
    if len(p):
        ax.axvline(p["estimate"].iloc[0], color="#2c6e9b", ls=":", lw=1)
    right = blended_transform_factory(ax.transAxes, ax.transData)
    shown = pd.concat([s[["estimate", "ci_low", "ci_high"]], p[["estimate", "ci_low", "ci_high"]]], ignore_index=True)
    for yy, r in zip(ypos, shown.itertuples()):
        ax.text(1.03, yy, f"{r.estimate:.{digits}f} ({r.ci_low:.{digits}f} to {r.ci_high:.{digits}f})"
                if np.isfinite(r.ci_low) else "no estimate", transform=right, va="center", fontsize=8.5)
    ax.text(1.03, len(names) - 0.4, f"estimate ({round(100 * (1 - alpha))}% CI)", transform=right, fontsize=8.5,
            weight="bold", va="center")
    ax.set_yticks(ypos, names, fontsize=8.5)
    ax.set_ylim(-0.7, len(names) - 0.1)
    ax.set_xlabel(label)
    ax.set_title(label, loc="left", fontsize=10, weight="bold")
    ax.grid(axis="x", color="0.9")
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    on = "" if scale == "identity" else f" ({scale} scale)"
    het = [f"{name}: tau\u00b2 = {r.tau2:.3g}{on}, I\u00b2 = {r.i2:.0f}%, Q = {r.q:.2f} on {r.q_df} df, "
           f"p {'< 0.001' if r.q_p < 0.001 else f'= {r.q_p:.3f}'}"
           for name, r in zip(["Departments", "With the paper"], p.itertuples())]
    ax.text(0, -0.13 - 0.5 / len(names), "\n".join(["Random effects (DerSimonian-Laird). " + (het[0] if het else
            "Not pooled: fewer than 2 sites."), *het[1:]]), transform=ax.transAxes, va="top", fontsize=8)
    return fig
