"""LLM agents on a CPU use one torch thread each unless `?threads=N` says otherwise: with torch's
default of one per core, two agents of a match (or two tournament workers) fight for the cores."""
import torch

from fpx_arena import agents, games


def test_llm_agent_uses_one_cpu_thread_by_default_and_threads_n_when_asked():
    before = torch.get_num_threads()
    env = games.make("fighter")
    try:
        torch.set_num_threads(2)
        agent = agents.make("llm:arena-tiny@bf16")
        agent.attach_env(env)
        agent.reset("p0", env.observation_space("p0"), env.action_space("p0"), 0)
        assert torch.get_num_threads() == 1
        two = agents.make("llm:arena-tiny@bf16?threads=2")
        two.attach_env(env)
        two.reset("p0", env.observation_space("p0"), env.action_space("p0"), 0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
