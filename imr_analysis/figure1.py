"""Figure 1 (the modules each patient received) and Supplementary Figure S1 (modules by unit).

* :func:`figure1_data`, :func:`plot_figure1` - the paper's Figure 1: one bar per patient,
  stacked unit-high segments coloured by module, bars grouped by service. Microdata.
* :func:`figure1_aggregate_data`, :func:`plot_figure1_aggregate` - Figure 1 without
  microdata: per service, the percentage of patients by number of modules received (its
  numbers have the layout of Table 1's, so disclosure control protects them the same way).
* :func:`module_heatmap_data`, :func:`plot_module_heatmap` - Figure S1: the percentage of
  each unit's patients who received each module, from the Table 2 numbers.

The 11 module colours are Paul Tol's colour-blind-safe "muted" scheme (M1-M9) plus "pale
grey" and "pear" of his "light" scheme (M10, M11): P. Tol, *Colour Schemes*, SRON/EPS/TN/09-002,
issue 3.2 (2021). The two added colours keep the smallest pairwise CIELAB distance of the set,
under normal vision and simulated deuteranopia and protanopia (Machado et al. 2009), that of
the muted scheme. Services use Tol's "bright" blue, red and green. Save figures with
:func:`imr_analysis.figio.save_figure` (byte-stable PNG, PDF and SVG).
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Patch

from .constants import MODULE_COLUMNS, MODULES
from .figio import setup_matplotlib
from .table1 import require_columns, select_services

#: Paul Tol "muted" (9) + "light" pale grey and pear; see the module docstring.
MODULE_COLOURS: dict[int, str] = dict(zip(MODULES, [
    "#CC6677",  # rose
    "#332288",  # indigo
    "#DDCC77",  # sand
    "#117733",  # green
    "#88CCEE",  # cyan
    "#882255",  # wine
    "#44AA99",  # teal
    "#999933",  # olive
    "#AA4499",  # purple
    "#DDDDDD",  # pale grey (light)
    "#BBCC33",  # pear (light)
]))
#: Paul Tol "bright" blue, red, green.
SERVICE_COLOURS = {"CMHC": "#4477AA", "SerD": "#EE6677", "EDP": "#228833"}
MODULE_LEGEND_LABELS = {k: f"M{k} {title}" for k, title in MODULES.items()}
FIGURE1_TITLE = "Modules received by individual patients (N = {n}), and service that administered IMR"
#: File stems of the per-patient Figure 1 and of its aggregate form (when microdata are not allowed).
FIGURE1_STEM, FIGURE1_AGGREGATE_STEM = "figure1_modules_per_patient", "figure1_modules_aggregate"
#: Above this many patients :func:`plot_figure1` refuses (one rectangle per module received).
MAX_PATIENTS = 5000


def _module_matrix(data: pd.DataFrame) -> pd.DataFrame:
    """Module columns as plain bool (missing = not received)."""
    return data[MODULE_COLUMNS].astype("boolean").fillna(False).astype(bool)


def figure1_data(cohort: pd.DataFrame, services: Sequence[str] | None = None, gap: float = 3.0) -> pd.DataFrame:
    """One row per patient with the plotting order and position of Figure 1.

    Patients are grouped by service type (CMHC, SerD, EDP) and, within a service,
    sorted by number of modules (descending), then by module pattern (descending,
    so patients who received the lower-numbered modules come first and identical
    patterns sit together), then by ``patient_id``.

    Parameters
    ----------
    cohort : the cleaned cohort (``patient_id``, ``service_type``, ``module_01..11``;
        ``n_modules`` and ``service_unit`` are used when present).
    services : service types to include (default all present).
    gap : empty bar positions between two service groups.

    Returns
    -------
    DataFrame
        ``order`` (0..n-1), ``x`` (bar position: ``order + gap * group_index``),
        ``group_index``, ``patient_id``, ``service_type``, ``service_unit`` (if in
        the cohort), ``n_modules``, ``module_pattern`` (integer with M1 as the most
        significant of 11 bits), ``modules`` (``"M1;M3"``), ``module_01..11``.

    Raises
    ------
    ValueError
        If ``n_modules`` disagrees with the module columns.

    Examples
    --------
    >>> cohort = pd.DataFrame({"patient_id": ["p1", "p2"], "service_type": ["CMHC"] * 2,
    ...     **{f"module_{k:02d}": [k == 3, k in (1, 3)] for k in range(1, 12)}})
    >>> figure1_data(cohort)[["patient_id", "modules"]].to_numpy().tolist()
    [['p2', 'M1;M3'], ['p1', 'M3']]
    """
    require_columns(cohort, ["patient_id", "service_type", *MODULE_COLUMNS])
    data, groups = select_services(cohort, services)
    mods = _module_matrix(data)
    n_modules = mods.sum(axis=1).astype("int64")
    if "n_modules" in data.columns:
        bad = pd.to_numeric(data["n_modules"]).ne(n_modules)
        if bad.any():
            raise ValueError(f"n_modules disagrees with the module columns for {int(bad.sum())} patient(s), "
                             f"e.g. {data.loc[bad, 'patient_id'].head(3).tolist()}")
    weights = 2 ** np.arange(len(MODULE_COLUMNS) - 1, -1, -1, dtype="int64")
    labels = pd.Series("", index=data.index, dtype="str")
    for k, c in zip(MODULES, MODULE_COLUMNS):
        labels = labels + np.where(mods[c].to_numpy(), f"M{k};", "")
    out = pd.DataFrame({
        "patient_id": data["patient_id"].astype("str"),
        "service_type": data["service_type"].astype("str"),
    }, index=data.index)
    if "service_unit" in data.columns:
        out["service_unit"] = data["service_unit"].astype("str")
    out["n_modules"] = n_modules
    out["module_pattern"] = mods.to_numpy().astype("int64") @ weights
    out["modules"] = labels.str.rstrip(";")
    out = pd.concat([out, mods], axis=1)
    out["group_index"] = out["service_type"].map({g: i for i, g in enumerate(groups)}).astype("int64")
    out = out.sort_values(["group_index", "n_modules", "module_pattern", "patient_id"],
                          ascending=[True, False, False, True], kind="stable").reset_index(drop=True)
    out["order"] = np.arange(len(out), dtype="int64")
    out["x"] = out["order"] + gap * out["group_index"].astype("float64")
    first = ["order", "x", "group_index"]
    return out[first + [c for c in out.columns if c not in first]]


def _module_handles() -> list[Patch]:
    return [Patch(facecolor=MODULE_COLOURS[k], edgecolor="0.4", linewidth=0.4, label=MODULE_LEGEND_LABELS[k])
            for k in MODULES]


def plot_figure1(data: pd.DataFrame, title: str | None = None, figsize=(13, 5.5),
                 max_patients: int = MAX_PATIENTS):
    """Draw Figure 1 from :func:`figure1_data`: one stacked bar per patient.

    Each patient's bar is a stack of unit-height segments, one per module received,
    in module order and coloured by module; its height is the number of modules.
    Bars are grouped by service with the group name and size under each group and
    dashed separators between groups; the legend lists all 11 modules.

    Parameters
    ----------
    data : output of :func:`figure1_data`.
    title : figure title; default the paper's, with N.
    figsize : inches.
    max_patients : refuse larger data (one rectangle is drawn per module received);
        use :func:`plot_figure1_aggregate` for large or private cohorts.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> cohort = pd.DataFrame({"patient_id": ["a", "b"], "service_type": ["CMHC", "SerD"],
    ...     **{f"module_{k:02d}": [k <= 2, k == 6] for k in range(1, 12)}})
    >>> fig = plot_figure1(figure1_data(cohort))
    >>> sum(len(c.patches) for c in fig.axes[0].containers)
    3
    """
    require_columns(data, ["x", "service_type", "n_modules", *MODULE_COLUMNS], what="Figure 1 data")
    if len(data) > max_patients:
        raise ValueError(f"{len(data)} patients is more than max_patients={max_patients} individual bars; "
                         "use plot_figure1_aggregate() or raise max_patients")
    setup_matplotlib()
    fig, ax = plt.subplots(figsize=figsize)
    x = data["x"].to_numpy(dtype="float64")
    mods = data[MODULE_COLUMNS].to_numpy(dtype="int64")
    bottoms = np.cumsum(mods, axis=1) - mods
    for j, k in enumerate(MODULES):
        on = mods[:, j] == 1
        ax.bar(x[on], np.ones(on.sum()), bottom=bottoms[on, j], width=0.85, color=MODULE_COLOURS[k],
               edgecolor="white", linewidth=0.3, label=MODULE_LEGEND_LABELS[k])
    # service groups: labels with n, separators
    grp = data.groupby("service_type", sort=False)["x"].agg(["min", "max", "size"])
    ax.set_xticks(((grp["min"] + grp["max"]) / 2).to_numpy(),
                  [f"{s}\n(n={n})" for s, n in zip(grp.index, grp["size"])])
    ax.tick_params(axis="x", length=0)
    for left, right in zip(grp["max"].to_numpy()[:-1], grp["min"].to_numpy()[1:]):
        ax.axvline((left + right) / 2, color="0.5", linestyle="--", linewidth=0.8)
    top = int(data["n_modules"].max()) if len(data) else 0
    ax.set_ylim(0, max(top, 1) + 0.5)
    ax.set_yticks(np.arange(0, max(top, 1) + 1))
    if len(data):
        ax.set_xlim(x.min() - 1, x.max() + 1)
    ax.set_ylabel("Number of modules administered")
    ax.set_xlabel("Service that administered IMR (one bar per patient)")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(handles=_module_handles(), title="IMR module", loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False, fontsize=8, title_fontsize=9)
    ax.set_title(title if title is not None else FIGURE1_TITLE.format(n=len(data)), fontsize=11)
    fig.tight_layout()
    return fig


def figure1_aggregate_data(cohort: pd.DataFrame, services: Sequence[str] | None = None) -> pd.DataFrame:
    """Patients by number of modules received, per service type and in total (no microdata).

    The table has the layout of :func:`imr_analysis.table1.table1_long` (one
    categorical variable ``n_modules`` with levels ``"0"`` ... ``"11"``), so
    ``disclosure.apply_to_long`` protects it with the same rules as Table 1 (levels
    sum to the group's denominator, groups sum to ``Total``) before it is plotted.

    Returns
    -------
    DataFrame
        ``variable`` (``"n_modules"``), ``level`` (``"0"``..``"11"``), ``group`` (each
        service type, then ``"Total"``), ``kind`` (``"categorical"``), ``n``
        (patients), ``denominator`` (patients of the group), ``percent``,
        ``n_missing`` (0).

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "CMHC", "SerD"],
    ...     **{f"module_{k:02d}": [k <= 2, k == 1, k == 6] for k in range(1, 12)}})
    >>> agg = figure1_aggregate_data(cohort)
    >>> agg.query("n > 0")[["group", "level", "percent"]].to_numpy().tolist()
    [['CMHC', '1', 50.0], ['SerD', '1', 100.0], ['Total', '1', 66.66666666666667], ['CMHC', '2', 50.0], ['Total', '2', 33.333333333333336]]
    """
    require_columns(cohort, ["service_type", *MODULE_COLUMNS])
    data, groups = select_services(cohort, services)
    n_modules = _module_matrix(data).sum(axis=1)
    levels = range(len(MODULES) + 1)
    counts = pd.crosstab(n_modules, data["service_type"]).reindex(index=levels, columns=groups, fill_value=0)
    counts["Total"] = counts.sum(axis=1)
    long = counts.rename_axis(index="level", columns="group").stack().rename("n").reset_index()
    sizes = counts.sum(axis=0)
    long["n"] = long["n"].astype("int64")
    long["denominator"] = long["group"].map(sizes).astype("int64")
    long["percent"] = 100 * long["n"] / long["denominator"].where(long["denominator"] > 0)
    long["n_missing"] = np.int64(0)
    long["level"] = long["level"].astype("int64").astype("str")
    long["group"] = long["group"].astype("str")
    long["variable"], long["kind"] = "n_modules", "categorical"
    return long[["variable", "level", "group", "kind", "n", "denominator", "percent", "n_missing"]]


def plot_figure1_aggregate(data: pd.DataFrame, title: str | None = None, figsize=(9, 4.5),
                           note: str | None = None, include_total: bool = False):
    """Grouped bars: percent of each service's patients by number of modules received.

    Parameters
    ----------
    data : output of :func:`figure1_aggregate_data`, possibly protected by disclosure
        control (only ``percent`` and ``denominator`` are drawn; a redacted percent is
        left out and marked "r" above the axis; a redacted denominator is shown as
        "n redacted").
    title : figure title.
    note : text printed under the axes (e.g. the disclosure-control rule).
    include_total : also draw the ``Total`` group.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "SerD"],
    ...     **{f"module_{k:02d}": [k <= 2, k == 6] for k in range(1, 12)}})
    >>> fig = plot_figure1_aggregate(figure1_aggregate_data(cohort))
    >>> len(fig.axes[0].containers)
    2
    """
    require_columns(data, ["group", "level", "percent", "denominator"], what="aggregate data")
    setup_matplotlib()
    fig, ax = plt.subplots(figsize=figsize)
    groups = [g for g in pd.unique(data["group"]) if include_total or g != "Total"]
    width = 0.8 / max(len(groups), 1)
    for i, g in enumerate(groups):
        d = data.loc[data["group"].eq(g)]
        n = pd.to_numeric(d["denominator"], errors="coerce").astype("float64").max()
        label = f"{g} (n={n:.0f})" if np.isfinite(n) else f"{g} (n redacted)"
        pct = pd.to_numeric(d["percent"], errors="coerce")
        xs = d["level"].astype("int64").to_numpy(dtype="float64") + (i - (len(groups) - 1) / 2) * width
        ax.bar(xs, pct.fillna(0).to_numpy(), width=width, color=SERVICE_COLOURS.get(g, "0.5"), label=label)
        for xr in xs[pct.isna().to_numpy()]:
            ax.text(xr, 1, "r", ha="center", va="bottom", fontsize=7, color="0.3")
    ax.set_xticks(np.arange(len(MODULES) + 1))
    ax.set_xlabel("Number of modules received")
    ax.set_ylabel("Patients of the service (%)")
    ax.set_ylim(0, 100)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, title="Service")
    ax.set_title(title if title is not None else "Number of IMR modules received, by service", fontsize=11)
    if note:
        fig.text(0.01, 0.0, note, fontsize=7, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.05 if note else 0, 1, 1))
    return fig


HEATMAP_COLUMNS = ["module", "module_label", "service_unit", "service_type", "column_label", "n", "denominator",
                   "percent"]
TOTAL_COLUMN = "All units"


def module_heatmap_data(long: pd.DataFrame, include_total: bool = True) -> pd.DataFrame:
    """Percent of each unit's patients who received each module, from the Table 2 numbers.

    Parameters
    ----------
    long : :func:`imr_analysis.table2.table2_long`, possibly protected by disclosure control:
        redacted counts stay missing (blank cells), unit sizes are the published ones ("n
        redacted" when missing). Units whose size is 0 are left out.
    include_total : add the column ``"All units"`` (all included patients).

    Returns
    -------
    DataFrame
        One row per (module, unit): ``module`` (1-11), ``module_label`` ("M1 Recovery
        Strategies"), ``service_unit``, ``service_type`` (``"All"`` for the total),
        ``column_label`` ("CMHC Cento (n=14)"), ``n``, ``denominator`` (patients of the unit),
        ``percent``.

    Examples
    --------
    >>> long = pd.DataFrame({"unit": ["EDP Ferrara", "CMHC Cento", "All"], "service_type": ["EDP", "CMHC", "All"],
    ...     "level": ["unit", "unit", "total"], "measure": "module_03", "n": [5, 0, 5], "denominator": [5, 0, 5],
    ...     "percent": [100.0, None, 100.0]})
    >>> module_heatmap_data(long)[["column_label", "n", "percent"]].to_numpy().tolist()
    [['EDP Ferrara (n=5)', 5, 100.0], ['All units (n=5)', 5, 100.0]]
    """
    require_columns(long, ["unit", "service_type", "level", "measure", "n", "denominator", "percent"],
                    what="long Table 2")
    keep = long["measure"].isin(MODULE_COLUMNS) & (long["level"].eq("unit")
                                                    | (include_total & long["level"].eq("total")))
    d = long.loc[keep].copy()
    is_unit = d["level"].eq("unit")
    d["service_unit"] = d["unit"].where(is_unit, TOTAL_COLUMN).astype("str")
    d["service_type"] = d["service_type"].where(is_unit, "All").astype("str")
    d["module"] = d["measure"].map(dict(zip(MODULE_COLUMNS, MODULES))).astype("int64")
    d["module_label"] = d["module"].map(MODULE_LEGEND_LABELS).astype("str")
    d["denominator"] = pd.to_numeric(d["denominator"], errors="coerce").astype("float64")
    d = d.loc[d["denominator"].ne(0)]
    d["n"] = pd.to_numeric(d["n"], errors="coerce").astype("Int64")
    d["denominator"] = d["denominator"].astype("Int64")
    d["percent"] = pd.to_numeric(d["percent"], errors="coerce").astype("float64")
    size = d["denominator"].map(lambda v: f"n={v:.0f}" if pd.notna(v) else "n redacted")
    d["column_label"] = d["service_unit"] + " (" + size.astype("str") + ")"
    d["_u"] = d["service_unit"].map({u: i for i, u in enumerate(pd.unique(d["service_unit"]))})
    return d.sort_values(["module", "_u"], kind="stable")[HEATMAP_COLUMNS].reset_index(drop=True)


def plot_module_heatmap(data: pd.DataFrame, title: str | None = None, figsize=(11, 6), cmap: str = "viridis"):
    """Heatmap of :func:`module_heatmap_data`: modules (rows) x units (columns), annotated %.

    Columns keep the order of ``data`` (units grouped by service type, then the total); thick
    white lines separate service types; missing (redacted) cells are blank. ``viridis`` is
    perceptually uniform and readable with colour-vision deficiencies.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> long = pd.DataFrame({"unit": ["CMHC Cento", "All"], "service_type": ["CMHC", "All"], "level": ["unit", "total"],
    ...     "measure": "module_01", "n": [3, 3], "denominator": [4, 4], "percent": [75.0, 75.0]})
    >>> fig = plot_module_heatmap(module_heatmap_data(long))
    >>> [t.get_text() for t in fig.axes[0].texts], [t.get_text() for t in fig.axes[0].get_xticklabels()]
    (['75', '75'], ['CMHC Cento (n=4)', 'All units (n=4)'])
    """
    require_columns(data, ["module_label", "column_label", "percent", "service_type"], what="heatmap data")
    data = data.assign(percent=pd.to_numeric(data["percent"], errors="coerce").astype("float64"))
    setup_matplotlib()
    cols = list(pd.unique(data["column_label"]))
    rows = list(pd.unique(data["module_label"]))
    grid = data.pivot(index="module_label", columns="column_label", values="percent").reindex(index=rows, columns=cols)
    grid = grid.astype("float64")
    fig, ax = plt.subplots(figsize=figsize)
    sns.heatmap(grid, ax=ax, annot=True, fmt=".0f", cmap=cmap, vmin=0, vmax=100, linewidths=0.5,
                linecolor="white", cbar_kws={"label": "Patients receiving the module (%)"},
                annot_kws={"fontsize": 8})
    types = data.drop_duplicates("column_label").set_index("column_label")["service_type"].reindex(cols).to_numpy()
    for i in range(1, len(types)):
        if types[i] != types[i - 1]:
            ax.axvline(i, color="white", linewidth=3)
    ax.set_xlabel("Service unit")
    ax.set_ylabel("")
    ax.tick_params(axis="x", labelrotation=45)
    for lab in ax.get_xticklabels():
        lab.set_horizontalalignment("right")
    ax.set_title(title if title is not None else "IMR modules received, by service unit (% of the unit's patients)",
                 fontsize=11)
    fig.tight_layout()
    return fig
