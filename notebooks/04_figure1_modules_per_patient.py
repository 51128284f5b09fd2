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
# | `services` | `["CMHC", "SerD", "EDP"]` | service types to include; one left without patients by the other filters is dropped, with a note |
# | `service_units` | `[]` (= all) | service units, e.g. `["CMHC Ferrara", "SerD Ferrara"]` (the ten of `constants.SERVICE_UNITS`) |
# | `diagnosis_groups` | `[]` (= all) | diagnosis groups: `schizophrenia_spectrum`, `bipolar`, `depressive`, `substance_use`, `eating`, `other` |
# | `imr_start_from`, `imr_start_to` | `""` (= open) | IMR start period, `yyyy-mm-dd`, both days included |
# | `sex` | `[]` (= both) | `M`, `F` |
# | `imr_formats` | `[]` (= both) | `group`, `individual` |
# | `figure_formats` | `["png", "pdf", "svg"]` | formats written |
# | `dpi` | `300` | resolution of the PNG |
# | `disclosure_profile` | `"auto"` | `auto` (by data mode), `none`, `opensafely`, `opensafely_midpoint6`, `sistan_min3` |
# | `allow_weaker_profile` | `False` | on private data, allow a profile weaker than `opensafely` (recorded in the colophon) |
#
# The filters (`services` to `imr_formats`) keep the patients who pass every one (`imr_analysis.selection.select`);
# an unknown value or a malformed date stops the run naming the parameter and the choices, and so does a selection
# left without patients.
#
# Relative paths are taken from the compendium's root, whatever the working directory.
#
# **Where it writes.** Run by `make reproduce` or `make notebooks`, the notebook writes the committed outputs; run any
# other way (JupyterLab, nbclient, a copy), it writes them under `scratch/` (git-ignored) and reads there what such a
# run wrote, else the committed outputs. Its first output line says which; folders given as parameters are used as
# given.

# %% tags=["parameters"]
raw_dir = ""
processed_dir = ""
tables_dir = ""
figures_dir = ""
services = ["CMHC", "SerD", "EDP"]
service_units = []
diagnosis_groups = []
imr_start_from = ""
imr_start_to = ""
sex = []
imr_formats = []
figure_formats = ["png", "pdf", "svg"]
dpi = 300
disclosure_profile = "auto"
allow_weaker_profile = False

# %%
from imr_analysis import figure1, publish, table2
from imr_workflow.display import display_table

run = publish.setup("04_figure1_modules_per_patient", raw_dir=raw_dir, processed_dir=processed_dir,
                    tables_dir=tables_dir, figures_dir=figures_dir, disclosure_profile=disclosure_profile,
                    allow_weaker_profile=allow_weaker_profile)
sel = run.select(services=services, service_units=service_units, diagnosis_groups=diagnosis_groups,
                 imr_start_from=imr_start_from, imr_start_to=imr_start_to, sex=sex, imr_formats=imr_formats)
cohort = sel.cohort
print("Figure 1 form:", run.policy["figure1"])

# %% [markdown]
# ## Figure 1

# %%
# %matplotlib inline
fig1, figure1_stem = run.figure1(cohort, sel.services)  # per patient, or aggregate where microdata are not allowed
fig1

# %% [markdown]
# *Figure 1.* Modules received by individual patients and service that administered IMR. Each bar corresponds to a single patient. Each colour represents a single module. On the x-axis the services that provided IMR; on the y-axis the number of modules administered to each individual. CMHC: Community Mental Health Centres; SerD: Services for Addictions and Dependence; EDP: Eating Disorders Programme. When microdata are not allowed, the figure shows instead the percentage of each service's patients by number of modules received.

# %% [markdown]
# ## Figure S1: modules by service unit

# %%
safe_table2 = run.protect(table2.table2_long(cohort, services=sel.services, all_units=False), "figureS1_module_heatmap")
figS1 = figure1.plot_module_heatmap(figure1.module_heatmap_from_long(safe_table2))
figS1

# %% [markdown]
# ## Save
#
# The figures, and what disclosure control did to the numbers they draw (never values).

# %%
run.save_figure(fig1, figure1_stem, formats=figure_formats, dpi=dpi)
run.save_figure(figS1, "figureS1_module_heatmap", formats=figure_formats, dpi=dpi)
display_table(run.write_disclosure_report())
