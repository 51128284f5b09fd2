"""Started in every kernel of a test run whose PYTHONPATH holds this folder.

Multiplies every float that the compendium writes to a machine-readable output by
``1 + IMR_TEST_FLOAT_PERTURBATION`` (for example ``1e-13``) just before the one writer,
``imr_analysis.export.write_csv``, rounds it. A run perturbed this way must give the same
bytes as an unperturbed one: a thousand times the difference between two CPUs' BLAS
kernels does not reach the written digits. The number of floats perturbed is appended to
the file ``IMR_TEST_FLOAT_PERTURBATION_LOG``, so the test knows the perturbation ran.
"""

import os

if os.environ.get("IMR_TEST_FLOAT_PERTURBATION"):
    from imr_analysis import export

    _relative = float(os.environ["IMR_TEST_FLOAT_PERTURBATION"])
    _write_csv = export.write_csv

    def _perturbed(value):
        return value * (1 + _relative) if isinstance(value, float) else value

    def write_csv(df, path, index=False):
        out = df.copy()
        count = 0
        for col in out.columns:
            if out[col].dtype.kind == "f":
                out[col] = out[col] * (1 + _relative)
            elif out[col].dtype == object:
                out[col] = out[col].map(_perturbed)
            else:
                continue
            count += int(df[col].map(lambda v: isinstance(v, float) and v == v and v != 0).sum())
        with open(os.environ["IMR_TEST_FLOAT_PERTURBATION_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{count}\n")
        _write_csv(out, path, index=index)

    export.write_csv = write_csv
