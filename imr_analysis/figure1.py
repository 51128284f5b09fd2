"""Figure 1 (the modules each patient received) and Supplementary Figure S1 (modules by unit).

Figure 1 is drawn per patient (microdata) or, without microdata, as the percentage of each
service's patients by number of modules (in Table 1's layout, so disclosure control protects it
alike); Figure S1 comes from the Table 2 numbers. Colours: Paul Tol's colour-blind-safe "muted"
scheme with "pale grey" and "pear" of his "light" one (SRON/EPS/TN/09-002, 2021; checked for
deuteranopia and protanopia, Machado et al. 2009); services: his "bright" blue, red and green.
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
from .table1 import LONG_COLUMNS, Variable, require_columns, select_services, table1_long

MODULE_COLOURS: dict[int, str] = dict(zip(MODULES, [  # rose, indigo, sand, green, cyan, wine, teal, olive, purple,
    "#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499",
    "#DDDDDD", "#BBCC33"]))  # pale grey, pear
SERVICE_COLOURS = {"CMHC": "#4477AA", "SerD": "#EE6677", "EDP": "#228833"}
MODULE_LEGEND_LABELS = {k: f"M{k} {title}" for k, title in MODULES.items()}
FIGURE1_TITLE = "Modules received by individual patients (N = {n}), and service that administered IMR"
FIGURE1_STEM, FIGURE1_AGGREGATE_STEM = "figure1_modules_per_patient", "figure1_modules_aggregate"  # file names
MAX_PATIENTS = 5000  # plot_figure1 draws one rectangle per module received


def _module_matrix(data: pd.DataFrame) -> pd.DataFrame:  # missing = not received
    return data[MODULE_COLUMNS].astype("boolean").fillna(False).astype(bool)


def figure1_data(cohort: pd.DataFrame, services: Sequence[str] | None = None, gap: float = 3.0) -> pd.DataFrame:
    """One row per patient, in the order and at the position ``x`` of its bar in Figure 1.

    Patients are grouped by service, then sorted by number of modules and module pattern
    (descending: lower-numbered modules first) and ``patient_id``; ``gap`` positions separate
    the services. An ``n_modules`` column that disagrees with the module columns is an error.

    Examples
    --------
    >>> cohort = pd.DataFrame({"patient_id": ["p1", "p2"], "service_type": ["CMHC"] * 2,
    ...     **{f"module_{k:02d}": [k == 3, k in (1, 3)] for k in range(1, 12)}})
    >>> figure1_data(cohort)[["patient_id", "modules", "x"]].to_numpy().tolist()
    [['p2', 'M1;M3', 0.0], ['p1', 'M3', 1.0]]
    """
    require_columns(cohort, ["patient_id", "service_type", *MODULE_COLUMNS])
    data, groups = select_services(cohort, services)
    mods = _module_matrix(data)
    n_modules = mods.sum(axis=1).astype("int64")
    bad = pd.to_numeric(data.get("n_modules", n_modules)).ne(n_modules)
    if bad.any():
        raise ValueError(f"n_modules disagrees with the module columns for {int(bad.sum())} patient(s), "
                         f"e.g. {data.loc[bad, 'patient_id'].head(3).tolist()}")
    labels = pd.Series("", index=data.index, dtype="str")
    for k, c in zip(MODULES, MODULE_COLUMNS):
        labels = labels + np.where(mods[c].to_numpy(), f"M{k};", "")
    out = data[[c for c in ("patient_id", "service_type", "service_unit") if c in data.columns]].astype("str")
    pattern = mods.to_numpy().astype("int64") @ 2 ** np.arange(len(MODULES) - 1, -1, -1)
    out = pd.concat([out.assign(n_modules=n_modules, module_pattern=pattern, modules=labels.str.rstrip(";")), mods],
                    axis=1)
    out["group_index"] = out["service_type"].map({g: i for i, g in enumerate(groups)}).astype("int64")
    out = out.sort_values(["group_index", "n_modules", "module_pattern", "patient_id"],
                          ascending=[True, False, False, True], kind="stable").reset_index(drop=True)
    out.insert(0, "order", np.arange(len(out), dtype="int64"))
    out.insert(1, "x", out["order"] + gap * out["group_index"].astype("float64"))
    return out[["order", "x", "group_index", *out.columns[2:-1]]]


def plot_figure1(data: pd.DataFrame, title: str | None = None, figsize=(13, 5.5),
                 max_patients: int = MAX_PATIENTS):
    """Figure 1 from :func:`figure1_data`: per patient, one unit-high segment per module received.

    Services are labelled with their size; more than ``max_patients`` bars are refused.
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
    top = max(int(data["n_modules"].max()) if len(data) else 0, 1)
    ax.set(ylim=(0, top + 0.5), yticks=np.arange(0, top + 1), ylabel="Number of modules administered",
           xlabel="Service that administered IMR (one bar per patient)")
    if len(data):
        ax.set_xlim(x.min() - 1, x.max() + 1)
    ax.spines[["top", "right"]].set_visible(False)
    handles = [Patch(facecolor=MODULE_COLOURS[k], edgecolor="0.4", linewidth=0.4, label=MODULE_LEGEND_LABELS[k])
               for k in MODULES]
    ax.legend(handles=handles, title="IMR module", loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False, fontsize=8, title_fontsize=9)
    ax.set_title(title if title is not None else FIGURE1_TITLE.format(n=len(data)), fontsize=11)
    fig.tight_layout()
    return fig


