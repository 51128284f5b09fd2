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
# # 06 · Reproduction report: every published figure, read from the published tables
#
# For every number the paper states (held, with its verbatim quote, printed precision and a
# consistency verdict, in `imr_analysis/resources/published_figures.yaml`), this notebook reads the
# value from the tables notebooks 02-05 wrote (`reproduce.WHERE` names the table, row and column of
# each; the paper's yes/no statements are read off the same tables), prints it at the paper's
# precision and gives a status. It computes no statistic of its own: what is audited is what the
# compendium publishes.
#
# - **match**: the value, printed as the paper prints it, equals the published one;
# - **mismatch**: it does not;
# - **paper-inconsistent**: the paper contradicts itself or arithmetic; the reason says how, and which
#   competing statement the data honour;
# - **not recomputable**: a statement about the literature or the setting, not about the cohort.
#
# On a department's own (private) data the recomputed values and statuses are withheld: they describe
# groups of any size, and even a `match` against "five patients" discloses a count. Only the verdicts
# about the paper itself are shown; the disclosure-controlled tables of notebooks 02-05 are the
# department's results.
#
# **Writes** `tables/reproduction_check.csv` and `tables/reproduction_check.md`, with the footnotes
# `reproduce.NOTES` (for the CSV in `reproduction_check.csv-metadata.json`).
#
# **Parameters**: `raw_dir` (`""` = `data/raw`; tells synthetic from private data), `processed_dir`
# (`""` = `data/processed`; unused: the audit reads no cohort), `tables_dir` (`""` = `tables`: read and
# written), `disclosure_profile` (`"auto"`), `allow_weaker_profile` (`False`).
#
# **Where it writes.** Run by `make reproduce` or `make notebooks`, the notebook writes the committed outputs; run any
# other way (JupyterLab, nbclient, a copy), it writes them under `scratch/` (git-ignored) and reads there what such a
# run wrote, else the committed outputs. Its first output line says which; folders given as parameters are used as
# given.

# %% tags=["parameters"]
raw_dir = ""
processed_dir = ""
tables_dir = ""
disclosure_profile = "auto"
allow_weaker_profile = False

# %%
from imr_analysis import paths, publish, reproduce
from imr_analysis.export import export_table
from imr_workflow.display import display_table

run = publish.setup("06_reproduction_report", raw_dir=raw_dir, tables_dir=tables_dir,
                    disclosure_profile=disclosure_profile, allow_weaker_profile=allow_weaker_profile,
                    reads_tables=reproduce.INPUT_FILES)

# %%
outputs = reproduce.read_outputs(run.read_tables)
check = reproduce.public_check(reproduce.check_published(outputs), run.profile)
print(reproduce.summary_line(check))

# %% [markdown]
# ## Where the paper contradicts itself
#
# Each of these is recorded with both statements; the synthetic cohort honours the one the reason names.

# %%
display_table(check.loc[check["status"] == "paper-inconsistent",
                         ["id", "quote", "published", "recomputed_printed", "reason"]])

# %% [markdown]
# ## Mismatches
#
# Empty when the cohort reproduces every consistent published figure.

# %%
display_table(check.loc[check["status"] == "mismatch", ["id", "quote", "published", "recomputed_printed", "reason"]])

# %% [markdown]
# ## Every published figure

# %%
display_table(check[["id", "kind", "published", "recomputed_printed", "status", "quote"]])

# %%
for path in export_table(check, run.tables, "reproduction_check", formats=["csv", "md"], notes=reproduce.NOTES):
    print("wrote", paths.display_path(path))
