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
from attnbench.report.fits import crossovers, fit_power_law, frontiers, ratios, scaling_fits  # noqa: E402
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
    for i, label in enumerate(labels):
        color = colors[i % len(colors)]
        s = ok[ok["label"] == label].sort_values("tokens")
        fit_pts = s[s["tokens"] >= min_tokens]
        fit = fit_power_law(fit_pts["tokens"], fit_pts[column]) if len(fit_pts) else None
        name = f"{label} (b = {fit})" if fit else label
        if len(s):
            err = s["time_ms_iqr"] / 2 if column == "time_ms_median" else None
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
        _plot_metric(ax, g, "time_ms_median", min_tokens, "median time per call [ms] (bars: IQR)")
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
    return written


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
    lines += [f"## Fitted exponents (y ∝ N^b, least squares on log-log over runs with N ≥ {min_tokens}; "
              "± is the 95 % CI half-width)", "",
              "| mode | attention | time b | memory b | points | N range |", "|---|---|---|---|---|---|"]
    for _, r in fits.iterrows():
        t, m = r["time_exp"], r["mem_exp"]
        rng = f"{t.n_min}–{t.n_max}" if t else ""
        lines.append(f"| {r['mode']} | {r['label']} | {t or 'n/a'} | {m or 'n/a'} | {t.points if t else 0} | {rng} |")
    if fits.empty:
        lines.append(f"| | no mechanism has two or more grids with N ≥ {min_tokens} | | | | |")
    front = frontiers(df)
    lines += ["", "## Frontier (largest grid that completed)", "", "| mode | attention | largest ok | first failure |",
              "|---|---|---|---|"]
    lines += [f"| {r['mode']} | {r['label']} | {r['largest_ok']} | {r['first_failure']} |" for _, r in front.iterrows()]
    if base is not None:
        cross = crossovers(df, base)
        lines += ["", f"## Crossover N* against `{base}` (faster at every larger grid)", "",
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
