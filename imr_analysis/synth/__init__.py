"""Synthetic raw exports (EFESO, Sister, IMR summary form) calibrated to the paper.

The real patient data are private. :func:`generate` draws a synthetic cohort whose
patient-level *truth* reproduces, with ``n_patients=126`` and any seed, every figure
of Ferrara et al. (2023) that is internally consistent, and writes it out in the raw
formats the cleaner reads. Analysis code never imports this package.

Examples
--------
>>> from imr_analysis.synth import generate
>>> syn = generate(seed=1)  # doctest: +SKIP
>>> len(syn.truth), syn.truth["service_type"].value_counts().to_dict()  # doctest: +SKIP
(126, {'CMHC': 69, 'SerD': 52, 'EDP': 5})
"""

from .generator import DEFAULT_SEED, N_PUBLISHED, CalibrationError, Synthetic, generate, write_exports

__all__ = ["DEFAULT_SEED", "N_PUBLISHED", "CalibrationError", "Synthetic", "generate", "write_exports"]
