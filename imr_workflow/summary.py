"""The one-page replication summary a department can share: ``reports/replication_summary.{md,html}``.

After a run in which notebook 06 made the replication comparison, the runner writes one page holding the
cohort's size and flow (counts as the disclosure profile lets them be shown), the comparison with the published
cohort (``tables/replication_comparison.csv``, printed at the paper's precision), Figure 1 and Figure 2 side by
side under the paper's words about them, and the run's colophon. The Markdown links the figures relatively; the
HTML embeds them, so that it is one file to share. Both are the same bytes for the same run: no timestamps beyond
the colophon's facts.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from imr_analysis import disclosure, figure1, publish, replicate, reproduce
from imr_analysis.cohort import flow_summary
from imr_analysis.published import load_published
from imr_workflow import colophon as colophons

STEM = "replication_summary"
FIGURE2_STEM = "figure2_bland_altman"  # notebook 05's file name
#: The paper's words about each figure (ids of ``resources/published_figures.yaml``), shown under it.
FIGURE_QUOTES = {
    "Figure 1": ("res_figure1_n", "res_m1_most_frequent", "res_m1_pct", "res_m9_pct", "res_m6_serd_pct",
                 "res_m6_cmhc_n", "res_edp_m3_m8"),
    "Figure 2": ("res_imrs_significant", "res_imrs_r"),
}
_CAPTIONS = {"Figure 1": "Figure 1: modules received by each patient, by service",
             "Figure 2": "Figure 2 (new: the paper reports only the item-profile r): Bland-Altman plot of user and "
                         "provider IMRS totals"}
_STYLE = ("body {font-family: sans-serif; max-width: 75em; margin: 1em auto; line-height: 1.4}"
          " table {border-collapse: collapse; font-size: 0.9em} th, td {padding: 0.2em 0.6em; text-align: left;"
          " vertical-align: top; border-bottom: 1px solid #ddd} img {max-width: 100%} .anchor-link {display: none}")


def _cell(text) -> str:
    """``text`` safe in a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def _table(df: pd.DataFrame) -> list[str]:
    """``df`` as the lines of a Markdown pipe table, every cell as text."""
    return ["| " + " | ".join(map(_cell, df.columns)) + " |", "|" + "---|" * len(df.columns),
            *("| " + " | ".join(map(_cell, row)) + " |" for row in df.itertuples(index=False))]


def _printed(x, decimals: int, kind: str) -> str:
    return "" if pd.isna(x) else reproduce.print_value(x, decimals) + ("%" if kind == "percent" else "")


def comparison_display(comparison: pd.DataFrame) -> pd.DataFrame:
    """The replication comparison as the summary prints it: each value at the paper's precision.

    Examples
    --------
    >>> row = pd.DataFrame([{"id": "res_men_pct", "quote": "men (61.1%)", "kind": "percent", "published": 61.1,
    ...     "published_sd": float("nan"), "published_n": 126.0, "decimals": 1, "estimate": 55.0, "ci_low": 48.1,
    ...     "ci_high": 61.7, "difference": -6.1, "difference_ci_low": -16.9, "difference_ci_high": 4.9,
    ...     "published_outside_ci": False, "note": ""}])
    >>> comparison_display(row).iloc[0].tolist()
    ['res_men_pct', 'men (61.1%)', '61.1%', '55.0% (48.1% to 61.7%)', '-6.1 (-16.9 to 4.9)', 'no', '']
    """
    def value(r, col, low, high, kind):
        if pd.isna(r[col]):
            return ""
        return f"{_printed(r[col], r['decimals'], kind)} ({_printed(r[low], r['decimals'], kind)} to " \
               f"{_printed(r[high], r['decimals'], kind)})"

    rows = []
    for r in comparison.to_dict("records"):
        published = _printed(r["published"], r["decimals"], r["kind"]) + (
            f" (SD {r['published_sd']:g})" if r["kind"] == "mean" else "")
        flag = r["published_outside_ci"]
        rows.append({"figure": r["id"], "quote": r["quote"], "published": published,
                     "department (95% CI)": value(r, "estimate", "ci_low", "ci_high", r["kind"]),
                     "difference (95% CI)": value(r, "difference", "difference_ci_low", "difference_ci_high", ""),
                     "published outside the CI": "" if pd.isna(flag) else "yes" if flag else "no",
                     "note": r["note"] if isinstance(r["note"], str) else ""})
    return pd.DataFrame(rows)


def _figure(figures: Path, stem: str) -> Path | None:
    return next((p for p in (figures / f"{stem}.png", figures / f"{stem}.svg") if p.is_file()), None)


