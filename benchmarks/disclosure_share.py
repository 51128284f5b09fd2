"""Share of published cells that disclosure control redacts, before and after a change.

Generated private cohorts (synthetic exports with the ``# SYNTHETIC DATA`` marker line
removed, so the cleaning step reads them as private data) go through the same calls as
notebooks 02, 03 and 05, under the ``opensafely`` (default on private data) and
``sistan_min3`` profiles:

* Table 1: ``table1_long`` -> ``disclosure.apply_to_long`` -> ``format_table1``; the
  cells are the group columns of every row with a level (variable header rows are
  empty); a cell counts as redacted when it shows ``[REDACTED]``, in whole or in part
  (``45 ([REDACTED])``: the count published, its percentage redacted). The group sizes
  redacted in the column headers are counted apart.
* Table 2: ``table2_long`` -> ``apply_to_long`` -> ``format_table2``; every non-empty
  cell but the two label columns.
* IMRS agreement: ``agreement_summary`` -> ``disclosure.apply_to_statistics``; the cells
  are the non-missing ``estimate, ci_low, ci_high, n, p`` of the unprotected table.

"Before" is the package as it was at ``--before-rev`` (extracted with ``git archive``
into a temporary folder and run in a subprocess on the very same cohorts); "after" is
the package of this working tree.

Cohorts: ``N`` is the generator's own service mix (the paper's 69/52/5, scaled);
``N=a/b/c`` takes the first ``a`` CMHC, ``b`` SerD and ``c`` EDP patients (by patient
code) of a cleaned generated cohort just large enough to hold them; the generator itself
has no option for the mix.

Examples
--------
$ .venv/bin/python benchmarks/disclosure_share.py
$ .venv/bin/python benchmarks/disclosure_share.py --cohorts 126,300=135/105/60,1000 --seed 20170401
$ .venv/bin/python benchmarks/disclosure_share.py --no-before     # the working tree only
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The package before secondary suppression was dropped from the rounding profiles and
#: before the member-first choice of secondary cells (disclosure profiles version 1).
BEFORE_REV = "557faff82ee610269eb665b66a8840483266d098"
DEFAULT_COHORTS = "126,300=135/105/60,1000"
PROFILES = ("opensafely", "sistan_min3")
SERVICES = ("CMHC", "SerD", "EDP")
#: The paper's patients per service type (the generator's mix at any size).
PAPER_MIX = (69, 52, 5)
MARKER = "[REDACTED]"
AGREEMENT_CELLS = ("estimate", "ci_low", "ci_high", "n", "p")


# --------------------------------------------------------------------------------------
# cohorts
# --------------------------------------------------------------------------------------
def parse_cohorts(text: str) -> list[tuple[str, int, tuple[int, ...] | None]]:
    """``"126,300=135/105/60"`` -> ``[("126", 126, None), ("300", 300, (135, 105, 60))]``."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        size, _, mix = part.partition("=")
        n = int(size)
        counts = tuple(int(x) for x in mix.split("/")) if mix else None
        if counts is not None and (len(counts) != len(SERVICES) or sum(counts) != n):
            raise SystemExit(f"cohort {part!r}: give {len(SERVICES)} counts summing to {n}")
        out.append((size, n, counts))
    return out


def _private_exports(folder: Path, seed: int, n: int) -> None:
    """Write generated exports into ``folder`` without the synthetic marker line."""
    from imr_analysis import constants as C
    from imr_synth.generator import write_exports

    for path in write_exports(folder, seed=seed, n_patients=n):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        assert lines[0].startswith(C.SYNTHETIC_MARKER), path
        path.write_text("".join(lines[1:]), encoding="utf-8")


def make_cohort(n: int, mix, seed: int, folder: Path) -> dict:
    """Generate, clean (as private data) and write ``folder/cohort.parquet``."""
    import pandas as pd

    from imr_analysis.cohort import clean_raw

    draw = n if mix is None else max(math.ceil(k * sum(PAPER_MIX) / ref) for k, ref in zip(mix, PAPER_MIX))
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    _private_exports(raw, seed, draw)
    result = clean_raw(raw, today="2025-01-01")
    if result.data_mode != "private":
        raise RuntimeError(f"{raw}: read as {result.data_mode} data, expected private")
    cohort = result.cohort
    if mix is not None:
        cohort = cohort.sort_values("patient_id", kind="stable")
        parts = []
        for service, k in zip(SERVICES, mix):
            sub = cohort[cohort["service_type"] == service].head(k)
            if len(sub) < k:
                raise RuntimeError(f"only {len(sub)} {service} patients in a draw of {draw}")
            parts.append(sub)
        cohort = pd.concat(parts, ignore_index=True)
        for col in cohort.select_dtypes("category").columns:
            cohort[col] = cohort[col].cat.remove_unused_categories()
    cohort.to_parquet(folder / "cohort.parquet", index=False, engine="pyarrow", compression="snappy")
    counts = cohort["service_type"].value_counts()
    return {"folder": str(folder), "mix": "/".join(str(int(counts.get(s, 0))) for s in SERVICES)}


# --------------------------------------------------------------------------------------
# measurement (runs on whichever imr_analysis is importable)
# --------------------------------------------------------------------------------------
def _share(red: int, cells: int) -> dict:
    return {"redacted": int(red), "cells": int(cells)}


