"""Blocks of the cost reference run (``suites/cpu.toml``): its tables, its figure, the exponents, MANO's cost claims
and targets, and the change from the previous MANO implementation."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd

from attnbench.report.analysis.compare import compare
from attnbench.report.analysis.fits import ratios, scaling_fits
from attnbench.report.analysis.replicates import paired, round_medians
from attnbench.report.render.markdown import markdown_table
from attnbench.store.layout import parse_run_id
from docs_blocks.sources import Page

__all__ = ["BLOCKS"]

SUITE = "cpu"
SIDES = (32, 64, 128)  # the grids of the cost table


def _run_line(page: Page, df: pd.DataFrame, path) -> str:
    first = df.iloc[0]
    runtime = json.loads(first["runtime"]) if first.get("runtime") else {}
    canary = runtime.get("canary_ms", {})
    wall = df["case_wall_s"].sum()
    return (f"Run `{first['run_id']}` ({page.link(path)}): {first['device_name']} "
            f"({first['machine']}), torch {first['torch']}, {first['dtype']}, {int(first['threads'])} threads, TF32 "
            f"{'on' if str(first['tf32']) == 'true' else 'off'}, git {first['git_sha']}; {len(df)} cases, "
            f"{wall / 60:.0f} min of case time; canary (1 thread, 2^18 floats) exp {canary.get('exp', '?')} ms, "
            f"expm1 {canary.get('expm1', '?')} ms.")


def _cell(r: pd.Series) -> str:
    if r["status"] != "ok":
        return r["status"]
    reps = r.get("replicates")
    ci = (f" [{r['time_ms_ci_lo']:.3g}–{r['time_ms_ci_hi']:.3g}]" if pd.notna(r["time_ms_ci_lo"]) else
          f" (n = {int(reps)} too small for a CI)" if pd.notna(reps) else "")
    peak = f" / {r['peak_mib']:.3g} MiB" if pd.notna(r["peak_mib"]) else ""
    return f"{r['time_ms_median']:.3g} ms{ci}{peak}"


def cost_fwd(page: Page, *modes: str) -> str:
    """Time per call with the median's CI and peak memory at 32², 64², 128², per mode (default: fwd and fwd_bwd;
    ``cost-fwd fwd`` draws the forward table only)."""
    path = page.sources.reference(SUITE)
    df = page.sources.frame(path)
    out = [_run_line(page, df, path), ""]
    for mode in modes or ("fwd", "fwd_bwd"):
        sub = df[(df["mode"] == mode) & (df["kind"] == "cost")]
        rows = [[label, *(_cell(g[g["height"] == s].iloc[0]) if (g["height"] == s).any() else "" for s in SIDES)]
                for label, g in sub.groupby("label", sort=False)]
        out += [f"**{mode}** — median per call (of the per-process medians, where replicated) [95 % CI of the median] "
                "/ peak memory (`cpu_rss`):", "",
                markdown_table(["attention", *(f"{s}²" for s in SIDES)], rows), ""]
    return "\n".join(out).rstrip()


def cost_plot(page: Page) -> str:
    """The reference run's forward runtime figure; with more series than one panel holds, the per-family figures
    (each with the seed mechanisms as grey references), one per family."""
    plots = page.sources.reference(SUITE).parent / "plots" / SUITE
    single = plots / f"{SUITE}_fwd_runtime.png"
    if single.exists():
        return f"![forward runtime vs tokens, reference run]({page.href(single)})"
    families = sorted(plots.glob(f"{SUITE}_fwd_runtime_*.png"))
    if not families:
        raise FileNotFoundError(f"no forward runtime figure under {plots}")
    return "\n".join(f"![forward runtime vs tokens, {p.stem.rsplit('_', 1)[1]} family, reference run]({page.href(p)})"
                     for p in families)


def cost_exponents(page: Page) -> str:
    """Exponents over the top decade of N, and the largest grid each series ran."""
    path = page.sources.reference(SUITE)
    df = page.sources.frame(path)
    fits = scaling_fits(df)
    rows = []
    for (mode, label), g in fits.groupby(["mode", "label"], sort=False):
        r = g.iloc[0]
        t, m = r["time_exp"], r["mem_exp"]
        largest = df[(df["label"] == label) & (df["mode"] == mode) & (df["status"] == "ok")]["height"].max()
        rows.append([mode, label, str(t or "n/a"), str(m or "n/a"), f"{t.n_min}–{t.n_max}" if t else "",
                     f"{int(largest)}²" if pd.notna(largest) else "none"])
    floor = ", ".join(f"{m} {f:.2f} MiB" for m, f in fits.groupby("mode")["mem_floor"].first().items())
    scaling = path.parent / "plots" / SUITE / "scaling.md"
    return (f"Exponent b of time ∝ N^b and (peak − floor) ∝ N^b over the top decade of N that ran (± = 95 % "
            f"bootstrap half-width; memory floor subtracted: {floor}); from [`scaling.md`]({page.href(scaling)}):\n\n"
            + markdown_table(["mode", "attention", "time b", "memory b", "N range of the fit",
                              "largest grid that ran"], rows))


def _ok(df: pd.DataFrame, label: str, mode: str, side: int) -> pd.DataFrame:
    return df[(df["label"] == label) & (df["mode"] == mode) & (df["height"] == side) & (df["status"] == "ok")]


def _ratio_at(df: pd.DataFrame, label: str, base: str, mode: str, side: int) -> tuple[float, float]:
    a, b = _ok(df, label, mode, side), _ok(df, base, mode, side)
    if a.empty or b.empty:
        return float("nan"), float("nan")
    return (float(b["time_ms_median"].iloc[0] / a["time_ms_median"].iloc[0]),
            float(a["peak_mib"].iloc[0] / b["peak_mib"].iloc[0]))


def _sides(tokens, values, keep: Callable[[float], bool]) -> list[str]:
    return [f"{int(np.sqrt(t))}²" for t, v in zip(tokens, values) if keep(v)]


def claims(page: Page, mech: str, reference: str, baseline: str, naive: str) -> str:
    """What the cost data say about a mechanism's headline claims (the page names the four labels: the mechanism,
    its reference implementation, the fused global baseline, the N×N-score baseline), computed, never typed."""
    df = page.sources.frame(page.sources.reference(SUITE))
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
        slower = _sides(m["tokens"], m["speedup"], lambda s: s < 1)
        tenfold = _sides(m["tokens"], m["speedup"], lambda s: s >= 10)
        lines.append(
            f"- `{mech}` vs fused global attention (`{baseline}`), {mode}: largest measured speed-up "
            f"{best['speedup']:.3g}× at {int(best['height'])}² (memory {best['mem_ratio']:.3g}× `{baseline}`'s); "
            f"slower than `{baseline}` at {', '.join(slower) or 'no grid'}; one order of magnitude (≥ 10×) "
            + (f"reached at {', '.join(tenfold)}" if tenfold else "not reached at any grid that both ran")
            + "; two orders (≥ 100×) " + ("reached" if (m["speedup"] >= 100).any() else "not reached") + ".")
        less = _sides(m["tokens"], m["mem_ratio"], lambda v: v < 1)
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


# Issue 10's cost targets: (quantity, mode) -> limit; "ref" is a speed-up (at least), the others at most.
TARGETS = {("time", "fwd"): 2.0, ("time", "fwd_bwd"): 2.5, ("ref", "fwd"): 4.0, ("ref", "fwd_bwd"): 3.0,
           ("mem", "fwd"): 1.5, ("gflops", "fwd"): 2.0, ("gflops", "fwd_bwd"): 2.0}


def _targets_row(df: pd.DataFrame, mech: str, comp: str, ref: str, mode: str, side: int) -> dict[str, float]:
    m, c, r = (_ok(df, label, mode, side) for label in (mech, comp, ref))
    if m.empty or c.empty or r.empty:
        return {}
    m, c, r = m.iloc[0], c.iloc[0], r.iloc[0]
    return {"time": m["time_ms_median"] / c["time_ms_median"], "ref": r["time_ms_median"] / m["time_ms_median"],
            "mem": m["peak_mib"] / c["peak_mib"], "gflops": c["gflops_per_s"] / m["gflops_per_s"]}


def _mark(key: str, mode: str, value: float) -> str:
    limit = TARGETS.get((key, mode))
    if limit is None:
        return ""
    return " ✓" if (value >= limit if key == "ref" else value <= limit) else " ✗"


def targets(page: Page, mech: str, comp: str, ref: str) -> str:
    """Issue 10's cost targets for ``mech`` (vs the windowed ``comp`` and the authors' ``ref``), at 128² and 256²,
    in the reference run and its re-run of the same code, each cell checked against its target."""
    reference = page.sources.reference(SUITE)
    runs = [reference]
    rerun = page.sources.rerun()
    if parse_run_id(rerun.parent.name).code == parse_run_id(reference.parent.name).code:  # same code measured again
        runs.append(rerun)
    header = ["run", "grid", "mode",  # the limits of TARGETS, in words
              f"time {mech}/{comp} (≤ 2.0 fwd, ≤ 2.5 fwd_bwd)",
              f"speed-up over {ref} (≥ 4 fwd, ≥ 3 fwd_bwd)", f"peak memory {mech}/{comp} (fwd ≤ 1.5)",
              f"GFLOP/s {comp}/{mech} (≤ 2)"]
    rows = []
    for path in runs:
        df = page.sources.frame(path)
        for side in (128, 256):
            for mode in ("fwd", "fwd_bwd"):
                got = _targets_row(df, mech, comp, ref, mode, side)
                if got:
                    rows.append([f"`{path.parent.name}`", f"{side}²", mode,
                                 *(f"{got[key]:.2f}{_mark(key, mode, got[key])}"
                                   for key in ("time", "ref", "mem", "gflops"))])
    return markdown_table(header, rows)


def before_after(page: Page, mech: str, previous: str, current: str | None = None) -> str:
    """``attnbench compare`` of ``mech`` between an earlier run (``previous``: a committed results CSV, from the
    repository root) and a later one (``current``, default the newest reference run): the change a new
    implementation made, case by case."""
    src = page.sources
    old_path = src.root / previous
    new_path = src.root / current if current else src.reference(SUITE)
    c = compare(src.frame(old_path), src.frame(new_path))
    c = c[c["label"] == mech]
    rows = [[r["mode"], r["grid"].replace("x", "×"),
             f"{r['ratio']:.3g}" + (f" [{r['ci_lo']:.3g}–{r['ci_hi']:.3g}]" if pd.notna(r["ci_lo"]) else ""),
             f"{r['mem_ratio']:.3g}", r["change"] or "no significant change"] for _, r in c.iterrows()]
    return (f"`attnbench compare {src.rel(old_path)} {src.rel(new_path)}`, rows of `{mech}` (B/A: new over "
            "previous):\n\n"
            + markdown_table(["mode", "grid", "time B/A [95 % CI]", "peak memory B/A", "verdict"], rows))


def _targets(specs: tuple[str, ...]) -> dict[tuple[str, int | None], float]:
    """``mode=value`` or ``mode@side,side=value`` → {(mode, side or None): value}."""
    out: dict[tuple[str, int | None], float] = {}
    for spec in specs:
        key, _, value = spec.partition("=")
        mode, _, sides = key.partition("@")
        for side in (int(x) for x in sides.split(",")) if sides else (None,):
            out[(mode, side)] = float(value)
    return out


def paired_ratios(page: Page, csv: str, num: str, den: str, *targets: str) -> str:
    """Time of ``num`` over ``den`` in one replicated run (``csv``, from the repository root), paired within each
    round, per mode and grid: the median over rounds with its 95 % CI, the rounds' range, and the peak memory ratio;
    ``targets`` (``mode=value`` or ``mode@side,side=value``) mark each cell ✓ (at or under) or ✗."""
    path = page.sources.root / csv
    df = page.sources.frame(path)
    df = df[df["kind"] == "cost"]
    goals = _targets(targets)
    rows = []
    order = {"fwd": 0, "fwd_bwd": 1, "train_step": 2}
    groups = sorted(df.groupby(["mode", "height"]), key=lambda kv: (order.get(kv[0][0], 3), kv[0][1]))
    for (mode, side), g in groups:
        mine, base = g[g["label"] == num], g[g["label"] == den]
        if mine.empty or base.empty:
            continue
        a, b = round_medians(base.iloc[0]["replicate_medians_ms"]), round_medians(mine.iloc[0]["replicate_medians_ms"])
        per_round = [b[r] / a[r] for r in sorted(set(a) & set(b)) if a[r] > 0]
        est = paired(a, b)
        goal = goals.get((mode, int(side)), goals.get((mode, None)))
        verdict = "" if goal is None else f"≤ {goal:g} {'✓' if est.value <= goal else '✗'}"
        memory = mine.iloc[0]["peak_mib"] / base.iloc[0]["peak_mib"]
        rows.append([mode, f"{side}×{int(g.iloc[0]['width'])}", str(est),
                     f"{min(per_round):.3g}–{max(per_round):.3g}" if per_round else "", str(len(per_round)),
                     f"{memory:.3g}" if np.isfinite(memory) else "", verdict])
    return (_run_line(page, page.sources.frame(path), path) + "\n\n"
            + markdown_table(["mode", "grid", f"time {num}/{den} [95 % CI]", "range over rounds", "rounds",
                              f"peak memory {num}/{den}", "target"], rows))


def compile_ratios(page: Page, csv: str) -> str:
    """A run with eager and ``torch.compile``d series of the same labels (``csv``, from the repository root): per
    label, mode and grid the eager and compiled medians, compiled over eager paired within rounds [95 % CI], and
    the compile time of the first round's process (a cold cache; later processes may reuse inductor's)."""
    path = page.sources.root / csv
    df = page.sources.frame(path)
    df = df[df["kind"] == "cost"]
    compiled = df["compile"].astype(str).str.lower().isin(["true", "1"])
    df = df.assign(series=df["label"].str.replace(r" \[compiled\]$", "", regex=True))  # the compiled series' label
    rows = []
    for (label, mode, side), g in df.groupby(["series", "mode", "height"], sort=True):
        eager, comp = g[~compiled.loc[g.index]], g[compiled.loc[g.index]]
        if eager.empty or comp.empty:
            continue
        e, c = eager.iloc[0], comp.iloc[0]
        if c["status"] != "ok":
            rows.append([label, mode, f"{side}²", _cell(e), c["status"], "", ""])
            continue
        est = paired(round_medians(e["replicate_medians_ms"]), round_medians(c["replicate_medians_ms"]))
        rows.append([label, mode, f"{side}²", f"{e['time_ms_median']:.3g} ms", f"{c['time_ms_median']:.3g} ms",
                     str(est), f"{c['compile_s']:.3g} s"])
    return (_run_line(page, page.sources.frame(path), path) + "\n\n"
            + markdown_table(["attention", "mode", "grid", "eager", "compiled", "compiled/eager [95 % CI]",
                              "compile time"], rows))


def case_walls(page: Page, *csvs: str) -> str:
    """Accuracy runs (``csvs``, from the repository root): each training case's wall time per task and mechanism,
    one column per run, with each run's commit."""
    frames = [(csv, page.sources.frame(page.sources.root / csv)) for csv in csvs]
    cells: dict[tuple[str, str, str], list[str]] = {}
    for i, (_, df) in enumerate(frames):
        for _, r in df[df["kind"] != "cost"].drop_duplicates(["task", "label", "seed"]).iterrows():
            key = (r["task"], r["label"], str(r["seed"]))
            cells.setdefault(key, [""] * len(frames))[i] = (f"{r['case_wall_s']:.0f} s" if r["status"] == "ok"
                                                            else r["status"])
    heads = [f"`{df.iloc[0]['run_id']}` (git {df.iloc[0]['git_sha']})" for _, df in frames]
    rows = [[task, label, seed, *v] for (task, label, seed), v in sorted(cells.items())]
    return markdown_table(["task", "attention", "seed", *heads], rows)


