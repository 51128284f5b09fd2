"""Figure 1 (modules received by each patient) and the module x service-unit heatmap.

* :func:`figure1_data` / :func:`plot_figure1` - the paper's Figure 1: one bar per
  patient, stacked unit-height segments coloured by module, bars grouped by service.
  This figure shows individual patients (microdata).
* :func:`figure1_aggregate_data` / :func:`plot_figure1_aggregate` - a non-microdata
  alternative for private data: per service type, the distribution of the number of
  modules received (percent of patients), no individual bars.
* :func:`module_heatmap_data` / :func:`plot_module_heatmap` - supplementary figure:
  percent of patients receiving each module in each service unit, annotated.

Save figures with :func:`imr_analysis.figio.save_figure` (byte-stable PNG/PDF/SVG).

Colours
-------
The 11 module colours are Paul Tol's colour-blind-safe "muted" scheme (9 colours,
M1-M9) plus "pale grey" and "pear" from his "light" scheme (M10, M11): P. Tol,
*Colour Schemes*, SRON technical note SRON/EPS/TN/09-002, issue 3.2 (2021),
https://personal.sron.nl/~pault/. Adding these two keeps the smallest pairwise
CIELAB distance (CIE 1976 Delta E*ab) of the set, under normal vision and simulated deuteranopia and
protanopia (Machado et al. 2009), equal to that of the muted scheme alone.
Service types use Tol's "bright" blue, red and green.

Examples
--------
>>> import pandas as pd
>>> cohort = pd.DataFrame({"patient_id": ["a", "b", "c"], "service_type": ["SerD", "CMHC", "CMHC"],
...     **{f"module_{k:02d}": [k == 6, k <= 2, k == 1] for k in range(1, 12)}})
>>> figure1_data(cohort)[["patient_id", "n_modules", "x"]].to_numpy().tolist()
[['b', 2, 0.0], ['c', 1, 1.0], ['a', 1, 5.0]]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .constants import MODULE_COLUMNS, MODULES, SERVICE_UNITS
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
FIGURE1_CAPTION = (
    "Each bar corresponds to a single patient. Each colour represents a single module. On the x-axis "
    "the services that provided IMR; on the y-axis the number of modules administered to each individual. "
    "CMHC: Community Mental Health Centres; SerD: Services for Addictions and Dependence; "
    "EDP: Eating Disorders Programme."
)
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
    >>> import pandas as pd
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


def _setup():
    from .figio import setup_matplotlib

    setup_matplotlib()
    import matplotlib.pyplot as plt

    return plt


def _module_handles():
    from matplotlib.patches import Patch

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
    >>> import pandas as pd
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
    plt = _setup()
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
    >>> import pandas as pd
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
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "SerD"],
    ...     **{f"module_{k:02d}": [k <= 2, k == 6] for k in range(1, 12)}})
    >>> fig = plot_figure1_aggregate(figure1_aggregate_data(cohort))
    >>> len(fig.axes[0].containers)
    2
    """
    require_columns(data, ["group", "level", "percent", "denominator"], what="aggregate data")
    plt = _setup()
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


def _column_labels(units: pd.Series, sizes: pd.Series) -> pd.Series:
    size = pd.to_numeric(sizes, errors="coerce")
    text = size.map(lambda v: f"n={v:.0f}" if pd.notna(v) else "n redacted")
    return units.astype("str") + " (" + text.astype("str") + ")"


