"""Write the synthetic raw exports (``python -m imr_analysis synth``).

Examples
--------
$ python -m imr_analysis synth                       # default seed, 126 patients, data/raw
$ python -m imr_analysis synth --seed 7 --out /tmp/raw
$ python -m imr_analysis synth --n-patients 1000000 --out /tmp/big
"""

from __future__ import annotations

import argparse
import sys

from .generator import DEFAULT_SEED, N_PUBLISHED, CalibrationError, write_exports


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
    parser = argparse.ArgumentParser(
        prog="python -m imr_analysis synth",
        description=("Write synthetic EFESO, Sister and IMR-summary-form exports. With 126 patients the cohort "
                     "reproduces every consistent figure of Ferrara et al. (2023); same seed, same bytes."))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--n-patients", type=int, default=N_PUBLISHED,
                        help=f"cohort size (default {N_PUBLISHED}, the paper's; only 126 is calibrated exactly)")
    parser.add_argument("--out", default="", help="output folder (default: the compendium's data/raw)")
    args = parser.parse_args(argv)
    if args.n_patients < 1:
        print(f"error: --n-patients must be at least 1, not {args.n_patients}", file=sys.stderr)
        return 2
    try:
        written = write_exports(args.out or None, seed=args.seed, n_patients=args.n_patients)
    except CalibrationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    print(f"seed {args.seed}, {args.n_patients} patients (synthetic; not real patients)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
