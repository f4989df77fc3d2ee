"""Executors: where the cases of a run execute. The runner (:mod:`.runner`) is the one writer of the results file;
an executor only turns cases into outcomes, in any order, and says where each ran.

* :class:`LocalExecutor` — one case at a time on this machine, each in a fresh process with its timeout.
* :class:`RayExecutor` — the same per-case isolation on the workers of a Ray cluster (a new local instance when no
  address is given, even where ``RAY_ADDRESS`` is set or another instance runs). Placement keeps timing honest: a
  GPU case holds one whole GPU (``num_gpus=1``); a CPU timing case holds all CPUs of the smallest node, so no two
  timing cases share cores (``--ray-pack-timing``: only its ``threads`` CPUs — cores are then not oversubscribed but
  caches and memory bandwidth are shared); training cases hold ``threads`` CPUs and may pack. A case no node can
  hold (a GPU on a cluster without one) is ``unsupported`` at once, never queued forever; a worker or node that dies
  mid-case is a ``crashed`` outcome naming the node.

A later executor (e.g. submitit for SLURM) implements :meth:`Executor.outcomes` the same way.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from attnbench.execute.isolate import classify_exception, restart_case_server, run_isolated
from attnbench.spec.case import Case
from attnbench.store.status import Status

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "RayUnavailable", "case_outcome", "make_executor"]

Frontiers = dict[tuple[Any, ...], tuple[int, str]]
Outcome = tuple[Case, dict[str, Any], dict[str, Any]]  # (case, outcome, placement)


class RayUnavailable(RuntimeError):
    """Ray is not installed (or cannot start); ``str()`` is one line saying how to get it."""


def case_outcome(case: Case, on_progress: Any = None) -> dict[str, Any]:
    """Precheck, then run ``case`` in a fresh process with its timeout (on whichever machine calls this)."""
    try:
        reasons = case.precheck()
    except Exception as exc:  # noqa: BLE001 - a failing capability check is an error row, not a crash
        status, reason = classify_exception(exc)
        return {"status": status, "reason": reason}
    if reasons:
        return {"status": Status.UNSUPPORTED, "reason": "; ".join(reasons)}
    return run_isolated(case, case.time_limit(), on_progress)


def _above_frontier(case: Case, frontier: Frontiers) -> dict[str, Any] | None:
    limit = frontier.get(case.series)
    if limit is not None and case.frontier and case.tokens > limit[0]:
        return {"status": Status.SKIPPED, "reason": f"above frontier ({limit[1]})"}
    return None


class Executor(Protocol):
    name: str

    def start_round(self) -> None:
        """Before each round of a replicated suite: make the round's processes independent of the last round's."""

    def outcomes(self, cases: list[Case], frontier: Frontiers,
                 on_progress: Callable[[Case, str], None]) -> Iterator[Outcome]:
        """Yield ``(case, outcome, placement)`` for every case. ``frontier`` is updated by the caller between
        yields; a case above it when it would start is ``skipped`` without running."""


class LocalExecutor:
    """One case after another on this machine."""

    name = "local"

    def outcomes(self, cases: list[Case], frontier: Frontiers,
                 on_progress: Callable[[Case, str], None]) -> Iterator[Outcome]:
        where = {"executor": "local", "node": socket.gethostname()}
        for case in cases:
            skipped = _above_frontier(case, frontier)
            if skipped is None:
                on_progress(case, "")
            yield case, skipped or case_outcome(case, lambda m, c=case: on_progress(c, m)), where

    def start_round(self) -> None:
        """A new fork server per round: replicates share nothing a server's state would fix (see
        :func:`~attnbench.execute.isolate.restart_case_server`)."""
        restart_case_server()

    def close(self) -> None:
        pass


def _run_remote(case: Case) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Ray task: the case in a fresh process on this worker; the outcome and where it ran."""
    import importlib

    import ray

    for module in case.settings.imports:  # the suite's plugins, for the precheck in this worker
        importlib.import_module(module)
    ctx = ray.get_runtime_context()
    where: dict[str, Any] = {"executor": "ray", "node": socket.gethostname(), "node_id": ctx.get_node_id(),
                             "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "worker_pid": os.getpid()}
    if where["gpu_ids"]:  # Ray sets CUDA_VISIBLE_DEVICES to the GPU it granted; the case sees it as cuda:0
        where["gpu_index"] = where["gpu_ids"][0]
    where["start_unix"] = round(time.time(), 3)  # when the case ran on this worker: which cases shared the cluster
    outcome = case_outcome(case)
    where["end_unix"] = round(time.time(), 3)
    return outcome, where


class RayExecutor:
    """Cases as Ray tasks (one fresh process per case on the worker), at most as many in flight as fit."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, pack_timing: bool = False) -> None:
        try:
            import ray
        except ImportError:
            raise RayUnavailable("--executor ray needs Ray: pip install 'attnbench[ray]' (or pip install 'ray>=2')") \
                from None
        self.ray, self.pack_timing = ray, pack_timing
        self.started = not ray.is_initialized()
        if self.started:  # address None: a new local instance of this machine; "auto" or HOST:PORT: join a cluster
            # a local instance's workers import what this process can (plugins on sys.path); a cluster's nodes
            # need attnbench and the plugins installed
            env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}} if address is None else None
            # "local", never None: ray.init(address=None) would join RAY_ADDRESS or a cluster already running here
            ray.init(address=address or "local", num_cpus=num_cpus if address is None else None,
                     include_dashboard=False, log_to_driver=False, configure_logging=False, runtime_env=env)
        self.remote = ray.remote(max_retries=0)(_run_remote)  # a crashed case is data, never silently re-run
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        self.node_cpus = min(int(n["Resources"].get("CPU", 0)) for n in nodes) if nodes else 0
        self.max_gpus = max(int(n["Resources"].get("GPU", 0)) for n in nodes) if nodes else 0
        self.nodes = {n["NodeID"]: n.get("NodeManagerHostname", n["NodeID"][:8]) for n in nodes}
        total = ray.cluster_resources()
        self.total_cpus, self.total_gpus = int(total.get("CPU", 0)), int(total.get("GPU", 0))

    def demand(self, case: Case) -> dict[str, float]:
        """The resources one case holds while it runs (see the module docstring)."""
        if case.device == "cuda":
            return {"num_gpus": 1, "num_cpus": 1}
        if getattr(case, "kind", "") == "cost" and not self.pack_timing:  # timing: the whole (smallest) node
            return {"num_cpus": max(self.node_cpus, 1)}
        return {"num_cpus": min(max(int(getattr(case, "threads", 1) or 1), 1), max(self.node_cpus, 1))}

    def _unschedulable(self, demand: dict[str, float]) -> str | None:
        if demand.get("num_gpus", 0) > self.max_gpus:
            return f"needs {demand['num_gpus']:g} GPU per case; no node of this Ray cluster has one"
        if demand.get("num_cpus", 0) > self.node_cpus:
            return f"needs {demand['num_cpus']:g} CPUs on one node; the smallest node has {self.node_cpus}"
        return None

    def _slots(self, demand: dict[str, float]) -> int:
        if demand.get("num_gpus"):
            return max(self.total_gpus, 1)
        return max(self.total_cpus // max(int(demand.get("num_cpus", 1)), 1), 1)

    def outcomes(self, cases: list[Case], frontier: Frontiers,
                 on_progress: Callable[[Case, str], None]) -> Iterator[Outcome]:
        ray = self.ray
        queue = list(cases)
        running: dict[Any, tuple[Case, float]] = {}
        while queue or running:
            while queue:  # submit in suite order while the next case fits beside what is running
                case = queue[0]
                demand = self.demand(case)
                if running and len(running) >= self._slots(demand):
                    break
                queue.pop(0)
                skipped = _above_frontier(case, frontier)
                reason = self._unschedulable(demand)
                if skipped or reason:
                    yield case, skipped or {"status": Status.UNSUPPORTED, "reason": reason}, {"executor": "ray"}
                    continue
                running[self.remote.options(**demand).remote(case)] = (case, time.perf_counter())
                on_progress(case, f"submitted ({len(running)} running on {len(self.nodes)} node"
                                  f"{'s' * (len(self.nodes) > 1)})")
            if not running:
                continue
            done, _ = ray.wait(list(running), num_returns=1)
            case, start = running.pop(done[0])
            try:
                outcome, where = ray.get(done[0])
            except Exception as exc:  # noqa: BLE001 - a dead worker or node is a crashed case, the sweep goes on
                where = {"executor": "ray", "node": self._node_of(exc)}
                outcome = {"status": Status.CRASHED, "reason": f"Ray worker died on node {where['node']}: "
                           f"{type(exc).__name__}", "case_wall_s": round(time.perf_counter() - start, 3)}
            yield case, outcome, where

    def _node_of(self, exc: BaseException) -> str:
        text = str(exc)
        for node_id, host in self.nodes.items():
            if node_id in text:
                return host
        return next(iter(self.nodes.values()), "unknown") if len(self.nodes) == 1 else "unknown"

    def start_round(self) -> None:
        """Nothing to do: each Ray task starts its case in a fresh process of the worker's own server."""

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


EXECUTORS = ("local", "ray")


def make_executor(name: str, address: str | None = None, pack_timing: bool = False) -> LocalExecutor | RayExecutor:
    """``local`` or ``ray`` (``address``: None for a local instance, ``auto`` or ``HOST:PORT`` for a cluster;
    ``pack_timing``: CPU timing cases hold ``threads`` CPUs instead of a whole node)."""
    if name == "ray":
        return RayExecutor(address, pack_timing=pack_timing)
    return LocalExecutor()