def module_heatmap_data(cohort: pd.DataFrame, services: Sequence[str] | None = None,
                        include_total: bool = True) -> pd.DataFrame:
    """Percent of patients receiving each module in each service unit.

    Units with no patient are left out. With ``include_total`` a last column
    ``"All units"`` gives the percent over all included patients. For a
    disclosure-protected version build it from the protected Table 2 long table with
    :func:`module_heatmap_from_long` (same output).

    Returns
    -------
    DataFrame
        One row per (module, unit): ``module`` (1-11), ``module_label``
        ("M1 Recovery Strategies"), ``service_unit``, ``service_type`` (``"All"``
        for the total), ``column_label`` ("CMHC Cento (n=14)"), ``n`` (receiving the
        module), ``denominator`` (patients of the unit), ``percent``.

    Examples
    --------
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "CMHC", "SerD"],
    ...     "service_unit": ["CMHC Cento", "CMHC Cento", "SerD Cento"],
    ...     **{f"module_{k:02d}": [k == 1, False, k == 6] for k in range(1, 12)}})
    >>> hm = module_heatmap_data(cohort)
    >>> hm.query("module == 1")[["column_label", "percent"]].to_numpy().tolist()
    [['CMHC Cento (n=2)', 50.0], ['SerD Cento (n=1)', 0.0], ['All units (n=3)', 33.333333333333336]]
    """
    require_columns(cohort, ["service_type", "service_unit", *MODULE_COLUMNS])
    data, groups = select_services(cohort, services)
    mods = _module_matrix(data).astype("int64")
    sums = mods.groupby(data["service_unit"]).sum()
    sizes = data["service_unit"].value_counts()
    unit_type = data.drop_duplicates("service_unit").set_index("service_unit")["service_type"]
    known = [u for u in SERVICE_UNITS if u in sizes.index]
    extra = sorted(set(sizes.index) - set(known))
    units = sorted(known + extra, key=lambda u: (groups.index(unit_type[u]), (known + extra).index(u)))
    sums, sizes = sums.reindex(units), sizes.reindex(units)
    types = unit_type.reindex(units)
    if include_total:
        sums.loc[TOTAL_COLUMN] = mods.sum(axis=0)
        sizes.loc[TOTAL_COLUMN] = len(data)
        types.loc[TOTAL_COLUMN] = "All"
    long = sums.rename_axis(index="service_unit", columns="column").stack().rename("n").reset_index()
    long["module"] = long["column"].map(dict(zip(MODULE_COLUMNS, MODULES))).astype("int64")
    long["module_label"] = long["module"].map(MODULE_LEGEND_LABELS)
    long["service_type"] = long["service_unit"].map(types)
    long["denominator"] = long["service_unit"].map(sizes).astype("int64")
    long["n"] = long["n"].astype("int64")
    long["percent"] = 100 * long["n"] / long["denominator"]
    long["column_label"] = _column_labels(long["service_unit"], long["denominator"])
    long["_u"] = long["service_unit"].map({u: i for i, u in enumerate(sums.index)})
    long = long.sort_values(["module", "_u"], kind="stable").drop(columns=["_u", "column"]).reset_index(drop=True)
    for c in ["module_label", "service_unit", "service_type", "column_label"]:
        long[c] = long[c].astype("str")
    return long[HEATMAP_COLUMNS]


def module_heatmap_from_long(long: pd.DataFrame, include_total: bool = True) -> pd.DataFrame:
    """Heatmap data from a Table 2 long table (:func:`imr_analysis.table2.table2_long`).

    Use it with the table protected by ``disclosure.apply_to_long``: redacted counts
    and percentages stay missing (blank cells), the unit sizes in the labels are the
    published (rounded) ones, and a redacted unit size reads "n redacted". Units
    whose published size is 0 are left out.

    Returns
    -------
    DataFrame
        As :func:`module_heatmap_data`.

    Examples
    --------
    >>> import pandas as pd
    >>> long = pd.DataFrame({"unit": ["EDP Ferrara", "All"], "service_type": ["EDP", "All"],
    ...     "level": ["unit", "total"], "measure": "module_03", "n": [5, 5], "denominator": [5, 5],
    ...     "percent": [100.0, 100.0]})
    >>> module_heatmap_from_long(long)[["column_label", "percent"]].to_numpy().tolist()
    [['EDP Ferrara (n=5)', 100.0], ['All units (n=5)', 100.0]]
    """
    require_columns(long, ["unit", "service_type", "level", "measure", "n", "denominator", "percent"],
                    what="long Table 2")
    keep = long["measure"].isin(MODULE_COLUMNS) & (long["level"].eq("unit")
                                                    | (include_total & long["level"].eq("total")))
    d = long.loc[keep].copy()
    d["service_unit"] = d["unit"].where(d["level"].eq("unit"), TOTAL_COLUMN).astype("str")
    d["service_type"] = d["service_type"].where(d["level"].eq("unit"), "All").astype("str")
    d["module"] = d["measure"].map(dict(zip(MODULE_COLUMNS, MODULES))).astype("int64")
    d["module_label"] = d["module"].map(MODULE_LEGEND_LABELS).astype("str")
    d["denominator"] = pd.to_numeric(d["denominator"], errors="coerce").astype("float64")
    d = d.loc[d["denominator"].ne(0)]
    d["n"] = pd.to_numeric(d["n"], errors="coerce").astype("Int64")
    d["denominator"] = d["denominator"].astype("Int64")
    d["percent"] = pd.to_numeric(d["percent"], errors="coerce").astype("float64")
    d["column_label"] = _column_labels(d["service_unit"], d["denominator"])
    order = {u: i for i, u in enumerate(pd.unique(d["service_unit"]))}
    d["_u"] = d["service_unit"].map(order)
    d = d.sort_values(["module", "_u"], kind="stable")
    return d[HEATMAP_COLUMNS].reset_index(drop=True)


