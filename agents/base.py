"""The simplest agents, and helpers every agent may use."""
from __future__ import annotations

import numpy as np


def action_mask(observation, info: dict | None = None):
    """The legal-action mask carried by a Dict observation or by info, else None."""
    if isinstance(observation, dict) and "action_mask" in observation:
        return np.asarray(observation["action_mask"])
    if info and "action_mask" in info:
        return np.asarray(info["action_mask"])
    return None


class RandomAgent:
    """Uniform over legal actions (the mask where there is one), seeded by reset()."""

    def reset(self, agent_id, observation_space, action_space, seed):
        self.action_space = action_space
        self.rng = np.random.default_rng(seed)

    def act(self, observation, info):
        mask = action_mask(observation, info)
        if mask is not None and hasattr(self.action_space, "n"):
            legal = np.flatnonzero(mask)
            if len(legal):
                return int(self.rng.choice(legal))
        if hasattr(self.action_space, "n"):
            return int(self.rng.integers(self.action_space.n))
        self.action_space.seed(int(self.rng.integers(2**31)))
        return self.action_space.sample()


class NoopAgent:
    """Always action 0: the baseline that never thinks."""

    def reset(self, agent_id, observation_space, action_space, seed):
        pass

    def act(self, observation, info):
        return 0
