"""What one upload sends: the wheels, build records and logs of wheelhouse directories or
files. Everything is checked before anything is sent: a wheel is a valid wheel file name of
a readable zip archive holding its WHEEL and RECORD files; a record's build id is a plain
name (no `/`, no `..`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from multibuild.engine.record import BuildRecord
from multibuild.errors import ConfigurationError, UploadError
from multibuild.util import jsontext
from multibuild.util.wheelcheck import WheelProblem, check_wheel

_BUILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")
# A wheel file name's characters (PEP 427: each part escaped to these).
_WHEEL_NAME = re.compile(r"[A-Za-z0-9._+!]+(-[A-Za-z0-9._+!]+){4,5}\.whl")


def wheel_problem(path: Path) -> str | None:
    """Why `path` is not a wheel to publish (multibuild.util.wheelcheck: what pip checks);
    None when it is one."""
    if not _WHEEL_NAME.fullmatch(path.name):
        return "not a valid wheel file name (NAME-VERSION[-BUILD]-PY-ABI-PLATFORM.whl)"
    try:
        check_wheel(path)
    except WheelProblem as problem:
        return str(problem)
    return None


def build_id_problem(build_id: str) -> str | None:
    if not _BUILD_ID.fullmatch(build_id) or ".." in build_id:
        return "a build id is letters, digits and . _ + - (no '/', no '..')"
    return None


@dataclass(frozen=True)
class Wheelhouse:
    wheels: tuple[Path, ...]
    records: tuple[tuple[Path, BuildRecord], ...] = ()
    logs: tuple[Path, ...] = ()


def _members(path: Path) -> list[Path]:
    """A wheelhouse directory's files, or a file given by name."""
    if path.is_dir():
        return sorted(path.iterdir())
    if path.is_file():
        return [path]
    # A wrong argument (exit code 2), not a failed upload: nothing was sent.
    raise ConfigurationError(f"no such wheelhouse or file: {path}")


def _read_record(member: Path, *, named: bool) -> BuildRecord | None:
    """The build record in a .json file; None for other JSON in a wheelhouse directory (a
    file `named` on the command line must be a record)."""
    try:
        data = jsontext.loads(member.read_bytes())
    except ValueError as error:
        # NaN, Infinity, deep nesting: said, never a record silently left out.
        raise UploadError(
            f"{member} is not valid JSON ({error}): fix or remove it; nothing was uploaded"
        ) from None
    record = BuildRecord.from_json(data)
    if record is None and named:
        raise UploadError(f"{member} is not a build record (schema 1)")
    return record


def collect(paths: Sequence[Path]) -> Wheelhouse:
    """Wheels, records and logs from wheelhouse directories and/or files."""
    wheels: dict[str, Path] = {}
    records: dict[str, tuple[Path, BuildRecord]] = {}
    logs: dict[str, Path] = {}
    for path in paths:
        for member in _members(path):
            if member.suffix == ".whl" and member.is_file():
                if member.name in wheels and wheels[member.name] != member:
                    raise UploadError(f"two wheels named {member.name}: {wheels[member.name]}")
                wheels[member.name] = member
            elif member.suffix == ".json" and member.is_file():
                record = _read_record(member, named=not path.is_dir())
                if record is None:
                    continue
                records[record.build_id] = (member, record)
                log = member.parent / record.log_name
                if log.is_file():
                    logs[log.name] = log
            elif member.suffix == ".log" and member.is_file() and not path.is_dir():
                logs[member.name] = member
    if not wheels and not records:
        raise UploadError(
            f"nothing to upload: no wheels or build records in {', '.join(map(str, paths))}"
        )
    problems = [f"{p.name}: {why}" for p in wheels.values() if (why := wheel_problem(p))]
    problems += [
        f"{path.name}: build id {build_id!r}: {why}"
        for build_id, (path, _) in records.items()
        if (why := build_id_problem(build_id))
    ]
    if problems:
        raise UploadError(f"REFUSED: {'; '.join(problems)}; nothing was uploaded")
    return Wheelhouse(
        wheels=tuple(wheels[n] for n in sorted(wheels)),
        records=tuple(records[n] for n in sorted(records)),
        logs=tuple(logs[n] for n in sorted(logs)),
    )
