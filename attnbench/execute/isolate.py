"""Isolation: every case runs in a fresh process with a timeout; what the child does and how a missing answer is
classified.

Case processes come from a multiprocessing *forkserver* that has imported torch once: every case still starts
from a new, single-threaded process image (honest peak RSS, no state shared between cases), without paying
~2 s of interpreter and torch start-up per case. In the child, :func:`run_in_child` configures the process
(threads, TF32, memory cap, plugin imports), calls the case's own ``run`` and maps exceptions: out of memory
(``torch.OutOfMemoryError``, ``MemoryError``, the CPU allocator's "can't allocate") → ``oom``, anything else →
``error`` with the exception's one-line message. In the parent, no answer within the timeout → ``timeout`` (the
child is killed); the child dying without an answer → ``crashed`` with the signal.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from attnbench.attention import CORE_MODULES
from attnbench.attention.kernels import quiet_cpp_extension_log
from attnbench.execute.guard import die_with_parent
from attnbench.spec.case import Case
from attnbench.store.status import Status

__all__ = ["START_TIMEOUT", "classify_exception", "configure", "run_in_child", "run_isolated"]

quiet_cpp_extension_log()  # torch.utils.benchmark imports cpp_extension, which warns where nvcc has no GPU

_OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "bad_alloc")


def classify_exception(exc: BaseException) -> tuple[str, str]:
    """``(status, reason)`` for an exception raised by a case."""
    import torch

    message = (str(exc).strip().splitlines() or [""])[0][:300]
    oom_type = getattr(torch, "OutOfMemoryError", None)
    if isinstance(exc, MemoryError) or (oom_type is not None and isinstance(exc, oom_type)):
        return Status.OOM, f"{type(exc).__name__}: {message}"
    if isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MARKERS):
        return Status.OOM, f"{type(exc).__name__}: {message}"
    return Status.ERROR, f"{type(exc).__name__}: {message}"


def _vm_size_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def configure(case: Case) -> None:
    """Threads, TF32, memory cap and plugin imports: set explicitly in every case process, and recorded."""
    import torch

    torch.set_num_threads(case.threads)
    torch.backends.cuda.matmul.allow_tf32 = case.tf32
    torch.backends.cudnn.allow_tf32 = case.tf32
    torch.set_float32_matmul_precision("high" if case.tf32 else "highest")
    limit = case.settings.memory_limit_gib
    if limit and case.device == "cpu":
        # Address-space cap on top of what is mapped now (the CUDA build of torch maps GBs it never touches),
        # so an oversized allocation fails as an exception (oom) instead of summoning the kernel's OOM killer.
        cap = _vm_size_bytes() + int(limit * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    for module in case.settings.imports:
        importlib.import_module(module)


def run_in_child(case: Case, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Configure this process, run the case and return its columns (status ``ok``) or a failure status."""
    start = time.perf_counter()
    try:
        configure(case)
        out = case.run(progress or (lambda message: None))
        out.setdefault("status", Status.OK)
    except BaseException as exc:  # noqa: BLE001 - every failure is a result row, never a crashed sweep
        if isinstance(exc, KeyboardInterrupt):
            raise
        status, reason = classify_exception(exc)
        out = {"status": status, "reason": reason}
    out["case_wall_s"] = round(time.perf_counter() - start, 3)
    return out


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie — dead, not yet reaped — counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _die_with(runner_pid: int) -> None:
    """Make this case process end when the runner or the fork server ends, whatever kills them.

    ``PR_SET_PDEATHSIG`` covers the fork server (this process's parent); a watchdog thread covers the runner,
    which is not our parent under the fork server. Either way the whole process group is killed, so no case is
    ever left spinning on a machine that later cases measure.
    """
    import threading

    die_with_parent(signal.SIGKILL)
    parent = os.getppid()

    def watch() -> None:
        while _alive(runner_pid) and os.getppid() == parent:
            time.sleep(0.25)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="attnbench-watchdog", daemon=True).start()


def _child(case: Case, conn: Any, runner_pid: int, environ: dict[str, str], path: list[str]) -> None:
    os.setpgid(0, 0)  # a process group of its own: a timeout ends the case and anything it started
    _die_with(runner_pid)
    # The runner's environment now, not the one the fork server was started with (a long-lived server would
    # otherwise freeze e.g. ATTNBENCH_DATA or a plugin's sys.path entry from its first use).
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path
    conn.send(("started", os.getpid()))

    def progress(message: str) -> None:  # long cases (training) report as they go
        conn.send(("progress", message))

    conn.send(("result", run_in_child(case, progress)))
    conn.close()


