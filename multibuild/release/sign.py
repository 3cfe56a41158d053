"""Detached armored GPG signatures (`NAME.asc`) of the wheels, and a `SHA256SUMS` file (signed
too), kept in the wheelhouse. The key is `identity` or gpg's default key; GNUPGHOME is
honoured (gpg reads it from the environment)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from multibuild.errors import ReleaseError
from multibuild.util.cmd import run
from multibuild.util.files import sha256_file

SUMS = "SHA256SUMS"


class SigningError(ReleaseError):
    """gpg is missing, has no usable key, or failed."""


def gpg_program(program: str = "gpg") -> str:
    """The gpg to run (MB_GPG names another: multibuild.options.EnvironmentOptions)."""
    found = shutil.which(program)
    if found is None:
        raise SigningError(f"{program} is not installed (Debian: apt-get install gnupg)")
    return found


def write_sums(files: Sequence[Path], directory: Path) -> Path:
    """`SHA256SUMS` in `sha256sum`'s format (two spaces, then the name), sorted by name."""
    lines = [f"{sha256_file(f)}  {f.name}\n" for f in sorted(files, key=lambda p: p.name)]
    path = directory / SUMS
    tmp = path.with_name(SUMS + ".part")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(path)
    return path


def sign_file(path: Path, identity: str | None = None, gpg: str = "gpg") -> Path:
    """`path.asc`: a detached armored signature (replaced if it exists)."""
    signature = path.with_name(path.name + ".asc")
    argv = [gpg_program(gpg), "--batch", "--yes", "--armor", "--detach-sign"]
    if identity:
        argv += ["--local-user", identity]
    argv += ["--output", str(signature), str(path)]
    done = run(argv)
    if not done.ok:
        detail = done.stderr.strip().splitlines()
        last = detail[-1] if detail else f"exit status {done.returncode}"
        who = f"key {identity!r}" if identity else "the default key"
        raise SigningError(f"gpg could not sign {path.name} with {who}: {last}")
    return signature


def verify(path: Path, signature: Path | None = None, gpg: str = "gpg") -> bool:
    signature = signature or path.with_name(path.name + ".asc")
    return run([gpg_program(gpg), "--batch", "--verify", str(signature), str(path)]).ok


def sign_release(
    wheels: Sequence[Path], directory: Path, identity: str | None = None, *, gpg: str = "gpg"
) -> list[Path]:
    """Sign every wheel and SHA256SUMS; the signatures, SHA256SUMS and its signature."""
    made = [sign_file(wheel, identity, gpg) for wheel in wheels]
    sums = write_sums(wheels, directory)
    return [*made, sums, sign_file(sums, identity, gpg)]
