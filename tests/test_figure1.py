"""Tests of imr_analysis.figure1: data known answers, figure structure, byte stability."""

from __future__ import annotations

import doctest
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from imr_analysis import constants as C  # noqa: E402
from imr_analysis import disclosure  # noqa: E402
from imr_analysis import figure1 as f1  # noqa: E402
from imr_analysis import table2  # noqa: E402
from imr_analysis.figio import save_figure  # noqa: E402


def _cohort(rows):
    """rows: (patient_id, service_type, service_unit, modules received)."""
    df = pd.DataFrame({
        "patient_id": [r[0] for r in rows],
        "service_type": [r[1] for r in rows],
        "service_unit": [r[2] for r in rows],
    })
    for k, c in zip(C.MODULES, C.MODULE_COLUMNS):
        df[c] = [k in r[3] for r in rows]
    df["n_modules"] = np.array([len(r[3]) for r in rows], dtype="int64")
    return df


@pytest.fixture
def tiny() -> pd.DataFrame:
    return _cohort([
        ("s1", "SerD", "SerD Ferrara", (6, 7)),
        ("c1", "CMHC", "CMHC Cento", (1,)),
        ("e1", "EDP", "EDP Ferrara", (3, 8)),
        ("c2", "CMHC", "CMHC Cento", (2, 3, 5)),
        ("c3", "CMHC", "CMHC Ferrara", (1, 4, 11)),
        ("c0", "CMHC", "CMHC Ferrara", (1,)),
        ("s2", "SerD", "SerD Cento", (1, 6)),
        ("c4", "CMHC", "CMHC Ferrara", ()),
    ])


def _table2(cohort):
    """Table 2 numbers of a figure test cohort (the Table 2 columns the figures do not use filled in)."""
    return table2.table2_long(cohort.assign(imr_format="group", imr_duration_months=3.0, n_sessions=np.int64(10)))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------------------
# figure1_data
# --------------------------------------------------------------------------------------
def test_order_known_answer(tiny):
    data = f1.figure1_data(tiny)
    # CMHC: 3 modules first (c3 has M1 -> higher pattern than c2), then 1 module (c0 before c1), then 0
    assert data["patient_id"].tolist() == ["c3", "c2", "c0", "c1", "c4", "s2", "s1", "e1"]
    assert data["n_modules"].tolist() == [3, 3, 1, 1, 0, 2, 2, 2]
    assert data["order"].tolist() == list(range(8))
    assert data["x"].tolist() == [0, 1, 2, 3, 4, 8, 9, 13]  # gap of 3 positions between services
    assert data["modules"].tolist()[:2] == ["M1;M4;M11", "M2;M3;M5"]
    assert data.loc[0, "module_pattern"] == 2 ** 10 + 2 ** 7 + 2 ** 0
    assert data.loc[4, "modules"] == ""
    assert data[C.MODULE_COLUMNS].sum(axis=1).tolist() == data["n_modules"].tolist()


def test_data_services_gap_and_validation(tiny):
    data = f1.figure1_data(tiny, services=["SerD", "EDP"], gap=1)
    assert data["patient_id"].tolist() == ["s2", "s1", "e1"]
    assert data["x"].tolist() == [0, 1, 3]
    bad = tiny.copy()
    bad.loc[0, "n_modules"] = 5
    with pytest.raises(ValueError, match="n_modules disagrees"):
        f1.figure1_data(bad)


# --------------------------------------------------------------------------------------
# plot_figure1
# --------------------------------------------------------------------------------------
def _segments(fig):
    ax = fig.axes[0]
    return [p for c in ax.containers for p in c.patches]


