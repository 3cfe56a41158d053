"""Errors the engine reports as one clear message and an exit code (no traceback by default).

Each class of failure has its own exit code so CI scripts and tests can tell them apart.
"""

from __future__ import annotations

from multibuild import console


class FatalError(Exception):
    """A failure the user can act on; the message says what went wrong and what to do."""

    return_code = 1


class ConfigurationError(FatalError):
    """Bad flags, a bad settings file, a missing config.sh."""

    return_code = 2


class SourceError(FatalError):
    """The project's source could not be had: bad ref, unreachable repo, bad sdist."""

    return_code = 3


class SystemDependencyError(FatalError):
    """A command-line tool the build needs is not installed."""

    return_code = 4


class HookError(FatalError):
    """config.sh did not load, lacks a hook, or a hook other than run_tests failed."""

    return_code = 5


class LibraryError(FatalError):
    """A library source could not be fetched or verified, or its build failed."""

    return_code = 6


class BuildError(FatalError):
    """The wheel build failed or produced no wheel."""

    return_code = 7


class RepairError(FatalError):
    """The wheel could not be repaired into a self-contained one."""

    return_code = 8


class TestFailure(FatalError):
    """The repaired wheel failed its tests in the clean environment."""

    __test__ = False  # not a pytest test class
    return_code = 9

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output  # the end of run_tests' output: pass/fail counts are read there


class UploadError(FatalError):
    """Uploading to a container failed or was refused."""

    return_code = 10


class CredentialsError(UploadError):
    """A credential the upload needs is missing or was rejected."""

    return_code = 11


class ReleaseError(FatalError):
    """The release tools (wheel-uploader, release-status, ...) found the release unfit:
    wheels missing, a checksum mismatch, a refused upload."""

    return_code = 12


class ContainerError(FatalError):
    """The container route could not run: no container engine answers, the image is missing
    or could not be built, or the engine's runtime refuses to start a container."""

    return_code = 13


def error_class(return_code: int) -> type[FatalError] | None:
    """The error class whose exit code this is (a hook's helper exits with it), if any."""
    classes: list[type[FatalError]] = [FatalError]
    while classes:
        cls = classes.pop()
        if cls.return_code == return_code and cls is not FatalError:
            return cls
        classes.extend(cls.__subclasses__())
    return None


def report(prog: str, error: FatalError, message: str | None = None) -> int:
    """The one shape of a failure, for every entry point (the command line, and the helpers
    hooks run): `PROG: error: MESSAGE` on stderr; returns the exit code."""
    console.error(f"\n{prog}: error: {error if message is None else message}")
    return error.return_code
