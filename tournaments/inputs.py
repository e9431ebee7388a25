"""What a tournament's results depend on beyond its spec text, stored by content when a run
starts and compared when it resumes: latency profile files, plan files, and the checkpoints of
the models its LLM agents load. A resume whose inputs changed or went missing is refused in one
line naming the input, so one run never mixes matches played under two settings.

Paths are resolved against the spec file's folder (stored with the run), never the working
directory, so a run resumes the same from any folder.
"""
from __future__ import annotations

import hashlib
import os

from ..errors import UserError
from .spec import LLM_PART, TournamentSpec


def _file_sha256(path: str) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
        return h.hexdigest()
    except OSError:  # missing, a folder, unreadable: recorded as missing, compared as such
        return None


def _model_sha256(model: str) -> tuple[str | None, str | None]:
    """(resolved path, content hash) of a model name, folder or .gguf; (None, None) when it
    cannot be found here."""
    from ..errors import CheckpointError
    from ..llm.qcache import checkpoint_sha256
    from ..llm.registry import resolve

    try:
        path, _ = resolve(model)
        return path, checkpoint_sha256(path)
    except (CheckpointError, OSError):
        return None, None


def resolved_inputs(spec: TournamentSpec) -> dict:
    """{input name: {"path", "sha256"}} of every file the spec's matches read. sha256 None
    marks an input that is missing now."""
    out: dict = {}
    for agent in spec.agents:
        if agent.latency_profile:
            out[f"agents.{agent.name}.latency_profile"] = {
                "path": agent.latency_profile, "sha256": _file_sha256(agent.latency_profile)}
        for i, m in enumerate(LLM_PART.finditer(agent.spec)):
            model, precision = m.group(1), m.group(2)
            suffix = f"[{i}]" if i else ""
            path, sha = _model_sha256(model)
            out[f"agents.{agent.name}.model{suffix}"] = {"path": path or model, "sha256": sha}
            if precision and os.path.isabs(precision):  # spec.py made plan file paths absolute
                out[f"agents.{agent.name}.plan{suffix}"] = {"path": precision, "sha256": _file_sha256(precision)}
    for arena in spec.arenas:
        if arena.latency_profile:
            out[f"games.{arena.label}.latency_profile"] = {
                "path": arena.latency_profile, "sha256": _file_sha256(arena.latency_profile)}
    return out


def check_inputs(stored: dict, current: dict, run: str) -> None:
    """Refuse (UserError, one line) a resume whose inputs are not the ones the run started with."""
    for name in sorted(set(stored) | set(current)):
        before, now = stored.get(name), current.get(name)
        if before is None:
            raise UserError(f"cannot resume {run}: the spec now reads {name} ({now['path']}), which the run "
                            "did not: start a new run")
        if now is None:
            raise UserError(f"cannot resume {run}: the spec no longer reads {name} ({before['path']}): start a new run")
        if before["sha256"] is not None and now["sha256"] is None:
            raise UserError(f"cannot resume {run}: input {name} ({before['path']}) is missing: restore it, "
                            "or start a new run")
        if before["sha256"] != now["sha256"]:
            raise UserError(f"cannot resume {run}: input {name} ({now['path']}) changed since the run started "
                            f"(sha256 {str(before['sha256'])[:12]} -> {str(now['sha256'])[:12]}): resuming would "
                            "mix two tournaments; restore it, or start a new run")


__all__ = ["resolved_inputs", "check_inputs"]
