"""List the agent specs `fpx-arena play -a ID=SPEC` accepts."""
from __future__ import annotations

HELP = "list built-in and registered agents"


def add_arguments(p):
    pass


def run(args) -> int:
    from ..agents import builtin_specs

    for spec in builtin_specs():
        print(spec)
    print("llm:<model>@<precision>   precision: fp32, bf16, fp8, fp4, nvfp4, mxfp4, fpx:<gamma>, adaptive, "
          "or a plan file (models: `fpx-arena models`)")
    print("adaptive:<model>@<precision>,<model>@<precision>[,...][?controller=deadline|bandit]   "
          "a model and precision chosen per decision (docs/adaptive.md)")
    print("package.module:Class       any importable class with reset() and act()")
    return 0
