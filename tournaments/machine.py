"""What a run records about the machine that played it: a `measured` or `wall` tournament's
numbers are that machine's (and its load's), so the report names them."""
from __future__ import annotations

import os
import platform
import subprocess


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def gpu_names(ids: list[str]) -> list[str]:
    """Names of the GPUs with these indices (nvidia-smi; no torch in the tournament process)."""
    if not ids:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return [f"GPU {i}" for i in ids]
    names = dict(line.split(", ", 1) for line in out.strip().splitlines() if ", " in line)
    return [f"{i}: {names.get(str(i), 'unknown')}" for i in ids]


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def session_record(placement: list, worker_threads: int | None) -> dict:
    """One session of a run (a start or a --resume): CPU, GPUs, workers, threads, load at start.
    The runner adds loadavg_end and played when it ends."""
    gpus = sorted({g for g in placement if g is not None})
    return {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "gpus": gpu_names(gpus), "workers": len(placement),
            "worker_threads": worker_threads, "loadavg_start": loadavg(), "platform": platform.platform()}


__all__ = ["cpu_name", "gpu_names", "loadavg", "session_record"]
