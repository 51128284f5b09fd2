"""imr_analysis: the analysis package of the IMR implementation compendium.

Reproduces, audits and extends the analysis of Ferrara et al. (2023), *Illness
Management and Recovery (IMR): Implementation in an Italian Department of Mental
Health and Pathological Addictions*.

Importing the package is cheap: heavy libraries (pandas, scipy, pingouin,
matplotlib) are imported by the submodules that need them.
"""

__version__ = "0.1.0"
