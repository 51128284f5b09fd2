"""On private data, nothing a notebook prints or a report holds shows a small count.

The whole compendium is run on a generated cohort of 40 patients whose exports carry no
synthetic marker (so it is private data, default profile ``opensafely``): its services have
groups of a few patients, one form row is excluded and some columns miss a value or two.
Then every output of every cell of every executed notebook, the HTML reports, the colophon,
the one-page replication summary (all of it) and every table and figure file are read, and every number that counts patients or records
must be what the profile allows: 0, ``[REDACTED]``, or a count rounded to a multiple of 5
(so never 1-7, and never an exact count above 7 either).

``data/processed`` is not inspected: the cohort and its flow are patient-level by design,
stay with the data and are never released (DISCLOSURE.md).

Counts are recognised by where they stand: in a column named as a count (``n``,
``records``, ``patients``, ``missing``, ...), in a header ``(n=...)``, in an ``n (%)`` cell,
or in text as ``n = ...`` or ``... patients/records``. The detector is itself tested on
text and tables that leak.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from imr_analysis import paths
from imr_workflow import bundle
from imr_workflow.runner import discover_notebooks, run_notebooks
from imr_workflow.scan import scan_paths
from imr_synth.generator import write_exports

COUNT_COLUMNS = {"n", "n_missing", "denominator", "records", "patients", "missing", "non_missing", "excluded",
                 "included", "count", "n_patients", "n_pairs"}
#: A number not part of a range (1-7), a decimal or an exponent, nor a threshold ("at least 3").
_NUMBER = (r"(?<![-\d.,e])(?<!least )(?<!than )(?<!below )(?<!under )(?<!over )(?<!<= )(?<!< )(?<!≤ )"
           r"(\d+)(?![-\d.])")
TEXT_COUNT = [
    re.compile(_NUMBER + r"[ \t]+(?:patients|patient\b|records?|persons|people|users|programmes|form rows?)\b", re.I),
    re.compile(r"\bn\s*=\s*" + _NUMBER + r"(?!\s*items)", re.I),
]
#: Columns holding the paper's own words and numbers (notebook 06), not the department's: on
#: private data its ``reason`` column keeps only the verdicts about the paper (reproduce.public_check).
PAPER_COLUMNS = {"quote", "published", "reason"}
N_PERCENT = re.compile(r"^\s*(\d+)\s*\(\s*\d+(?:\.\d+)?\s*\\?%\s*\)")


def count_problem(value) -> bool:
    """A shown count breaks the profile: 1-7, or an exact count not rounded to 5."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False  # [REDACTED], empty, text
    return v == v and v != 0 and (1 <= v <= 7 or v % 5 != 0)


def table_problems(df: pd.DataFrame, where: str) -> list[str]:
    found = []
    for j, col in enumerate(df.columns):
        name = " ".join(map(str, col)) if isinstance(col, tuple) else str(col)
        for m in re.finditer(r"\(n\s*=\s*(\d+)\)", name):
            if count_problem(m.group(1)):
                found.append(f"{where}: header {name!r}")
        if name.strip().lower() in PAPER_COLUMNS:
            continue
        values = df.iloc[:, j].tolist()
        if name.strip().lower() in COUNT_COLUMNS:
            found += [f"{where}: column {name!r} shows {v!r}" for v in values if count_problem(v)]
        for v in values:
            m = N_PERCENT.match(str(v))
            if m and count_problem(m.group(1)):
                found.append(f"{where}: column {name!r} shows {v!r}")
    return found


def text_problems(text: str, where: str) -> list[str]:
    found = []
    for pattern in TEXT_COUNT:
        for m in pattern.finditer(text):
            if count_problem(m.group(1)):
                start = max(m.start() - 60, 0)
                found.append(f"{where}: ...{text[start:m.end() + 20]!r}...")
    for cell in re.split(r"[|&\n]", text):  # Markdown and LaTeX table cells
        m = N_PERCENT.match(cell)
        if m and count_problem(m.group(1)):
            found.append(f"{where}: cell {cell.strip()!r}")
    return found


def html_tables(html: str) -> list[pd.DataFrame]:
    """Every <table> as a DataFrame of cell texts (the last header row names the columns)."""
    from bs4 import BeautifulSoup

    tables = []
    for table in BeautifulSoup(html, "html.parser").find_all("table"):
        head = [[c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])]
                for tr in table.find_all("tr") if tr.find_parent("thead") is not None]
        body = [[c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])]
                for tr in table.find_all("tr") if tr.find_parent("thead") is None]
        width = max(map(len, head + body), default=0)
        columns = (head[-1] if head else [f"column {j}" for j in range(width)])
        columns = columns + [f"column {j}" for j in range(len(columns), width)]
        tables.append(pd.DataFrame([r + [""] * (width - len(r)) for r in body], columns=columns[:width]))
    return tables


