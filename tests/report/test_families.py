"""Reading twenty series: per-family cost figures with the seed four as references, the cost leaderboard (ranks
with tie marks), and the accuracy-versus-cost Pareto front — on constructed rows whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from attnbench.report.analysis.families import MAX_SERIES, SEED_FOUR, family_panels
from attnbench.report.analysis.frame import prepare
from attnbench.report.analysis.leaderboard import NO_CI, TIED, cost_leaderboard, leaderboard_grids, leaderboard_table
from attnbench.report.analysis.pareto import pareto_front, pareto_points
from attnbench.report.analysis.summary import summary_tables
from attnbench.store.schema import COLUMNS

# 22 mechanisms in 6 families; the window family (10) is larger than one panel holds.
FAMILIES = {
    "global": ["full", "full_naive", "full_sdpa"],
    "window": ["swin", "swinv2", "maxvit", "axial", "natten_ref", "win_a", "win_b", "win_c", "win_d", "win_e"],
    "linear": ["linear", "performer", "nystrom", "agent"],
    "multipole": ["mano", "mano_reference"],
    "operator": ["galerkin", "transolver"],
    "mixer": ["fno"],
}
FAMILY_OF = {label: family for family, labels in FAMILIES.items() for label in labels}
SIDES = (16, 32, 64, 128)


def _frame(rows: list[dict]) -> pd.DataFrame:
    return prepare(pd.DataFrame([{k: ("" if v is None else str(v)) for k, v in r.items()} for r in rows]))


def _cost_row(label: str, side: int, t: float | None, status: str = "ok", mode: str = "fwd", peak: float = 1.0,
              ci: tuple[float, float] | None = None, **extra) -> dict:
    lo, hi = ci if ci else (None, None)
    return dict(suite="s", kind="cost", mode=mode, label=label, attention=label, family=FAMILY_OF.get(label, ""),
                height=side, width=side, tokens=side * side, status=status, time_ms_median=t, time_ms_q1=t,
                time_ms_q3=t, time_ms_ci_lo=lo, time_ms_ci_hi=hi, peak_mib=peak if status == "ok" else None,
                mem_kind="cpu_rss", batch=1, dim=32, heads=4, dtype="float32", device="cpu", threads=1,
                config_id=f"c-{label}", case_key=f"{label}|{mode}|{side}", run_id="run", timestamp="1", **extra)


def _many() -> list[dict]:
    """Every mechanism at every grid; the first global one times out at the largest, so a band is drawn."""
    rows = []
    for i, label in enumerate(FAMILY_OF):
        for side in SIDES:
            n = side * side
            t = 1e-3 * (1 + i / 10) * n ** (1.0 + (i % 3) / 4)
            failed = label == FAMILIES["global"][0] and side == SIDES[-1]
            rows.append(_cost_row(label, side, None if failed else t, "timeout" if failed else "ok",
                                  peak=1 + n * (1 + i) / 1e4, ci=None if failed else (0.95 * t, 1.05 * t)))
    return rows


@pytest.fixture(scope="module")
def many() -> pd.DataFrame:
    return _frame(_many())


def _series(fig) -> list[tuple[str, object]]:
    """(series name, its data line) of the main axes: one errorbar container per series drawn."""
    ax = next(a for a in fig.axes if a.containers)
    return [(c.get_label().split(" (")[0], c.lines[0]) for c in ax.containers]


def _is_reference(fig, name: str) -> bool:
    ax = next(a for a in fig.axes if a.containers)
    return any(c.get_label().startswith(f"{name} (reference)") for c in ax.containers)


def test_panels_split_by_family_with_the_seed_four_in_every_one(many: pd.DataFrame) -> None:
    panels = family_panels(many)
    # the seed four's families first, then the others by name; the ten window mechanisms in two parts of five
    assert [p.suffix for p in panels] == ["_global", "_window-1", "_window-2", "_linear", "_multipole", "_mixer",
                                          "_operator"]
    for p in panels:
        assert 0 < len(p.members) <= MAX_SERIES
        assert set(p.labels) >= set(SEED_FOUR) and not set(p.members) & set(p.references)
        assert {FAMILY_OF[m] for m in p.members} == {p.family}
    assert sorted(m for p in panels for m in p.members) == sorted(FAMILY_OF)  # every mechanism once
    small = many[many["label"].isin(["full", "swin", "linear", "mano", "fno"])]
    assert [(p.family, p.references) for p in family_panels(small)] == [("", ())]  # today's single figure
    # a compiled variant is drawn with its eager series: 5 mechanisms in 10 series are still one figure ...
    compiled = [{**r, "compile": "true", "case_key": r["case_key"] + "|c"} for r in _many()
                if r["label"] in ("full", "swin", "linear", "mano", "fno")]
    small_compiled = _frame([r for r in _many() if r["label"] in ("full", "swin", "linear", "mano", "fno")]
                            + compiled)
    assert [len(p.members) for p in family_panels(small_compiled)] == [10]
    # ... and with 22 mechanisms shares its eager series' panel, counted with it
    panels = family_panels(_frame(_many() + compiled))
    mixer = next(p for p in panels if p.family == "mixer")
    assert mixer.members == ("fno", "fno [compiled]") and "full [compiled]" not in mixer.references
    assert [len(p.members) for p in panels if p.family == "window"] == [6, 5]  # swin's pair counts as one of 10


def test_per_family_figures_draw_members_and_grey_references(many: pd.DataFrame) -> None:
    from attnbench.report.render.cost_figures import cost_figures

    figures = dict(cost_figures(many, min_tokens=1024))
    runtime = {stem: fig for stem, fig in figures.items() if "_runtime" in stem}
    assert set(runtime) == {f"s_fwd_runtime{p.suffix}" for p in family_panels(many)}
    assert {f"s_fwd_memory_cpu_rss{p.suffix}" for p in family_panels(many)} <= set(figures)
    for stem, fig in figures.items():
        series = _series(fig)
        names = [name for name, _ in series]
        assert len(names) <= MAX_SERIES + len(SEED_FOUR), (stem, names)
        assert set(names) >= set(SEED_FOUR), (stem, names)  # in every panel: as a member or as a reference
        members = [name for name in names if not _is_reference(fig, name)]
        assert members and {FAMILY_OF[m] for m in members} == {stem.rsplit("_", 1)[1].split("-")[0]}
        for name, line in series:
            r, g, b = to_rgb(line.get_color())
            grey = abs(r - g) < 1e-6 and abs(g - b) < 1e-6
            if _is_reference(fig, name):
                assert grey and line.get_linestyle() == "-.", (stem, name)
            else:
                assert not grey and line.get_linestyle() == "-", (stem, name)
    # the timeout of the first global mechanism is in the global panel's failure band, labelled
    band = [a for a in figures["s_fwd_runtime_global"].axes if a.texts and not a.containers]
    assert band and "timeout" in [t.get_text() for t in band[0].texts]
    import matplotlib.pyplot as plt

    plt.close("all")


def test_a_small_suite_keeps_one_figure() -> None:
    from attnbench.report.render.cost_figures import cost_figures

    rows = [r for r in _many() if r["label"] in ("full", "swin", "linear", "mano", "fno")]
    stems = [stem for stem, _ in cost_figures(_frame(rows), min_tokens=1024)]
    assert stems == ["s_fwd_runtime", "s_fwd_memory_cpu_rss"]


def _roofline() -> str:
    return json.dumps({"roofline": {"peak_flops": {"float32": 1e11}, "copy_bytes_per_s": 1e10}})


def _board_rows() -> list[dict]:
    """At 64²: a (1.0 ms) and b (1.05, CIs overlap) tie; c (2.0) is apart from b; d (2.1) has no CI; e timed out.
    Peaks: b and c need the same memory (a shared memory rank), a more, d the most."""
    rows = [
        _cost_row("a", 64, 1.0, ci=(0.9, 1.1), peak=10, flops=1e7, bytes=1e6, gflops_per_s=10, runtime=_roofline()),
        _cost_row("b", 64, 1.05, ci=(1.0, 1.2), peak=5, flops=2e7, bytes=1e6, gflops_per_s=19),
        _cost_row("c", 64, 2.0, ci=(1.9, 2.1), peak=5),
        _cost_row("d", 64, 2.1, peak=20),
        _cost_row("e", 64, None, status="timeout"),
    ]
    return rows + [_cost_row(x, s, 0.01 * s, ci=(0.009 * s, 0.011 * s)) for x in "abcde" for s in (16, 32)]


def test_leaderboard_ranks_ties_memory_and_roofline() -> None:
    board = cost_leaderboard(_frame(_board_rows()), "fwd", 64, 64).set_index("label")
    assert list(board.index) == ["a", "b", "c", "d"]  # only what ran, fastest first; e timed out
    assert list(board["rank"]) == [1, 2, 3, 4]
    assert [board.loc[x, "tied_above"] for x in "abcd"] == [None, True, False, None]
    assert [board.loc[x, "mem_rank"] for x in "abcd"] == [3, 1, 1, 4]
    assert board.loc["c", "vs_fastest"] == pytest.approx(2.0)
    # a: 1e7 FLOPs in 1 ms = 1e10 FLOP/s; attainable min(1e11, 1e10 B/s × 10 FLOP/B) = 1e11 → 10 %
    assert board.loc["a", "roofline_fraction"] == pytest.approx(0.1) and np.isnan(board.loc["c", "roofline_fraction"])
    table = leaderboard_table("s", _frame(_board_rows()), "fwd", 64, 64)
    cells = {row[2]: dict(zip(table.headers, row)) for row in table.rows()}
    assert [cells[x]["vs the one above"] for x in "abcd"] == ["", TIED, "", NO_CI]
    assert cells["a"]["median ms [95 % CI]"] == "1 [0.9–1.1]" and cells["d"]["median ms [95 % CI]"] == "2.1"
    assert cells["a"]["GFLOP per call"] == "0.01" and cells["a"]["% of roofline"] == "10"
    assert "e (timeout)" in table.note and table.title == "s: fwd leaderboard at 64²"


def test_leaderboard_grids_are_the_largest_most_mechanisms_ran() -> None:
    rows = _board_rows() + [_cost_row("a", 128, 5.0)] + [_cost_row(x, 128, None, "timeout") for x in "bcde"]
    df = _frame(rows)
    # 64²: 4 of 5 ran (≥ 3/4); 128²: 1 of 5 — a leaderboard of one survivor is not shown in the summary
    assert leaderboard_grids(df, "fwd") == [(32, 32), (64, 64)]
    keys = [t.key for t in summary_tables(df)]
    assert "s-cost-leaderboard-fwd-64x64" in keys and "s-cost-leaderboard-fwd-32x32" in keys
    assert "s-cost-leaderboard-fwd-128x128" not in keys


def test_pareto_front_of_constructed_points() -> None:
    cost = [1, 2, 2, 3, 5, 4]
    higher = [0.80, 0.85, 0.84, 0.83, 0.90, 0.95]
    # 2@0.84 has the cost of 2@0.85 and a worse metric: dominated; 3@0.83 dominated; 5@0.90 beaten by 4@0.95
    assert pareto_front(cost, higher, lower_is_better=False) == [0, 1, 5]
    lower = [0.10, 0.08, 0.07, 0.09, 0.05, 0.06]
    assert pareto_front(cost, lower, lower_is_better=True) == [0, 2, 5, 4]
    assert pareto_front([1, np.nan, 3], [0.1, 0.9, 0.2], lower_is_better=False) == [0, 2]


# label → (metric mean, layer fwd_bwd ms at the token grid, training seconds per seed)
POINTS = {"full": (0.80, 1.0, 10.0), "swin": (0.85, 2.0, 10.0), "linear": (0.84, 2.0, 30.0),
          "mano": (0.83, 3.0, 5.0), "fno": (0.90, 5.0, 20.0)}


def _accuracy_rows(task: str, metric: str, values: dict[str, float]) -> list[dict]:
    rows = []
    for label, v in values.items():
        for seed, dv in enumerate((-0.01, 0.0, 0.01)):
            rows.append(dict(suite="acc", kind="accuracy", task=task, label=label, attention=label,
                             family=FAMILY_OF[label], mode="trained", status="ok", metric=metric, value=v + dv,
                             seed=seed, height=32, width=32, token_height=16, token_width=16, train_res=32,
                             eval_res=32, n_train=100, epochs=2, train_s=POINTS[label][2] * (1 + dv), peak_mib=50,
                             mem_kind="cpu_rss", config_id=f"{task}-{label}", case_key=f"{task}|{label}|{seed}",
                             timestamp=str(seed)))
    return rows


def _layer_rows(labels) -> list[dict]:
    return [_cost_row(label, 16, POINTS[label][1], mode="fwd_bwd", ci=(0.9 * POINTS[label][1],
                                                                         1.1 * POINTS[label][1])) for label in labels]


def _front(points: pd.DataFrame) -> set[str]:
    return set(points.loc[points["on_front"], "label"])


def test_pareto_points_against_the_layer_time_or_the_training_time() -> None:
    acc = _accuracy_rows("cls", "top1", {k: v[0] for k, v in POINTS.items()})
    layer = pareto_points(_frame(acc + _layer_rows(POINTS)), "cls")
    assert set(layer["x_kind"]) == {"layer"} and "16x16" in layer["x_label"].iloc[0]
    # linear costs what swin costs and is less accurate; mano is slower and worse than swin
    assert _front(layer) == {"full", "swin", "fno"}
    assert layer.set_index("label").loc["swin", "x_hi"] == pytest.approx(2.2)
    assert layer.set_index("label").loc["swin", "ci95"] > 0  # three seeds: the mean's CI
    # one mechanism without a layer row: the front is over training time for all, never a mixture
    train = pareto_points(_frame(acc + _layer_rows(["full", "swin", "linear", "mano"])), "cls")
    assert set(train["x_kind"]) == {"train_s"}
    assert _front(train) == {"mano", "swin", "fno"}
    with pytest.raises(ValueError):
        pareto_points(_frame(acc), "cls", x="layer")


def test_pareto_points_lower_is_better() -> None:
    values = {"full": 0.10, "swin": 0.08, "linear": 0.09, "mano": 0.12, "fno": 0.05}
    points = pareto_points(_frame(_accuracy_rows("pde", "rel_l2", values) + _layer_rows(POINTS)), "pde")
    assert bool(points["lower_is_better"].iloc[0])
    assert _front(points) == {"full", "swin", "fno"}


def test_pareto_figure_names_the_front(tmp_path: Path) -> None:
    from attnbench.report.render.accuracy_figures import accuracy_figures

    acc = _frame(_accuracy_rows("cls", "top1", {k: v[0] for k, v in POINTS.items()}))
    cost = _frame(_layer_rows(POINTS))
    figures = dict(accuracy_figures(acc, cost))
    ax = figures["cls_pareto"].axes[0]
    assert {t.get_text() for t in ax.texts} == {"full", "swin", "fno"}
    assert "attention layer fwd_bwd time" in ax.get_xlabel()
    import matplotlib.pyplot as plt

    plt.close("all")


def _write_csv(rows: list[dict], path: Path) -> Path:
    raw = pd.DataFrame([{k: ("" if v is None else str(v)) for k, v in r.items()} for r in rows])
    raw = raw.reindex(columns=COLUMNS).astype(object).fillna("")
    raw["schema_version"], raw["compile"] = "6", "false"
    raw.to_csv(path, index=False)
    return path


def test_plot_and_report_hold_family_figures_leaderboards_and_pareto(tmp_path: Path) -> None:
    """The files ``attnbench plot`` writes and the HTML report, on a small case (drawing is the slow part): nine
    mechanisms in two families at two grids without a memory counter (runtime figures only), and the accuracy
    rows of a task with the layer rows of its five mechanisms."""
    from attnbench.report.render.files import plot_results
    from attnbench.report.render.html import build_report

    nine = {**{f"w{i}": "window" for i in range(5)}, **{f"o{i}": "operator" for i in range(4)}}
    rows = [{**_cost_row(label, side, 1e-3 * (i + 1) * side ** 2, ci=(0.0, 1.0)), "family": family, "mem_kind": ""}
            for i, (label, family) in enumerate(nine.items()) for side in (32, 64)]
    rows += _accuracy_rows("cls", "top1", {k: v[0] for k, v in POINTS.items()}) + _layer_rows(POINTS)
    csv = _write_csv(rows, tmp_path / "rows.csv")
    written = {p.name for p in plot_results([csv], tmp_path / "plots")}
    assert {"s_fwd_runtime_window.png", "s_fwd_runtime_operator.png", "s_fwd_bwd_runtime.png", "leaderboard.md",
            "cls_pareto.png"} <= written
    assert "s_fwd_runtime.png" not in written
    board = (tmp_path / "plots" / "s" / "leaderboard.md").read_text()
    assert "## s: fwd leaderboard at 32²" in board and "## s: fwd_bwd leaderboard at 16²" in board
    assert board.count(TIED) >= 8  # every CI is [0, 1]: all overlap
    html = build_report([csv], tmp_path / "report.html").read_text()
    summary = html[html.index('<section id="summary"'):html.index("</section>")]
    assert "s: fwd leaderboard at 64²" in summary and "s: fwd leaderboard at 32²" in summary
    assert html.count('<details class="collapsed-table">') == 3  # fwd at 32² and 64², fwd_bwd at 16²
    assert "cls_pareto" in html and "s_fwd_runtime_operator" in html


def test_accuracy_figures_are_drawn_one_at_a_time() -> None:
    """A report draws dozens of accuracy figures: each is drawn only when asked for, so a caller that closes each
    one before the next never holds more than one open (matplotlib warns past 20)."""
    import matplotlib.pyplot as plt

    from attnbench.report.render.accuracy_figures import accuracy_figures

    plt.close("all")
    rows = [_accuracy_rows(task, "top1", {k: v[0] for k, v in POINTS.items()}) for task in ("cls", "cls2")]
    open_at_each = []
    for _, fig in accuracy_figures(_frame(rows[0] + rows[1]), _frame(_layer_rows(POINTS))):
        open_at_each.append(len(plt.get_fignums()))
        plt.close(fig)
    assert len(open_at_each) >= 2 and max(open_at_each) == 1
