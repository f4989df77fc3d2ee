"""``attnbench claims``: every claim of the MANO abstract gets a verdict by its stated rule, from the rows given."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from attnbench.cli import main
from attnbench.report.analysis.claims import claims_table
from attnbench.report.analysis.frame import prepare

ROOT = Path(__file__).resolve().parents[2]
COST = ROOT / "results" / "reference" / "amd-epyc-2c" / "20261201-175726-8c9f2de10c82" / "cpu.csv"
VERDICTS = {"reproduced", "partly", "not reproduced", "not testable here", "not reproduced on this budget"}


def test_claims_of_committed_results(tmp_path: Path) -> None:
    out = tmp_path / "claims.md"
    assert main(["claims", str(COST), "-o", str(out)]) == 0
    text = out.read_text()
    assert "Reproduce: `attnbench claims" in text and "Machine: AMD EPYC" in text
    table = claims_table(prepare(pd.read_csv(COST, dtype=str, keep_default_na=False)))
    verdicts = {r["claim"]: r["verdict"] for r in table.records}
    assert set(verdicts.values()) <= VERDICTS and len(verdicts) == 5
    # cost rows only: the accuracy claims cannot be judged from them
    assert verdicts["accuracy rivalling ViT and Swin"] == "not testable here"
    assert verdicts["Darcy 16² relative MSE 0.008"] == "not testable here"
    # the level rule: at 96² the coarsest level is 3x3 with k = 2, so one layer is not global everywhere
    assert verdicts["global receptive field"] == "partly"


PARAMS = {"full": 100, "swin": 103, "mano": 200, "mano_pool": 102, "mano_wide": 120}


def _accuracy_rows(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for label, vals in values.items():
        for seed, v in enumerate(vals):
            rows.append({"kind": "accuracy", "suite": "s", "task": "t", "label": label,
                         "attention": "mano_k2" if label.startswith("mano") else label, "params": str(PARAMS[label]),
                         "mode": "trained", "status": "ok", "metric": "top1", "value": str(v), "seed": str(seed),
                         "eval_res": "32", "train_res": "32", "config_id": f"{label}", "timestamp": str(seed),
                         "rel_mse": "", "epochs": "1", "n_train": "10", "device_name": "cpu", "threads": "1"})
    return prepare(pd.DataFrame(rows))


def _verdicts(table) -> dict[str, str]:
    return {r["claim"]: r["verdict"] for r in table.records}


def test_every_claim_is_an_object_with_a_rule_even_under_python_OO() -> None:
    """Claims once zipped their functions with bullets parsed from a docstring: a claim without a bullet vanished,
    and ``python -OO`` (no docstrings) crashed. Each claim now carries its rule."""
    import subprocess
    import sys

    from attnbench.report.analysis.claims import CLAIMS

    assert len({c.name for c in CLAIMS}) == len(CLAIMS) and all(len(c.rule) > 40 for c in CLAIMS)
    code = ("import pandas as pd; from attnbench.report.analysis.claims import CLAIMS, claims_table; "
            "from attnbench.report.analysis.frame import prepare; "
            "t = claims_table(prepare(pd.DataFrame([{'kind': 'cost', 'label': 'x', 'status': 'ok'}]))); "
            "assert len(t) == len(CLAIMS) and all(r['rule'] for r in t.records), t.records")
    done = subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _rivalling(df: pd.DataFrame) -> str:
    return _verdicts(claims_table(df))["accuracy rivalling ViT and Swin"]


def test_rivalling_needs_three_seeds_and_a_welch_test() -> None:
    verdict = {}
    for name, mano in (("worse", [0.50, 0.51, 0.49]), ("same", [0.80, 0.82, 0.79]), ("two", [0.5, 0.5])):
        verdict[name] = _rivalling(_accuracy_rows({"mano": mano, "full": [0.80, 0.81, 0.79],
                                                   "swin": [0.81, 0.80, 0.82]}))
    assert verdict == {"worse": "not reproduced", "same": "reproduced", "two": "not testable here"}


def test_rivalling_checks_the_parameter_matched_mano() -> None:
    base = {"mano": [0.86, 0.87, 0.86], "full": [0.80, 0.81, 0.79], "swin": [0.81, 0.80, 0.82]}
    # the matched variant (same attention, params within 5 % of full's) is worse: the lead needs the parameters
    assert _rivalling(_accuracy_rows({**base, "mano_pool": [0.70, 0.71, 0.69]})) == "partly"
    assert _rivalling(_accuracy_rows({**base, "mano_pool": [0.80, 0.82, 0.81]})) == "reproduced"
    # 20 % more parameters than full is not matched: its result does not enter the verdict
    assert _rivalling(_accuracy_rows({**base, "mano_wide": [0.70, 0.71, 0.69]})) == "reproduced"


def test_comparisons_print_better_only_where_welch_supports_it() -> None:
    from attnbench.report.analysis.accuracy import accuracy_comparisons

    comp = accuracy_comparisons(_accuracy_rows({"mano": [0.86, 0.87, 0.86], "full": [0.80, 0.81, 0.79],
                                                "swin": [0.80, 0.83, 0.78], "mano_pool": [0.5, 0.6]}))
    verdicts = {(r["a"], r["b"]): r["verdict"] for _, r in comp.iterrows()}
    # mano_pool has two seeds: never tested; full vs swin overlap: no difference shown
    assert verdicts == {("mano", "full"): "mano better", ("mano", "swin"): "mano better",
                        ("full", "swin"): "no difference shown"}
    assert (comp.loc[comp["verdict"] == "mano better", "p"] < 0.05).all()


def _sweep_rows(cells: dict[tuple[str, float], list[float]], task_of=None) -> pd.DataFrame:
    """Long-range rows: ``{(label, lr): [top-1 per seed]}``, one task per learning rate (``task_of`` overrides)."""
    rows = []
    for (label, lr), vals in cells.items():
        task = (task_of or {}).get((label, lr), f"lr{lr:g}")
        for seed, v in enumerate(vals):
            rows.append({"kind": "accuracy", "suite": "s", "task": task, "label": label, "attention": label,
                         "params": "100", "mode": "trained", "status": "ok", "metric": "top1", "value": str(v),
                         "seed": str(seed), "eval_res": "32", "train_res": "32", "config_id": f"{label}{task}",
                         "timestamp": str(seed), "rel_mse": "", "epochs": "30", "n_train": "8000", "n_test": "2000",
                         "patch": "4", "batch": "32", "final_loss": "0.5", "device_name": "cpu", "threads": "1",
                         "impl": json.dumps({"dataset": "longrange", "lr": lr, "classes": 2})})
    return prepare(pd.DataFrame(rows))


def test_learning_rate_sweep_verdicts_follow_the_stated_rule() -> None:
    from attnbench.report.analysis.sweep import lr_sweeps
    from attnbench.report.render.markdown import sweep_markdown

    df = _sweep_rows({("full", 1e-3): [0.99, 0.97, 0.999], ("full", 3e-3): [0.99, 0.6, 0.5],
                      # 0.53 of 2000 is above 0.5 (binomial p ≈ 0.004), 0.51 is not (p ≈ 0.19)
                      ("mano", 1e-3): [0.53, 0.54, 0.53], ("mano", 3e-3): [0.51, 0.5, 0.49],
                      ("other", 1e-3): [0.9, 0.9, 0.9]}, task_of={("other", 1e-3): "harder"})
    sweeps = lr_sweeps(df)
    verdict = {(r["label"], r["lr"]): r["verdict"] for _, r in sweeps.iterrows()}
    assert verdict == {("full", 1e-3): "solved", ("full", 3e-3): "1/3 solved", ("mano", 1e-3): "above chance",
                       ("mano", 3e-3): "at chance"}  # "harder" shares lr 1e-3 with fewer mechanisms: not in the sweep
    text = sweep_markdown(df)
    assert "`mano` (lr tried: 0.001, 0.003): never solved; above chance: lr 0.001 (lr0.001: above chance of 3" in text
    assert "`full` (lr tried: 0.001, 0.003): solved by every seed at lr 0.001 (lr0.001: solved of 3 seeds)" in text
    assert lr_sweeps(df[df["task"] == "lr0.001"]).empty  # one learning rate is not a sweep


def test_global_receptive_field_needs_the_long_range_task_learned() -> None:
    cost = prepare(pd.DataFrame([{"kind": "cost", "suite": "c", "label": "mano", "attention": "mano", "status": "ok",
                                  "mode": "fwd", "height": "32", "width": "32", "kwargs": json.dumps({"window": 2}),
                                  "impl": json.dumps({"coarsest": "2x2"}), "device_name": "cpu", "threads": "1"}]))

    def verdict(mano: list[float]) -> str:
        sweep = _sweep_rows({("full", 1e-3): [0.99, 0.98, 0.995], ("full", 3e-3): [0.5, 0.51, 0.49],
                             ("mano", 1e-3): mano, ("mano", 3e-3): [0.5, 0.49, 0.51]})
        df = pd.concat([cost, sweep], ignore_index=True)
        return _verdicts(claims_table(df))["global receptive field"]

    assert verdict([0.99, 0.98, 0.97]) == "reproduced"
    assert verdict([0.52, 0.5, 0.51]) == "partly"  # global by construction, but it did not learn what needs it
    # no accuracy rows: the structural rule alone
    assert _verdicts(claims_table(cost))["global receptive field"] == "reproduced"


def test_darcy_claim_states_whether_the_test_loss_had_plateaued() -> None:
    def darcy(rel_mse: float, test_curve: list[float]) -> tuple[str, str]:
        curve = {"train_loss": [0.5] * 20, "test_epoch": [5, 10, 15, 20], "test_value": test_curve,
                 "test_metric": "rel_l2"}
        row = {"kind": "accuracy", "suite": "s", "task": "darcy16_neuralop_paper_model", "label": "mano_paper",
               "attention": "mano", "params": "100", "mode": "trained", "status": "ok", "metric": "rel_l2",
               "value": "0.1", "rel_mse": str(rel_mse), "seed": "0", "eval_res": "16", "train_res": "16",
               "config_id": "m", "timestamp": "0", "epochs": "20", "n_train": "1000", "device_name": "cpu",
               "threads": "1", "curve": json.dumps(curve)}
        found = {r["claim"]: r for r in claims_table(prepare(pd.DataFrame([row]))).records}
        return found["Darcy 16² relative MSE 0.008"]["measured"], found["Darcy 16² relative MSE 0.008"]["verdict"]

    # the evaluation nearest 3/4 of 20 epochs is epoch 15: 0.1 → 0.1 is flat, 0.2 → 0.1 is still falling by half
    measured, verdict = darcy(0.0158, [0.4, 0.2, 0.1, 0.1])
    assert "0.0158 (1 seed), 20 epochs, test rel. L2 +0.0 % over the last quarter" in measured
    assert verdict == "not reproduced on this budget"
    measured, verdict = darcy(0.009, [0.4, 0.3, 0.2, 0.1])
    assert "test rel. L2 -50.0 % over the last quarter" in measured and verdict == "reproduced"
