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
# # 04 · Figure 1: modules received by each patient, and the module heatmap
#
# **Figure 1** of the paper: "Modules received by individual patients (N = 126), and Service that administered IMR.
# Each bar corresponds to a single patient. Each color represents a single module. On the x-axis the services that
# provided IMR is indicated, on the y-axis the number of the modules administered to each individual."
# Patients are grouped by service and sorted by number of modules, then by module pattern. The 11 module colours
# are Paul Tol's colour-blind-safe "muted" scheme plus two colours of his "light" scheme.
#
# One bar per patient is microdata: when the disclosure profile does not allow microdata (private data), Figure 1
# is drawn in its aggregate form instead (per service, the percentage of patients by number of modules received,
# after disclosure control), saved under another name, `figures/figure1_modules_aggregate.{png,pdf,svg}`, so that
# no per-patient file is ever written from private data.
#
# **Figure S1** (supplementary): percentage of each unit's patients who received each module (module x service
# unit heatmap, with the unit sizes), drawn from the Table 2 numbers after disclosure control.
#
# **Writes** `figures/figure1_modules_per_patient.{png,pdf,svg}` and `figures/figureS1_module_heatmap.{png,pdf,svg}`
# (byte-identical across runs), and `tables/disclosure/04_figure1_modules_per_patient/disclosure_report.{csv,md}`.
#
# **Parameters**
#
# | name | default | meaning |
# |---|---|---|
# | `raw_dir` | `""` (= `data/raw`) | raw exports, read only to tell synthetic from private data |
# | `processed_dir` | `""` (= `data/processed`) | folder of `cohort.parquet` |
# | `tables_dir` | `""` (= `tables`) | where the disclosure report is written |
# | `figures_dir` | `""` (= `figures`) | where the figures are written |
# | `services` | `["CMHC", "SerD", "EDP"]` | service types to include |
# | `figure_formats` | `["png", "pdf", "svg"]` | formats written |
# | `dpi` | `300` | resolution of the PNG |
# | `disclosure_profile` | `"auto"` | `auto` (by data mode), `none`, `opensafely`, `opensafely_midpoint6`, `sistan_min3` |
# | `allow_weaker_profile` | `False` | on private data, allow a profile weaker than `opensafely` (recorded in the colophon) |
#
# Relative paths are taken from the compendium's root, whatever the working directory.

# %% tags=["parameters"]
raw_dir = ""
processed_dir = ""
tables_dir = ""
figures_dir = ""
services = ["CMHC", "SerD", "EDP"]
figure_formats = ["png", "pdf", "svg"]
dpi = 300
disclosure_profile = "auto"
allow_weaker_profile = False

# %%
from imr_analysis import figure1, publish, table2
from imr_analysis.cohort import load_cohort

run = publish.setup("04_figure1_modules_per_patient", raw_dir=raw_dir, processed_dir=processed_dir,
                    tables_dir=tables_dir, figures_dir=figures_dir, disclosure_profile=disclosure_profile,
                    allow_weaker_profile=allow_weaker_profile)
print("Figure 1 form:", run.policy["figure1"])

# %% [markdown]
# ## Figure 1

# %%
# %matplotlib inline
cohort = load_cohort(run.processed, services=services)
if run.policy["figure1"] == "per_patient":
    fig1 = figure1.plot_figure1(figure1.figure1_data(cohort, services=services))
    figure1_stem = figure1.FIGURE1_STEM
else:  # no microdata: patients by number of modules, per service, after disclosure control
    aggregate = run.protect(figure1.figure1_aggregate_data(cohort, services=services), "figure1_aggregate")
    fig1 = figure1.plot_figure1_aggregate(aggregate, note=run.policy["note"])
    figure1_stem = figure1.FIGURE1_AGGREGATE_STEM
fig1

# %% [markdown]
# *Figure 1.* Modules received by individual patients and service that administered IMR. Each bar corresponds to a single patient. Each colour represents a single module. On the x-axis the services that provided IMR; on the y-axis the number of modules administered to each individual. CMHC: Community Mental Health Centres; SerD: Services for Addictions and Dependence; EDP: Eating Disorders Programme. When microdata are not allowed, the figure shows instead the percentage of each service's patients by number of modules received.

# %% [markdown]
# ## Figure S1: modules by service unit

# %%
safe_table2 = run.protect(table2.table2_long(cohort, services=services), "figureS1_module_heatmap")
figS1 = figure1.plot_module_heatmap(figure1.module_heatmap_from_long(safe_table2))
figS1

# %% [markdown]
# ## Save
#
# The figures, and what disclosure control did to the numbers they draw (never values).

# %%
run.save_figure(fig1, figure1_stem, formats=figure_formats, dpi=dpi)
run.save_figure(figS1, "figureS1_module_heatmap", formats=figure_formats, dpi=dpi)
run.write_disclosure_report()
