"""Write the synthetic raw exports (``python -m imr_analysis synth``).

Examples
--------
$ python -m imr_analysis synth                       # default seed, 126 patients, data/raw
$ python -m imr_analysis synth --seed 7 --out /tmp/raw
$ python -m imr_analysis synth --n-patients 1000000 --out /tmp/big
$ python -m imr_analysis synth --department north --out /tmp/north   # one synthetic department
$ python -m imr_analysis synth --departments /tmp/departments        # every one, in /tmp/departments/<name>/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .generator import DEFAULT_SEED, DEPARTMENTS, N_PUBLISHED, CalibrationError, write_exports


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status.

    Examples
    --------
    >>> import tempfile
    >>> main(["--seed", "7", "--out", tempfile.mkdtemp()])  # doctest: +ELLIPSIS
    wrote .../efeso_extract.csv
    wrote .../sister_extract.csv
    wrote .../imr_summary_form.csv
    seed 7, 126 patients (synthetic; not real patients)
    0
    """
    sizes = ", ".join(f"{d.name} ({d.n_patients} patients, seed {d.seed})" for d in DEPARTMENTS.values())
    parser = argparse.ArgumentParser(
        prog="python -m imr_analysis synth",
        description=("Write synthetic EFESO, Sister and IMR-summary-form exports. With 126 patients the cohort "
                     "reproduces every consistent figure of Ferrara et al. (2023); same seed, same bytes. "
                     f"The synthetic departments ({sizes}) differ from it and from each other in size, service "
                     "mix, units, group format, sessions and provider ratings; their first line names the department."))
    parser.add_argument("--seed", type=int, default=None,
                        help=f"random seed (default {DEFAULT_SEED}; with --department, the department's own)")
    parser.add_argument("--n-patients", type=int, default=None,
                        help=f"cohort size (default {N_PUBLISHED}, the paper's, the only size calibrated exactly; "
                             "with --department, the department's own)")
    parser.add_argument("--out", default="", help="output folder (default: the compendium's data/raw)")
    parser.add_argument("--department", choices=list(DEPARTMENTS), help="write this synthetic department instead")
    parser.add_argument("--departments", metavar="DIR",
                        help="write every synthetic department, each to DIR/<name>/, with its own size and seed")
    args = parser.parse_args(argv)
    if args.departments and (args.department or args.out or args.seed is not None or args.n_patients is not None):
        print("error: --departments writes every department with its own seed and size: it takes no --department, "
              "--out, --seed or --n-patients", file=sys.stderr)
        return 2
    if args.department and not args.out:
        print("error: --department needs --out (data/raw holds the paper's synthetic exports)", file=sys.stderr)
        return 2
    if args.departments:  # (department, folder, seed, size)
        jobs = [(d, str(Path(args.departments) / d.name), d.seed, d.n_patients) for d in DEPARTMENTS.values()]
    else:
        d = DEPARTMENTS[args.department] if args.department else None
        seed, n = (d.seed, d.n_patients) if d else (DEFAULT_SEED, N_PUBLISHED)
        jobs = [(d, args.out, seed if args.seed is None else args.seed, n if args.n_patients is None else args.n_patients)]
    if (n := jobs[0][3]) < 1:
        print(f"error: --n-patients must be at least 1, not {n}", file=sys.stderr)
        return 2
    for dept, out, seed, n in jobs:
        try:
            written = write_exports(out or None, seed=seed, n_patients=n, department=dept)
        except CalibrationError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        for path in written:
            print(f"wrote {path}")
        print(f"{f'department {dept.name}, ' if dept else ''}seed {seed}, {n} patients (synthetic; not real patients)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
