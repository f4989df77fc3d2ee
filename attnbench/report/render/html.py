"""``attnbench report RESULTS... -o report.html``: one self-contained HTML page of a set of results.

No network, no external script, style or font: figures are embedded as data-URI images (SVG from matplotlib's SVG
backend, PNG where the SVG would be larger), the tables are plain HTML that a few lines of inline script sort (click
a header) and filter (the box above each table). The page is rendered from a Jinja2 template shipped with the
package (``report/render/templates/report.html.j2``). Contents: the summary first (with the cost leaderboards at the
largest grids most mechanisms ran); where and what ran (machines, provenance, commands); per cost suite the figures
(one per family panel when the suite has more mechanisms than one figure shows apart), fitted exponents with CIs
and local slopes, achieved vs roofline, frontier, crossover N* and ratios, and the leaderboard of every mode and
grid (collapsed, one per grid); per accuracy suite the mean ± std table and figures, the accuracy-versus-cost Pareto
view among them; the comparison with a reference run (``--reference``); and every result row.
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from attnbench.report.analysis.accuracy import accuracy_summary, pairs_table, per_seed
from attnbench.report.analysis.attainable import roofline_fraction
from attnbench.report.analysis.claims import MECH, claims_table
from attnbench.report.analysis.compare import ALPHA as COMPARE_ALPHA
from attnbench.report.analysis.compare import THRESHOLD, compare, compare_accuracy
from attnbench.report.analysis.frame import case_wall_total, load_frame
from attnbench.report.analysis.leaderboard import leaderboard_tables
from attnbench.report.analysis.protocol import lr_search_tables
from attnbench.report.analysis.scaling import recorded_roofline, scaling_notes, scaling_tables
from attnbench.report.analysis.summary import summary_tables
from attnbench.report.analysis.sweep import lr_sweeps, sweep_tables
from attnbench.report.analysis.table import Table
from attnbench.report.render.accuracy_figures import accuracy_figures
from attnbench.report.render.cost_figures import cost_figures
from attnbench.report.render.mpl import svg_text
from attnbench.store.layout import manifest_path, results_files

__all__ = ["build_report"]

# An SVG above this many bytes is replaced by a PNG when the PNG is smaller (dense scatter plots).
_SVG_BUDGET = 250_000
# The per-row table: (column, header); everything else stays in the CSV.
_ROW_COLUMNS = (("suite", "suite"), ("label", "attention"), ("mode", "mode"), ("task", "task"), ("grid", "grid"),
                ("seed", "seed"), ("status", "status"), ("time_ms_median", "median ms"), ("time_ms_q1", "q1 ms"),
                ("time_ms_q3", "q3 ms"), ("peak_mib", "peak MiB"), ("mem_kind", "memory counter"),
                ("gflops_per_s", "GFLOP/s"), ("roofline_pct", "% of roofline"), ("metric", "metric"),
                ("value", "value"), ("train_s", "train s"), ("case_wall_s", "case s"), ("reason", "reason"),
                ("run_id", "run"))


@dataclass
class Figure:
    name: str
    uri: str
    kind: str
    size: int


@dataclass
class HtmlTable:
    """What the template draws: header, rows of ``(text, sort key or None)`` cells, a title and a note."""

    id: str
    title: str
    columns: list[str]
    rows: list[list[tuple[str, Any]]]
    note: str = ""


@dataclass
class Section:
    id: str
    title: str
    notes: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[HtmlTable] = field(default_factory=list)
    # tables shown collapsed, one <details> each, after the open ones (e.g. a leaderboard per grid)
    details: list[HtmlTable] = field(default_factory=list)


def _embed(name: str, fig: Any) -> Figure:
    data, kind = svg_text(fig).encode(), "svg+xml"
    if len(data) > _SVG_BUDGET:  # render a PNG only when the SVG is large, and keep whichever is smaller
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)  # a closed figure keeps its canvas
        if buf.tell() < len(data):
            data, kind = buf.getvalue(), "png"
    if kind == "png":
        return Figure(name, f"data:image/png;base64,{base64.b64encode(data).decode()}", "png", len(data))
    # SVG as text in the URI (a quarter smaller than base64): only %, # and line breaks need escaping in a URL;
    # the template's HTML escaping takes care of quotes and ampersands in the attribute.
    text = data.decode().replace("%", "%25").replace("#", "%23").replace("\r", "").replace("\n", "%0A")
    return Figure(name, f"data:image/svg+xml;charset=utf-8,{text}", "svg", len(data))


def _cell(value: Any, digits: str = ".4g") -> tuple[str, Any]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "", None
    if isinstance(value, float):
        return format(value, digits), value
    return str(value), None


def _from_table(table: Table, prefix: str) -> HtmlTable:
    """A :class:`Table` as the template draws it: each cell's text with the value it sorts by."""
    rows = [list(zip(texts, keys)) for texts, keys in zip(table.rows(), table.sort_values())]
    return HtmlTable(f"{prefix}-{table.key or len(table.title)}", table.title, table.headers, rows, table.note)


