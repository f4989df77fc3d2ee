"""Accuracy figures and table from results rows (kind ``accuracy``); nothing is re-run.

* accuracy vs evaluation grid per mechanism (trained-at-grid solid, zero-shot dashed), per task;
* accuracy vs training time and vs training peak memory (Pareto views), per task;
* zero-shot vs trained at the same grid, where both exist;
* ``accuracy.md``: mean ± std over seeds of every (task, mechanism, train grid, eval grid).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from attnbench.report.figures import save_figure  # noqa: E402
from attnbench.report.frame import machine_line  # noqa: E402

__all__ = ["accuracy_table", "plot_accuracy", "write_accuracy_md"]

_LOWER_IS_BETTER = {"rel_l2": True, "top1": False}


def accuracy_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (task, label, mode, train_res, eval_res)."""
    ok = df[df["status"] == "ok"].copy()
    ok["dataset"] = ok["impl"].map(lambda s: json.loads(s).get("dataset", "") if isinstance(s, str) and s else "")
    keys = ["task", "dataset", "label", "mode", "train_res", "eval_res", "metric"]
    agg = ok.groupby(keys, sort=False).agg(
        value=("value", "mean"), std=("value", "std"), seeds=("value", "size"), rel_mse=("rel_mse", "mean"),
        rel_mse_std=("rel_mse", "std"), train_s=("train_s", "mean"), peak_mib=("peak_mib", "mean"),
        params=("params", "first"), n_train=("n_train", "first"), epochs=("epochs", "first"),
        window_ratio=("window_ratio", "first"), mem_kind=("mem_kind", "first"))
    return agg.reset_index()


def _fmt(mean: float, std: float, digits: int = 4) -> str:
    if pd.isna(mean):
        return ""
    return f"{mean:.{digits}g}" + ("" if pd.isna(std) else f" ± {std:.2g}")


def write_accuracy_md(df: pd.DataFrame, path: Path) -> Path:
    table = accuracy_table(df)
    lines = [f"# Accuracy: {', '.join(sorted(df['suite'].unique()))}", "",
             f"{machine_line(df)}. Mean ± std over seeds; "
             "rel_l2 = mean of ‖û−u‖/‖u‖, rel_mse = mean of ‖û−u‖²/‖u‖² (the MANO paper's metric).", "",
             "| task | attention | train grid | eval grid | mode | metric | value | rel_mse | seeds | n_train | epochs "
             "| train s | train peak MiB | params | window/grid |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['task']} | {r['label']} | {int(r['train_res'])} | {int(r['eval_res'])} | {r['mode']} | {r['metric']} "
            f"| {_fmt(r['value'], r['std'])} | {_fmt(r['rel_mse'], r['rel_mse_std'], 3)} | {int(r['seeds'])} "
            f"| {int(r['n_train'])} | {int(r['epochs'])} | {r['train_s']:.0f} | {r['peak_mib']:.0f} | {int(r['params'])} "
            f"| {r['window_ratio']:.2g} |")
    bad = df[df["status"] != "ok"]
    if len(bad):
        lines += ["", "Rows that did not produce a number:", ""]
        lines += [f"- {r['task']} / {r['label']} seed {r['seed']} at {r['eval_res']}: {r['status']} — {r['reason']}"
                  for _, r in bad.iterrows()]
    path.write_text("\n".join(lines) + "\n")
    return path


def plot_accuracy(df: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_accuracy_md(df, out_dir / "accuracy.md")]
    table = accuracy_table(df)
    for task, t in table.groupby("task", sort=False):
        metric = t["metric"].iloc[0]
        # accuracy vs resolution (trained solid, zero-shot dashed; one colour per mechanism)
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for i, (label, g) in enumerate(t.groupby("label", sort=False)):
            color = f"C{i % 10}"
            for mode, style in (("trained", "-o"), ("zero_shot", "--s")):
                m = g[g["mode"] == mode].sort_values("eval_res")
                if len(m):
                    ax.errorbar(m["eval_res"], m["value"], yerr=m["std"].fillna(0), fmt=style, color=color,
                                capsize=3, label=f"{label} ({mode.replace('_', '-')})")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("evaluation grid side")
        ax.set_ylabel(metric + (" (lower is better)" if _LOWER_IS_BETTER.get(metric) else " (higher is better)"))
        ax.set_title(f"{task}: accuracy vs resolution", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        written.append(save_figure(fig, out_dir / f"{task}_accuracy_vs_resolution.png"))
        # Pareto: accuracy vs training time and vs training peak memory, trained-at-grid rows
        trained = t[t["mode"] == "trained"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
        for ax, col, xlabel in ((axes[0], "train_s", "training wall time [s]"),
                                (axes[1], "peak_mib", f"training peak memory [MiB] ({trained['mem_kind'].iloc[0] if len(trained) else ''})")):
            for i, (label, g) in enumerate(trained.groupby("label", sort=False)):
                ax.errorbar(g[col], g["value"], yerr=g["std"].fillna(0), fmt="o", color=f"C{i % 10}", capsize=3,
                            label=label)
                for _, r in g.iterrows():
                    ax.annotate(f"{int(r['eval_res'])}²", (r[col], r["value"]), fontsize=7, xytext=(3, 3),
                                textcoords="offset points")
            ax.set_xscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(metric)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"{task}: accuracy vs cost (Pareto view)", fontsize=9)
        written.append(save_figure(fig, out_dir / f"{task}_pareto.png"))
    # zero-shot vs trained at the same grid, per dataset (never mixing metrics in one figure)
    zs = table[table["mode"] == "zero_shot"]
    for dataset, zd in zs.groupby("dataset", sort=False):
        pairs = []
        for _, z in zd.iterrows():
            same = table[(table["label"] == z["label"]) & (table["mode"] == "trained")
                         & (table["eval_res"] == z["eval_res"]) & (table["dataset"] == dataset)]
            if len(same):
                pairs.append((f"{z['label']}\n{int(z['train_res'])}→{int(z['eval_res'])}", z["value"],
                              same["value"].iloc[0]))
        if not pairs:
            continue
        fig, ax = plt.subplots(figsize=(max(6, len(pairs) * 1.2), 4.5))
        xs = range(len(pairs))
        ax.bar([x - 0.2 for x in xs], [p[1] for p in pairs], width=0.4, label="zero-shot")
        ax.bar([x + 0.2 for x in xs], [p[2] for p in pairs], width=0.4, label="trained at that grid")
        ax.set_xticks(list(xs), [p[0] for p in pairs], fontsize=7)
        ax.set_ylabel(zd["metric"].iloc[0])
        ax.set_title(f"{dataset}: zero-shot resolution transfer vs training at the evaluation grid", fontsize=9)
        ax.legend(fontsize=8)
        written.append(save_figure(fig, out_dir / f"{dataset}_zero_shot_vs_trained.png"))
    return written
