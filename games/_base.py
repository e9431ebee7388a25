"""What every game of this package shares with the others: the end of a step, rendering by
mode, and the AEC forms built the way PettingZoo's own environments are."""
from __future__ import annotations

from pettingzoo import ParallelEnv
from pettingzoo.utils import wrappers
from pettingzoo.utils.conversions import parallel_to_aec


class ArenaEnv(ParallelEnv):
    """Subclasses provide _observations(), _render_ansi() and _render_rgb()."""

    def _step_result(self, rewards: dict, done: bool):
        obs = self._observations()
        terms = {a: done for a in self.agents}
        truncs = {a: False for a in self.agents}
        infos = self._infos(obs)
        if done:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def _infos(self, obs: dict) -> dict:
        """Per-agent infos of a step or a reset: the game's urgency in [0, 1] (``info["urgency"]``,
        what an adaptive agent's controller reads) where the game's ``urgency(observation)`` exists."""
        fn = getattr(self, "urgency", None)
        if fn is None:
            return {a: {} for a in self.agents}
        return {a: {"urgency": fn(obs[a])} for a in self.agents if a in obs}

    def render(self):
        if self.render_mode == "ansi":
            return self._render_ansi()
        if self.render_mode in ("rgb_array", "human"):
            img = self._render_rgb()
            return img if self.render_mode == "rgb_array" else None
        return None

    def close(self):
        pass


def aec_forms(env_cls):
    """(raw_env, env) for a ParallelEnv class: the unwrapped and the wrapped AEC form."""

    def raw_env(**kwargs):
        """The AEC form without wrappers."""
        return parallel_to_aec(env_cls(**kwargs))

    def env(**kwargs):
        """The AEC form, wrapped the way PettingZoo's own environments are."""
        return wrappers.OrderEnforcingWrapper(wrappers.AssertOutOfBoundsWrapper(raw_env(**kwargs)))

    return raw_env, env
