"""The README's result tables and claims, generated from committed results (never typed in by hand).

The README marks each generated block::

    <!-- BEGIN GENERATED: cost-fwd -->
    ...
    <!-- END GENERATED: cost-fwd -->

``python -m attnbench.report.readme`` rewrites every block from ``results/``; ``--check`` exits 1 when a block
differs from what the results give (a test runs it). Sources: the newest reference run of each suite
(``results/reference/<machine>/<run>/``), its re-run (``results/rerun/...``), and the schema-1 legacy results.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from attnbench.report.analysis.accuracy import ALPHA, MIN_SEEDS, accuracy_comparisons, ci95_half_width, mean_std
from attnbench.report.analysis.compare import compare
from attnbench.report.analysis.fits import ratios, scaling_fits
from attnbench.report.analysis.frame import load_frame
from attnbench.report.analysis.sweep import lr_sweeps, sweep_markdown
from attnbench.report.analysis.scaling import markdown_table

__all__ = ["BLOCKS", "PROTOCOL_BLOCKS", "render", "update"]

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
_BLOCK = re.compile(r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+)(?P<args>[^>]*?) -->\n)(?P<body>.*?)"
                    r"(<!-- END GENERATED: (?P=name) -->)", re.S)


def _newest(kind: str, suite: str) -> Path:
    found = sorted((RESULTS / kind).glob(f"*/*/{suite}.csv"), key=lambda p: p.parent.name)
    if not found:
        raise FileNotFoundError(f"no {kind} results for suite {suite} under {RESULTS / kind}")
    return found[-1]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _run_line(df: pd.DataFrame, path: Path) -> str:
    first = df.iloc[0]
    runtime = json.loads(first["runtime"]) if first.get("runtime") else {}
    canary = runtime.get("canary_ms", {})
    wall = df["case_wall_s"].sum()
    return (f"Run `{first['run_id']}` ([`{_rel(path)}`]({_rel(path)})): {first['device_name']} "
            f"({first['machine']}), torch {first['torch']}, {first['dtype']}, {int(first['threads'])} threads, TF32 "
            f"{'on' if str(first['tf32']) == 'true' else 'off'}, git {first['git_sha']}; {len(df)} cases, "
            f"{wall / 60:.0f} min of case time; canary (1 thread, 2^18 floats) exp {canary.get('exp', '?')} ms, "
            f"expm1 {canary.get('expm1', '?')} ms.")


def _cell(r: pd.Series) -> str:
    if r["status"] != "ok":
        return r["status"]
    ci = f" [{r['time_ms_ci_lo']:.3g}–{r['time_ms_ci_hi']:.3g}]" if pd.notna(r["time_ms_ci_lo"]) else ""
    peak = f" / {r['peak_mib']:.3g} MiB" if pd.notna(r["peak_mib"]) else ""
    return f"{r['time_ms_median']:.3g} ms{ci}{peak}"


def cost_fwd() -> str:
    """Forward (and fwd_bwd) time with the median's CI and peak memory at 32², 64², 128²."""
    df = load_frame([path := _newest("reference", "cpu")])
    out = [_run_line(df, path), ""]
    for mode in ("fwd", "fwd_bwd"):
        sub = df[(df["mode"] == mode) & (df["kind"] == "cost")]
        rows = [[label, *(_cell(g[g["height"] == s].iloc[0]) if (g["height"] == s).any() else ""
                          for s in (32, 64, 128))] for label, g in sub.groupby("label", sort=False)]
        out += [f"**{mode}** — median per call [95 % CI of the median] / peak memory (`cpu_rss`):", "",
                markdown_table(["attention", "32²", "64²", "128²"], rows), ""]
    return "\n".join(out).rstrip()