def _from_frame(id_: str, title: str, frame: pd.DataFrame, columns: list[tuple[str, str]], note: str = "",
                digits: str = ".4g") -> HtmlTable:
    rows = [[_cell(r[c], digits) for c, _ in columns] for r in frame.to_dict("records")]
    return HtmlTable(id_, title, [h for _, h in columns], rows, note)


def run_states(paths: list[str | Path]) -> dict[tuple[str, str], str]:
    """``(run folder, suite)`` → when its run finished, from the manifest beside each results file: the time, or a
    flag for a run that never finished (interrupted, or still running: its rows are what it measured so far)."""
    import json

    states = {}
    for csv in results_files(paths):
        manifest = manifest_path(csv.parent, csv.stem)
        try:
            finished = json.loads(manifest.read_text(encoding="utf-8")).get("finished")
        except (OSError, ValueError):
            states[(csv.parent.name, csv.stem)] = "no manifest"
            continue
        states[(csv.parent.name, csv.stem)] = str(finished) if finished else "NEVER FINISHED"
    return states


def _machines(df: pd.DataFrame, states: dict[tuple[str, str], str]) -> HtmlTable:
    rows = []
    for (run, suite), g in df.groupby(["run_id", "suite"], sort=False):
        r = g.iloc[0]
        roof = recorded_roofline(g)
        peaks = ", ".join(f"{k} {v / 1e9:.1f}" for k, v in roof["peak_flops"].items()) if roof else ""
        copy = f"; copy {roof['copy_bytes_per_s'] / 1e9:.1f} GB/s" if roof else ""
        rows.append([(str(run), None), (str(suite), None), (str(r["machine"]), None),
                     (f"{r['device_name']} ({r['device']})", None), (str(r["cpu_model"]), None),
                     _cell(r["threads"], ".0f"), (str(r["dtype"]), None), (str(r["tf32"]), None),
                     (str(r["torch"]), None), (str(r["python"]), None),
                     (", ".join(sorted(set(g["code_version"].astype(str)))), None),
                     (f"{peaks} GFLOP/s{copy}" if roof else "not measured", None), _cell(len(g), "d"),
                     _cell(case_wall_total(g) / 60, ".1f"),
                     (states.get((str(run), str(suite)), "unknown"), None)])
    return HtmlTable("machines", "Machines and provenance", ["run", "suite", "machine", "device", "CPU", "threads",
                     "dtype", "TF32", "torch", "python", "code version", "roofline", "rows", "case time [min]",
                     "finished"], rows,
                     "one row per run and suite; the code version is the git commit (with a dirty-tree suffix for "
                     "uncommitted code); case time: the cases' wall times, each case once (data generation before "
                     "the cases is not counted)")


def _cost_section(suite: str, g: pd.DataFrame, min_tokens: int, baseline: str | None) -> Section:
    sec = Section(f"cost-{suite}", f"{suite}: cost (runtime, peak memory, roofline)",
                  [n.replace("`", "") for n in scaling_notes(g)])  # markdown code marks read as noise in HTML
    sec.figures = [_embed(name, fig) for name, fig in cost_figures(g, min_tokens)]
    sec.tables = [_from_table(t, sec.id) for t in scaling_tables(g, min_tokens, baseline)]
    # every grid's leaderboard, collapsed: the summary opens with the largest grids, these hold the rest
    sec.details = [_from_table(t, sec.id) for t in leaderboard_tables(suite, g)]
    return sec


def _accuracy_section(suite: str, g: pd.DataFrame, cost: pd.DataFrame) -> Section:
    """The accuracy rows ``g`` of one suite; ``cost``: every cost row loaded with them (for the Pareto view's
    layer time)."""
    table = accuracy_summary(g)
    sec = Section(f"accuracy-{suite}", f"{suite}: accuracy", [f"{table.note[0].upper()}{table.note[1:]}."])
    sec.tables = [_from_table(table, sec.id)]
    pairs = pairs_table(g)
    if len(pairs):
        sec.tables.append(_from_table(pairs, sec.id))
    sec.tables += [_from_table(search, sec.id) for search in lr_search_tables(per_seed(g, search=True))]
    for sweep in sweep_tables(lr_sweeps(g)):
        table = sweep.table
        note = f"{table.note}. " + " ".join(f"{label} {answer}" for label, answer in sweep.answers)
        sec.tables.append(_from_table(Table(table.key, f"Learning-rate sweep: {table.title}", table.columns,
                                            table.records, note), sec.id))
    sec.figures = [_embed(name, fig) for name, fig in accuracy_figures(g, cost)]
    return sec


