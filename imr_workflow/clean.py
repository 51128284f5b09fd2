"""``python -m imr_analysis clean``: validate and clean raw exports into the analysis cohort.

Problems in the exports are printed (exit code 1), a traceback only with ``--traceback``;
private data go to ``outputs/private`` so a department's cohort never lands in the committed
``data/processed``.
"""

from __future__ import annotations

import argparse
import sys

from imr_analysis import paths
from imr_analysis.cohort import STUDY_END, STUDY_START, clean_raw, write_outputs
from imr_analysis.sources import CONTRACT_HINT, RawDataError


def main(argv=None) -> int:
    """Run the command with ``argv``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m imr_analysis clean",
                                     description="Validate and clean the raw exports into the analysis cohort.")
    parser.add_argument("--raw-dir", default="", help="folder of the raw exports (default data/raw)")
    parser.add_argument("--processed-dir", default="",
                        help="where to write the cohort (default data/processed; outputs/private/data/processed "
                             "for private data, so a department's cohort never lands in the committed folder)")
    parser.add_argument("--study-start", default=STUDY_START)
    parser.add_argument("--study-end", default=STUDY_END)
    parser.add_argument("--traceback", action="store_true", help="show the Python traceback of unexpected errors")
    args = parser.parse_args(argv)
    try:
        result = clean_raw(args.raw_dir or None, args.study_start, args.study_end)
        processed = args.processed_dir or None
        if processed is None and result.data_mode != "synthetic":
            processed = paths.private_outputs_dir() / "data" / "processed"
            print(f"note: {result.data_mode} data: the cohort goes to {processed}", file=sys.stderr)
        written = write_outputs(result.cohort, result.flow, processed)
    except RawDataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as err:
        if args.traceback:
            raise
        where = paths.display_path(paths.resolve(args.raw_dir or None, paths.raw_dir()))
        print(f"error: {type(err).__name__}: {err}\nraw exports read from: {where}\n{CONTRACT_HINT}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - the command line shows a message, not a traceback
        if args.traceback:
            raise
        print(f"error: unexpected {type(err).__name__} while cleaning: {err}\nThis is probably a bug in imr_analysis "
              "rather than in your data; run again with --traceback and report it.", file=sys.stderr)
        return 1
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{len(result.cohort)} patients; cohort flow: "
          + ", ".join(f"{k} {v}" for k, v in result.flow["status"].value_counts().sort_index().items()))
    for p in written:
        print(f"wrote {p}")
    return 0