def cost_exponents() -> str:
    """Exponents over the top decade of N, frontiers."""
    path = _newest("reference", "cpu")
    df = load_frame([path])
    fits = scaling_fits(df)
    rows = []
    for (mode, label), g in fits.groupby(["mode", "label"], sort=False):
        r = g.iloc[0]
        t, m = r["time_exp"], r["mem_exp"]
        largest = df[(df["label"] == label) & (df["mode"] == mode) & (df["status"] == "ok")]["height"].max()
        rows.append([mode, label, str(t or "n/a"), str(m or "n/a"), f"{t.n_min}–{t.n_max}" if t else "",
                     f"{int(largest)}²" if pd.notna(largest) else "none"])
    floor = ", ".join(f"{m} {f:.2f} MiB" for m, f in fits.groupby("mode")["mem_floor"].first().items())
    return (f"Exponent b of time ∝ N^b and (peak − floor) ∝ N^b over the top decade of N that ran (± = 95 % "
            f"bootstrap half-width; memory floor subtracted: {floor}); from [`scaling.md`]"
            f"({_rel(path.parent / 'plots' / 'cpu' / 'scaling.md')}):\n\n"
            + markdown_table(["mode", "attention", "time b", "memory b", "N range of the fit", "largest grid that ran"], rows))


def _ratio_at(df: pd.DataFrame, label: str, base: str, mode: str, side: int) -> tuple[float, float]:
    a = df[(df["label"] == label) & (df["mode"] == mode) & (df["height"] == side) & (df["status"] == "ok")]
    b = df[(df["label"] == base) & (df["mode"] == mode) & (df["height"] == side) & (df["status"] == "ok")]
    if a.empty or b.empty:
        return float("nan"), float("nan")
    return (float(b["time_ms_median"].iloc[0] / a["time_ms_median"].iloc[0]),
            float(a["peak_mib"].iloc[0] / b["peak_mib"].iloc[0]))


def claims(mech: str, reference: str, baseline: str, naive: str) -> str:
    """What the cost data say about a mechanism's headline claims (the README names the four labels: the mechanism,
    its reference implementation, the fused global baseline, the N×N-score baseline), computed, never typed."""
    path = _newest("reference", "cpu")
    df = load_frame([path])
    lines = []
    for mode in ("fwd", "fwd_bwd"):
        sp, mem = _ratio_at(df, mech, reference, mode, 128)
        lines.append(f"- `{mech}` vs the authors' layer (`{reference}`) at 128², {mode}: {sp:.2f}× faster, "
                     f"{mem:.2f}× the peak memory.")
    r = ratios(df, baseline)
    for mode in ("fwd", "fwd_bwd"):
        m = r[(r["label"] == mech) & (r["mode"] == mode)].sort_values("tokens")
        if m.empty:
            continue
        best = m.loc[m["speedup"].idxmax()]
        slower = [f"{int(np.sqrt(t))}²" for t, s in zip(m["tokens"], m["speedup"]) if s < 1]
        tenfold = [f"{int(np.sqrt(t))}²" for t, s in zip(m["tokens"], m["speedup"]) if s >= 10]
        lines.append(
            f"- `{mech}` vs fused global attention (`{baseline}`), {mode}: largest measured speed-up "
            f"{best['speedup']:.3g}× at {int(best['height'])}² (memory {best['mem_ratio']:.3g}× `{baseline}`'s); "
            f"slower than `{baseline}` at {', '.join(slower) or 'no grid'}; one order of magnitude (≥ 10×) "
            + (f"reached at {', '.join(tenfold)}" if tenfold else "not reached at any grid that both ran")
            + "; two orders (≥ 100×) " + ("reached" if (m["speedup"] >= 100).any() else "not reached") + ".")
        less = [f"{int(np.sqrt(t))}²" for t, v in zip(m["tokens"], m["mem_ratio"]) if v < 1]
        lines.append(f"- peak memory of `{mech}` relative to `{baseline}`, {mode}: {m['mem_ratio'].min():.3g}–"
                     f"{m['mem_ratio'].max():.3g}× (less than `{baseline}` at {', '.join(less) or 'no grid'}).")
    both = r[(r["label"] == mech) & (r["mode"] == "fwd")].merge(
        r[(r["label"] == naive) & (r["mode"] == "fwd")], on=["height", "width"], suffixes=("", "_n"))
    if len(both):
        last = both.sort_values("tokens").iloc[-1]
        lines.append(f"- against the N×N-score implementation (`{naive}`, what \"ViT memory\" claims refer to), fwd "
                     f"at {int(last['height'])}² (its largest grid): `{mech}` needs "
                     f"{last['mem_ratio'] / last['mem_ratio_n']:.3g}× its peak memory.")
    return "\n".join(lines)


def _targets_row(df: pd.DataFrame, mech: str, comp: str, ref: str, mode: str, side: int) -> dict[str, float]:
    def one(label: str) -> pd.Series | None:
        hit = df[(df["label"] == label) & (df["mode"] == mode) & (df["height"] == side) & (df["status"] == "ok")]
        return None if hit.empty else hit.iloc[0]

    m, c, r = one(mech), one(comp), one(ref)
    if m is None or c is None or r is None:
        return {}
    return {"time": m["time_ms_median"] / c["time_ms_median"], "ref": r["time_ms_median"] / m["time_ms_median"],
            "mem": m["peak_mib"] / c["peak_mib"], "gflops": c["gflops_per_s"] / m["gflops_per_s"]}


def targets(mech: str, comp: str, ref: str) -> str:
    """Issue 10's cost targets for ``mech`` (vs the windowed ``comp`` and the authors' ``ref``), at 128² and 256²,
    in the reference run and its re-run, each cell checked against its target."""
    runs = [("reference", _newest("reference", "cpu"))]
    rerun_path = _same_code_rerun(runs[0][1])
    if rerun_path.parent.name.split("-")[-1] == runs[0][1].parent.name.split("-")[-1]:  # same code measured again
        runs.append(("re-run", rerun_path))
    limits = {("time", "fwd"): 2.0, ("time", "fwd_bwd"): 2.5, ("ref", "fwd"): 4.0, ("ref", "fwd_bwd"): 3.0,
              ("mem", "fwd"): 1.5, ("gflops", "fwd"): 2.0, ("gflops", "fwd_bwd"): 2.0}
    header = ["run", "grid", "mode", f"time {mech}/{comp} (≤ 2.0 fwd, ≤ 2.5 fwd_bwd)",
              f"speed-up over {ref} (≥ 4 fwd, ≥ 3 fwd_bwd)", f"peak memory {mech}/{comp} (fwd ≤ 1.5)",
              f"GFLOP/s {comp}/{mech} (≤ 2)"]
    rows = []
    for name, path in runs:
        df = load_frame([path])
        for side in (128, 256):
            for mode in ("fwd", "fwd_bwd"):
                got = _targets_row(df, mech, comp, ref, mode, side)
                if not got:
                    continue
                cells = []
                for key in ("time", "ref", "mem", "gflops"):
                    limit = limits.get((key, mode))
                    ok = "" if limit is None else (" ✓" if (got[key] >= limit if key == "ref" else got[key] <= limit)
                                                   else " ✗")
                    cells.append(f"{got[key]:.2f}{ok}")
                rows.append([f"`{path.parent.name}`", f"{side}²", mode, *cells])
    return markdown_table(header, rows)


def before_after(mech: str, previous: str) -> str:
    """``attnbench compare`` of ``mech`` between an earlier run (``previous``: a committed results CSV) and the
    newest reference run: the change a new implementation made, case by case."""
    old_path, new_path = ROOT / previous, _newest("reference", "cpu")
    c = compare(load_frame([old_path]), load_frame([new_path]))
    c = c[c["label"] == mech]
    rows = [[r["mode"], r["grid"].replace("x", "×"), f"{r['ratio']:.3g} [{r['ci_lo']:.3g}–{r['ci_hi']:.3g}]",
             f"{r['mem_ratio']:.3g}", r["change"] or "no significant change"] for _, r in c.iterrows()]
    return (f"`attnbench compare {_rel(old_path)} {_rel(new_path)}`, rows of `{mech}` (B/A: new over previous):\n\n"
            + markdown_table(["mode", "grid", "time B/A [95 % CI]", "peak memory B/A", "verdict"], rows))


def _same_code_rerun(reference: Path) -> Path:
    """The newest re-run of the reference's own code version (else the newest re-run)."""
    code = reference.parent.name.split("-")[-1]
    found = sorted((RESULTS / "rerun").glob("*/*/cpu.csv"), key=lambda p: p.parent.name)
    same = [p for p in found if p.parent.name.split("-")[-1] == code]
    return (same or found)[-1]


def rerun(run: str | None = None) -> str:
    """Reference vs a re-run (default: its re-run of the same code from a fresh clone), with ``attnbench compare``."""
    a_path = _newest("reference", "cpu")
    b_path = next((RESULTS / "rerun").glob(f"*/{run}/cpu.csv")) if run else _same_code_rerun(a_path)
    a, b = load_frame([a_path]), load_frame([b_path])
    t = compare(a, b)
    rows = [[label, f"{g['ratio'].min():.2f}–{g['ratio'].max():.2f}", f"{g['ratio'].median():.2f}",
             str(int((g["change"] == "slower").sum())), str(int((g["change"] == "faster").sum())),
             "n/a (no CPU peak for compiled cases)" if g["mem_ratio"].isna().all()
             else f"{g['mem_ratio'].min():.2f}–{g['mem_ratio'].max():.2f}"]
            for label, g in t.dropna(subset=["ratio"]).groupby("label", sort=False)]
    canary = [json.loads(df["runtime"].iloc[0]).get("canary_ms", {}) for df in (a, b)]
    return (f"`attnbench compare {_rel(a_path)} {_rel(b_path)}` — {len(t)} cases, "
            f"{int((t['change'] == 'slower').sum())} significantly slower and {int((t['change'] == 'faster').sum())} "
            f"significantly faster in the re-run (Mann-Whitney U on the timing blocks, p < 0.002, ratio ≥ 1.1 or ≤ "
            f"1/1.1), {int(t['change'].str.startswith('status').sum())} status changes. Canary expm1: reference "
            f"{canary[0].get('expm1', '?')} ms, re-run {canary[1].get('expm1', '?')} ms.\n\n"
            + markdown_table(["attention", "time B/A (range over grids and modes)", "median", "slower", "faster",
                      "memory B/A"], rows))


def cost_plot() -> str:
    """The reference run's forward runtime figure."""
    path = _newest("reference", "cpu").parent / "plots" / "cpu" / "cpu_fwd_runtime.png"
    return f"![forward runtime vs tokens, reference run]({_rel(path)})"


def linear_probe(*labels: str) -> str:
    """``suites/probe-linear.toml`` run with different interpreter / torch-copy pairs (one folder per pair); the
    README names the labels to show."""
    rows = []
    for path in sorted((RESULTS / "investigations" / "linear-venv").glob("*/*/*/probe-linear.csv")):
        df = load_frame([path])
        runtime = json.loads(df["runtime"].iloc[0])
        cells = []
        for label in labels:
            for side in (64, 128):
                hit = df[(df["label"] == label) & (df["height"] == side) & (df["status"] == "ok")]
                cells.append(f"{hit['time_ms_median'].iloc[0]:.3g}" if len(hit) else "")
        rows.append([path.parents[2].name, f"`{runtime['executable']}`", f"`{runtime['torch_path']}`",
                     str(runtime["canary_ms"]["expm1"]), *cells])
    return ("`python -m attnbench run suites/probe-linear.toml` per interpreter / torch copy (folders under "
            "[`results/investigations/linear-venv/`](results/investigations/linear-venv); median ms per forward call, "
            "2 threads):\n\n"
            + markdown_table(["run", "interpreter", "torch imported from", "canary expm1 ms",
                      *(f"{label} {side}²" for label in labels for side in (64, 128))], rows))


