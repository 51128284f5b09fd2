"""The cohort explorer of notebook 07: slice the cohort with controls, see the tables and the figure follow.

:func:`slice_view` computes what the explorer shows for one selection (:func:`imr_analysis.selection.select`):
Table 1, Table 2, Figure 1 and a summary of the patient-level agreement of the IMRS totals, by the calls
notebooks 02-05 make, every value through the notebook's disclosure profile (:meth:`imr_analysis.publish.Run.show`
and the figure policy); the size of the selection is shown as the profile allows. :class:`Explorer` lays out the
controls (ipywidgets) and redraws on every change; its button saves the selection's tables and figure, with a
colophon naming the selection (:func:`save_view`), under the git-ignored scratch folder, never in ``tables/``,
``figures/`` or ``data/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd

from imr_analysis import agreement, export, figio, paths, publish, selection, table1, table2
from imr_workflow import colophon
from imr_workflow.display import display_table

#: Resamples of the Monte-Carlo chi-square and of the bootstrap CIs: fewer than notebooks 02-03 (10000), so
#: that a slice is redrawn in about a second; the explorer says so under its tables.
N_RESAMPLES = 1000
#: The list filters of :func:`imr_analysis.selection.select`, with the labels of their controls.
LIST_FILTERS = {"services": "Service type", "service_units": "Service unit", "diagnosis_groups": "Diagnosis group",
                "sex": "Sex", "imr_formats": "IMR format"}
PERIOD_FILTERS = ("imr_start_from", "imr_start_to")
#: The rows of the agreement summary (:func:`imr_analysis.agreement.patient_level_agreement` on the IMRS total).
AGREEMENT_MEASURES = [agreement.ICC_A1, agreement.CCC, agreement.BIAS, agreement.LOA_LOWER, agreement.LOA_UPPER,
                      agreement.PAIRED_T, agreement.WILCOXON]
TABLE_CAPTIONS = {
    "table1": "Table 1. Demographic and clinical characteristics of the IMR participants",
    "table2": "Table 2. Services where IMR was implemented, and IMR modules and sessions administered",
    "agreement": "Agreement between user- and provider-rated IMRS totals (15-75), patient level"}  # + selection
SAVE_FORMATS = {"tables": ("csv", "md", "html"), "figures": ("png", "svg")}


def scratch_dir() -> Path:
    """Where the explorer saves selections: ``explore`` in :func:`imr_analysis.paths.scratch_dir` (git-ignored)."""
    return paths.scratch_dir() / "explore"


def _committed_dirs() -> list[Path]:
    return [paths.tables_dir(), paths.figures_dir(), paths.project_root() / "data", paths.notebooks_dir()]


@dataclasses.dataclass
class SliceView:
    """What the explorer shows for one selection (:func:`slice_view`).

    ``heading`` names the selection and its ``size`` as the profile lets it be shown, or says why nothing is
    shown (then ``selection`` and the tables are ``None``); the tables are display tables after disclosure control,
    ``notes`` their footnotes and ``captions`` their captions (naming the selection) by name, ``figure1`` a
    matplotlib figure saved as ``figure1_stem``.
    """

    criteria: dict
    heading: str
    size: str = ""
    selection: selection.Selection | None = None
    table1: pd.DataFrame | None = None
    table2: pd.DataFrame | None = None
    agreement: pd.DataFrame | None = None
    figure1: object = None
    figure1_stem: str = ""
    notes: dict = dataclasses.field(default_factory=dict)
    captions: dict = dataclasses.field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """No patient to show."""
        return self.selection is None


def criteria_of(**filters) -> dict:
    """The filters of :func:`imr_analysis.selection.select` that restrict something, as plain lists and strings
    (``None``, ``""`` and empty lists keep everyone, as in ``select``, and are left out).

    Examples
    --------
    >>> criteria_of(services=None, sex=("F",), imr_formats=[], imr_start_from="2018-01-01", imr_start_to="")
    {'sex': ['F'], 'imr_start_from': '2018-01-01'}
    """
    if unknown := sorted(set(filters) - set(LIST_FILTERS) - set(PERIOD_FILTERS)):
        raise ValueError(f"unknown filter(s) {unknown}; choose from {[*LIST_FILTERS, *PERIOD_FILTERS]}")
    out = {name: [value] if isinstance(value, str) else list(value) for name in LIST_FILTERS
           if (value := filters.get(name)) is not None and len(value)}
    return out | {name: str(filters[name]) for name in PERIOD_FILTERS if filters.get(name)}


def selection_slug(criteria: Mapping) -> str:
    """A folder name for a selection: its filters in short, and a hash of all of them.

    Examples
    --------
    >>> selection_slug({})
    'all-patients'
    >>> selection_slug({"services": ["CMHC", "SerD"], "sex": ["F"]})
    'services-cmhc-serd_sex-f-df90e89a'
    """
    if not criteria:
        return "all-patients"
    text = "_".join(f"{k}-{'-'.join(v) if isinstance(v, list) else v}" for k, v in criteria.items())
    short = re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-")[:60].rstrip("-_")
    digest = hashlib.sha256(json.dumps(criteria, sort_keys=True).encode()).hexdigest()[:8]
    return f"{short}-{digest}"


def _number(value, digits: int = 2) -> str:
    """A number at ``digits`` decimals; text that disclosure control put in a cell as it is; nothing as "–"."""
    v = table1.finite_number(value)
    if isinstance(value, str) and value.strip():
        return value
    return "–" if v is None else f"{v:.{digits}f}"


def format_agreement(shown: pd.DataFrame, alpha: float = 0.05, digits: int = 2) -> pd.DataFrame:
    """The agreement summary to display: the rows :data:`AGREEMENT_MEASURES` of ``shown``
    (:func:`imr_analysis.agreement.patient_level_agreement` after :meth:`~imr_analysis.publish.Run.show`),
    estimate and CI at ``digits`` decimals, ``p`` as in the tables (:func:`imr_analysis.table1.format_p`).

    Examples
    --------
    >>> shown = pd.DataFrame({"measure": [agreement.BIAS], "estimate": [0.92], "ci_low": [-0.4], "ci_high": [2.2],
    ...                       "n": [120], "p": [float("nan")], "note": [""]})
    >>> format_agreement(shown).iloc[0].tolist()
    ['Bland-Altman bias (user - provider)', '0.92', '-0.40 to 2.20', '120', '']
    """
    rows = shown.loc[shown["measure"].isin(AGREEMENT_MEASURES)]
    ci = f"{round(100 * (1 - alpha))}% CI"
    return pd.DataFrame({
        "Measure": rows["measure"].astype(str),
        "Estimate": [_number(v, digits) for v in rows["estimate"]],
        ci: ["" if _number(lo) == "–" and _number(hi) == "–" else f"{_number(lo, digits)} to {_number(hi, digits)}"
             for lo, hi in zip(rows["ci_low"], rows["ci_high"])],
        "n": [_number(v, 0) for v in rows["n"]],
        "p": [table1.format_p(v) for v in rows["p"]]}).reset_index(drop=True)


def agreement_notes(alpha: float = 0.05) -> list[str]:
    """The footnotes of the agreement summary (:func:`format_agreement`)."""
    level = round(100 * (1 - alpha))
    return [f"Patients with both a user- and a provider-rated IMRS total (n). {level}% CI: of the ICC from its F "
            "distribution (pingouin), of Lin's CCC by Fisher's z, of the bias and of the mean difference t intervals, "
            "of the limits of agreement exact (Carkeet 2015); limits of agreement: bias -/+ 1.96 SD of the "
            "differences.",
            "p: two-sided, unadjusted: ICC, F test of ICC = 0; bias and paired t-test, t test of a zero mean "
            "difference; Wilcoxon signed-rank test, zero differences dropped. Notebook 05 has every measure, by "
            "service too."]


def slice_view(cohort: pd.DataFrame, run: publish.Run, criteria: Mapping | None = None, alpha: float = 0.05,
               seed: int = 0, n_resamples: int = N_RESAMPLES, max_missing: int = 0,
               quantile_method: str = table1.QUANTILE_METHOD) -> SliceView:
    """What the explorer shows for the selection ``criteria`` (:func:`criteria_of`) of ``cohort``.

    Table 1 and Table 2 are those of notebooks 02 and 03 (their long tables and tests through ``run.show``,
    then formatted); the agreement summary holds :data:`AGREEMENT_MEASURES` of notebook 05's patient-level
    agreement on the total; Figure 1 follows :meth:`imr_analysis.publish.Run.figure1`. A selection without patients gives a
    :class:`SliceView` with only a ``heading`` saying so.
    """
    criteria = criteria_of(**(criteria or {}))
    try:
        sel = selection.select(cohort, **criteria)
    except selection.EmptySelectionError as err:
        return SliceView(criteria, f"No patients to show: {err}.")
    data, services = sel.cohort, sel.services
    long1 = run.show(table1.table1_long(data, services=services, quantile_method=quantile_method), "table1",
                     kind="long")
    tests1 = run.show(table1.table1_tests(data, services=services, alpha=alpha, seed=seed, n_resamples=n_resamples),
                      "table1_tests", kind="tests")
    long2 = run.show(table2.table2_long(data, services=services, all_units=False), "table2", kind="long")
    tests2 = run.show(table2.table2_tests(data, services=services, alpha=alpha, seed=seed, n_resamples=n_resamples),
                      "table2_tests", kind="tests")
    patient = run.show(agreement.patient_level_agreement(data, on="total", max_missing=max_missing, alpha=alpha),
                       "imrs_patient_level", counts=agreement.COUNT_MEASURES)
    fig, stem = run.figure1(data, services, record=False)
    plt.close(fig)  # kept for saving; not shown by the inline backend at the end of the cell
    resampling = (f"Monte-Carlo chi-square and bootstrap CIs with {n_resamples} resamples (seed {seed}); "
                  "notebooks 02-03 use 10000, so a p or a CI here can differ slightly from theirs.")
    size = publish.cohort_size_line(len(data), run.profile, "patients")
    return SliceView(criteria, f"{sel.describe()}: {size}", size, sel, table1.format_table1(long1, tests1),
                     table2.format_table2(long2, tests2), format_agreement(patient, alpha), fig, stem, notes={
                         "selection": [table1.describe_comparisons(services), *sel.notes],
                         "resampling": [resampling],
                         "table1": table1.table1_notes(tests1, quantile_method, n_resamples, seed, alpha),
                         "table2": table2.table2_notes(tests2, alpha, n_resamples, seed),
                         "agreement": agreement_notes(alpha)},
                     captions={name: sel.caption(text) for name, text in TABLE_CAPTIONS.items()})


def show(view: SliceView, name: str):
    """Table ``name`` (``"table1"``, ``"table2"``, ``"agreement"``) of ``view`` as every notebook shows a table
    (:func:`imr_workflow.display.display_table`), with its caption and footnotes."""
    return display_table(getattr(view, name), caption=view.captions[name], notes=view.notes[name])


def figure_png(fig, dpi: int = 72) -> bytes:
    """``fig`` as PNG bytes to show on screen (the saved files keep their resolution)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_view(view: SliceView, run: publish.Run, folder: str | Path | None = None,
              settings: Mapping | None = None) -> list[Path]:
    """Write ``view``'s tables (:data:`SAVE_FORMATS`, with their footnotes) and Figure 1, and a colophon naming
    the selection (``colophon.json``, ``README.md``), to ``folder`` (default
    ``scratch/explore/<selection_slug>``); return the paths. ``settings``: the explorer's (alpha, seed,
    resamples), recorded in the colophon. A folder inside ``tables/``, ``figures/``, ``data/`` or
    ``notebooks/`` is refused: the committed record is written only by the runner.
    """
    if view.empty:
        raise ValueError(f"nothing to save: {view.heading}")
    folder = Path(folder) if folder is not None else scratch_dir() / selection_slug(view.criteria)
    resolved = folder.resolve()
    if committed := [d for d in _committed_dirs() if resolved == d.resolve() or resolved.is_relative_to(d.resolve())]:
        raise ValueError(f"refusing to save a selection into {paths.display_path(committed[0])}: the committed "
                         f"record is written only by the runner; save under {paths.display_path(scratch_dir())}")
    written = []
    for name in ("table1", "table2", "agreement"):
        notes = view.notes[name] + view.notes["resampling"] * (name != "agreement") + view.notes["selection"]
        written += export.export_table(getattr(view, name), folder, name, SAVE_FORMATS["tables"],
                                       caption=view.captions[name], notes=notes)
    written += figio.save_figure(view.figure1, folder, view.figure1_stem, formats=SAVE_FORMATS["figures"], dpi=150)
    facts = colophon.build_colophon(data_dir=run.raw, data_mode=run.data_mode, parameters={
        **(settings or {}), "disclosure_profile": run.profile.name,
        "allow_weaker_profile": bool(run.profile.weaker_than_default)})
    facts["selection"] = {"description": view.selection.describe(), "filters": view.selection.filters,
                          "notes": list(view.selection.notes), "size": view.size}
    written.append(colophon.write_colophon_json(facts, folder / "colophon.json"))
    readme = folder / "README.md"
    readme.write_text("\n".join([
        f"# Selection: {view.selection.describe()}", "", view.heading, "",
        *[f"- {note}" for note in view.selection.notes], *([""] if view.selection.notes else []),
        "Saved by the cohort explorer (notebook 07_explore), outside the committed record.", "",
        colophon.colophon_markdown(facts, facts["parameters"]).replace(
            "Parameters injected into this notebook:", "The explorer's settings and the selection's filters:"),
        ""]), encoding="utf-8")
    return written + [readme]