def plot_module_heatmap(data: pd.DataFrame, title: str | None = None, figsize=(11, 6), cmap: str = "viridis"):
    """Heatmap of :func:`module_heatmap_data`: modules (rows) x units (columns), annotated %.

    Columns keep the order of ``data`` (units grouped by service type, then the
    total); thick white lines separate service types. Missing (redacted) cells are
    left blank. ``viridis`` is perceptually
    uniform and readable with colour-vision deficiencies.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "SerD"], "service_unit": ["CMHC Cento", "SerD Cento"],
    ...     **{f"module_{k:02d}": [k == 1, k == 6] for k in range(1, 12)}})
    >>> fig = plot_module_heatmap(module_heatmap_data(cohort))
    >>> len(fig.axes[0].get_yticklabels())
    11
    """
    require_columns(data, ["module_label", "column_label", "percent", "service_type"], what="heatmap data")
    data = data.assign(percent=pd.to_numeric(data["percent"], errors="coerce").astype("float64"))
    plt = _setup()
    import seaborn as sns

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



FIGURE1_STEM = "figure1_modules_per_patient"
FIGURE1_AGGREGATE_STEM = "figure1_modules_aggregate"


def figure1_for_profile(cohort, profile, services=None):
    """Figure 1 in the form a disclosure profile allows.

    With a profile that allows microdata (``none``, the default on synthetic data) this is
    the paper's figure, one bar per patient, saved as ``figure1_modules_per_patient``.
    Otherwise it is the aggregate version (patients by number of modules, per service),
    with disclosure control applied to its counts, saved under a different name,
    ``figure1_modules_aggregate``, so a per-patient file is never produced on private data.

    Parameters
    ----------
    cohort : pandas.DataFrame
        The cleaned cohort.
    profile : disclosure profile (name or Profile).
    services : optional service types to include.

    Returns
    -------
    tuple
        ``(figure, stem, report)``: the matplotlib figure, the file stem to save it
        under, and the disclosure report of its data (empty when nothing was done).

    Examples
    --------
    >>> fig, stem, report = figure1_for_profile(load_cohort(), "none")  # doctest: +SKIP
    >>> stem
    'figure1_modules_per_patient'
    """
    import pandas as pd

    from . import disclosure

    policy = disclosure.figure_policy(profile)
    if policy["figure1"] == "per_patient":
        return plot_figure1(figure1_data(cohort, services=services)), FIGURE1_STEM, pd.DataFrame()
    aggregate, report = disclosure.apply_to_long(figure1_aggregate_data(cohort, services=services), profile,
                                                 "figure1_aggregate")
    return plot_figure1_aggregate(aggregate, note=policy["note"]), FIGURE1_AGGREGATE_STEM, report