def measure(cohorts: dict, profiles=PROFILES) -> list[dict]:
    """Redacted and published cells per cohort, profile and table."""
    import warnings

    import pandas as pd

    from imr_analysis import agreement, disclosure, table1, table2
    from imr_analysis.cohort import load_cohort

    warnings.simplefilter("ignore")
    rows = []
    for label, spec in cohorts.items():
        cohort = load_cohort(spec["folder"])
        long1, long2 = table1.table1_long(cohort), table2.table2_long(cohort)
        summary = agreement.agreement_summary(cohort)
        for name in profiles:
            prof = disclosure.get_profile(name)
            safe1, _ = disclosure.apply_to_long(long1, prof, "table1")
            tab1 = table1.format_table1(disclosure.mark_redacted(safe1))
            groups = [c for c in tab1.columns if c not in ("Characteristic", "Level")]
            body = tab1.loc[tab1["Level"] != "", groups].astype(str)
            red1 = body.apply(lambda s: s.str.contains(MARKER, regex=False)).to_numpy().sum()
            headers = sum(v is None for v in safe1.attrs.get("group_sizes", {}).values())
            safe2, _ = disclosure.apply_to_long(long2, prof, "table2")
            tab2 = table2.format_table2(disclosure.mark_redacted(safe2))
            cells2 = tab2.drop(columns=["Service type", "Service unit"]).astype(str)
            filled = cells2 != ""
            red2 = (cells2.apply(lambda s: s.str.contains(MARKER, regex=False)) & filled).to_numpy().sum()
            if hasattr(disclosure, "apply_to_statistics"):
                safe3, _ = disclosure.apply_to_statistics(summary, prof, "imrs_agreement", agreement.COUNT_MEASURES)
            else:  # a package from before the agreement tables' rules moved to disclosure
                safe3, _ = agreement.apply_disclosure(summary, prof, "imrs_agreement")
            cols = [c for c in AGREEMENT_CELLS if c in summary.columns]
            pub = summary[cols].notna().to_numpy()
            hid = pd.DataFrame({c: pd.to_numeric(safe3[c], errors="coerce") for c in cols}).isna().to_numpy()
            rows.append({"cohort": label, "mix": spec["mix"], "profile": name,
                         "table1": _share(red1, body.size), "table1_headers": int(headers),
                         "table2": _share(red2, filled.to_numpy().sum()),
                         "imrs_agreement": _share((pub & hid).sum(), pub.sum())})
    return rows


def measure_before(rev: str, cohorts: dict, profiles) -> list[dict]:
    """:func:`measure` with the package of git revision ``rev``, in a subprocess."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "imr_analysis"],
                             capture_output=True, check=True).stdout
    with tempfile.TemporaryDirectory(prefix="disclosure_before_") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        env = {**os.environ, "PYTHONPATH": tmp + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.run(
            [sys.executable, __file__, "--measure-only", json.dumps(cohorts), "--profiles", ",".join(profiles),
             "--expect-package", tmp],
            capture_output=True, text=True, env=env, cwd=tmp)
        if proc.returncode:
            raise RuntimeError(f"measuring revision {rev} failed:\n{proc.stderr}")
        return json.loads(proc.stdout)


# --------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------
def _pct(d: dict | None) -> str:
    if d is None:
        return "-"
    return f"{d['redacted']}/{d['cells']} ({100 * d['redacted'] / d['cells']:.0f}%)" if d["cells"] else "0/0"


def markdown(after: list[dict], before: list[dict] | None) -> str:
    """The before/after table as Markdown."""
    key = {(r["cohort"], r["profile"]): r for r in (before or [])}
    head = ["cohort (CMHC/SerD/EDP)", "profile"]
    tables = [("table1", "Table 1"), ("table2", "Table 2"), ("imrs_agreement", "IMRS agreement")]
    for _, title in tables:
        head += [f"{title} before", f"{title} after"] if before is not None else [title]
    head += ["Table 1 headers redacted" + (" (before -> after)" if before is not None else "")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in after:
        b = key.get((r["cohort"], r["profile"]))
        cells = [f"{r['cohort']} ({r['mix']})", f"`{r['profile']}`"]
        for t, _ in tables:
            cells += [_pct(b[t] if b else None), _pct(r[t])] if before is not None else [_pct(r[t])]
        cells.append(f"{b['table1_headers'] if b else '-'} -> {r['table1_headers']}" if before is not None
                     else str(r["table1_headers"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cohorts", default=DEFAULT_COHORTS,
                        help=f"comma-separated sizes, N or N=CMHC/SerD/EDP (default {DEFAULT_COHORTS})")
    parser.add_argument("--seed", type=int, default=None, help="generator seed (default: the generator's)")
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--before-rev", default=BEFORE_REV, help="git revision of the 'before' package")
    parser.add_argument("--no-before", action="store_true", help="measure the working tree only")
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON too")
    parser.add_argument("--measure-only", help=argparse.SUPPRESS)
    parser.add_argument("--expect-package", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    profiles = [p for p in args.profiles.split(",") if p]

    if args.measure_only is not None:  # the subprocess of measure_before
        import imr_analysis

        if args.expect_package and not Path(imr_analysis.__file__).resolve().is_relative_to(
                Path(args.expect_package).resolve()):
            raise SystemExit(f"imported {imr_analysis.__file__}, not the package under {args.expect_package}")
        print(json.dumps(measure(json.loads(args.measure_only), profiles)))
        return 0

    from imr_synth.generator import DEFAULT_SEED

    seed = DEFAULT_SEED if args.seed is None else args.seed
    with tempfile.TemporaryDirectory(prefix="disclosure_share_") as tmp:
        cohorts = {label: make_cohort(n, mix, seed, Path(tmp) / f"cohort_{label}")
                   for label, n, mix in parse_cohorts(args.cohorts)}
        after = measure(cohorts, profiles)
        before = None if args.no_before else measure_before(args.before_rev, cohorts, profiles)
    print(f"seed {seed}; before: {'-' if before is None else args.before_rev[:12]}; after: working tree\n")
    print(markdown(after, before))
    if args.json:
        print(json.dumps({"before": before, "after": after}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
