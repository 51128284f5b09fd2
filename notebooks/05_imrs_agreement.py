# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (IMR compendium)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · IMRS agreement between users and providers
#
# The paper (Outcome Details) reports the post-intervention IMR Scale (IMRS) item means 3.7 (0.5) / 3.6 (0.6) and totals
# 55.1 (7.47) / 54.18 (8.45) for users / providers, and "r = 0.96, n = 15, p = 0.001". That r correlates the 15 **user
# item means** with the 15 **provider item means**: an *item-profile* (ecological) correlation with n = 15 items. It is
# reproduced here and labelled as such. Whether providers agree with *their own* patients is a different question,
# answered at the patient level: ICC(A,1) and ICC(C,1), Lin's concordance correlation coefficient, Bland-Altman bias and
# limits of agreement, paired tests, item-level quadratic-weighted kappa, and the same by service type (with small-n
# caveats: the EDP has very few patients).
#
# **Writes** `tables/table3_imrs.{csv,md,tex,html}` (Table 3), `tables/table3_imrs_long.csv` (Table 3's numbers,
# one row per item and measure, numeric columns), `tables/imrs_agreement.{csv,md,tex,html}` (every result in one
# tidy table; in the CSV a redacted value is an empty cell flagged in `redacted`), `figures/figure2_bland_altman.{png,pdf,svg}`, and the disclosure-control report
# `tables/disclosure/05_imrs_agreement/disclosure_report.{csv,md}`.
#
# **Parameters**
#
# | name | default | meaning |
# |---|---|---|
# | `raw_dir` | `""` (= `data/raw`) | raw exports, only read to tell synthetic from private data |
# | `processed_dir` | `""` (= `data/processed`) | folder with `cohort.parquet` |
# | `tables_dir`, `figures_dir` | `""` (= `tables`, `figures`) | output folders |
# | `alpha` | `0.05` | 1 - confidence level of every interval |
# | `max_missing` | `0` | IMRS items that may be missing per version (0: complete scales only; k > 0: prorated total) |
# | `services` | `["CMHC", "SerD", "EDP"]` | service types analysed |
# | `table_formats`, `figure_formats`, `dpi` | all formats, 300 | output formats |
# | `disclosure_profile` | `"auto"` | disclosure control (`auto`: none on synthetic data, opensafely on private data) |
# | `allow_weaker_profile` | `False` | allow a profile weaker than the default on private data (recorded) |
#
# Relative paths are taken from the compendium's root, whatever the working directory.

# %% tags=["parameters"]
raw_dir = ""
processed_dir = ""
tables_dir = ""
figures_dir = ""
alpha = 0.05
max_missing = 0
services = ["CMHC", "SerD", "EDP"]
table_formats = ["csv", "md", "tex", "html"]
figure_formats = ["png", "pdf", "svg"]
dpi = 300
disclosure_profile = "auto"
allow_weaker_profile = False

# %%
import pandas as pd

from imr_analysis import agreement, bland_altman, disclosure, paths
from imr_analysis.cohort import load_cohort
from imr_analysis.export import export_table
from imr_analysis.figio import preview, save_figure, setup_matplotlib
from imr_analysis.sources import detect_data_mode

RAW = paths.resolve(raw_dir, paths.raw_dir())
PROCESSED = paths.resolve(processed_dir, paths.processed_dir())
TABLES = paths.resolve(tables_dir, paths.tables_dir())
FIGURES = paths.resolve(figures_dir, paths.figures_dir())
setup_matplotlib()
pd.set_option("display.max_colwidth", 90)
pd.set_option("display.width", 200)
pd.set_option("display.precision", 4)

data_mode = detect_data_mode(RAW)
profile = disclosure.resolve_profile(disclosure_profile, data_mode, allow_weaker_profile=allow_weaker_profile)
policy = disclosure.figure_policy(profile)
print("data mode:", data_mode)
print("disclosure control:", profile.describe())

# %% [markdown]
# ## Load the cohort

# %%
cohort = load_cohort(PROCESSED, services=services)
print("cohort:", paths.display_path(PROCESSED / "cohort.parquet"))

# %% [markdown]
# ## Table 3: IMRS at post-intervention, users and providers
#
# Per item (complete user-provider pairs of that item): mean (SD) of each version, mean paired difference
# (user - provider), Wilcoxon signed-rank test with Holm adjustment across the 15 items, and quadratic-weighted Cohen's
# kappa with its asymptotic CI. The last two rows are the patient scores: item mean (1-5) and total (15-75).

