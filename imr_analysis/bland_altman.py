"""Bland-Altman analysis of user- versus provider-rated IMRS scores.

Two layers:

* :func:`limits_of_agreement` - the statistics (bias, 95% limits of agreement and
  the confidence intervals of all three) for any vector of paired differences;
* :func:`bland_altman_data` / :func:`plot_bland_altman` - the per-cohort data and the
  figure (Figure 2 of the compendium, ``figures/figure2_bland_altman.*``).

Differences are always **user - provider**, so a positive bias means users rate
themselves higher than their providers do.

Confidence intervals of the limits of agreement
-----------------------------------------------
``loa_ci="exact"`` (default) uses the exact interval of Carkeet (2015), which follows
from the non-central t distribution: for the upper limit
``theta = mu + z * sigma`` the interval is
``dbar + s * t'_q / sqrt(n)`` with ``t'_q`` the ``q``-quantile of a non-central t
with ``n - 1`` degrees of freedom and non-centrality ``z * sqrt(n)``,
``q = alpha/2, 1 - alpha/2`` (``scipy.stats.nct``). It coincides with one-sided
normal tolerance factors (e.g. k = 2.911 for n = 10, 95% coverage, 95% confidence).
``loa_ci="approximate"`` uses the approximate standard error of Bland & Altman
(1999, section 5.1), ``SE = s * sqrt(1/n + z**2 / (2 (n - 1)))``, with a t quantile
on ``n - 1`` degrees of freedom. The limits use ``z = Phi^-1(1 - (1 - coverage)/2)``
(1.95996 for 95% coverage), not the rounded 1.96 or 2.

References
----------
Bland JM, Altman DG (1986). Statistical methods for assessing agreement between two
methods of clinical measurement. Lancet 327:307-310.
Bland JM, Altman DG (1999). Measuring agreement in method comparison studies.
Stat Methods Med Res 8:135-160.
Carkeet A (2015). Exact parametric confidence intervals for Bland-Altman limits of
agreement. Optom Vis Sci 92:e71-e80.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Rows of :func:`limits_of_agreement`, in order.
BIAS = "Bland-Altman bias (user - provider)"
LOA_LOWER = "Bland-Altman lower limit of agreement"
LOA_UPPER = "Bland-Altman upper limit of agreement"
LOA_CI_METHODS = ("exact", "approximate")

#: Scale of each IMRS metric: (minimum, maximum, axis label).
SCALES = {
    "total": (15.0, 75.0, "IMRS total (15-75)"),
    "mean": (1.0, 5.0, "IMRS item mean (1-5)"),
}


def _check_alpha(alpha: float) -> None:
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")


def limits_of_agreement(differences, alpha: float = 0.05, coverage: float = 0.95,
                        loa_ci: str = "exact") -> pd.DataFrame:
    """Bias and limits of agreement of paired differences, with confidence intervals.

    Parameters
    ----------
    differences : array-like of float
        Paired differences (user - provider). NaNs are dropped.
    alpha : float, default 0.05
        1 - confidence level of the intervals.
    coverage : float, default 0.95
        Proportion of differences the limits of agreement are meant to contain.
    loa_ci : {"exact", "approximate"}, default "exact"
        Interval for the limits: Carkeet (2015) exact non-central-t interval, or the
        Bland & Altman (1999) approximate standard error (see module docstring).

    Returns
    -------
    pandas.DataFrame
        Three rows (:data:`BIAS`, :data:`LOA_LOWER`, :data:`LOA_UPPER`) with columns
        ``measure, estimate, ci_low, ci_high, n, p, note``. ``p`` is the one-sample
        t-test of zero bias on the bias row (equal to the paired t-test), NaN
        elsewhere. With fewer than two differences every value is NaN and ``note``
        says why; with zero spread the intervals are NaN.

    Examples
    --------
    >>> d = [-2.0, 0.0, 1.0, 3.0, -1.0, 2.0]
    >>> res = limits_of_agreement(d)
    >>> round(float(res.loc[0, "estimate"]), 3)  # bias = mean difference
    0.5
    >>> res["measure"].tolist()[1:]
    ['Bland-Altman lower limit of agreement', 'Bland-Altman upper limit of agreement']
    """
    from scipy import stats

    _check_alpha(alpha)
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be strictly between 0 and 1, got {coverage!r}")
    if loa_ci not in LOA_CI_METHODS:
        raise ValueError(f"loa_ci must be one of {LOA_CI_METHODS}, got {loa_ci!r}")
    d = np.asarray(differences, dtype=float).ravel()
    d = d[~np.isnan(d)]
    n = int(d.size)
    out = pd.DataFrame({
        "measure": [BIAS, LOA_LOWER, LOA_UPPER],
        "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
        "n": n, "p": np.nan, "note": "",
    })
    if n < 2:
        out["note"] = f"not estimable: {n} paired difference(s), at least 2 needed"
        if n == 1:
            out.loc[0, "estimate"] = d[0]
        return out
    z = stats.norm.ppf(1 - (1 - coverage) / 2)
    bias = d.mean()
    s = d.std(ddof=1)
    out["estimate"] = [bias, bias - z * s, bias + z * s]
    if s == 0:
        out["note"] = "all differences equal: confidence intervals not estimable"
        return out
    tt = stats.ttest_1samp(d, 0.0)
    ci = tt.confidence_interval(confidence_level=1 - alpha)
    out.loc[0, ["ci_low", "ci_high", "p"]] = [ci.low, ci.high, tt.pvalue]
    out.loc[0, "note"] = "t interval; p: one-sample t-test of zero bias (= paired t-test)"
    if loa_ci == "exact":
        q = stats.nct.ppf([alpha / 2, 1 - alpha / 2], n - 1, z * np.sqrt(n)) / np.sqrt(n)
        upper_ci = bias + s * q
        lower_ci = bias - s * q[::-1]
        note = f"exact non-central t interval (Carkeet 2015); limits = bias -/+ {z:.4f} SD"
    else:
        se = s * np.sqrt(1 / n + z**2 / (2 * (n - 1)))
        t = stats.t.ppf(1 - alpha / 2, n - 1)
        upper_ci = bias + z * s + np.array([-t, t]) * se
        lower_ci = bias - z * s + np.array([-t, t]) * se
        note = f"approximate SE (Bland & Altman 1999); limits = bias -/+ {z:.4f} SD"
    out.loc[1, ["ci_low", "ci_high"]] = lower_ci
    out.loc[2, ["ci_low", "ci_high"]] = upper_ci
    out.loc[1:2, "note"] = note
    return out


@dataclass
class BlandAltmanData:
    """Everything :func:`plot_bland_altman` needs.

    Attributes
    ----------
    on : "total" or "mean" - the IMRS metric.
    n : number of patients with both scores.
    points : DataFrame with columns ``mean, difference, count`` - the distinct
        (mean, difference) pairs and how many patients share each (integer totals
        overlap a lot), sorted by mean then difference.
    stats : the tidy result of :func:`limits_of_agreement`.
    alpha, coverage, loa_ci : settings used.
    """

    on: str
    n: int
    points: pd.DataFrame
    stats: pd.DataFrame
    alpha: float = 0.05
    coverage: float = 0.95
    loa_ci: str = "exact"
    scale: tuple = field(default=(15.0, 75.0, "IMRS total (15-75)"))


def bland_altman_data(cohort: pd.DataFrame, on: str = "total", max_missing: int = 0,
                      alpha: float = 0.05, coverage: float = 0.95,
                      loa_ci: str = "exact") -> BlandAltmanData:
    """Per-patient means and differences of user and provider IMRS, with the statistics.

    Parameters
    ----------
    cohort : pandas.DataFrame
        The cleaned cohort (``imrs_user_01..15``, ``imrs_provider_01..15``).
    on : {"total", "mean"}, default "total"
        IMRS total (15-75) or item mean (1-5).
    max_missing : int, default 0
        Items that may be missing per version; see
        :func:`imr_analysis.agreement.imrs_scores`.
    alpha, coverage, loa_ci
        As in :func:`limits_of_agreement`.

    Returns
    -------
    BlandAltmanData

    Examples
    --------
    >>> import pandas as pd
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS, IMRS_PROVIDER_COLUMNS
    >>> rows = [[4] * 15 + [3] * 15, [3] * 15 + [3] * 15, [5] * 15 + [4] * 15]
    >>> cohort = pd.DataFrame(rows, columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS)
    >>> data = bland_altman_data(cohort)
    >>> data.n, data.points["difference"].tolist()
    (3, [0.0, 15.0, 15.0])
    """
    from .agreement import imrs_scores

    if on not in SCALES:
        raise ValueError(f"on must be one of {tuple(SCALES)}, got {on!r}")
    scores = imrs_scores(cohort, max_missing=max_missing)
    u = scores[f"user_{on}"].to_numpy(dtype=float)
    p = scores[f"provider_{on}"].to_numpy(dtype=float)
    ok = ~(np.isnan(u) | np.isnan(p))
    u, p = u[ok], p[ok]
    diff = u - p
    points = (
        pd.DataFrame({"mean": (u + p) / 2, "difference": diff})
        .groupby(["mean", "difference"], sort=True).size()
        .rename("count").reset_index()
    )
    points["count"] = points["count"].astype("int64")
    res = limits_of_agreement(diff, alpha=alpha, coverage=coverage, loa_ci=loa_ci)
    return BlandAltmanData(on=on, n=int(ok.sum()), points=points, stats=res, alpha=alpha,
                           coverage=coverage, loa_ci=loa_ci, scale=SCALES[on])


def plot_bland_altman(data: BlandAltmanData, show_points: bool = True, ax=None,
                      digits: int | None = None, show_n: bool = True):
    """Draw a Bland-Altman plot: mean of the two ratings vs their difference.

    The bias (solid line) and the limits of agreement (dashed lines) are drawn with
    their confidence intervals as shaded bands. Patients sharing the same (mean,
    difference) are drawn as one point whose area is proportional to their number
    (no jitter, so the figure is deterministic).

    Parameters
    ----------
    data : BlandAltmanData
        From :func:`bland_altman_data`.
    show_points : bool, default True
        ``False`` draws no individual points (for private data where per-patient
        microdata must not be shown): only the bias, the limits and their bands, over
        the scale's full range.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure is created if omitted.
    digits : int, optional
        Decimals in the annotations (default 1 for totals, 2 for means).
    show_n : bool, default True
        Print the exact number of patients in the title (turn off when a disclosure
        profile rounds counts).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from imr_analysis.constants import IMRS_USER_COLUMNS, IMRS_PROVIDER_COLUMNS
    >>> rows = [[4] * 15 + [3] * 15, [3] * 15 + [3] * 15, [5] * 15 + [4] * 15]
    >>> cohort = pd.DataFrame(rows, columns=IMRS_USER_COLUMNS + IMRS_PROVIDER_COLUMNS)
    >>> fig = plot_bland_altman(bland_altman_data(cohort), show_points=False)
    >>> len(fig.axes[0].collections)  # no scatter of individual patients
    0
    >>> tuple(map(float, fig.axes[0].get_xlim()))  # the scale's full range, not the data's
    (15.0, 75.0)
    """
    from .figio import setup_matplotlib

    setup_matplotlib()
    import matplotlib.pyplot as plt

    if not isinstance(data, BlandAltmanData):
        raise TypeError("data must be a BlandAltmanData (use bland_altman_data(cohort))")
    lo, hi, label = data.scale
    if digits is None:
        digits = 1 if data.on == "total" else 2
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.0, 4.8))
    else:
        fig = ax.figure
    st = data.stats.set_index("measure")
    colours = {BIAS: "#1f4e79", LOA_LOWER: "#b22222", LOA_UPPER: "#b22222"}
    styles = {BIAS: "-", LOA_LOWER: "--", LOA_UPPER: "--"}
    names = {BIAS: "Bias", LOA_LOWER: "Lower LoA", LOA_UPPER: "Upper LoA"}

    ax.axhline(0.0, color="0.6", lw=0.8, zorder=1)
    if show_points and len(data.points):
        pts = data.points
        area = 18.0 * pts["count"].to_numpy(dtype=float)
        ax.scatter(pts["mean"], pts["difference"], s=area, facecolor="#4a7ab5",
                   edgecolor="white", linewidth=0.4, alpha=0.7, zorder=3)
        x0, x1 = pts["mean"].min(), pts["mean"].max()
        pad = max((x1 - x0) * 0.05, (hi - lo) * 0.02)
        x0, x1 = x0 - pad, x1 + pad
        cmax = int(pts["count"].max())
        if cmax > 1:
            ax.scatter([], [], s=18.0, facecolor="#4a7ab5", alpha=0.7, label="1 patient")
            ax.scatter([], [], s=18.0 * cmax, facecolor="#4a7ab5", alpha=0.7,
                       label=f"{cmax} patients")
            ax.legend(loc="best", fontsize=7, frameon=True, framealpha=0.85, edgecolor="none",
                      scatterpoints=1, title="point area", title_fontsize=7)
    else:
        x0, x1 = lo, hi
        ax.text(0.01, 0.02, "individual patients not shown", transform=ax.transAxes,
                fontsize=7, color="0.4", ha="left", va="bottom")
    ys = []
    for m in (BIAS, LOA_LOWER, LOA_UPPER):
        est, cl, ch = st.loc[m, ["estimate", "ci_low", "ci_high"]].astype(float)
        if np.isnan(est):
            continue
        if not (np.isnan(cl) or np.isnan(ch)):
            ax.axhspan(cl, ch, color=colours[m], alpha=0.12, lw=0, zorder=0)
            ys += [cl, ch]
        ax.axhline(est, color=colours[m], ls=styles[m], lw=1.3, zorder=2)
        ys.append(est)
        ax.annotate(f"{names[m]} {est:.{digits}f}", xy=(1.0, est), xycoords=("axes fraction", "data"),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=8,
                    color=colours[m], annotation_clip=False)
    if show_points and len(data.points):
        ys += [data.points["difference"].min(), data.points["difference"].max()]
    if ys:
        y0, y1 = min(ys + [0.0]), max(ys + [0.0])
        pad = max((y1 - y0) * 0.08, (hi - lo) * 0.01)
        ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_xlim(x0, x1)
    ax.set_xlabel(f"Mean of user and provider {label}")
    ax.set_ylabel("Difference, user - provider")
    conf = round(100 * (1 - data.alpha))
    n_text = f" (n = {data.n})" if show_n else ""
    ax.set_title(f"Bland-Altman: user vs provider {label}{n_text}; shaded: {conf}% CIs",
                 fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig
