"""agents.make: built-in names, module paths, options, entry points, and clear errors."""
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import fpx_arena.agents as agents
from fpx_arena.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent


class Configurable:
    def __init__(self, depth=1, name="x"):
        self.depth, self.name = depth, name

    def reset(self, *args):
        pass

    def act(self, observation, info):
        return 0


def test_builtin_names_build_agents():
    for spec in ("random", "noop", "fighter/reactive", "fighter/weak", "market/informed"):
        agent = agents.make(spec)
        assert callable(agent.act) and agent.spec == spec


def test_module_path_with_options():
    agent = agents.make(f"{__name__}:Configurable?depth=3&name=deep")
    assert (agent.depth, agent.name) == (3, "deep")


def test_entry_point_registration(monkeypatch):
    ep = EntryPoint(name="keepaway", value=f"{__name__}:Configurable", group=agents.ENTRY_POINT_GROUP)
    monkeypatch.setattr(agents, "_entry_points", lambda: {"keepaway": ep})
    assert isinstance(agents.make("keepaway"), Configurable)
    assert "keepaway" in agents.builtin_specs()


@pytest.mark.parametrize("spec,message", [
    ("", "non-empty"),
    ("chess/deep-blue", "unknown agent spec"),
    ("fighter/nobody", "unknown fighter bot 'nobody'"),
    ("no.such.module:Thing", "cannot import 'no.such.module'"),
    (f"{__name__}:Missing", "has no attribute 'Missing'"),
    (f"{__name__}:Configurable?width=3", "unexpected keyword"),
    ("random?oops", "expected key=value"),
    ("collections:OrderedDict", "has no reset"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(SpecError, match=message):
        agents.make(spec)


def test_cli_reports_bad_input_in_one_line():
    for argv, message in [(["play", "chess"], "unknown game 'chess'"),
                          (["play", "fighter", "-a", "p0=fighter/nobody"], "unknown fighter bot"),
                          (["play", "fighter", "-a", "p9=random"], "unknown: p9"),
                          (["play", "fighter", "-a", "p0=human"], "needs the viewer"),
                          (["play", "fighter", "--clock", "profile"], "needs a latency for p0, p1")]:
        out = subprocess.run([sys.executable, "-m", "fpx_arena", *argv], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 2, (argv, out.stderr)
        assert message in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_the_documented_example_runs():
    out = subprocess.run([sys.executable, str(ROOT / "docs/examples/my_agent.py")], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("winner:")
    out = subprocess.run([sys.executable, "-m", "fpx_arena", "play", "fighter", "-a",
                          "p0=docs.examples.my_agent:KeepAway", "-a", "p1=fighter/aggressive",
                          "--clock", "profile", "--latency", "p0=50", "--latency", "p1=50", "--seed", "2"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "docs.examples.my_agent:KeepA" in out.stdout and "winner:" in out.stdout


@pytest.mark.parametrize("text,kind,fields", [
    ("random", "builtin", {"name": "random"}),
    ("fighter/reactive", "family", {"family": "fighter", "name": "reactive"}),
    ("llm:arena-tiny@fp8", "llm", {"model": "arena-tiny", "precision": "fp8", "model_backed": True}),
    ("llm:arena-tiny", "llm", {"precision": "bf16"}),
    ("llm:m@fpx:0.3?mode=free&max_tokens=8", "llm", {"precision": "fpx:0.3", "kwargs": {"mode": "free", "max_tokens": 8}}),
    ("llm:./models/x@plan.json", "llm", {"model": "./models/x", "precision": "plan.json"}),
    ("adaptive:arena-small@fp8,llm:arena-tiny@bf16?controller=bandit", "adaptive",
     {"kwargs": {"controller": "bandit"}, "model_backed": True}),
    ("pkg.mod:Cls?depth=3&deep=true&x=1.5", "module", {"kwargs": {"depth": 3, "deep": True, "x": 1.5},
                                                        "isolatable": True}),
    ("keepaway", "entry", {"isolatable": True, "model_backed": False}),
])
def test_agent_spec_parses_and_round_trips(text, kind, fields):
    spec = agents.AgentSpec.parse(text)
    assert spec.kind == kind and str(spec) == text
    assert agents.AgentSpec.parse(str(spec)) == spec and agents.AgentSpec.parse(spec) is spec
    for key, value in fields.items():
        assert getattr(spec, key) == value, key
    assert agents.AgentSpec.parse(f"  {text} ") == spec


@pytest.mark.parametrize("text,message", [
    ("", "non-empty"), ("llm:@fp8", "llm:<model>@<precision>"), ("pkg.mod:", "package.module:Class"),
    ("fighter/", "<game>/<bot>"), ("random?x", "expected key=value"), (3, "non-empty string"),
])
def test_agent_spec_refuses_malformed_specs_in_one_line(text, message):
    with pytest.raises(SpecError, match=message):
        agents.AgentSpec.parse(text)


def test_make_accepts_an_agent_spec_and_options():
    spec = agents.AgentSpec.parse(f"{__name__}:Configurable").with_options(depth=4)
    agent = agents.make(spec)
    assert agent.depth == 4 and agent.spec == f"{__name__}:Configurable?depth=4"