def test_plot_bars_heights_and_colours(tiny):
    data = f1.figure1_data(tiny)
    fig = f1.plot_figure1(data)
    segs = _segments(fig)
    assert len(segs) == int(data["n_modules"].sum()) == 14
    assert all(s.get_height() == 1 for s in segs)
    # one bar per patient with at least one module; its top equals its number of modules
    tops = {}
    for s in segs:
        x = round(s.get_x() + s.get_width() / 2, 6)
        tops[x] = max(tops.get(x, 0), s.get_y() + s.get_height())
    expected = {float(x): n for x, n in zip(data["x"], data["n_modules"]) if n > 0}
    assert tops == expected
    # the first segment of patient c3 (x=0) is M1, the top one M11
    at0 = sorted((s for s in segs if abs(s.get_x() + s.get_width() / 2) < 1e-9), key=lambda s: s.get_y())
    assert [mcolors.to_hex(s.get_facecolor()).upper() for s in at0] == [
        f1.MODULE_COLOURS[1], f1.MODULE_COLOURS[4], f1.MODULE_COLOURS[11]]


def test_plot_legend_axis_labels_and_separators(tiny):
    fig = f1.plot_figure1(f1.figure1_data(tiny))
    ax = fig.axes[0]
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert len(labels) == 11
    assert labels[0] == "M1 Recovery Strategies" and labels[10] == "M11 Healthy Lifestyles"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CMHC\n(n=5)", "SerD\n(n=2)", "EDP\n(n=1)"]
    separators = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(separators) == 2
    assert [ln.get_xdata()[0] for ln in separators] == [6.0, 11.0]
    assert "N = 8" in ax.get_title()
    assert ax.get_ylabel() == "Number of modules administered"


def test_palette_is_eleven_distinct_colours():
    colours = [f1.MODULE_COLOURS[k] for k in C.MODULES]
    assert len(colours) == 11 and len(set(colours)) == 11
    assert all(mcolors.is_color_like(c) for c in colours)


def test_plot_refuses_too_many_patients(tiny):
    data = f1.figure1_data(tiny)
    with pytest.raises(ValueError, match="plot_figure1_aggregate"):
        f1.plot_figure1(data, max_patients=5)


# --------------------------------------------------------------------------------------
# aggregate version
# --------------------------------------------------------------------------------------
def test_aggregate_known_answers(tiny):
    agg = f1.figure1_aggregate_data(tiny)
    assert list(agg.columns) == ["variable", "level", "group", "kind", "n", "denominator", "percent", "n_missing"]
    assert len(agg) == 12 * 4
    assert list(pd.unique(agg["group"])) == ["CMHC", "SerD", "EDP", "Total"]
    cm = agg[agg["group"] == "CMHC"].set_index("level")
    assert cm.loc[["0", "1", "3"], "n"].tolist() == [1, 2, 2]
    assert cm.loc["2", "n"] == 0 and (cm["denominator"] == 5).all()
    assert cm.loc["1", "percent"] == pytest.approx(40.0)
    assert agg.groupby("group")["percent"].sum().tolist() == pytest.approx([100.0] * 4)
    by_level = agg[agg["group"] != "Total"].groupby("level", sort=False)["n"].sum()
    assert by_level.tolist() == agg.loc[agg["group"] == "Total", "n"].tolist()
    fig = f1.plot_figure1_aggregate(agg)
    ax = fig.axes[0]
    assert len(ax.containers) == 3  # Total not drawn by default
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["CMHC (n=5)", "SerD (n=2)", "EDP (n=1)"]
    heights = [p.get_height() for p in ax.containers[0].patches]
    assert heights == pytest.approx(cm["percent"].tolist())
    assert len(f1.plot_figure1_aggregate(agg, include_total=True).axes[0].containers) == 4


def test_aggregate_after_disclosure_control(tiny):
    safe, report = disclosure.apply_to_long(f1.figure1_aggregate_data(tiny), "opensafely", "figure1_aggregate")
    assert safe["n"].isna().any() and len(report)
    fig = f1.plot_figure1_aggregate(safe, note="Disclosure control: test")
    ax = fig.axes[0]
    assert any(t.get_text() == "r" for t in ax.texts)  # redacted bars are marked
    assert any("redacted" in t.get_text() for t in ax.get_legend().get_texts())


