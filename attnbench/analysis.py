"""Scaling analysis of cost rows: power-law exponents with confidence intervals, ratios to ``full``,
crossover N*, and frontiers. Pure functions of a results DataFrame; nothing is re-run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Fit", "baseline_label", "crossovers", "fit_power_law", "frontiers", "load_frame", "ratios",
           "scaling_fits", "write_scaling_md"]

NUMERIC = ("height", "width", "tokens", "batch", "dim", "heads", "threads", "time_ms_median", "time_ms_iqr",
           "time_ms_min", "time_n", "peak_mib", "input_mib", "params", "compile_s", "value", "rel_l2", "rel_mse",
           "top1", "train_res", "eval_res", "token_height", "token_width", "patch", "window_ratio", "n_train",
           "n_test", "epochs", "train_s", "final_loss", "seed", "case_wall_s")


def load_frame(paths: list[str | Path]) -> pd.DataFrame:
    """Results CSV files (or folders of them) as one DataFrame with numeric columns converted."""
    from attnbench.results import read_results, series_label

    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(f for f in p.glob("*.csv") if ".bak" not in f.name) if p.is_dir() else [p])
    frames = [pd.DataFrame(read_results(f)) for f in files]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    df["label"] = [series_label(r) for r in df[["label", "compile"]].to_dict("records")]
    for col in NUMERIC:
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def machine_line(df: pd.DataFrame) -> str:
    """"Machine: ..., torch ..., git ..." for a results table; every git sha present is listed, not just the first."""
    first = df.iloc[0]
    return (f"Machine: {first.get('device_name', '')} ({first.get('device', '')}, {first.get('threads', '')} threads), "
            f"torch {first.get('torch', '')}, git {', '.join(sorted(set(df['git_sha'].astype(str))))}")


@dataclass(frozen=True)
class Fit:
    """``y = a · N^exponent`` fitted by least squares on log-log axes."""

    exponent: float
    ci95: float  # half-width of the 95 % confidence interval of the exponent (nan with < 3 points)
    intercept: float
    points: int
    n_min: int
    n_max: int

    def __str__(self) -> str:
        ci = "" if np.isnan(self.ci95) else f" ± {self.ci95:.2f}"
        return f"{self.exponent:.2f}{ci}"


def fit_power_law(n: np.ndarray, y: np.ndarray) -> Fit | None:
    """Slope of ``log y`` on ``log N`` with a t-based 95 % CI; ``None`` with fewer than 2 distinct N."""
    from scipy import stats

    n, y = np.asarray(n, float), np.asarray(y, float)
    keep = np.isfinite(n) & np.isfinite(y) & (n > 0) & (y > 0)
    n, y = n[keep], y[keep]
    if len(np.unique(n)) < 2:
        return None
    x, z = np.log(n), np.log(y)
    res = stats.linregress(x, z)
    dof = len(x) - 2
    ci = stats.t.ppf(0.975, dof) * res.stderr if dof > 0 else float("nan")
    return Fit(float(res.slope), float(ci), float(res.intercept), len(x), int(n.min()), int(n.max()))


def baseline_label(df: pd.DataFrame) -> str | None:
    """The label measured against: ``full`` if present, else the first label of attention ``full``."""
    if (df["label"] == "full").any():
        return "full"
    full = df.loc[df["attention"] == "full", "label"]
    return None if full.empty else str(full.iloc[0])


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["status"] == "ok") & (df["kind"] == "cost")]


def scaling_fits(df: pd.DataFrame, min_tokens: int = 1024, max_tokens: int | None = None) -> pd.DataFrame:
    """Time and memory exponents per (suite, mode, label) over the points that ran in ``[min, max]`` tokens."""
    ok = _ok(df)
    ok = ok[(ok["tokens"] >= min_tokens) & ((ok["tokens"] <= max_tokens) if max_tokens else True)]
    rows = []
    for (suite, mode, label), g in ok.groupby(["suite", "mode", "label"], sort=False):
        g = g.sort_values("tokens")
        t = fit_power_law(g["tokens"], g["time_ms_median"])
        m = fit_power_law(g["tokens"], g["peak_mib"])
        rows.append({"suite": suite, "mode": mode, "label": label, "time_exp": t, "mem_exp": m,
                     "mem_kind": g["mem_kind"].iloc[0]})
    return pd.DataFrame(rows)


def ratios(df: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Speed-up (baseline time / time) and memory ratio (peak / baseline peak) at each common grid."""
    ok = _ok(df)
    baseline = baseline or baseline_label(df)
    if baseline is None:
        return pd.DataFrame()
    base = ok[ok["label"] == baseline][["suite", "mode", "height", "width", "time_ms_median", "peak_mib"]]
    merged = ok.merge(base, on=["suite", "mode", "height", "width"], suffixes=("", "_base"))
    merged["speedup"] = merged["time_ms_median_base"] / merged["time_ms_median"]
    merged["mem_ratio"] = merged["peak_mib"] / merged["peak_mib_base"]
    return merged[["suite", "mode", "label", "height", "width", "tokens", "speedup", "mem_ratio"]]