def flop_ratios(page: Page, csv: str) -> str:
    """Counted FLOPs of two mechanisms side by side (``csv``, from the repository root, as
    ``results/investigations/mano-native/flop_ratio.py`` writes it): per comparison, mode and grid both counts and
    their ratio, the floor under a time ratio of the two."""
    path = page.sources.root / csv
    df = pd.read_csv(path)

    def mflop(flops: float) -> str:  # 4 significant digits, never in e-notation
        return f"{flops / 1e6:.4g}" if flops < 1e10 else f"{flops / 1e6:.0f}"

    rows = [[r["what"], r["mode"], f"{r['grid']}×{r['grid']}", f"{r['a']} / {r['b']}",
             f"{mflop(r['flops_a'])} / {mflop(r['flops_b'])}", f"{r['ratio']:.3g}"] for _, r in df.iterrows()]
    head = f"{page.link(path)} (git {df['git'].iloc[0]}, torch {df['torch'].iloc[0]}):"
    return head + "\n\n" + markdown_table(["what", "mode", "grid", "mechanisms", "MFLOP", "FLOP ratio"], rows)


BLOCKS = {"cost-fwd": cost_fwd, "cost-plot": cost_plot, "cost-exponents": cost_exponents, "claims": claims,
          "targets": targets, "before-after": before_after,
          "paired-ratios": paired_ratios, "compile-ratios": compile_ratios, "case-walls": case_walls,
          "flop-ratios": flop_ratios}
