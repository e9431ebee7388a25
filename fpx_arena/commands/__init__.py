"""Sub-commands of `fpx-arena`: one module each (HELP, add_arguments, run)."""