def _comparison(ref: pd.DataFrame, df: pd.DataFrame, reference: str) -> Section:
    sec = Section("reference", f"Against the reference run {reference}",
                  ["B / A with A = the reference, B = these results; cases matched on configuration and grid. Time "
                   "ratio of the medians of per-process medians with a hierarchical bootstrap 95 % CI (processes, "
                   "then blocks); significant: exact Mann-Whitney U over the process medians p < "
                   f"{COMPARE_ALPHA:g} and ratio ≥ {THRESHOLD:g} or ≤ 1/{THRESHOLD:g}; runs measured once have too "
                   "few replicates for a verdict."])
    cost = compare(ref, df)
    if len(cost):
        cost["ci"] = [f"{a:.3g}–{b:.3g}" if pd.notna(a) else "" for a, b in zip(cost["ci_lo"], cost["ci_hi"])]
        sig = cost[cost["change"].isin(["slower", "faster"])]
        sec.notes.append(f"{len(cost)} cost cases; significant: {int((sig['change'] == 'slower').sum())} slower, "
                         f"{int((sig['change'] == 'faster').sum())} faster; "
                         f"{int(cost['change'].str.startswith('status').sum())} status changes.")
        sec.tables.append(_from_frame("reference-cost", "Cost, case by case", cost, [
            ("mode", "mode"), ("label", "attention"), ("grid", "grid"), ("status_a", "status A"),
            ("status_b", "status B"), ("ratio", "time B/A"), ("ci", "95 % CI"), ("p", "p"),
            ("replicates", "processes A/B"),
            ("mem_ratio", "memory B/A"), ("change", "change")], digits=".3g"))
    acc = compare_accuracy(ref, df)
    if len(acc):
        sec.tables.append(_from_frame("reference-accuracy", "Accuracy, case by case", acc, [
            ("task", "task"), ("label", "attention"), ("mode", "mode"), ("grid", "grid"), ("seed", "seed"),
            ("metric", "metric"), ("value_a", "A"), ("value_b", "B"), ("train_ratio", "train time B/A"),
            ("mem_ratio", "memory B/A"), ("change", "change")]))
    return sec


def _all_rows(df: pd.DataFrame) -> HtmlTable:
    df = df.copy()
    df["grid"] = [f"{int(h)}x{int(w)}" if pd.notna(h) else "" for h, w in zip(df["height"], df["width"])]
    df["roofline_pct"] = [100 * roofline_fraction(r) for r in df.to_dict("records")]
    table = _from_frame("rows", "Every result row", df, list(_ROW_COLUMNS),
                        "times: median and quartiles of the per-call time over timing blocks; peak: one call, "
                        "above the process baseline; the CSV files hold every column")
    grid_col = [c for c, _ in _ROW_COLUMNS].index("grid")
    for row, tokens in zip(table.rows, df["tokens"]):  # sort grids by N, not as text
        row[grid_col] = (row[grid_col][0], None if pd.isna(tokens) else float(tokens))
    return table


def build_report(paths: list[str | Path], out: str | Path, reference: list[str | Path] | None = None,
                 min_tokens: int = 1024, baseline: str | None = None, command: str = "") -> Path:
    """Render the report of the results files/folders ``paths`` to ``out``, compared with the results files/folders
    ``reference`` when given; returns ``out``.

    Raises:
        NotResultsError: a file is not an attnbench results file (one line).
    """
    from jinja2 import Environment, PackageLoader

    df = load_frame(paths)
    # The answer first: the opening section summarises what the sections after it show in detail.
    states = run_states(paths)
    unfinished = [f"Run {run} ({suite}) never finished: its manifest records no finish time, so its rows are what it "
                  "measured before it was interrupted (or so far), not the whole suite."
                  for (run, suite), state in sorted(states.items()) if state == "NEVER FINISHED"]
    tables = [_from_table(t, "summary") for t in summary_tables(df, min_tokens, baseline)]
    summary = Section("summary", "Summary", notes=unfinished, tables=tables)
    sections = [summary]
    for suite, g in df.groupby("suite", sort=False):
        if (g["kind"] == "cost").any():
            sections.append(_cost_section(str(suite), g[g["kind"] == "cost"], min_tokens, baseline))
        if (g["kind"] == "accuracy").any():
            sections.append(_accuracy_section(str(suite), g[g["kind"] == "accuracy"], df[df["kind"] == "cost"]))
    if (df["label"] == MECH).any():  # the paper's claims, by the same rules as `attnbench claims`
        sections.append(Section("claims", "The MANO paper's claims against these results",
                                tables=[_from_table(claims_table(df), "claims")]))
    if reference:
        sections.append(_comparison(load_frame(list(reference)), df, ", ".join(map(str, reference))))
    # autoescape on: labels, reasons and paths come from CSV files and must never become markup
    env = Environment(loader=PackageLoader("attnbench.report.render", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    html = env.get_template("report.html.j2").render(
        title=f"attnbench report: {', '.join(map(str, df['suite'].unique()))}",
        generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), command=command,
        sources=[str(p) for p in paths], reference=", ".join(map(str, reference or [])),
        machines=_machines(df, states), sections=sections, rows=_all_rows(df))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")  # never leave a half-written report behind
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out