class Explorer:
    """The explorer's controls and outputs (ipywidgets); a change of a control redraws the four outputs.

    ``cohort`` and ``run`` as for :func:`slice_view`; the keyword arguments of :func:`criteria_of` set the
    controls at start (default: everyone). Show it as a cell's last value; :attr:`view` is what it shows.
    """

    def __init__(self, cohort: pd.DataFrame, run: publish.Run, alpha: float = 0.05, seed: int = 0,
                 n_resamples: int = N_RESAMPLES, max_missing: int = 0, quantile_method: str = table1.QUANTILE_METHOD,
                 folder: str | Path | None = None, **filters):
        start = criteria_of(**filters)
        selection.select(cohort, **{k: v for k, v in start.items() if v})  # bad values: the error names them
        self.cohort, self.run, self.folder = cohort, run, folder
        self.settings = {"alpha": alpha, "seed": seed, "n_resamples": n_resamples, "max_missing": max_missing,
                         "quantile_method": quantile_method}
        options = selection.choices(cohort)
        self.boxes = {name: {value: widgets.Checkbox(
            value=name not in start or value in start[name], indent=False,
            description=selection.LABELS.get(name, {}).get(value, value), layout=widgets.Layout(width="auto"))
            for value in options[name]} for name in LIST_FILTERS}
        months = (pd.period_range(*options["imr_start"], freq="M") if options["imr_start"]
                  else pd.PeriodIndex([], freq="M"))
        self.months = [(f"{m:%b %Y}", m) for m in months]
        first = pd.Period(start.get("imr_start_from", options["imr_start"][0]), freq="M")
        last = pd.Period(start.get("imr_start_to", options["imr_start"][-1]), freq="M")
        self.period = widgets.SelectionRangeSlider(
            options=self.months,
            index=(max(0, months.searchsorted(first)), min(len(months) - 1, months.searchsorted(last))),
            description="IMR start", continuous_update=False, layout=widgets.Layout(width="95%"),
            style={"description_width": "initial"})
        self.heading = widgets.HTML()
        self.heading.add_class("imr-explorer-heading")
        self.outputs = {"Table 1": widgets.HTML(), "Table 2": widgets.HTML(), "Figure 1": widgets.Image(format="png"),
                        "Agreement": widgets.HTML()}
        for output in self.outputs.values():
            output.add_class("imr-explorer-output")
        self.tabs = widgets.Tab(children=list(self.outputs.values()), titles=list(self.outputs))
        self.save_button = widgets.Button(description="Save this selection", icon="save",
                                          tooltip="Write the tables and the figure of this selection to scratch/",
                                          layout=widgets.Layout(width="auto"))
        self.saved = widgets.HTML()
        self.save_button.on_click(self.save)
        for box in (b for group in self.boxes.values() for b in group.values()):
            box.observe(self.update, names="value")
        self.period.observe(self.update, names="value")
        columns = [widgets.VBox([widgets.HTML(f"<b>{LIST_FILTERS[name]}</b>"), *self.boxes[name].values()],
                                layout=widgets.Layout(margin="0 1.5em 0 0")) for name in LIST_FILTERS]
        self.widget = widgets.VBox([widgets.HBox(columns, layout=widgets.Layout(flex_flow="row wrap")), self.period,
                                    self.heading, self.tabs, widgets.HBox([self.save_button, self.saved])])
        self.view: SliceView | None = None
        self.update()

    def unticked(self) -> list[str]:
        """The filters with no value ticked (they select no one)."""
        return [name for name, boxes in self.boxes.items() if not any(box.value for box in boxes.values())]

    def criteria(self) -> dict:
        """The selection the controls describe (:func:`criteria_of`): a filter with every box ticked is left out,
        and so is an end of the period left at the first or last month."""
        out = {name: [v for v, box in boxes.items() if box.value] for name, boxes in self.boxes.items()}
        out = {name: ticked for name, ticked in out.items() if len(ticked) < len(self.boxes[name])}
        if self.months:
            (low, high), (first, last) = self.period.index, self.period.value
            out |= {"imr_start_from": f"{first.start_time:%Y-%m-%d}"} if low > 0 else {}
            out |= {"imr_start_to": f"{last.end_time:%Y-%m-%d}"} if high < len(self.months) - 1 else {}
        return criteria_of(**out)

    def update(self, change=None) -> SliceView:
        """Recompute :func:`slice_view` for the controls' selection and redraw; return it."""
        if self.view is not None and self.view.figure1 is not None:
            plt.close(self.view.figure1)
        if unticked := self.unticked():
            names = " and no ".join(LIST_FILTERS[name].lower() for name in unticked)
            view = SliceView(self.criteria(), f"No patients to show: no {names} is ticked.")
        else:
            view = slice_view(self.cohort, self.run, self.criteria(), **self.settings)
        self.view = view
        notes = [*view.notes.get("selection", []), *view.notes.get("resampling", [])]
        self.heading.value = (f"<p><b>{html.escape(view.heading)}</b></p>"
                              + "".join(f"<p style='font-size:0.85em'>{html.escape(n)}</p>" for n in notes))
        self.tabs.layout.display = "none" if view.empty else None
        self.save_button.disabled = view.empty
        self.saved.value = ""
        if not view.empty:
            for title, name in (("Table 1", "table1"), ("Table 2", "table2"), ("Agreement", "agreement")):
                self.outputs[title].value = show(view, name).html
            self.outputs["Figure 1"].value = figure_png(view.figure1)
        return view

    def save(self, button=None) -> list[Path]:
        """:func:`save_view` of the current view; says where it went under the button."""
        written = save_view(self.view, self.run, self.folder, {**self.settings, **self.view.criteria})
        where = paths.display_path(written[-1].parent)
        self.saved.value = f"saved {len(written)} files to <code>{html.escape(where)}</code>"
        return written

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "Cohort explorer: the controls and outputs need a running kernel (JupyterLab)."
        return bundle
