"""The Ray backend: the same tournament on a Ray cluster (an existing one by address, or a local
one started here). Each worker is an actor that builds its agents once and plays many matches;
actors ask Ray for a GPU (or a share of one: workers_per_gpu) when the cluster has GPUs and
the spec has model-backed agents, so Ray places them and sets CUDA_VISIBLE_DEVICES.

Results and replay files travel back to this process, which alone writes the database: the
outcome of every match is the one the local backend gives (it depends on seed and seats only).
On a multi-machine cluster fpx-arena must be installed on every node (`pip install fpx-arena[ray]`).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError
from .schedule import uses_models
from .worker import MatchPlayer


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs Ray, an optional extra: pip install 'fpx-arena[ray]'") from None
    return ray


class RayMatchWorker:
    """An actor body: a MatchPlayer that keeps its agents between matches."""

    def __init__(self, spec, latencies, name: str):
        self.player = MatchPlayer(spec, latencies, replay_dir=None, worker=name)

    def play(self, task):
        return self.player.play(task)

    def node(self) -> str:
        import socket

        return f"{socket.gethostname()} CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')}"


def _checkout_root() -> str | None:
    """The source tree fpx_arena runs from, when it is not installed (PYTHONPATH=.): local Ray
    workers need it on their path too."""
    import fpx_arena

    root = Path(fpx_arena.__file__).resolve().parent.parent
    return str(root) if (root / "pyproject.toml").is_file() else None


class RayBackend:
    def __init__(self, spec, lat, *, pending: int, local_workers: int, address: str | None = None,
                 workers: int | None = None):
        ray = _import_ray()
        self.ray = ray
        self.started_here = False
        if not ray.is_initialized():
            kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            if address:
                ray.init(address=address, **kwargs)
            else:
                env = {}
                root = _checkout_root()
                if root:
                    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
                ray.init(num_cpus=local_workers, runtime_env={"env_vars": env} if env else None, **kwargs)
                self.started_here = True
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        on_gpu = gpus > 0 and uses_models(spec) and spec.gpus != "none"
        n = workers or (spec.concurrency if spec.concurrency != "auto" else None)
        if n is None:  # auto: one actor per GPU share, else per CPU of the cluster
            n = gpus * spec.workers_per_gpu if on_gpu else int(resources.get("CPU", 1))
        n = max(1, min(int(n), pending))
        options = {"num_cpus": 1, "num_gpus": 1.0 / spec.workers_per_gpu if on_gpu else 0}
        actor = ray.remote(**options)(RayMatchWorker)
        self.actors = [actor.remote(spec, lat, f"ray-{i}") for i in range(n)]
        self.busy = [0] * n
        self.futures: dict = {}  # ObjectRef -> (actor index, match key)
        self.description = f"ray, {n} actor{'s' * (n > 1)}" + (" on GPUs" if on_gpu else "")

    def describe(self) -> str:
        return self.description

    def free_slots(self) -> list[int]:
        return sorted((w for w in range(len(self.actors)) if self.busy[w] < 2), key=lambda w: self.busy[w])

    def submit(self, worker: int, task):
        self.busy[worker] += 1
        self.futures[self.actors[worker].play.remote(task)] = (worker, task.key)

    def poll(self, timeout: float) -> list:
        if not self.futures:
            return []
        ready, _ = self.ray.wait(list(self.futures), num_returns=len(self.futures), timeout=timeout)
        events = []
        for ref in ready:
            worker, key = self.futures.pop(ref)
            self.busy[worker] -= 1
            try:
                events.append(self.ray.get(ref))
            except self.ray.exceptions.RayError as e:
                raise UserError(f"Ray worker failed on match {key}: {str(e).strip().splitlines()[0]}") from None
        return events

    def close(self):
        for a in self.actors:
            try:
                self.ray.kill(a)
            except Exception:
                pass
        if self.started_here:
            self.ray.shutdown()
