"""The machinery around the analysis: the notebook runner (``run``), the run's colophon
and the identifier scanner (``scan``). No analysis module imports it."""