# --------------------------------------------------------------------------------------
# heatmap
# --------------------------------------------------------------------------------------
def test_heatmap_data_known_answers(tiny):
    hm = f1.module_heatmap_from_long(_table2(tiny))
    cols = list(pd.unique(hm["column_label"]))
    assert cols == ["CMHC Cento (n=2)", "CMHC Ferrara (n=3)", "SerD Cento (n=1)", "SerD Ferrara (n=1)",
                    "EDP Ferrara (n=1)", "All units (n=8)"]
    assert len(hm) == 11 * 6
    cell = hm[(hm["module"] == 1) & (hm["service_unit"] == "CMHC Ferrara")].iloc[0]
    assert (cell["n"], cell["denominator"]) == (2, 3) and cell["percent"] == pytest.approx(200 / 3)
    tot = hm[(hm["module"] == 1) & (hm["service_unit"] == "All units")].iloc[0]
    assert (tot["n"], tot["percent"]) == (4, 50.0)
    assert hm.loc[hm["module"] == 3, "module_label"].iloc[0] == "M3 The Stress-Vulnerability Model"
    assert len(f1.module_heatmap_from_long(_table2(tiny), include_total=False)["column_label"].unique()) == 5


def test_heatmap_plot(tiny):
    hm = f1.module_heatmap_from_long(_table2(tiny))
    fig = f1.plot_module_heatmap(hm)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 11 * 6
    assert texts[1] == "67"  # M1 in CMHC Ferrara
    assert [t.get_text() for t in ax.get_yticklabels()][0] == "M1 Recovery Strategies"
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "All units (n=8)"


# --------------------------------------------------------------------------------------
# byte stability
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["figure1", "aggregate", "heatmap"])
def test_figures_are_byte_stable(tiny, tmp_path, kind):
    def make():
        if kind == "figure1":
            return f1.plot_figure1(f1.figure1_data(tiny))
        if kind == "aggregate":
            return f1.plot_figure1_aggregate(f1.figure1_aggregate_data(tiny))
        return f1.plot_module_heatmap(f1.module_heatmap_from_long(_table2(tiny)))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = save_figure(make(), tmp_path / "a", kind, dpi=60)
        plt.close("all")
        second = save_figure(make(), tmp_path / "b", kind, dpi=60)
    assert [p.suffix for p in first] == [".png", ".pdf", ".svg"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_heatmap_from_protected_long(tiny):
    safe, _ = disclosure.apply_to_long(_table2(tiny), "opensafely", "table2")
    hm = f1.module_heatmap_from_long(safe)
    assert hm["percent"].isna().any()
    assert hm["column_label"].str.contains("n redacted").any()
    fig = f1.plot_module_heatmap(hm)
    assert len(fig.axes[0].texts) == int(hm["percent"].notna().sum())  # blank redacted cells


# --------------------------------------------------------------------------------------
# the profile decides the form of Figure 1 (as notebook 04 does): per patient only where
# microdata are allowed
# --------------------------------------------------------------------------------------
def test_profile_none_draws_figure1_per_patient(tiny):
    assert disclosure.figure_policy("none")["figure1"] == "per_patient"
    assert f1.FIGURE1_STEM == "figure1_modules_per_patient"
    fig = f1.plot_figure1(f1.figure1_data(tiny))
    # one stacked segment per module received: 1+3+2+3+1+2+0+2 = 14 unit segments
    heights = [p.get_height() for ax in fig.axes for p in ax.patches if p.get_height() > 0]
    assert len(heights) == int(tiny["n_modules"].sum())


def test_profile_opensafely_draws_the_aggregate_figure1_redacted(tiny):
    policy = disclosure.figure_policy("opensafely")
    assert policy["figure1"] == "aggregate" and f1.FIGURE1_AGGREGATE_STEM != f1.FIGURE1_STEM
    safe, report = disclosure.apply_to_long(f1.figure1_aggregate_data(tiny), "opensafely", "figure1_aggregate")
    # every count in an 8-patient cohort describes 7 or fewer patients: all redacted
    assert not report.empty
    assert report["action"].str.startswith("redacted").any()
    assert report["rule"].str.contains("opensafely").all()
    assert any(t.get_text() == "r" for t in f1.plot_figure1_aggregate(safe, note=policy["note"]).axes[0].texts)


def test_docstring_examples():
    result = doctest.testmod(f1, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