def rerun_pair(first: str, second: str) -> str:
    """Two re-runs (run ids under ``results/rerun/``) against each other: how far two runs of the same code and
    environment class move."""
    runs = [next((RESULTS / "rerun").glob(f"*/{run}/cpu.csv"), None) for run in (first, second)]
    if None in runs:
        return f"(re-runs {first} and {second} are not both committed under results/rerun/)"
    t = compare(load_frame([runs[0]]), load_frame([runs[1]]))
    ratios_ = t["ratio"].dropna()
    sig = t["change"].isin(["slower", "faster"])
    lo, q1, med, q3, hi = np.quantile(ratios_, [0, 0.25, 0.5, 0.75, 1])
    return (f"`attnbench compare {_rel(runs[0])} {_rel(runs[1])}`: {len(t)} cases, {int(sig.sum())} "
            f"({100 * sig.mean():.0f} %) flagged as significant changes; time ratio B/A over the {len(ratios_)} cases "
            f"that ran in both: median {med:.2f}, quartiles {q1:.2f}–{q3:.2f}, range {lo:.2f}–{hi:.2f}.")


def _accuracy_rows(paths: list[Path], tasks: list[str]) -> pd.DataFrame:
    """The accuracy rows of ``tasks`` from ``paths``: per (task, label) the configuration of the last file that has
    it, with the same configuration's seeds from every file (a seed measured twice: the later file's row)."""
    df = pd.concat([load_frame([p]).assign(_order=order) for order, p in enumerate(paths)], ignore_index=True)
    last = df.groupby(["task", "label"])["_order"].transform("max")
    ids = df[df["_order"] == last].groupby(["task", "label"])["config_id"].agg(set)  # trained and zero-shot ids
    df = df[[c in ids.get((t, lab), ()) for t, lab, c in zip(df["task"], df["label"], df["config_id"])]]
    df = df.sort_values("_order").drop_duplicates(["config_id", "seed", "eval_res"], keep="last")
    return df[(df["kind"] == "accuracy") & df["task"].isin(tasks)]


def _accuracy(df: pd.DataFrame, paths: list[Path]) -> str:
    """Mean ± std over seeds per task and label (rows read from ``paths``), with the mean's 95 % CI and the cost."""
    df = df[df["status"] == "ok"]
    rows = []
    for (task, label), g in df.groupby(["task", "label"], sort=False):
        def stat(mode: str, col: str = "value") -> str:
            v = g[g["mode"] == mode][col]
            return mean_std(v.mean(), v.std())
        trained = g[g["mode"] == "trained"]
        metric = trained["metric"].iloc[0] if len(trained) else ""
        zero = g[g["mode"] == "zero_shot"]["eval_res"]
        ci = ci95_half_width(trained["value"].std(), len(trained))
        change = g[g["mode"] == "zero_shot"]["value"].mean() / trained["value"].mean() - 1 if len(zero) else np.nan
        rows.append([task, label, metric, stat("trained"), "" if np.isnan(ci) else f"{ci:.2g}",
                     stat("trained", "rel_mse") if metric == "rel_l2" else "",
                     f"{stat('zero_shot')} ({int(zero.iloc[0])}²)" if len(zero) else "",
                     "" if np.isnan(change) else f"{100 * change:+.0f} %",
                     str(trained["seed"].nunique()), f"{trained['train_s'].mean():.0f}",
                     f"{trained['peak_mib'].mean():.0f}", f"{int(trained['params'].iloc[0])}",
                     f"{int(trained['epochs'].iloc[0])}", f"{int(trained['n_train'].iloc[0])}",
                     ", ".join(sorted({m for m in trained["machine"].astype(str) if m})) or "not recorded (schema 1)"])
    sources = ", ".join(f"[`{_rel(p)}`]({_rel(p)})" for p in paths)
    return (f"From {sources} (mean ± std over seeds and the half-width of the mean's 95 % CI, Student t; train s and "
            "peak MiB: mean over seeds, on the machines named; per task and mechanism the configuration of the last "
            "file that has it, with its seeds from every file):\n\n"
            + markdown_table(["task", "attention", "metric", "trained", "± 95 % CI", "rel MSE", "zero-shot (grid)",
                              "zero-shot vs trained", "seeds", "train s", "train peak MiB", "params", "epochs",
                              "n_train", "machines"], rows))