def crossovers(df: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Smallest N from which a mechanism is faster than the baseline at every larger common grid.

    Grids where the baseline failed (oom/timeout/skipped) while the mechanism ran count as wins.
    """
    baseline = baseline or baseline_label(df)
    if baseline is None:
        return pd.DataFrame()
    rows = []
    cost = df[df["kind"] == "cost"]
    for (suite, mode, label), g in cost.groupby(["suite", "mode", "label"], sort=False):
        if label == baseline:
            continue
        b = cost[(cost["suite"] == suite) & (cost["mode"] == mode) & (cost["label"] == baseline)]
        merged = g.merge(b, on=["height", "width", "tokens"], suffixes=("", "_b")).sort_values("tokens")
        wins = []
        for _, r in merged.iterrows():
            if r["status"] != "ok":
                wins.append(None)
            elif r["status_b"] != "ok":
                wins.append(True if r["status_b"] in ("oom", "timeout", "skipped") else None)
            else:
                wins.append(r["time_ms_median"] < r["time_ms_median_b"])
        n_star = None
        for i in range(len(wins)):
            tail = [w for w in wins[i:] if w is not None]
            if tail and all(tail):
                n_star = int(merged["tokens"].iloc[i])
                break
        rows.append({"suite": suite, "mode": mode, "label": label, "n_star": n_star})
    return pd.DataFrame(rows)


def frontiers(df: pd.DataFrame) -> pd.DataFrame:
    """Largest grid that completed, and the first failure, per (suite, mode, label)."""
    rows = []
    cost = df[df["kind"] == "cost"]
    for (suite, mode, label), g in cost.groupby(["suite", "mode", "label"], sort=False):
        g = g.sort_values("tokens")
        ok = g[g["status"] == "ok"]
        bad = g[g["status"].isin(["oom", "timeout", "crashed", "error"])]
        rows.append({
            "suite": suite, "mode": mode, "label": label,
            "largest_ok": f"{int(ok['height'].iloc[-1])}x{int(ok['width'].iloc[-1])}" if len(ok) else "none",
            "first_failure": (f"{bad['status'].iloc[0]} at {int(bad['height'].iloc[0])}x{int(bad['width'].iloc[0])}"
                              if len(bad) else ""),
        })
    return pd.DataFrame(rows)


def _grid_name(tokens: int | None) -> str:
    if tokens is None or pd.isna(tokens):
        return "never"
    tokens = int(tokens)
    side = int(round(np.sqrt(tokens)))
    return f"{tokens} ({side}²)" if side * side == tokens else str(tokens)


def write_scaling_md(df: pd.DataFrame, path: str | Path, min_tokens: int = 1024, command: str = "") -> Path:
    """The tables behind the plots: exponents, frontiers, crossovers, ratios to the baseline."""
    path = Path(path)
    fits = scaling_fits(df, min_tokens)
    base = baseline_label(df)
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
