"""The exceptions invhide raises for problems with its user's input.

Every error a user can cause and fix (a bad argument, a bad config, a file
that is missing or is not what it should be, a training run that diverged) is
an :class:`InvhideError`. Each one also subclasses the built-in exception that
Python code already catches for that kind of problem, so
``except ValueError`` and ``except FileNotFoundError`` keep working:

================================ =========================================
 invhide                          also a
================================ =========================================
 :class:`InputError`              ``ValueError``: a bad argument value
 :class:`InputTypeError`          ``TypeError``: an argument of the wrong type
 :class:`ConfigError`             ``ValueError``: a bad model or training config
 :class:`FileFormatError`         ``ValueError``: a file that is not what it
                                  should be (:class:`~invhide.io.images.ImageError`
                                  and its :class:`~invhide.io.images.ImageTooLargeError`,
                                  :class:`~invhide.io.checkpoint.CheckpointError`)
 :class:`MissingPathError`        ``FileNotFoundError``
 :class:`PathExistsError`         ``FileExistsError``
 :class:`IsAFolderError`          ``IsADirectoryError``
 :class:`NotAFolderError`         ``NotADirectoryError``
 :class:`AccessError`             ``PermissionError``
 :class:`PathError`               ``OSError``: any other file-system problem
 :class:`DivergenceError`         ``RuntimeError``: the training loss kept exploding
 :class:`ModelError`              ``ValueError``: a model whose weights turn finite
                                  inputs into NaN or infinite outputs (corrupt,
                                  diverged or overflowing)
================================ =========================================

Anything else that escapes invhide (a plain ``ValueError`` from deep inside
a subnet, a ``RuntimeError`` from torch) is a bug, in invhide or in the code
that called it, and the ``invhide`` command shows its traceback. Messages
are one line that names the input they are about.

Example:
    >>> try:
    ...     invhide.InvertibleHider(num_blocks=0)
    ... except ValueError as error:  # an InputError is a ValueError
    ...     print(type(error).__name__, "-", error)
    InputError - num_blocks must be a positive integer, got 0
"""

from __future__ import annotations

__all__ = [
    "AccessError",
    "ConfigError",
    "DivergenceError",
    "FileFormatError",
    "InputError",
    "InputTypeError",
    "InvhideError",
    "IsAFolderError",
    "MissingPathError",
    "ModelError",
    "NotAFolderError",
    "PathError",
    "PathExistsError",
    "describe",
    "path_error",
]


class InvhideError(Exception):
    """Base class of every error caused by the user's input; ``str(error)`` is one line naming that input.

    An error about one named input carries its parts as attributes, so that a
    caller who names the input differently (the command line's ``--size`` for
    the library's ``size``) rewords it with :meth:`renamed` instead of parsing
    the message.

    Args:
        message: the whole message; built from the parts when not given.
        argument: the name of the input at fault, as the raiser knows it.
        problem: what is wrong with it, without its name
            (``"must be a positive integer, got 0"``).
        advice: what to do about it, in the raiser's words, or ``None``.

    Example:
        >>> error = InputError(argument="size", problem="must be even, got 5", advice="pass size=None")
        >>> str(error), str(error.renamed("--size", advice="drop --size"))
        ('size must be even, got 5; pass size=None', '--size must be even, got 5; drop --size')
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        argument: str | None = None,
        problem: str | None = None,
        advice: str | None = None,
    ) -> None:
        if message is None:
            message = f"{argument} {problem}" + (f"; {advice}" if advice else "")
        super().__init__(message)
        self.argument = argument
        self.problem = problem
        self.advice = advice

    def renamed(self, argument: str, *, advice: str | None = None) -> InvhideError:
        """The same error naming its input ``argument``, with ``advice`` (default: none); itself without parts."""
        if self.argument is None or self.problem is None:
            return self
        error = type(self)(argument=argument, problem=self.problem, advice=advice)
        error.__cause__ = self.__cause__
        return error


class InputError(InvhideError, ValueError):
    """An argument with a value invhide cannot use."""


class InputTypeError(InvhideError, TypeError):
    """An argument of the wrong type."""


class ConfigError(InputError):
    """A model, loss or training config that is malformed or out of bounds."""


class FileFormatError(InputError):
    """A file that exists but is not what it should be (corrupt, truncated, another format)."""


class PathError(InvhideError, OSError):
    """A file-system problem with a path the user gave."""


class MissingPathError(PathError, FileNotFoundError):
    """A file or folder that does not exist."""


class PathExistsError(PathError, FileExistsError):
    """A path that exists where invhide must not overwrite it."""


class IsAFolderError(PathError, IsADirectoryError):
    """A folder where a file was expected."""


class NotAFolderError(PathError, NotADirectoryError):
    """A file where a folder was expected."""


class AccessError(PathError, PermissionError):
    """A path the process may not read or write."""


class DivergenceError(InvhideError, RuntimeError):
    """The training loss kept exploding after every rollback the guard allowed."""


class ModelError(InvhideError, ValueError):
    """A model that cannot do its job: finite inputs gave NaN or infinite outputs (corrupt or diverged weights).

    The model is the input at fault (a ``ValueError`` like any bad argument),
    not the images it was given nor the file the result was to go to.
    """


_PATH_ERRORS: dict[type[OSError], type[PathError]] = {
    FileNotFoundError: MissingPathError,
    FileExistsError: PathExistsError,
    IsADirectoryError: IsAFolderError,
    NotADirectoryError: NotAFolderError,
    PermissionError: AccessError,
}


def path_error(error: OSError, message: str) -> PathError:
    """The :class:`PathError` subclass matching an ``OSError`` from the operating system, with ``message``.

    Example:
        >>> error = path_error(FileNotFoundError(2, "No such file"), "in.png: no such file")
        >>> type(error).__name__, isinstance(error, FileNotFoundError), error.errno
        ('MissingPathError', True, 2)
    """
    for builtin, ours in _PATH_ERRORS.items():
        if isinstance(error, builtin):
            cls: type[PathError] = ours
            break
    else:
        cls = PathError
    result = cls(message)
    result.errno = error.errno
    return result


def describe(error: BaseException) -> str:
    """``error`` as one line: its message with whitespace folded, or its class name when it has none.

    Example:
        >>> describe(OSError("disk\\nfull")), describe(KeyError())
        ('disk full', 'KeyError')
    """
    text = " ".join(str(error).split())
    return text or type(error).__name__