def figure1_aggregate_data(cohort: pd.DataFrame, services: Sequence[str] | None = None) -> pd.DataFrame:
    """Patients by number of modules received ("0" to "11"): Table 1's rows for a categorical ``n_modules``.

    Examples
    --------
    >>> cohort = pd.DataFrame({"service_type": ["CMHC", "CMHC", "SerD"],
    ...     **{f"module_{k:02d}": [k <= 2, k == 1, k == 6] for k in range(1, 12)}})
    >>> agg = figure1_aggregate_data(cohort)
    >>> agg.query("n > 0")[["group", "level", "percent"]].round(1).to_numpy().tolist()
    [['CMHC', '1', 50.0], ['SerD', '1', 100.0], ['Total', '1', 66.7], ['CMHC', '2', 50.0], ['Total', '2', 33.3]]
    """
    require_columns(cohort, ["service_type", *MODULE_COLUMNS])
    n_modules = Variable("n_modules", "Modules received", "categorical", tuple(map(str, range(len(MODULES) + 1))))
    long = table1_long(cohort.assign(n_modules=_module_matrix(cohort).sum(axis=1)), services, [n_modules])
    return long[LONG_COLUMNS[:8]]


def plot_figure1_aggregate(data: pd.DataFrame, title: str | None = None, figsize=(9, 4.5),
                           note: str | None = None, include_total: bool = False):
    """Figure 1 without microdata: bars of the percent of each service's patients by modules received.

    ``data`` may be protected: a redacted percent is marked "r", a redacted size reads "n redacted".
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
    ax.set(xticks=np.arange(len(MODULES) + 1), xlabel="Number of modules received",
           ylabel="Patients of the service (%)", ylim=(0, 100))
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


def module_heatmap_from_long(long: pd.DataFrame, include_total: bool = True) -> pd.DataFrame:
    """Percent of each unit's patients who received each module, from (protected) Table 2 numbers.

    A redacted count stays missing, a redacted size reads "n redacted"; empty units are left out.

    Examples
    --------
    >>> long = pd.DataFrame({"unit": ["EDP Ferrara", "CMHC Cento", "All"], "service_type": ["EDP", "CMHC", "All"],
    ...     "level": ["unit", "unit", "total"], "measure": "module_03", "n": [5, 0, 5], "denominator": [5, 0, 5],
    ...     "percent": [100.0, None, 100.0]})
    >>> module_heatmap_from_long(long)[["column_label", "n", "percent"]].to_numpy().tolist()
    [['EDP Ferrara (n=5)', 5, 100.0], ['All units (n=5)', 5, 100.0]]
    """
    require_columns(long, ["unit", "service_type", "level", "measure", "n", "denominator", "percent"],
                    what="long Table 2")
    levels = ["unit", "total"] if include_total else ["unit"]
    size = pd.to_numeric(long["denominator"], errors="coerce").astype("float64")  # a redacted size is kept
    d = long.loc[long["measure"].isin(MODULE_COLUMNS) & long["level"].isin(levels) & size.ne(0)]
    unit = d["unit"].where(d["level"].eq("unit"), TOTAL_COLUMN).astype("str")
    denominator = pd.to_numeric(d["denominator"], errors="coerce").astype("Int64")
    module = d["measure"].map(dict(zip(MODULE_COLUMNS, MODULES))).astype("int64")
    out = pd.DataFrame({
        "module": module, "module_label": module.map(MODULE_LEGEND_LABELS).astype("str"), "service_unit": unit,
        "service_type": d["service_type"].where(d["level"].eq("unit"), "All").astype("str"),
        "column_label": unit + " (" + denominator.map(lambda v: f"n={v:.0f}" if pd.notna(v) else "n redacted") + ")",
        "n": pd.to_numeric(d["n"], errors="coerce").astype("Int64"), "denominator": denominator,
        "percent": pd.to_numeric(d["percent"], errors="coerce").astype("float64")})
    position = out["service_unit"].map({u: i for i, u in enumerate(pd.unique(out["service_unit"]))})
    return out.assign(_u=position).sort_values(["module", "_u"], kind="stable")[HEATMAP_COLUMNS].reset_index(drop=True)


def plot_module_heatmap(data: pd.DataFrame, title: str | None = None, figsize=(11, 6), cmap: str = "viridis"):
    """Heatmap of :func:`module_heatmap_from_long`: modules x units, annotated % (redacted cells blank)."""
    require_columns(data, ["module_label", "column_label", "percent", "service_type"], what="heatmap data")
    data = data.assign(percent=pd.to_numeric(data["percent"], errors="coerce").astype("float64"))
    setup_matplotlib()
    cols = pd.unique(data["column_label"])
    grid = data.pivot(index="module_label", columns="column_label", values="percent")
    grid = grid.reindex(index=pd.unique(data["module_label"]), columns=cols).astype("float64")
    fig, ax = plt.subplots(figsize=figsize)
    sns.heatmap(grid, ax=ax, annot=True, fmt=".0f", cmap=cmap, vmin=0, vmax=100, linewidths=0.5,
                linecolor="white", cbar_kws={"label": "Patients receiving the module (%)"},
                annot_kws={"fontsize": 8})
    types = data.drop_duplicates("column_label").set_index("column_label")["service_type"].reindex(cols).to_numpy()
    for i in np.flatnonzero(types[1:] != types[:-1]) + 1:  # between two service types
        ax.axvline(i, color="white", linewidth=3)
    ax.set(xlabel="Service unit", ylabel="")
    ax.tick_params(axis="x", labelrotation=45)
    for lab in ax.get_xticklabels():
        lab.set_horizontalalignment("right")
    ax.set_title(title if title is not None else "IMR modules received, by service unit (% of the unit's patients)",
                 fontsize=11)
    fig.tight_layout()
    return fig
