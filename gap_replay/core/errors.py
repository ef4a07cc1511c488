"""The errors a user can cause: each says what is wrong in one line, and the CLI exits 2 on them.

They live apart from the modules that raise them so that any layer (the foundation, a stage's
settings) can raise them without importing the machinery that defines the rest.
"""


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file, key and problem."""


class InputError(ValueError):
    """An input path is missing or is not a finished output."""


class OutputExistsError(RuntimeError):
    """A finished output exists and was made from other inputs or configuration."""


class TransientInputError(RuntimeError):
    """Reading an input failed for a reason that may pass (a service still failing after the client's
    retries): the task fails, to be retried by Spark or by a rerun, rather than record the input as a drop."""
