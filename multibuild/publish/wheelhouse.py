"""What one upload sends: the wheels, build records and logs of wheelhouse directories or
files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from multibuild.engine.record import BuildRecord, read_record_file
from multibuild.errors import UploadError


@dataclass(frozen=True)
class Wheelhouse:
    wheels: tuple[Path, ...]
    records: tuple[tuple[Path, BuildRecord], ...] = ()
    logs: tuple[Path, ...] = ()


def collect(paths: Sequence[Path]) -> Wheelhouse:
    """Wheels, records and logs from wheelhouse directories and/or files."""
    wheels: dict[str, Path] = {}
    records: dict[str, tuple[Path, BuildRecord]] = {}
    logs: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            members = sorted(path.iterdir())
        elif path.is_file():
            members = [path]
        else:
            raise UploadError(f"no such wheelhouse or file: {path}")
        for member in members:
            if member.suffix == ".whl" and member.is_file():
                if member.name in wheels and wheels[member.name] != member:
                    raise UploadError(f"two wheels named {member.name}: {wheels[member.name]}")
                wheels[member.name] = member
            elif member.suffix == ".json" and member.is_file():
                record = read_record_file(member)
                if record is None:
                    if not path.is_dir():
                        raise UploadError(f"{member} is not a build record (schema 1)")
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
    return Wheelhouse(
        wheels=tuple(wheels[n] for n in sorted(wheels)),
        records=tuple(records[n] for n in sorted(records)),
        logs=tuple(logs[n] for n in sorted(logs)),
    )