# %%
t3 = agreement.table3(cohort, max_missing=max_missing, alpha=alpha)
t3_safe, t3_report = agreement.apply_disclosure(t3, profile, "table3_imrs")
table3 = agreement.format_table3(t3_safe, alpha=alpha)
for path in export_table(table3, TABLES, "table3_imrs", formats=table_formats,
                         caption="Table 3. IMR Scale (IMRS) at post-intervention: users and providers"):
    print("wrote", paths.display_path(path))
t3_long_safe, t3_long_report = agreement.apply_disclosure(agreement.table3_long(t3), profile, "table3_imrs_long")
for path in agreement.export_protected_table(t3_long_safe, TABLES, "table3_imrs_long", formats=["csv"]):
    print("wrote", paths.display_path(path))
table3

# %% [markdown]
# ## The paper's analysis: the item-profile correlation
#
# Each IMRS item is one point (its mean user rating, its mean provider rating): n = 15 items.

# %%
profile_r = agreement.item_profile_correlation(cohort, alpha=alpha)
print(agreement.describe_item_profile(profile_r))
profile_r[["measure", "estimate", "ci_low", "ci_high", "n", "p"]]

# %% [markdown]
# ## Patient-level agreement (IMRS total, 15-75)
#
# Does a provider's rating agree with their own patient's? Pearson/Spearman measure association only; ICC(A,1) and
# Lin's CCC penalise systematic differences as well; Bland-Altman gives the bias and the range within which 95% of
# user - provider differences fall (limits of agreement, exact CIs of Carkeet 2015).

# %%
patient = agreement.patient_level_agreement(cohort, on="total", max_missing=max_missing, alpha=alpha)
patient_safe, _ = agreement.apply_disclosure(patient, profile, "imrs_patient_level")
agreement.mark_redacted(patient_safe)[["measure", "estimate", "ci_low", "ci_high", "n", "p", "note"]]

# %% [markdown]
# ## Internal consistency

# %%
consistency = agreement.internal_consistency(cohort, alpha=alpha)
consistency_safe, _ = agreement.apply_disclosure(consistency, profile, "imrs_internal_consistency")
agreement.mark_redacted(consistency_safe)

# %% [markdown]
# ## By service type
#
# The same patient-level measures within each service. The `caveat` column flags small groups (n < 30, n < 10):
# their intervals are wide and the asymptotic ones approximate; measures that need at least 3 patients are left empty
# with the reason in `note`.

# %%
by_service = agreement.agreement_by_service(cohort, on="total", max_missing=max_missing, alpha=alpha,
                                            services=services)
by_service_safe, _ = agreement.apply_disclosure(by_service, profile, "imrs_by_service")
for service, caveat in by_service_safe.groupby("service_type", sort=False)["caveat"].first().items():
    print(f"{service}: {caveat or 'no small-sample caveat'}")
agreement.mark_redacted(by_service_safe)[["service_type", "measure", "estimate", "ci_low", "ci_high", "n", "p"]]

# %% [markdown]
# ## Figure 2: Bland-Altman plot of the IMRS total
#
# Patients sharing the same (mean, difference) are one point whose area shows how many they are. Under a disclosure
# profile that forbids microdata, no individual point is drawn.

# %%
ba = agreement.bland_altman_data(cohort, on="total", max_missing=max_missing, alpha=alpha)
figure2 = bland_altman.plot_bland_altman(ba, show_points=policy["bland_altman_show_points"],
                                         show_n=profile.rounding_method is None)
for path in save_figure(figure2, FIGURES, "figure2_bland_altman", formats=figure_formats, dpi=dpi):
    print("wrote", paths.display_path(path))
if policy["note"]:
    print(policy["note"])

# %%
preview(figure2, dpi=100)

# %% [markdown]
# ## Everything in one table

# %%
summary = agreement.agreement_summary(cohort, max_missing=max_missing, alpha=alpha, services=services)
summary_safe, summary_report = agreement.apply_disclosure(summary, profile, "imrs_agreement")
for path in agreement.export_protected_table(summary_safe, TABLES, "imrs_agreement", formats=table_formats,
                                             caption="Agreement between user- and provider-rated IMRS"):
    print("wrote", paths.display_path(path))
summary_safe.groupby("section", sort=False).size().rename("rows").to_frame()

# %% [markdown]
# ## Disclosure-control report
#
# What disclosure control did to the two published tables (cells and actions, never values).

# %%
report = disclosure.disclosure_report([t3_report, t3_long_report, summary_report])
for path in disclosure.write_disclosure_report(report, TABLES / "disclosure" / "05_imrs_agreement", profile):
    print("wrote", paths.display_path(path))
disclosure.report_summary(report)
