"""Errors a user can act on. The CLI prints them as one line, never as a traceback."""


class UserError(Exception):
    """Bad input from the user (spec, file, option): the message says what and where."""


class CheckpointError(UserError):
    """A model checkpoint that cannot be loaded as it is."""


class ReplayError(UserError):
    """A replay file that is malformed or does not re-simulate."""


class SpecError(UserError):
    """An agent, game or tournament spec that does not parse or names nothing known."""
