"""Cost figures and tables from results rows (matplotlib, Agg); nothing is re-run.

Per suite and mode: runtime vs N = H·W and peak memory vs N, log-log, one line per mechanism with its fitted
exponent and 95 % CI in the legend, O(N) and O(N²) guide lines, and the first oom/timeout of each mechanism
marked at its N (not dropped). Memory plots never mix counters: one figure per ``mem_kind``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from attnbench.report.figures import save_figure  # noqa: E402
from attnbench.report.fits import (  # noqa: E402
    WIN_MARGIN, crossovers, frontiers, memory_floor, ratios, scaling_fits,
)
from attnbench.report.frame import baseline_label, machine_line  # noqa: E402

__all__ = ["plot_cost", "write_scaling_md"]

_FAIL_MARK = {"oom": "OOM", "timeout": "timeout", "crashed": "crash"}


def _guides(ax: plt.Axes, xs: np.ndarray, y0: float) -> None:
    """O(N) and O(N²) through the first point's median, for reading slopes by eye."""
    x = np.array([xs.min(), xs.max()], float)
    for power, style in ((1, ":"), (2, "--")):
        ax.plot(x, y0 * (x / x[0]) ** power, style, color="0.6", lw=1, label=f"O(N{'²' if power == 2 else ''})")


def _plot_metric(ax: plt.Axes, g: pd.DataFrame, column: str, min_tokens: int, ylabel: str) -> None:
    ok = g[g["status"] == "ok"]
    labels = list(dict.fromkeys(g["label"]))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    top = ok[column].max() if len(ok) else 1.0
    fits = scaling_fits(g, min_tokens)  # the same fits as scaling.md (top decade, bootstrap CI, memory floor)
    fits = {r["label"]: r["time_exp" if column == "time_ms_median" else "mem_exp"] for _, r in fits.iterrows()}
    for i, label in enumerate(labels):
        color = colors[i % len(colors)]
        s = ok[ok["label"] == label].sort_values("tokens")
        fit = fits.get(label)
        name = f"{label} (b = {fit})" if fit else label
        if len(s):
            err = None
            if column == "time_ms_median" and s["time_ms_q1"].notna().all():  # the real quartiles over blocks
                err = [s[column] - s["time_ms_q1"], s["time_ms_q3"] - s[column]]
            elif column == "time_ms_median":  # schema-1 rows stored only the IQR
                err = s["time_ms_iqr"] / 2
            ax.errorbar(s["tokens"], s[column], yerr=err, marker="o", ms=4, lw=1.5, color=color, label=name,
                        capsize=2)
        failed = g[(g["label"] == label) & g["status"].isin(list(_FAIL_MARK))].sort_values("tokens")
        if len(failed):  # the frontier: where this mechanism stopped
            f = failed.iloc[0]
            ax.scatter([f["tokens"]], [top * 1.6], marker="X", s=70, color=color, zorder=5)
            ax.annotate(_FAIL_MARK[f["status"]], (f["tokens"], top * 1.6), textcoords="offset points",
                        xytext=(4, 4), fontsize=7, color=color)
    if len(ok):
        first = ok[ok["tokens"] == ok["tokens"].min()][column]
        _guides(ax, g["tokens"].to_numpy(float), float(first.median()))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tokens N = H·W")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def plot_cost(df: pd.DataFrame, out_dir: str | Path, min_tokens: int = 1024) -> list[Path]:
    """Runtime and memory figures for every (suite, mode) in ``df``; returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    cost = df[df["kind"] == "cost"]
    for (suite, mode), g in cost.groupby(["suite", "mode"], sort=False):
        first = g.iloc[0]
        where = f"{first.get('device_name', '')}, {first.get('dtype', '')}, batch {first.get('batch', '')}, " \
                f"C={first.get('dim', '')}, {first.get('threads', '')} threads"
        fig, ax = plt.subplots(figsize=(7, 5))
        _plot_metric(ax, g, "time_ms_median", min_tokens, "median time per call [ms] (bars: quartiles over blocks)")
        ax.set_title(f"{suite} — {mode} runtime\n{where}", fontsize=9)
        written.append(save_figure(fig, out_dir / f"{suite}_{mode}_runtime.png"))
        for kind, gk in g.groupby(g["mem_kind"].fillna(""), sort=False):
            if not kind:
                continue
            gk = pd.concat([gk, g[(g["mem_kind"].isna() | (g["mem_kind"] == "")) & (g["status"] != "ok")]])
            fig, ax = plt.subplots(figsize=(7, 5))
            _plot_metric(ax, gk, "peak_mib", min_tokens, f"peak memory of one call [MiB] ({kind})")
            ax.set_title(f"{suite} — {mode} peak memory\n{where}", fontsize=9)
            written.append(save_figure(fig, out_dir / f"{suite}_{mode}_memory_{kind}.png"))
        roof = _plot_roofline(g, f"{suite} — {mode}: achieved vs roofline\n{where}")
        if roof is not None:
            written.append(save_figure(roof, out_dir / f"{suite}_{mode}_roofline.png"))
    return written


def _plot_roofline(g: pd.DataFrame, title: str) -> plt.Figure | None:
    """The classic roofline chart: achieved GFLOP/s (FLOP formula / median time) against arithmetic intensity
    (FLOPs / minimum bytes), one line per mechanism through its grids (marker size grows with N), under the
    measured compute peak and bandwidth slope recorded with the rows. ``None`` without FLOPs or a roofline."""
    import json

    ok = g[(g["status"] == "ok") & g["flops"].notna() & g["bytes"].notna()]
    roof = next((json.loads(r)["roofline"] for r in ok["runtime"] if r and json.loads(r).get("roofline")), None)
    peak = roof and roof.get("peak_flops", {}).get(str(ok["dtype"].iloc[0]))
    if ok.empty or not peak:
        return None
    fig, ax = plt.subplots(figsize=(7, 5))
    intensity = ok["flops"].astype(float) / ok["bytes"].astype(float)
    ridge = peak / roof["copy_bytes_per_s"]  # FLOPs/byte where bandwidth stops being the bound: show both regimes
    x = np.geomspace(min(intensity.min(), ridge) / 2, max(intensity.max(), ridge) * 2, 200)
    ax.plot(x, np.minimum(peak, roof["copy_bytes_per_s"] * x) / 1e9, color="0.3", lw=1.5,
            label=f"roofline: {peak / 1e9:.0f} GFLOP/s, {roof['copy_bytes_per_s'] / 1e9:.0f} GB/s")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, s) in enumerate(ok.groupby("label", sort=False)):
        s = s.sort_values("tokens")
        ai = s["flops"].astype(float) / s["bytes"].astype(float)
        sizes = 10 + 40 * np.log2(s["tokens"].astype(float) / s["tokens"].min() + 1)
        ax.plot(ai, s["gflops_per_s"], lw=1, color=colors[i % len(colors)], label=label)
        ax.scatter(ai, s["gflops_per_s"], s=sizes, color=colors[i % len(colors)], zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity [FLOPs / byte of minimum traffic]")
    ax.set_ylabel("achieved GFLOP/s (marker size: N)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=9)
    return fig


def _roofline_lines(df: pd.DataFrame) -> list[str]:
    """Achieved GFLOP/s and the fraction of the attainable roofline, where rows carry FLOPs and a roofline."""
    import json

    from attnbench.report.roofline import roofline_fraction

    ok = df[(df["status"] == "ok") & df["flops"].notna()].copy()
    if ok.empty:
        return []
    ok["fraction"] = [roofline_fraction(r) for r in ok.to_dict("records")]
    roof = next((json.loads(r)["roofline"] for r in ok["runtime"] if r and json.loads(r).get("roofline")), None)
    head = ("no roofline measured on this machine yet (`attnbench roofline`)" if roof is None else
            f"roofline: {', '.join(f'{k} {v / 1e9:.1f} GFLOP/s' for k, v in roof['peak_flops'].items())}, copy "
            f"{roof['copy_bytes_per_s'] / 1e9:.1f} GB/s; attainable = min(peak, bandwidth × FLOPs/byte)")
    grids = sorted({int(t) for t in ok["tokens"]})
    lines = ["", f"## Achieved vs roofline (GFLOP/s from the mechanism's FLOP formula / median time; % of attainable; "
                 f"{head})", "", "| mode | attention | " + " | ".join(_side(t) for t in grids) + " |",
             "|---|---|" + "---|" * len(grids)]
    for (mode, label), g in ok.groupby(["mode", "label"], sort=False):
        cells = []
        for t in grids:
            hit = g[g["tokens"] == t]
            if hit.empty:
                cells.append("")
                continue
            r = hit.iloc[0]
            frac = "" if pd.isna(r["fraction"]) else f" ({100 * r['fraction']:.1f} %)"
            cells.append(f"{r['gflops_per_s']:.3g}{frac}")
        lines.append(f"| {mode} | {label} | " + " | ".join(cells) + " |")
    return lines


def _side(tokens: int) -> str:
    side = int(round(np.sqrt(tokens)))
    return f"{side}²" if side * side == tokens else str(tokens)


def _grid_name(tokens: int | None) -> str:
    if tokens is None or pd.isna(tokens):
        return "never"
    tokens = int(tokens)
    side = int(round(np.sqrt(tokens)))
    return f"{tokens} ({side}²)" if side * side == tokens else str(tokens)


def write_scaling_md(df: pd.DataFrame, path: str | Path, min_tokens: int = 1024, command: str = "",
                     baseline: str | None = None) -> Path:
    """The tables behind the plots: exponents, frontiers, crossovers, ratios to the baseline."""
    path = Path(path)
    fits = scaling_fits(df, min_tokens)
    base = baseline or baseline_label(df)
    lines = [f"# Scaling summary: {', '.join(sorted(df['suite'].unique()))}", ""]
    if command:
        lines += [f"Reproduce: `{command}`", ""]
    first = df.iloc[0]
    lines += [f"{machine_line(df)}; dtype {first.get('dtype', '')}, batch {first.get('batch', '')}, "
              f"C = {first.get('dim', '')}, heads = {first.get('heads', '')}; memory counter `{first.get('mem_kind', '')}`.", ""]
    if "time_n" in df and df["time_n"].notna().any():
        blocks = df.loc[df["status"] == "ok", "time_n"].dropna()
        per = df.loc[df["status"] == "ok", "time_calls_per_block"].dropna()
        lines += [f"Times: median per call over timing blocks ({int(blocks.min())}–{int(blocks.max())} blocks per case"
                  + (f", {int(per.min())}–{int(per.max())} calls per block" if len(per) else "")
                  + "; each block is the mean of its calls, so single-call spread is not observed).", ""]
    if "load_start" in df and df["load_start"].notna().any():
        loads = pd.concat([df["load_start"], df["load_end"]]).dropna()
        lines += [f"Machine load (1-min load average) at case start/end: {loads.min():.2f}–{loads.max():.2f}.", ""]
    floors = ", ".join(f"{mode} {f:.2f} MiB" for (_, mode, _), f in memory_floor(df).items())
    lines += [f"## Fitted exponents (y ∝ N^b, least squares on log-log over the top decade of N that ran, N ≥ "
              f"{min_tokens}; ± is the half-width of a 95 % bootstrap interval — over the timing blocks for time, "
              f"over the points for memory; memory is fitted after subtracting the first-call floor: {floors or 'none'})",
              "", "| mode | attention | time b | memory b | points | N range |", "|---|---|---|---|---|---|"]
    for _, r in fits.iterrows():
        t, m = r["time_exp"], r["mem_exp"]
        rng = f"{t.n_min}–{t.n_max}" if t else ""
        lines.append(f"| {r['mode']} | {r['label']} | {t or 'n/a'} | {m or 'n/a'} | {t.points if t else 0} | {rng} |")
    if fits.empty:
        lines.append(f"| | no mechanism has two or more grids with N ≥ {min_tokens} | | | | |")
    lines += ["", "## Local time slopes (between consecutive grids: where the asymptotic exponent sets in)", "",
              "| mode | attention | slopes (N → N': b) |", "|---|---|---|"]
    for _, r in fits.iterrows():
        slopes = ", ".join(f"{_side(a)}→{_side(b)}: {v:.2f}" for a, b, v in r["time_slopes"])
        lines.append(f"| {r['mode']} | {r['label']} | {slopes} |")
    lines += _roofline_lines(df)
    front = frontiers(df)
    lines += ["", "## Frontier (largest grid that completed)", "", "| mode | attention | largest ok | first failure |",
              "|---|---|---|---|"]
    lines += [f"| {r['mode']} | {r['label']} | {r['largest_ok']} | {r['first_failure']} |" for _, r in front.iterrows()]
    if base is not None:
        cross = crossovers(df, base)
        lines += ["", f"## Crossover N* against `{base}` (faster beyond the noise at every larger grid: 95 % CIs of "
                  f"the medians apart, or ≥ {WIN_MARGIN}× without CIs; a failure where `{base}` ran is a loss)", "",
                  "| mode | attention | N* |", "|---|---|---|"]
        lines += [f"| {r['mode']} | {r['label']} | {_grid_name(r['n_star'])} |" for _, r in cross.iterrows()]
        rat = ratios(df, base)
        for mode, g in rat.groupby("mode", sort=False):
            grids = sorted({(int(h), int(w)) for h, w in zip(g["height"], g["width"])}, key=lambda x: x[0] * x[1])
            lines += ["", f"## {mode}: speed-up and memory ratio vs `{base}` (time_{base} / time; peak / peak_{base})",
                      "", "| attention | " + " | ".join(f"{h}x{w}" for h, w in grids) + " |",
                      "|---|" + "---|" * len(grids)]
            for label, gl in g.groupby("label", sort=False):
                cells = []
                for h, w in grids:
                    hit = gl[(gl["height"] == h) & (gl["width"] == w)]
                    cells.append(f"{hit['speedup'].iloc[0]:.3g}× / {hit['mem_ratio'].iloc[0]:.3g}" if len(hit) else "")
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
