"""The one way notebooks show a table (imr_workflow.display): same bytes on every call, no row index,
p-values and counts as in the exported tables, full labels, text escaped."""

from __future__ import annotations

import doctest
import re

import pandas as pd
import pytest

from imr_analysis.constants import DIAGNOSIS_GROUP_LABELS
from imr_workflow import display
from imr_workflow.display import display_table

LONG_LABEL = DIAGNOSIS_GROUP_LABELS["schizophrenia_spectrum"]  # 57 characters: pandas' repr cut it at 50


@pytest.fixture
def tests_like() -> pd.DataFrame:
    return pd.DataFrame({"variable": [LONG_LABEL, "sex", "age"], "comparison": ["all services", "CMHC vs SerD", "x"],
                         "p_value": [9.999e-05, 0.31403, float("nan")], "n": [126.0, 0.0, 52.0],
                         "estimate": [0.962788351, 1.5e-07, -0.25912], "p_welch": ["[REDACTED]", 0.0456, None],
                         "effect_ci_low": [pd.NA, 3.0, 0.1234]}, index=[7, 3, 9])


def test_the_same_table_gives_the_same_bytes(tests_like):
    first, second = display_table(tests_like, "Caption", ["a note"]), display_table(tests_like.copy(), "Caption",
                                                                                     ["a note"])
    assert first.html == second.html and repr(first) == repr(second)
    assert len(set(re.findall(r'id="(T_\w+)"', first.html))) == 1  # one fixed id, no per-cell ids
    assert 'id="T_' in first.html and "_row0_col0" not in first.html
    other = display_table(tests_like, "Another caption")
    assert re.search(r'id="(T_\w+)"', other.html)[1] != re.search(r'id="(T_\w+)"', first.html)[1]


def test_cells_read_as_in_the_exported_tables(tests_like):
    text = display.as_text(tests_like)
    assert text["p_value"].tolist() == ["<0.001", "0.314", ""]
    assert text["p_welch"].tolist() == ["[REDACTED]", "0.046", ""]
    assert text["n"].tolist() == ["126", "0", "52"]
    assert text["estimate"].tolist() == ["0.9628", "0.0000", "-0.2591"]
    assert text["effect_ci_low"].tolist() == ["", "3", "0.1234"]
    shown = display_table(tests_like)
    for bad in ("e-05", "e-07", "126.0", "nan", "<NA>", "None"):
        assert bad not in shown.html and bad not in repr(shown), bad
    assert "&lt;0.001" in shown.html and "<0.001" in repr(shown)


def test_no_row_index_and_full_labels(tests_like):
    shown = display_table(tests_like)
    assert LONG_LABEL in shown.html and LONG_LABEL in repr(shown)
    assert re.findall(r"<th[^>]*>([^<]*)</th>", shown.html) == list(tests_like.columns)  # headers only, no index
    assert 'class="row_heading' not in shown.html and ">7<" not in shown.html
    assert repr(shown).splitlines()[0].split() == list(tests_like.columns)
    assert "text-align: left" in shown.html


def test_a_named_index_becomes_columns_and_text_is_escaped():
    summary = pd.DataFrame({"cells": [0]}, index=pd.Index(["no action <needed>"], name="action"))
    shown = display_table(summary, caption="Disclosure & report", notes=["p < 0.05 & more"])
    assert display.as_text(summary).columns.tolist() == ["action", "cells"]
    assert "no action &lt;needed&gt;" in shown.html and "<caption>Disclosure &amp; report</caption>" in shown.html
    assert shown.html.rstrip().endswith("<p style=\"font-size: 0.8em; max-width: 60em\">p &lt; 0.05 &amp; more</p>")
    assert repr(shown).splitlines()[0] == "Disclosure & report" and repr(shown).endswith("p < 0.05 & more")


def test_an_empty_table_says_so():
    shown = display_table(pd.DataFrame(columns=["id", "quote"]))
    assert repr(shown) == "id  quote\n(no rows)" and "<tbody>\n  </tbody>" in shown.html


def test_jupyter_shows_html_and_plain_text(tests_like):
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(display_table(tests_like))
    assert set(data) == {"text/html", "text/plain"}
    assert data["text/plain"] == repr(display_table(tests_like))


def test_docstring_examples():
    result = doctest.testmod(display)
    assert result.attempted > 0 and result.failed == 0
