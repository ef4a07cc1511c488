"""The errors a user can cause: each says what is wrong in one line, and the CLI exits 2 on them; and
:func:`is_transient`, the one rule by which every reader of input files tells a failure worth another try
(the task fails) from bad content (the input is dropped as ``parse_error``).

They live apart from the modules that raise them so that any layer (the foundation, a stage's
settings, a stage's readers) can use them without importing the machinery that defines the rest.
"""

import gzip


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file, key and problem."""


class InputError(ValueError):
    """An input path is missing or is not a finished output."""


class OutputExistsError(RuntimeError):
    """A finished output exists and was made from other inputs or configuration."""


class TransientInputError(RuntimeError):
    """Reading an input failed for a reason that may pass (a service still failing after the client's
    retries): the task fails, to be retried by Spark or by a rerun, rather than record the input as a drop."""


class TooManyFailedInputs(InputError):
    """More of a stage's inputs failed as a whole (unreadable, malformed, not of the stage's kind) than its
    setting allows; the message names them. The stage's output is not published."""


# OSErrors about the bytes read, not about reading them: another try reads the same bytes.
_CONTENT_OS_ERRORS = (gzip.BadGzipFile,)


def is_transient(error: BaseException) -> bool:
    """Whether a failure met while reading an input may pass on another try: then the task must fail (Spark
    tries it again; after its retries the job fails, and nothing is published) rather than drop the input.

    Transient: :class:`TransientInputError`, ``MemoryError``, and every ``OSError`` (I/O and object storage:
    a connection reset half-way through a read, a timeout, pyarrow's "AWS Error ..." on an S3 read, an input
    listed moments ago and gone since) except ``gzip.BadGzipFile``. Everything else is an error of the content,
    which another try would meet again: XML syntax (lxml's ``XMLSyntaxError``), corrupt or truncated compressed
    data (``gzip.BadGzipFile``; ``EOFError`` "Compressed file ended before the end-of-stream marker";
    ``zlib.error``; ``zstandard.ZstdError``), a corrupt tar (``tarfile.TarError``), undecodable text
    (``UnicodeError``) and other ``ValueError``s; and so is an unexpected error of a parser (a bug on odd
    content: recorded with its input rather than retried, and counted by the stage's failed-input share).

    One case lands on the wrong side: pyarrow reports a Parquet page it cannot decode as ``OSError``, the same
    class as a failed read, so a Parquet input with a corrupt page fails its task instead of being dropped.
    """
    if isinstance(error, (TransientInputError, MemoryError)):
        return True
    return isinstance(error, OSError) and not isinstance(error, _CONTENT_OS_ERRORS)
