"""The `fpx-arena` command. Each sub-command lives in its own module under
fpx_arena/commands/ with ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``;
this file only discovers and dispatches them, so adding a command touches no shared file."""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from . import __version__
from .errors import UserError


def _command_modules():
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield info.name.replace("_", "-"), f"{commands.__name__}.{info.name}"


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line (the command's usage is one `--help` away), never the usage
    block followed by the error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fpx-arena",
        description="Real-time game-playing LLM bots on FP8/FP4 kernels: play matches, run "
        "tournaments between precisions, watch replays.",
        epilog="Run `fpx-arena COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"fpx-arena {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in _command_modules():
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=(module.__doc__ or module.HELP).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _working_folder_importable() -> None:
    """`package.module:Class` specs name modules of the working folder, which `python -m` finds
    and the console script would not. Appended last, so that a folder of the working tree (the
    repository's bare kernels/, say) never shadows an installed package of the same name."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def main(argv: list[str] | None = None) -> int:
    _working_folder_importable()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse's --help, --version and bad arguments: a return code here
        return e.code if isinstance(e.code, int) else 2
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as e:
        print(f"fpx-arena {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except OSError as e:  # a file the user named: missing, a folder, no permission, a full disk
        where = f": {e.filename}" if e.filename else ""
        print(f"fpx-arena {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fpx-arena {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
