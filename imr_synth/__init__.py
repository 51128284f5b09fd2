"""Synthetic raw exports (EFESO, Sister, IMR summary form) calibrated to Ferrara et al. (2023).

The real patient data are private. :func:`generate` draws a synthetic cohort whose
patient-level truth reproduces, at 126 patients and with any seed, every internally
consistent figure of the paper, and :func:`write_exports` writes it in the raw formats
the cleaner reads. Only the codebook (:mod:`imr_analysis.constants`) is shared with the
analysis, which never imports this package.

Examples
--------
>>> syn = generate(seed=1)
>>> len(syn.truth), syn.truth["service_type"].value_counts().to_dict()
(126, {'CMHC': 69, 'SerD': 52, 'EDP': 5})
"""

from .generator import DEFAULT_SEED, N_PUBLISHED, CalibrationError, Synthetic, generate, write_exports

__all__ = ["DEFAULT_SEED", "N_PUBLISHED", "CalibrationError", "Synthetic", "generate", "write_exports"]
