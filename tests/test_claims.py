"""``attnbench claims``: every claim of the MANO abstract gets a verdict by its stated rule, from the rows given."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from attnbench.cli import main
from attnbench.report.claims import claims_table
from attnbench.report.frame import prepare

ROOT = Path(__file__).resolve().parents[1]
COST = ROOT / "results" / "reference" / "amd-epyc-2c" / "20261201-175726-8c9f2de10c82" / "cpu.csv"
VERDICTS = {"reproduced", "partly", "not reproduced", "not testable here", "not reproduced on this budget"}


def test_claims_of_committed_results(tmp_path: Path) -> None:
    out = tmp_path / "claims.md"
    assert main(["claims", str(COST), "-o", str(out)]) == 0
    text = out.read_text()
    assert "Reproduce: `attnbench claims" in text and "Machine: AMD EPYC" in text
    table = claims_table(prepare(pd.read_csv(COST, dtype=str, keep_default_na=False)))
    verdicts = dict(zip(table.frame.iloc[:, 0], table.frame["verdict"]))
    assert set(verdicts.values()) <= VERDICTS and len(verdicts) == 5
    # cost rows only: the accuracy claims cannot be judged from them
    assert verdicts["accuracy rivalling ViT and Swin"] == "not testable here"
    assert verdicts["Darcy 16² relative MSE 0.008"] == "not testable here"
    # the level rule: at 96² the coarsest level is 3x3 with k = 2, so one layer is not global everywhere
    assert verdicts["global receptive field"] == "partly"


def _accuracy_rows(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for label, vals in values.items():
        for seed, v in enumerate(vals):
            rows.append({"kind": "accuracy", "suite": "s", "task": "t", "label": label, "attention": label,
                         "mode": "trained", "status": "ok", "metric": "top1", "value": str(v), "seed": str(seed),
                         "eval_res": "32", "train_res": "32", "config_id": f"{label}", "timestamp": str(seed),
                         "rel_mse": "", "epochs": "1", "device_name": "cpu", "threads": "1"})
    return prepare(pd.DataFrame(rows))


def test_rivalling_needs_three_seeds_and_a_welch_test() -> None:
    verdict = {}
    for name, mano in (("worse", [0.50, 0.51, 0.49]), ("same", [0.80, 0.82, 0.79]), ("two", [0.5, 0.5])):
        df = _accuracy_rows({"mano": mano, "full": [0.80, 0.81, 0.79], "swin": [0.81, 0.80, 0.82]})
        verdict[name] = claims_table(df).frame.set_index(claims_table(df).frame.columns[0])["verdict"][
            "accuracy rivalling ViT and Swin"]
    assert verdict == {"worse": "not reproduced", "same": "reproduced", "two": "not testable here"}
