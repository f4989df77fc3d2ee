"""Blocks of the accuracy runs: the quick suite of the reference run, the full protocol's table (schema-1 legacy rows
first, superseded task by task by the clean runs of every machine, oldest first), the pairwise tests over seeds, and
the learning-rate sweeps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from attnbench.report.analysis.accuracy import accuracy_summary, compute_spent, pairs_table, per_seed
from attnbench.report.analysis.protocol import lr_search_tables
from attnbench.report.render.markdown import sweep_markdown, table_markdown
from docs_blocks.sources import Page, Sources

__all__ = ["BLOCKS", "PROTOCOL_TASKS", "protocol_paths", "protocol_rows"]

QUICK, PROTOCOL = "accuracy-quick", "accuracy"  # suites/accuracy-quick.toml, suites/accuracy.toml
QUICK_TASKS = ["darcy16_neuralop", "darcy32"]
# The full-protocol tasks the tables show.
PROTOCOL_TASKS = ["darcy16_neuralop", "darcy16_neuralop_paper_model", "darcy32", "darcy64", "darcy128", "fashion32",
                  "fashion64", "fashion64_ablation", "longrange32", "longrange32_lr3e-4", "longrange32_lr3e-3",
                  "longrange32_standard"]


def protocol_paths(src: Sources) -> list[Path]:
    """The schema-1 legacy rows first, then every machine's clean full-protocol runs, oldest first."""
    return [src.results / "legacy" / "cpu" / "accuracy.csv", *src.references(PROTOCOL)]


def select_rows(src: Sources, paths: list[Path], tasks: list[str]) -> pd.DataFrame:
    """The accuracy rows of ``tasks`` from ``paths``: per (task, label, budget) the configurations of the last file
    that has it, with the same configurations' seeds from every file (a seed measured twice: the later file's row).
    A task trained on two budgets keeps both: a later budget never hides an earlier one's rows."""
    df = pd.concat([src.frame(p).assign(_order=order) for order, p in enumerate(paths)], ignore_index=True)
    keys = ["task", "label", "n_train", "epochs"]
    last = df.groupby(keys, dropna=False)["_order"].transform("max")
    ids = df[df["_order"] == last].groupby(keys, dropna=False)["config_id"].agg(set)  # trained, zero-shot, each lr
    df = df[[c in ids.get(k, ()) for k, c in zip(df[keys].itertuples(index=False, name=None), df["config_id"])]]
    df = df.sort_values("_order").drop_duplicates(["config_id", "seed", "eval_res"], keep="last")
    return df[(df["kind"] == "accuracy") & df["task"].isin(tasks)]


def protocol_rows(src: Sources) -> pd.DataFrame:
    return select_rows(src, protocol_paths(src), PROTOCOL_TASKS)


def _accuracy(page: Page, df: pd.DataFrame, paths: list[Path]) -> str:
    """The accuracy table (the one specification, :func:`accuracy_summary`) of the rows read from ``paths``."""
    table = accuracy_summary(df).select("task", "budget", "label", "eval_res", "mode", "metric", "value", "ci95",
                                        "rel_mse", "vs_trained", "seeds", "train_s", "peak_mib", "params", "machines")
    sources = ", ".join(page.link(p) for p in paths)
    return (f"From {sources}; per task, mechanism and budget the configuration of the last file that has it, with "
            f"its seeds from every file. {table.note[0].upper()}{table.note[1:]}:\n\n"
            + table_markdown(table, heading=None))


def accuracy_quick(page: Page) -> str:
    """The quick accuracy suite of the newest reference run."""
    paths = [page.sources.reference(QUICK)]
    return _accuracy(page, select_rows(page.sources, paths, QUICK_TASKS), paths)


def accuracy_protocol(page: Page) -> str:
    """The full protocol's table over every committed accuracy run."""
    return _accuracy(page, page.sources.protocol, protocol_paths(page.sources))


def accuracy_pairs(page: Page) -> str:
    """The differences over seeds that a Welch test supports, and how many pairs were tested."""
    table = pairs_table(page.sources.protocol, differences_only=True)
    view = table.select("task", "budget", "train_res", "eval_res", "metric", "verdict", "means", "seeds", "p")
    return f"{table.note[0].upper()}{table.note[1:]}:\n\n" + table_markdown(view, heading=None)


def lr_sweep(page: Page) -> str:
    """Every learning-rate sweep among the full-protocol rows, with its rule and the answer per mechanism."""
    return sweep_markdown(page.sources.protocol)


FAIR = "accuracy-protocol"  # suites/accuracy-protocol.toml: issue 24's protocol


def fair_protocol(page: Page) -> str:
    """The tuned protocol's runs: per task the learning-rate search on validation, then the accuracy table at the
    chosen rates (every committed run of the suite, every machine)."""
    src = page.sources
    paths = src.references(FAIR)
    if not paths:
        return "No committed run of `suites/accuracy-protocol.toml` yet."
    df = pd.concat([src.frame(p) for p in paths], ignore_index=True)
    parts = [f"From {', '.join(page.link(p) for p in paths)}."]
    for search in lr_search_tables(per_seed(df, search=True)):
        parts += [f"**{search.title}.** {search.note[0].upper()}{search.note[1:]}:",
                  table_markdown(search, heading=None)]
    table = accuracy_summary(df).select("task", "label", "eval_res", "mode", "metric", "value", "ci95", "seeds",
                                        "lr", "train_s", "params", "step_flops", "machines")
    parts += [f"**Accuracy at the chosen learning rates.** {table.note[0].upper()}{table.note[1:]}:",
              table_markdown(table, heading=None)]
    spent = compute_spent(df)
    parts += [f"**{spent.title}.** {spent.note[0].upper()}{spent.note[1:]}:", table_markdown(spent, heading=None)]
    return "\n\n".join(p.strip("\n") for p in parts)


BLOCKS = {"fair-protocol": fair_protocol, "accuracy-quick": accuracy_quick, "accuracy-protocol": accuracy_protocol,
          "accuracy-pairs": accuracy_pairs, "lr-sweep": lr_sweep}