_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        if "forkserver" in mp.get_all_start_methods():
            _CONTEXT = mp.get_context("forkserver")
            # Imported once in the server, inherited by every case process: torch, timm, the measurement code,
            # the case types and the core mechanisms (optional ones excluded: their import can have side effects).
            # attnbench.execute.guard makes the server itself end with the runner.
            os.environ["ATTNBENCH_RUNNER_PID"] = str(os.getpid())
            core = ["attnbench.execute.guard", "torch", "attnbench.execute.isolate", "attnbench.spec.cost",
                    "attnbench.spec.training", "attnbench.registry", "attnbench.measure.memory",
                    "attnbench.measure.timing", "torch.utils.benchmark"]
            # attnbench.execute.freeze, last, takes the preloaded objects out of every case's garbage collections.
            _CONTEXT.set_forkserver_preload(core + list(CORE_MODULES.values()) + ["attnbench.execute.freeze"])
        else:  # pragma: no cover - non-Linux
            _CONTEXT = mp.get_context("spawn")
    return _CONTEXT


def restart_case_server() -> None:
    """Stop the fork server, so the next case starts a new one (importing torch afresh).

    Why: every case process is forked from the server, so whatever the server's own state fixes — its heap layout,
    where torch's libraries and their JIT caches landed, allocator arenas — is shared by every process it forks.
    Replicates forked from one server are then not independent measurements of the machine: a run-level offset
    survives in all of them. A replicated suite restarts the server before each round, as asv starts a new process
    per round. (``ForkServer._stop`` is CPython's own way to stop it, used by its test-suite.)
    """
    import multiprocessing.forkserver as forkserver

    if _CONTEXT is not None and _CONTEXT.get_start_method() == "forkserver":
        forkserver._forkserver._stop()  # type: ignore[attr-defined]  # noqa: SLF001 - private: no public way to stop it


def _kill_group(proc: Any) -> None:
    """End the case process and everything it started (its process group), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.is_alive():
        proc.kill()
    proc.join(10)


# Seconds a case process may take to start (fork server start-up included) before its own timeout begins.
START_TIMEOUT = 300.0


def run_isolated(case: Case, timeout: float, on_progress: Any = None) -> dict[str, Any]:
    """Run ``case`` in a new process; map a missing answer to ``timeout`` or ``crashed``.

    The timeout counts from the moment the case process runs (its "started" message), so the first case does not
    lose its budget while the fork server imports torch. Whatever ends this function early (an exception, the
    runner being terminated) kills the case's process group first.
    """
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    # Not daemonic: a case may start its own worker processes; the parent joins or kills it explicitly.
    proc = ctx.Process(target=_child, args=(case, send, os.getpid(), dict(os.environ), list(sys.path)), daemon=False)
    start = time.perf_counter()
    proc.start()
    send.close()  # the child holds the only write end: EOF tells us it is gone
    result, started = None, None
    try:
        while result is None:
            limit = START_TIMEOUT if started is None else timeout
            remaining = limit - (time.perf_counter() - (start if started is None else started))
            if remaining <= 0 or not recv.poll(remaining):
                if proc.is_alive():
                    _kill_group(proc)
                    what = (f"no result within {timeout:g} s (process group killed)" if started is not None
                            else f"the case process did not start within {START_TIMEOUT:g} s")
                    return {"status": Status.TIMEOUT, "reason": what,
                            "case_wall_s": round(time.perf_counter() - start, 3)}
                break
            try:
                kind, payload = recv.recv()
            except EOFError:
                break
            if kind == "result":
                result = payload
            elif kind == "started":
                started = time.perf_counter()
            elif on_progress is not None:
                on_progress(payload)
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        recv.close()
    proc.join(30)
    if proc.is_alive():  # answered but hangs on exit: the answer stands
        _kill_group(proc)
    if result is not None:
        return result
    code = proc.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        reason = f"killed by signal {name}{hint}"
    else:
        reason = f"exited with code {code} without a result"
    return {"status": Status.CRASHED, "reason": reason, "case_wall_s": round(time.perf_counter() - start, 3)}
