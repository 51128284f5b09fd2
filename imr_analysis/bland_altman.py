"""Bland-Altman limits of agreement and their plot (Figure 2); numbers in, no cohort.

Differences are user - provider; limits ``bias -/+ z SD``, ``z = Phi^-1(1 - (1 - coverage)/2)``.
Their CIs are exact by default (Carkeet 2015): for the upper limit ``bias + SD t'_q / sqrt(n)``,
``t'_q`` a quantile of the non-central t with ``n - 1`` df and non-centrality ``z sqrt(n)``;
or approximate, ``SE = SD sqrt(1/n + z^2 / (2 (n - 1)))`` (Bland & Altman 1999). Then the share
of differences observed inside the limits and, given the means, proportional bias: the OLS slope of
the difference on the mean (Bland & Altman 1999, section 3.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm
from matplotlib.lines import Line2D
from scipy import stats

from .figio import setup_matplotlib

BIAS = "Bland-Altman bias (user - provider)"
LOA_LOWER = "Bland-Altman lower limit of agreement"
LOA_UPPER = "Bland-Altman upper limit of agreement"
LOA_INSIDE = "Bland-Altman differences inside the limits (%)"
PROPORTIONAL = "Bland-Altman proportional bias: slope of the difference on the mean"
LOA_CI_METHODS = ("exact", "approximate")
#: Each IMRS metric: (minimum, maximum, axis label).
SCALES = {"total": (15.0, 75.0, "IMRS total (15-75)"), "mean": (1.0, 5.0, "IMRS item mean (1-5)")}


def limits_of_agreement(differences, alpha: float = 0.05, coverage: float = 0.95,
                        loa_ci: str = "exact", means=None) -> pd.DataFrame:
    """Bias and limits of agreement of paired differences, with confidence intervals.

    ``differences``: user - provider (NaNs dropped); the limits should hold ``coverage`` of them; ``alpha``: 1 -
    confidence level; ``loa_ci``: "exact" or "approximate". Returns bias and limits (``measure, estimate, ci_low,
    ci_high, n, p``: paired t-test, ``note``), the percent inside the limits (Clopper-Pearson CI,
    ``scipy.stats.binomtest``) and, given pair ``means``, the proportional bias (:func:`proportional_bias`).

    Examples
    --------
    >>> res = limits_of_agreement([-2.0, 0.0, 1.0, 3.0, -1.0, 2.0])
    >>> res[["estimate", "ci_low", "ci_high"]].round(2).values.tolist()[:3]
    [[0.5, -1.46, 2.46], [-3.17, -9.06, -1.35], [4.17, 2.35, 10.06]]
    """
    for name, value in (("alpha", alpha), ("coverage", coverage)):
        if not (isinstance(value, (int, float)) and 0 < value < 1):
            raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    if loa_ci not in LOA_CI_METHODS:
        raise ValueError(f"loa_ci must be one of {LOA_CI_METHODS}, got {loa_ci!r}")
    pairs = pd.DataFrame({"d": np.ravel(differences), "m": np.nan if means is None else np.ravel(means)},
                         dtype=float).dropna(subset=["d"])
    d, n = pairs["d"].to_numpy(), len(pairs)
    out = pd.DataFrame({"measure": [BIAS, LOA_LOWER, LOA_UPPER, LOA_INSIDE], "estimate": np.nan,
                        "ci_low": np.nan, "ci_high": np.nan, "n": n, "p": np.nan, "note": ""})
    if means is not None:
        out = pd.concat([out, proportional_bias(pairs["m"], d, alpha)], ignore_index=True)
    if n < 2:
        out.loc[:3, "note"] = f"not estimable: {n} paired difference(s), at least 2 needed"
        out.loc[0, "estimate"] = d[0] if n else np.nan
        return out
    z = stats.norm.ppf(1 - (1 - coverage) / 2)
    bias, sd = d.mean(), d.std(ddof=1)
    inside = int(((d >= bias - z * sd) & (d <= bias + z * sd)).sum())
    share = stats.binomtest(inside, n).proportion_ci(1 - alpha)
    out.loc[:3, "estimate"] = [bias, bias - z * sd, bias + z * sd, 100 * inside / n]
    out.loc[3, ["ci_low", "ci_high", "note"]] = [100 * share.low, 100 * share.high, (
        f"observed, {100 * coverage:g}% expected; Clopper-Pearson CI, the limits taken as fixed")]
    if sd == 0:
        out.loc[:2, "note"] = "all differences equal: confidence intervals not estimable"
        return out
    tt = stats.ttest_1samp(d, 0.0)
    ci = tt.confidence_interval(confidence_level=1 - alpha)
    out.loc[0, ["ci_low", "ci_high", "p"]] = [ci.low, ci.high, tt.pvalue]
    out.loc[0, "note"] = "t interval; p: one-sample t-test of zero bias (= paired t-test)"
    if loa_ci == "exact":
        q = stats.nct.ppf([alpha / 2, 1 - alpha / 2], n - 1, z * np.sqrt(n)) / np.sqrt(n)
        upper, lower = bias + sd * q, bias - sd * q[::-1]
        how = "exact non-central t interval (Carkeet 2015)"
    else:
        half = stats.t.ppf(1 - alpha / 2, n - 1) * (sd * np.sqrt(1 / n + z**2 / (2 * (n - 1))))
        upper, lower = bias + z * sd + np.array([-half, half]), bias - z * sd + np.array([-half, half])
        how = "approximate SE (Bland & Altman 1999)"
    out.loc[1:2, ["ci_low", "ci_high"]] = [lower, upper]
    out.loc[1:2, "note"] = f"{how}; limits = bias -/+ {z:.4f} SD"
    return out


def proportional_bias(means, differences, alpha: float = 0.05) -> pd.DataFrame:
    """The OLS slope of the difference on the mean (statsmodels), its CI and t-test p, as one row.

    A slope away from 0 means the bias changes along the scale; ``note`` gives the line.

    >>> proportional_bias([10, 20, 30, 40], [1.0, 2.5, 2.5, 4.0])[["estimate", "p"]].round(3).values.tolist()
    [[0.09, 0.051]]
    """
    m, d = np.asarray(means, dtype=float), np.asarray(differences, dtype=float)
    ok = ~(np.isnan(m) | np.isnan(d))
    m, d, n = m[ok], d[ok], int(ok.sum())
    row = {"measure": PROPORTIONAL, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": n, "p": np.nan,
           "note": f"not estimable: {n} pair(s), at least 3 with different means needed"}
    if n >= 3 and np.ptp(m) > 0:
        fit = sm.OLS(d, sm.add_constant(m)).fit()
        (a, b), ci = fit.params, fit.conf_int(alpha)[1]
        row.update(estimate=b, ci_low=ci[0], ci_high=ci[1], p=fit.pvalues[1],
                   note=f"OLS (statsmodels): difference = {a:.4g} {'-' if b < 0 else '+'} {abs(b):.4g} x mean")
    return pd.DataFrame([row])


@dataclass
class BlandAltmanData:
    """What :func:`plot_bland_altman` draws: ``points`` (each distinct ``mean, difference`` and
    the ``count`` of patients there) and ``stats`` (:func:`limits_of_agreement`)."""

    on: str
    n: int
    points: pd.DataFrame
    stats: pd.DataFrame
    alpha: float = 0.05


def plot_bland_altman(data: BlandAltmanData, show_points: bool = True, ax=None,
                      digits: int | None = None, show_n: bool = True):
    """Bland-Altman plot (a matplotlib Figure): mean of the two ratings against their difference.

    Bias (solid) and limits (dashed) with their CIs as bands, the OLS line of proportional bias
    (dotted) and the share inside the limits below; patients sharing a point are one
    dot whose area grows with their number. ``show_points=False`` draws no patient (disclosure
    control) over the scale's full range; ``show_n=False`` keeps the exact n out of the title;
    ``digits`` defaults to 1 for totals, 2 for item means.
    """
    if not isinstance(data, BlandAltmanData):
        raise TypeError("data must be a BlandAltmanData (use agreement.bland_altman_data(cohort))")
    setup_matplotlib()
    lo, hi, label = SCALES[data.on]
    digits = (1 if data.on == "total" else 2) if digits is None else digits
    fig, ax = plt.subplots(figsize=(7.0, 4.8)) if ax is None else (ax.figure, ax)
    pts, st = data.points, data.stats.set_index("measure")
    ys, draw_points = [], show_points and len(pts) > 0
    ax.axhline(0.0, color="0.6", lw=0.8, zorder=1)
    if draw_points:
        ax.scatter(pts["mean"], pts["difference"], s=18.0 * pts["count"].to_numpy(dtype=float),
                   facecolor="#4a7ab5", edgecolor="white", linewidth=0.4, alpha=0.7, zorder=3)
        pad = max((pts["mean"].max() - pts["mean"].min()) * 0.05, (hi - lo) * 0.02)
        x0, x1 = pts["mean"].min() - pad, pts["mean"].max() + pad
        ys += [pts["difference"].min(), pts["difference"].max()]
        cmax = int(pts["count"].max())
        if cmax > 1:  # legend of point areas
            ax.scatter([], [], s=18.0, facecolor="#4a7ab5", alpha=0.7, label="1 patient")
            ax.scatter([], [], s=18.0 * cmax, facecolor="#4a7ab5", alpha=0.7, label=f"{cmax} patients")
            ax.add_artist(ax.legend(loc="best", fontsize=7, frameon=True, framealpha=0.85, edgecolor="none",
                                    scatterpoints=1, title="point area", title_fontsize=7))
    else:
        x0, x1 = lo, hi
        ax.text(0.01, 0.02, "individual patients not shown", transform=ax.transAxes,
                fontsize=7, color="0.4", ha="left", va="bottom")
    for m, name, colour, style in ((BIAS, "Bias", "#1f4e79", "-"), (LOA_LOWER, "Lower LoA", "#b22222", "--"),
                                   (LOA_UPPER, "Upper LoA", "#b22222", "--")):
        est, cl, ch = st.loc[m, ["estimate", "ci_low", "ci_high"]].astype(float)
        if np.isnan(est):
            continue
        if not (np.isnan(cl) or np.isnan(ch)):
            ax.axhspan(cl, ch, color=colour, alpha=0.12, lw=0, zorder=0)
            ys += [cl, ch]
        ax.axhline(est, color=colour, ls=style, lw=1.3, zorder=2)
        ys.append(est)
        ax.annotate(f"{name} {est:.{digits}f}", xy=(1.0, est), xycoords=("axes fraction", "data"),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=8,
                    color=colour, annotation_clip=False)
    below = []  # legend under the axes: proportional bias and the share inside the limits
    if PROPORTIONAL in st.index and not np.isnan(b := float(st.loc[PROPORTIONAL, "estimate"])):
        a, p = st.loc[BIAS, "estimate"] - b * np.average(pts["mean"], weights=pts["count"]), st.loc[PROPORTIONAL, "p"]
        ys += [a + b * x0, a + b * x1]  # the OLS line passes through (mean of the means, bias)
        below += ax.plot([x0, x1], ys[-2:], color="#6a3d9a", ls=":", lw=1.3, zorder=2, label=(
            f"OLS: difference = {a:.{digits + 1}f} {'-' if b < 0 else '+'} {abs(b):.3f} x mean, "
            + ("p < 0.001" if p < 0.001 else f"p = {p:.3f}")))
    if LOA_INSIDE in st.index and not np.isnan(share := float(st.loc[LOA_INSIDE, "estimate"])):
        below.append(Line2D([], [], ls="none", label=f"{share:.1f}% of differences inside the limits of agreement"))
    if below:
        ax.legend(handles=below, loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=7, frameon=False)
    if ys:
        y0, y1 = min(ys + [0.0]), max(ys + [0.0])
        pad = max((y1 - y0) * 0.08, (hi - lo) * 0.01)
        ax.set_ylim(y0 - pad, y1 + pad)
    ax.set(xlim=(x0, x1), xlabel=f"Mean of user and provider {label}", ylabel="Difference, user - provider")
    ax.set_title(f"Bland-Altman: user vs provider {label}{f' (n = {data.n})' if show_n else ''}; shaded: "
                 f"{round(100 * (1 - data.alpha))}% CIs", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig
