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
# # 06 · Reproduction report, or replication comparison: every published figure, read from the published tables
#
# The notebook runs one of two audits, chosen from the data (`replicate.audit_mode`) and stated in its first
# output line with the reason:
#
# - **reproduction**, on the compendium's synthetic reproduction of the published cohort (every export opens with
#   the synthetic marker, naming no department): does the pipeline publish the paper's figures?
# - **replication**, on any other cohort (a department's own exports, or synthetic exports of another department):
#   how does this cohort differ from the published one, beyond chance?
#
# Both read every value from the tables notebooks 02-05 wrote (`reproduce.WHERE` names the table, row and column of
# each figure; the paper's yes/no statements are read off the same tables) and compute no descriptive statistic of
# their own: what is audited is what the compendium publishes. The paper's figures are held, with their verbatim
# quotes, printed precision, n and a consistency verdict, in `imr_analysis/resources/published_figures.yaml`.
#
# **Reproduction.** Each figure is printed at the paper's precision and given a status:
#
# - **match**: the value, printed as the paper prints it, equals the published one;
# - **mismatch**: it does not;
# - **paper-inconsistent**: the paper contradicts itself or arithmetic; the reason says how, and which
#   competing statement the data honour;
# - **not recomputable**: a statement about the literature or the setting, not about the cohort.
#
# Under a disclosure profile (reproduction forced on private data) the recomputed values and statuses are
# withheld: they describe groups of any size, and even a `match` against "five patients" discloses a count.
#
# **Replication.** Each published percentage, mean (with its SD) and the item-profile r gets the department's
# estimate with its 95% CI beside the published value, the difference (department minus published) with a 95% CI
# that counts the published figure's own sampling error, and a flag `published_outside_ci`; the CIs and tests are
# named in the table's footnotes. The figures not tested (counts, extremes, p-values, statements, the setting and
# the literature) are listed as context with the department's value and the reason. The department's values are
# those of its disclosure-controlled tables: under a profile only protected values are shown, and a figure whose
# inputs are withheld is marked not computable.
#
# **Writes**, in reproduction mode, `tables/reproduction_check.{csv,md}` (footnotes `reproduce.NOTES`); in replication
# mode `tables/replication_comparison.{csv,md}` (footnotes `replicate.NOTES`) and `tables/replication_context.{csv,md}`
# (`replicate.CONTEXT_NOTES`); for a CSV the footnotes are in `<name>.csv-metadata.json`. After a replication run the
# runner writes the one-page summary `reports/replication_summary.{md,html}`.
#
# **Parameters**
#
# | name | default | meaning |
# |---|---|---|
# | `raw_dir` | `""` (= `data/raw`) | raw exports, read only for their labels: synthetic or private data, and the audit mode |
# | `processed_dir` | `""` (= `data/processed`) | unused: the audit reads no cohort |
# | `tables_dir` | `""` (= `tables`) | the tables read, and where the audit is written |
# | `audit` | `"auto"` | `auto` (chosen from the data), `reproduction` or `replication` |
# | `disclosure_profile` | `"auto"` | `auto` (by data mode), `none`, `opensafely`, `opensafely_midpoint6`, `sistan_min3` |
# | `allow_weaker_profile` | `False` | on private data, allow a profile weaker than `opensafely` (recorded in the colophon) |
#
# **Where it writes.** Run by `make reproduce` or `make notebooks`, the notebook writes the committed outputs; run any
# other way (JupyterLab, nbclient, a copy), it writes them under `scratch/` (git-ignored) and reads there what such a
# run wrote, else the committed outputs. Its first output line says which; folders given as parameters are used as
# given.

# %% tags=["parameters"]
raw_dir = ""
processed_dir = ""
tables_dir = ""
audit = "auto"
disclosure_profile = "auto"
allow_weaker_profile = False

# %%
from imr_analysis import paths, publish, replicate, reproduce
from imr_analysis.export import export_table
from imr_workflow.display import display_table

run = publish.setup("06_reproduction_report", raw_dir=raw_dir, tables_dir=tables_dir,
                    disclosure_profile=disclosure_profile, allow_weaker_profile=allow_weaker_profile,
                    reads_tables=reproduce.INPUT_FILES)
mode, why = replicate.audit_mode(run.raw, audit)
print(f"audit: {mode} ({why})")

# %%
outputs = reproduce.read_outputs(run.read_tables)
check = reproduce.public_check(reproduce.check_published(outputs), run.profile)
comparison = replicate.compare(outputs) if mode == "replication" else None
context = replicate.context(outputs) if mode == "replication" else None
print(reproduce.summary_line(check) if mode == "reproduction" else replicate.summary_line(comparison, context))

# %% [markdown]
# ## Where the paper contradicts itself
#
# Each of these is recorded with both statements; the synthetic cohort honours the one the reason names (in
# replication mode, `recomputed_printed` is the department's value).

# %%
display_table(check.loc[check["status"] == "paper-inconsistent",
                         ["id", "quote", "published", "recomputed_printed", "reason"]])

# %% [markdown]
# ## Reproduction: mismatches
#
# Empty when the cohort reproduces every consistent published figure (shown in reproduction mode only).

# %%
(display_table(check.loc[check["status"] == "mismatch", ["id", "quote", "published", "recomputed_printed", "reason"]])
 if mode == "reproduction" else None)

# %% [markdown]
# ## Reproduction: every published figure

# %%
(display_table(check[["id", "kind", "published", "recomputed_printed", "status", "quote"]])
 if mode == "reproduction" else None)

# %%
if mode == "reproduction":
    for path in export_table(check, run.tables, "reproduction_check", formats=["csv", "md"], notes=reproduce.NOTES):
        print("wrote", paths.display_path(path))

# %% [markdown]
# ## Replication: the department beside the published cohort
#
# Shown in replication mode only. `published_outside_ci` flags a published value outside the department's 95%
# interval; the difference's interval also counts the published figure's own sampling error.

# %%
display_table(comparison.drop(columns=["quote", "reason"])) if mode == "replication" else None

# %% [markdown]
# ## Replication: context, not tested

# %%
display_table(context[["id", "kind", "published", "department", "why_not_tested"]]) if mode == "replication" else None

# %%
if mode == "replication":
    for path in [*export_table(comparison, run.tables, "replication_comparison", formats=["csv", "md"],
                               notes=replicate.NOTES),
                 *export_table(context, run.tables, "replication_context", formats=["csv", "md"],
                               notes=replicate.CONTEXT_NOTES)]:
        print("wrote", paths.display_path(path))