def _embedded(path: Path) -> str:
    mime = "image/png" if path.suffix == ".png" else "image/svg+xml"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _cohort(tables_dir, processed_dir, profile) -> list[str]:
    """The cohort's size (Table 2's total) and its flow by status and reason, counts as ``profile`` shows them."""
    n = reproduce.read_metrics(reproduce.read_outputs(tables_dir), ["n_patients"])["n_patients"]
    n = publish.protect_counts(pd.DataFrame({"patients": [n]}, dtype="Int64"), profile, ["patients"])["patients"][0]
    lines = ["## Cohort", "", f"**{n} patients** completed IMR (the total of Table 2).", ""]
    flow = Path(processed_dir) / "cohort_flow.csv"
    if flow.is_file():
        records = publish.protect_counts(flow_summary(pd.read_csv(flow)), profile, counts=["records"])
        lines += ["Every record of the three exports, by status and reason:", "", *_table(records), ""]
    return lines


def _comparison(tables_dir) -> list[str]:
    """The replication comparison notebook 06 wrote, as printed, with its footnotes."""
    comparison = pd.read_csv(Path(tables_dir) / "replication_comparison.csv", keep_default_na=False,
                             na_values=[""]).astype({"published_outside_ci": "boolean"})
    context = pd.read_csv(Path(tables_dir) / "replication_context.csv")
    return ["## The department beside the published cohort", "",
            replicate.summary_line(comparison, context) + " (the context: `tables/replication_context.md`).", "",
            *_table(comparison_display(comparison)), "", "Differences of percentages are in percentage points.", "",
            *(f"{note}\n" for note in replicate.NOTES)]


def _figures(figures_dir, profile, link) -> list[str]:
    """Figure 1 (in the form the profile allows) and Figure 2 side by side, the paper's words under each."""
    per_patient = disclosure.figure_policy(profile)["figure1"] == "per_patient"
    stems = {"Figure 1": figure1.FIGURE1_STEM if per_patient else figure1.FIGURE1_AGGREGATE_STEM,
             "Figure 2": FIGURE2_STEM}
    images = {name: f"![{name}]({link(path)})" if (path := _figure(Path(figures_dir), stem)) else
              f"({stem} not drawn: run notebooks 04 and 05)" for name, stem in stems.items()}
    quotes = load_published().set_index("id")["quote"]
    said = {name: "The paper: " + " … ".join(f"“{quotes[i]}”" for i in ids) for name, ids in FIGURE_QUOTES.items()}
    captions = _CAPTIONS | ({} if per_patient else {"Figure 1": _CAPTIONS["Figure 1"] + " (in aggregate form: the "
                                                     "disclosure profile allows no bar per patient)"})
    side_by_side = pd.DataFrame([images, said]).rename(columns=captions)
    return ["## Figure 1 and Figure 2", "", *_table(side_by_side), ""]


def summary_markdown(*, tables_dir, figures_dir, processed_dir, colophon: Mapping[str, Any], reason: str,
                     link=None) -> str:
    """The summary as Markdown; ``link(path)`` is what an image points to (default: the path as given)."""
    profile = disclosure.get_profile(colophon["disclosure"]["profile"])
    colophon = colophons.shareable_colophon(colophon)  # no folder of the department's machine
    head = ["# Replication summary: IMR implementation beside Ferrara et al. (2023)", "",
            f"Audit: **replication**: {reason}. Data: {colophon['data_mode']}. Disclosure control: "
            f"{profile.describe()}. Every number below is as the department's disclosure-controlled tables publish "
            "it.", ""]
    return "\n".join([*head, *_cohort(tables_dir, processed_dir, profile), *_comparison(tables_dir),
                      *_figures(figures_dir, profile, link or (lambda p: Path(p).as_posix())),
                      colophons.colophon_markdown(colophon, into="the notebooks"), ""])


def write_summary(reports_dir, *, tables_dir, figures_dir, processed_dir, colophon: Mapping[str, Any],
                  reason: str) -> list[Path]:
    """Write ``replication_summary.md`` (figures linked relatively) and ``.html`` (figures embedded) to
    ``reports_dir``; return the paths."""
    reports = Path(reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    folders = {"tables_dir": tables_dir, "figures_dir": figures_dir, "processed_dir": processed_dir}
    md = summary_markdown(**folders, colophon=colophon, reason=reason,
                          link=lambda p: Path(os.path.relpath(p, reports)).as_posix())
    page = summary_markdown(**folders, colophon=colophon, reason=reason, link=_embedded)
    html = "\n".join(["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
                      "<title>Replication summary</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
                      markdown2html_mistune(page), "</body>", "</html>", ""])
    paths = [reports / f"{STEM}.md", reports / f"{STEM}.html"]
    for path, text in zip(paths, (md, html)):
        path.write_text(text, encoding="utf-8")
    return paths
