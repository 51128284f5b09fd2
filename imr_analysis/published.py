"""The paper's published figures, as data (``resources/published_figures.yaml``).

Only the audit (:mod:`imr_analysis.reproduce`, :mod:`imr_analysis.replicate`) and the synthetic-data
tests read this module; the analyses never see the published numbers.
"""

from __future__ import annotations

from pathlib import Path

from .paths import RESOURCES_DIR

PUBLISHED_FILE = RESOURCES_DIR / "published_figures.yaml"

SECTIONS = ("Abstract", "Introduction", "Methods", "Results", "Discussion")
KINDS = ("count", "percent", "mean", "sd", "min", "max", "r", "p", "statement")
VERDICTS = ("consistent", "paper-inconsistent")
COMPARATORS = ("=", "<", ">")
COLUMNS = ["id", "section", "quote", "metric", "value", "decimals", "comparator", "kind", "n", "verdict",
           "honoured", "reason"]
_REQUIRED = ("id", "section", "quote", "metric", "value", "decimals", "kind", "verdict", "honoured")


def load_published(path: str | Path | None = None):
    """Load and validate the published figures (``path`` default: the packaged ``published_figures.yaml``).

    One row per figure, columns :data:`COLUMNS` (``metric`` None for a statement that cannot be
    recomputed, ``comparator`` "=" by default, ``n`` NaN where none is given). A ValueError names every entry
    breaking the format (missing field, duplicate id, unknown section/kind/verdict, inconsistent without a reason, ...).

    Examples
    --------
    >>> pub = load_published()
    >>> row = pub.set_index("id").loc["res_men_n"]
    >>> row["metric"], float(row["value"])
    ('n_men', 77.0)
    """
    import re

    import pandas as pd
    import yaml

    path = Path(path) if path is not None else PUBLISHED_FILE
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    entries = doc.get("figures") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a top-level 'figures:' list of entries")
    problems: list[str] = []
    seen: set[str] = set()
    rows = []
    for i, e in enumerate(entries):
        where = f"entry {i + 1} ({e.get('id', '?') if isinstance(e, dict) else '?'})"
        if not isinstance(e, dict):
            problems.append(f"{where}: not a mapping")
            continue
        missing = [k for k in _REQUIRED if k not in e]
        if missing:
            problems.append(f"{where}: missing field(s) {missing}")
            continue
        comparator, inconsistent = e.get("comparator", "="), e["verdict"] == "paper-inconsistent"
        problems += [f"{where}: {message}" for bad, message in [
            (not re.fullmatch(r"[a-z][a-z0-9_]*", str(e["id"])), "id must be snake_case"),
            (e["id"] in seen, "duplicate id"),
            (e["section"] not in SECTIONS, f"section {e['section']!r} not in {SECTIONS}"),
            (e["kind"] not in KINDS, f"kind {e['kind']!r} not in {KINDS}"),
            (e["verdict"] not in VERDICTS, f"verdict {e['verdict']!r} not in {VERDICTS}"),
            (not isinstance(e["honoured"], bool), "honoured must be true or false"),
            (not isinstance(e["decimals"], int) or e["decimals"] < 0, "decimals must be a non-negative integer"),
            (comparator not in COMPARATORS, f"comparator {comparator!r} not in {COMPARATORS}"),
            (not str(e["quote"]).strip(), "empty quote"),
            (e["metric"] is not None and not isinstance(e["metric"], str), "metric must be a string or null"),
            (e["metric"] is not None and e["value"] is None, "a metric needs a published value"),
            (e.get("n") is not None and not (isinstance(e["n"], int) and e["n"] > 0), "n must be a positive integer"),
            (inconsistent and not str(e.get("reason") or "").strip(), "paper-inconsistent entries need a reason"),
            (inconsistent and e["honoured"], "a paper-inconsistent figure cannot be honoured"),
            (e["verdict"] == "consistent" and e["kind"] != "statement" and e["metric"] is None,
             f"a consistent figure of kind {e['kind']!r} needs a metric")] if bad]
        seen.add(e["id"])
        rows.append({
            "id": e["id"], "section": e["section"], "quote": " ".join(str(e["quote"]).split()),
            "metric": e["metric"], "value": (float(e["value"]) if e["value"] is not None else float("nan")),
            "decimals": e["decimals"], "comparator": comparator, "kind": e["kind"],
            "n": float(e["n"]) if e.get("n") is not None else float("nan"), "verdict": e["verdict"],
            "honoured": e["honoured"], "reason": " ".join(str(e.get("reason") or "").split()),
        })
    if problems:
        raise ValueError(f"{path}: {len(problems)} problem(s) in the published figures:\n  " + "\n  ".join(problems))
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["metric"] = out["metric"].astype(object).where(out["metric"].notna(), None)
    out["decimals"] = out["decimals"].astype("int64")
    out["honoured"] = out["honoured"].astype(bool)
    return out