def text_tables(text: str, suffix: str) -> tuple[list[pd.DataFrame], str]:
    """The Markdown pipe tables (or LaTeX tabular rows) of ``text``, and the text outside them."""
    tables, rest, block = [], [], []
    is_row = (lambda line: line.startswith("|")) if suffix == ".md" else (lambda line: line.rstrip().endswith("\\\\"))

    def flush():
        rows = [r for r in block if not re.fullmatch(r"[|:\- ]+", r)]
        if rows:
            split = [[c.strip() for c in (r.strip().strip("|").split("|") if suffix == ".md"
                                          else r.strip().removesuffix("\\\\").split(" & "))] for r in rows]
            width = max(map(len, split))
            header = split[0] + [""] * (width - len(split[0]))
            tables.append(pd.DataFrame([r + [""] * (width - len(r)) for r in split[1:]], columns=header))
        block.clear()

    for line in text.splitlines():
        if suffix == ".tex" and line.strip() in ("\\midrule", "\\endhead", "\\hline"):
            continue
        if is_row(line):
            block.append(line)
        else:
            flush()
            rest.append(line)
    flush()
    return tables, "\n".join(rest)


def html_problems(html: str, where: str) -> list[str]:
    found = []
    for i, df in enumerate(html_tables(html)):
        found += table_problems(df, f"{where} table {i}")
    body = re.sub(r"<style.*?</style>|<script.*?</script>|<table.*?</table>", " ", html, flags=re.S)
    return found + text_problems(re.sub(r"<[^>]+>", " ", body), where)


