import os
import sys
from pathlib import Path

# tests import their helpers (rawfactory) by module name
sys.path.insert(0, str(Path(__file__).parent))


def audit_outputs(cohort, n_resamples: int = 10000) -> dict:
    """The tables the reproduction audit reads, made in memory by the calls notebooks 02-05 make
    (without disclosure control: the shipped data's profile is ``none``)."""
    from imr_analysis import agreement, table1, table2

    services = ["CMHC", "SerD", "EDP"]
    long2 = table2.table2_long(cohort, services=services)
    return {"table1_long": table1.table1_long(cohort, services=services),
            "table1_tests": table1.table1_tests(cohort, services=services, n_resamples=n_resamples),
            "table2_long": long2, "module_frequency_values": table2.module_frequency_from_long(long2),
            "table3_imrs_long": agreement.table3_long(agreement.table3(cohort)),
            "imrs_agreement": agreement.agreement_summary(cohort, services=services)}


# The real-browser test (tests/browser) runs only from `make browser-test`, which installs Chromium, chromedriver and
# selenium first and sets IMR_BROWSER_TESTS=1.
collect_ignore = [] if os.environ.get("IMR_BROWSER_TESTS") == "1" else ["browser"]
