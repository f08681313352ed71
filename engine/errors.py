"""Errors the engine reports to its callers (CLI, HTTP); each maps to one clear message."""


class EngineError(Exception):
    code = "engine_error"


class NotFound(EngineError):
    code = "not_found"


class Conflict(EngineError):
    """Another command changed the case first; nothing of this command was applied."""

    code = "conflict"


class InvalidCommand(EngineError):
    """The command does not fit the case or task as it stands; the message names the rule."""

    code = "invalid_command"


class TaskClosed(InvalidCommand):
    """The task is no longer open (completed, returned, cancelled): nothing more can be done with it."""