def _accuracy_pairs(df: pd.DataFrame) -> str:
    """The differences over seeds that a Welch test supports, and how many pairs were tested."""
    comp = accuracy_comparisons(df)
    if comp.empty:
        return f"No pair of mechanisms has {MIN_SEEDS} seeds on both sides yet."
    found = comp[comp["verdict"] != "no difference shown"]
    head = (f"{len(comp)} pairs tested (same task, budget and grid; each side ≥ {MIN_SEEDS} seeds; two-sided Welch "
            f"t-test, p < {ALPHA}, no correction for the number of pairs); {len(found)} differences supported, the "
            "rest \"no difference shown\":\n\n")
    rows = [[r["task"], f"{r['train_res']}² → {r['eval_res']}²" if r["mode"] == "zero_shot" else f"{r['eval_res']}²",
             r["metric"], r["verdict"], f"{r['a']} {r['mean_a']:.4g} vs {r['b']} {r['mean_b']:.4g}", r["seeds"],
             f"{r['p']:.2g}"] for _, r in found.iterrows()]
    return head + markdown_table(["task", "grid", "metric", "verdict", "means", "seeds", "Welch p"], rows)


def accuracy_quick() -> str:
    paths = [_newest("reference", "accuracy-quick")]
    return _accuracy(_accuracy_rows(paths, ["darcy16_neuralop", "darcy32"]), paths)


# The full-protocol tasks of the README tables: schema-1 legacy rows first, superseded task by task by the clean
# re-measurements of every machine (oldest run first).
PROTOCOL_TASKS = ["darcy16_neuralop", "darcy16_neuralop_paper_model", "darcy32", "darcy64", "darcy128", "fashion32",
                  "fashion64", "fashion64_ablation", "longrange32", "longrange32_lr3e-4", "longrange32_lr3e-3",
                  "longrange32_standard"]


def _protocol_paths() -> list[Path]:
    return [RESULTS / "legacy" / "cpu" / "accuracy.csv",
            *sorted((RESULTS / "reference").glob("*/*/accuracy.csv"), key=lambda p: p.parent.name)]


BLOCKS: dict[str, Callable[..., str]] = {
    "cost-fwd": cost_fwd, "cost-exponents": cost_exponents, "claims": claims, "rerun": rerun,
    "accuracy-quick": accuracy_quick, "cost-plot": cost_plot, "linear-probe": linear_probe, "rerun-pair": rerun_pair,
    "targets": targets, "before-after": before_after,
}
# Blocks over the full-protocol rows: one render reads them once (no cache across renders: results may change).
PROTOCOL_BLOCKS: dict[str, Callable[[pd.DataFrame], str]] = {
    "accuracy-legacy": lambda rows: _accuracy(rows, _protocol_paths()), "accuracy-pairs": _accuracy_pairs,
    "lr-sweep": lambda rows: sweep_markdown(lr_sweeps(rows)),
}


def render(text: str) -> str:
    """``text`` with every generated block rewritten from the results."""
    protocol: list[pd.DataFrame] = []

    def block(m: re.Match) -> str:
        name, args = m.group("name"), m.group("args").split()
        if name in PROTOCOL_BLOCKS:
            protocol[:] = protocol or [_accuracy_rows(_protocol_paths(), PROTOCOL_TASKS)]
            return f"{m.group(1)}{PROTOCOL_BLOCKS[name](protocol[0])}\n{m.group(5)}"
        if name not in BLOCKS:
            raise KeyError(f"README block {name!r} has no generator; known: {', '.join([*BLOCKS, *PROTOCOL_BLOCKS])}")
        return f"{m.group(1)}{BLOCKS[name](*args)}\n{m.group(5)}"

    return _BLOCK.sub(block, text)


def update(path: Path, check: bool = False) -> bool:
    """Rewrite (or, with ``check``, only compare) the generated blocks of ``path``; returns whether it was current."""
    text = path.read_text()
    new = render(text)
    if new != text and not check:
        path.write_text(new)
    return new == text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attnbench.report.readme", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("readme", nargs="?", default=str(ROOT / "README.md"), help="file with generated blocks")
    parser.add_argument("--check", action="store_true", help="exit 1 if a block differs from the results")
    args = parser.parse_args(argv)
    current = update(Path(args.readme), check=args.check)
    print(f"{args.readme}: {'current' if current else ('out of date' if args.check else 'updated')}")
    return 0 if current or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
