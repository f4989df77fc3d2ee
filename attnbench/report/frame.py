"""Results as a DataFrame: every file's rows, numeric columns typed from the row schema, series labels."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from attnbench.store.csvfile import read_results
from attnbench.store.schema import NUMERIC, series_label

__all__ = ["BASELINE", "baseline_label", "load_frame", "machine_line"]

# The label ratios and crossovers are measured against: global softmax attention, the quadratic reference.
BASELINE = "full"


def load_frame(paths: list[str | Path]) -> pd.DataFrame:
    """Results CSV files (or folders of them) as one DataFrame with numeric columns converted."""
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


def baseline_label(df: pd.DataFrame) -> str | None:
    """The label measured against: :data:`BASELINE` if present, else the first label of that attention."""
    if (df["label"] == BASELINE).any():
        return BASELINE
    full = df.loc[df["attention"] == BASELINE, "label"]
    return None if full.empty else str(full.iloc[0])
