"""A complete third-party agent: keep your distance and throw fireballs, block what comes.

Run it against a scripted bot (from the repository root, or anywhere once installed):

    python docs/examples/my_agent.py
    fpx-arena play fighter -a p0=docs.examples.my_agent:KeepAway -a p1=fighter/aggressive
"""
from fpx_arena.games import fighter


class KeepAway:
    """Any object with reset() and act() is an agent; nothing to inherit."""

    def reset(self, agent_id, observation_space, action_space, seed):
        names = fighter.action_names(agent_id)
        self.do = {name: names.index(name) for name in names}  # action name -> index

    def act(self, observation, info):
        state = fighter.decode(observation["observation"])  # named fields, pixels and frames
        mask = observation["action_mask"]
        if state.opp.phase == 1:  # the opponent's attack is in its startup: guard it
            return self.do["lowblock" if state.opp.move_name == "sweep" else "block"]
        if state.gap < 120:
            return self.do["back"]
        if mask[self.do["fireball"]]:
            return self.do["fireball"]
        return self.do["wait"]


if __name__ == "__main__":
    import fpx_arena
    from fpx_arena import agents, games

    env = games.make("fighter")
    players = {"p0": KeepAway(), "p1": agents.make("fighter/aggressive")}
    result = fpx_arena.run_match(env, players, clock="profile", latency={"p0": 50, "p1": 50}, seed=1)
    print("winner:", result.winner, "rewards:", result.rewards, "missed ticks:", result.missed_ticks)