def notebook_problems(path: Path) -> list[str]:
    """Every output of every code cell, and the colophon (the narrative is the same in every run)."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        where = f"{path.name} cell {i}"
        if cell.cell_type == "markdown":
            if "colophon" in cell.get("metadata", {}).get("tags", []):
                found += text_problems(cell.source, where)
            continue
        for out in cell.get("outputs", []):
            if "text" in out:
                found += text_problems(out["text"], where)
            data = out.get("data", {})
            if "text/html" in data:
                found += html_problems(data["text/html"], where)
            elif "text/plain" in data:
                found += text_problems(data["text/plain"], where)
    return found


def file_problems(path: Path, root: Path) -> list[str]:
    where = path.relative_to(root).as_posix()
    if path.suffix == ".csv":
        return table_problems(pd.read_csv(path, dtype=str, keep_default_na=False), where)
    if path.suffix == ".ipynb":
        return notebook_problems(path)
    if path.suffix == ".html" and path.parent.name == "reports" and path.stem != "replication_summary":
        # a notebook's rendering: the outputs of its cells (the summary is checked whole, below)
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        areas = soup.select(".jp-OutputArea-output") + soup.select(".celltag_colophon")
        assert areas, f"{where}: no cell output found; has the HTML layout changed?"
        return [msg for area in areas for msg in html_problems(str(area), where)]
    if path.suffix == ".html":
        return html_problems(path.read_text(encoding="utf-8"), where)
    if path.suffix == ".svg":  # matplotlib keeps each text drawn as paths in a comment
        return text_problems("\n".join(re.findall(r"<!-- (.*?) -->", path.read_text(encoding="utf-8"))), where)
    if path.suffix == ".json":
        return text_problems(json.dumps(json.loads(path.read_text(encoding="utf-8"))), where)
    if path.suffix in (".md", ".tex"):
        text = path.read_text(encoding="utf-8")
        tables, rest = text_tables(text, path.suffix)
        return [msg for i, df in enumerate(tables) for msg in table_problems(df, f"{where} table {i}")] + \
            text_problems(rest, where)
    if path.suffix == ".txt":
        return text_problems(path.read_text(encoding="utf-8"), where)
    return []  # PNG and PDF: the same drawing as the SVG


# -- the detector catches leaks ---------------------------------------------------------
def test_detector_catches_small_and_unrounded_counts():
    assert text_problems("74 patients in the cohort", "t")
    assert text_problems("EDP (n = 5)", "t")
    assert not text_problems("75 patients in the cohort; n = 15 items; module 6; 2017-04-01", "t")
    assert not text_problems("counts of 1-7 patients redacted; at least 3 patients; p = 7.4e-09\nPatient-level", "t")
    assert text_problems("excluded: 3 records", "t") and text_problems("(N = 126)", "t")
    assert table_problems(pd.DataFrame({"records": [2, 75], "reason": ["a", "b"]}), "t")
    assert table_problems(pd.DataFrame({"EDP (n=5)": ["1 (20.0%)"]}), "t")
    assert not table_problems(pd.DataFrame({"EDP (n=[REDACTED])": ["[REDACTED]"], "n": [0]}), "t")
    assert html_problems("<table><thead><tr><th>records</th></tr></thead><tr><td>4</td></tr></table>", "t")
    md, _ = text_tables("**T**\n\n| sex | CMHC (n=4) |\n|:--|:--|\n| Male | 3 (75.0%) |\n", ".md")
    tex, _ = text_tables("\\toprule\nsex & SerD (n=10) \\\\\n\\midrule\nMale & 3 (30.0\\%) \\\\\n", ".tex")
    assert len(table_problems(md[0], "t")) == 2 and len(table_problems(tex[0], "t")) == 1


def test_detector_reads_the_whole_summary_page(tmp_path):
    page = tmp_path / "reports" / "replication_summary.html"
    page.parent.mkdir()
    page.write_text("<html><body><p><strong>43 patients</strong> completed IMR</p></body></html>", encoding="utf-8")
    assert file_problems(page, tmp_path)  # no notebook cell in it, and still read


# -- a private run --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def private_run(tmp_path_factory):
    synthetic = tmp_path_factory.mktemp("generated")
    write_exports(synthetic, seed=5, n_patients=40)
    raw = tmp_path_factory.mktemp("exports")
    for path in sorted(synthetic.glob("*.csv")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        (raw / path.name).write_text("".join(lines[1:]), encoding="utf-8")  # marker removed: private
    out = tmp_path_factory.mktemp("private")
    result = run_notebooks(data_dir=raw, output_dir=out, html=True, stream=io.StringIO())
    assert result.data_mode == "private"
    return out


def test_the_generated_cohort_has_small_groups(private_run):
    cohort = pd.read_parquet(private_run / "data" / "processed" / "cohort.parquet")
    flow = pd.read_csv(private_run / "data" / "processed" / "cohort_flow.csv")
    sizes = cohort["service_type"].value_counts()
    assert sizes.between(1, 7).any(), sizes.to_dict()  # a service of a few patients
    excluded = flow[flow["status"] == "excluded"].groupby("source").size()
    assert excluded.between(1, 7).any(), excluded.to_dict()
    missing = cohort.isna().sum()
    assert missing.between(1, 7).any()


def test_every_printed_number_passes_the_profile(private_run):
    files = [p for sub in ("reports", "tables", "figures", "bundle") for p in sorted((private_run / sub).rglob("*"))
             if p.is_file()]
    assert {p.suffix for p in files} >= {".ipynb", ".html", ".csv", ".md", ".tex", ".svg", ".json"}
    notebooks = sorted(p.name for p in discover_notebooks(paths.notebooks_dir()))
    assert sorted(p.name for p in files if p.suffix == ".ipynb") == notebooks and len(notebooks) == 8
    problems = [msg for p in files for msg in file_problems(p, private_run)]
    assert not problems, "\n".join(problems[:40])


def test_the_replication_summary_shows_only_protected_values(private_run):
    """Notebook 06 compared the private cohort with the published one; the one-page summary says how many patients
    as the profile rounds it, links Figure 1 in its aggregate form, and is scanned whole above."""
    md = (private_run / "reports" / "replication_summary.md").read_text(encoding="utf-8")
    long2 = pd.read_csv(private_run / "tables" / "table2_long.csv")
    n = int(long2.query("level == 'total' and measure == 'patients'")["n"].iloc[0])
    assert n % 5 == 0 and f"**{n} patients** completed IMR" in md
    assert "| figure | quote | published | department (95% CI) | difference (95% CI) |" in md
    assert "![Figure 1](../figures/figure1_modules_aggregate.png)" in md and "figure1_modules_per_patient" not in md
    assert "![Figure 2](../figures/figure2_bland_altman.png)" in md and "[REDACTED]" in md
    comparison = pd.read_csv(private_run / "tables" / "replication_comparison.csv")
    assert comparison["note"].fillna("").str.startswith("not computable: ").any()  # a group of a few patients
    assert (comparison["n"].dropna() % 5 == 0).all()


def test_the_private_bundle_holds_only_protected_tables(private_run):
    b = bundle.read_bundle(private_run / "bundle")
    assert (b.name, b.data_mode, b.manifest["disclosure"]["profile"]) == (bundle.UNNAMED, "private", "opensafely")
    for table in bundle.TABLES:  # the tables the notebooks published, as they published them
        assert (b.folder / f"{table}.csv").read_bytes() == (private_run / "tables" / f"{table}.csv").read_bytes()
    assert not scan_paths([b.folder])
    problems = [msg for p in sorted(b.folder.iterdir()) for msg in file_problems(p, private_run)]
    assert not problems, "\n".join(problems[:40])
    assert "exports" not in (b.folder / "colophon.json").read_text(encoding="utf-8")  # no folder of the machine
    t2 = b.outputs["table2_long"]
    counts = pd.to_numeric(pd.concat([t2["n"], t2["denominator"]]), errors="coerce").dropna()
    assert len(counts) and not counts.between(1, 7).any() and (counts % 5 == 0).all()


def test_notebook_08_pools_nothing_on_a_private_run(private_run):
    assert not (private_run / "tables" / "pooled_estimates.csv").exists()
    assert not list((private_run / "figures").glob("forest_*"))
