"""The local build image: a manylinux-style image made only from Debian packages and source
packages (a Debian root of the oldest suite the mirror serves, bullseye: glibc 2.31, GCC 10;
CPython built from Debian's pristine .orig tarballs into /opt/python/cpXY-cpXY; auditwheel),
for the container route where the official manylinux images cannot be pulled.

  image build [--glibc 2.31] [--python 3.11 ...] [--arch aarch64]
                                                  build it, or find it by its content key
  image list                                      the local images this engine holds
  image show [REFERENCE]                          what an image holds (its record)

The image is cached by a content key (the suite's package versions, the CPython sources'
sha256, the recipe): an unchanged image is found in seconds, a changed stage is rebuilt
alone, and a build killed half-way leaves no image under the final name. `--arch aarch64` on
an x86_64 machine makes the same image from Debian's arm64 packages, run under QEMU user
emulation (binfmt_misc; refused with what to set up when it is missing), its CPythons
cross-compiled here.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from pathlib import Path

from multibuild import console
from multibuild.ci import providers
from multibuild.engine.record import stamp
from multibuild.errors import ConfigurationError, ContainerError
from multibuild.images.build import ImageBuilder, image_record, local_images
from multibuild.images.oci import ENGINES, Engine, find_engine
from multibuild.images.recipe import ARCHS, DEFAULT_GLIBC, SUITES, image_pythons, image_spec
from multibuild.images.record import ImageRecord, read_record
from multibuild.log import Logger
from multibuild.options import EnvironmentOptions
from multibuild.settings import settings_from
from multibuild.util.pythons import PythonVersion
from multibuild.util.secrets import Redactor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="build the local image, or find it by its key",
        description="Build the local image (a manylinux-style image made from Debian "
        "packages), or find it by its key: the same packages give the same image.",
    )
    build.add_argument(
        "--glibc",
        default=DEFAULT_GLIBC,
        choices=sorted(SUITES),
        help=f"the glibc of the Debian root (default {DEFAULT_GLIBC}: bullseye)",
    )
    build.add_argument(
        "--python",
        action="append",
        metavar="X.Y",
        help="a CPython of the image (repeatable; default: the matrix's that Debian's "
        "sources give, else 3.11); X.Yt for a free-threaded one",
    )
    build.add_argument(
        "--arch",
        choices=sorted(ARCHS),
        help="the image's architecture, as cibuildwheel's --archs names it (default: this "
        "machine's; another one runs under QEMU emulation)",
    )
    build.add_argument("--json", action="store_true", help="print the image record as JSON")
    build.add_argument("-v", "--verbose", action="store_true", help="show every output line")
    for sub in (
        build,
        actions.add_parser(
            "list",
            help="the local images this engine holds",
            description="The local images the container engine holds, newest first.",
        ),
    ):
        _common(sub)
    show = actions.add_parser(
        "show",
        help="what a local image holds",
        description="What a local image holds: its Debian root, glibc and CPythons.",
    )
    show.add_argument("reference", nargs="?", help="an image (default: the newest local one)")
    _common(show)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--container-engine", choices=ENGINES, help="default: the one answering")
    parser.add_argument("--settings", help="settings.toml (default: found); its matrix's Pythons")
    parser.add_argument(
        "--cache-dir",
        help="the build cache; the image's stages go to CACHE_DIR/images "
        "(default: MB_CACHE_DIR, else .multibuild/cache beside settings.toml or here)",
    )


def images_cache(args: argparse.Namespace, env_options: EnvironmentOptions, root: Path) -> Path:
    """Where the image's file stages, records and logs live: the build cache's images/."""
    cache = Path(args.cache_dir) if args.cache_dir else env_options.cache_dir
    return ((cache or root / ".multibuild" / "cache") / "images").resolve()


def run(args: argparse.Namespace, redactor: Redactor) -> int:
    environ = os.environ
    env_options = EnvironmentOptions.from_environ(environ)
    settings = settings_from(args.settings)
    root = settings.root if settings else Path.cwd()
    cache = images_cache(args, env_options, root)
    engine = find_engine(args.container_engine, environ, cache)
    if args.action == "list":
        return _list(engine, cache, environ)
    if args.action == "show":
        return _show(engine, cache, environ, args.reference)
    requested = [PythonVersion.parse(v) for v in args.python or ()]
    if requested:
        pythons, notes = image_pythons(requested, ())
    elif settings and settings.matrix.python:
        pythons, notes = image_pythons((), settings.matrix.python)
    else:
        pythons, notes = (PythonVersion(11),), ()
    logger = Logger(verbose=args.verbose, ci=providers.fold_style(providers.detect(environ)))
    for note in notes:
        logger.warning(note)
    spec = image_spec(pythons, glibc=args.glibc, arch=args.arch)
    logger.open_file(cache / "logs" / f"{stamp()}-image.log")
    try:
        record = ImageBuilder(
            spec, engine, cache_dir=cache, logger=logger, environ=environ
        ).ensure()
    finally:
        logger.close()
    console.result(json.dumps(record.to_json(), indent=1) if args.json else record.reference)
    return 0


def _records(engine: Engine, cache: Path, environ: Mapping[str, str]) -> list[ImageRecord]:
    found = []
    for reference in local_images(engine, environ):
        record = read_record(cache / "records" / f"{reference.rpartition(':')[2]}.json")
        if record is None:
            record = image_record(engine, reference, environ)
        if record is not None:
            record.reference = reference
            found.append(record)
    return found


def _list(engine: Engine, cache: Path, environ: Mapping[str, str]) -> int:
    records = _records(engine, cache, environ)
    if not records:
        console.info(
            f"no local image in {engine.name}'s storage (`python -m multibuild image build`)"
        )
        return 0
    for record in sorted(records, key=lambda r: r.created, reverse=True):
        pythons = ",".join(sorted(record.pythons))
        console.result(
            f"{record.reference}  glibc {record.glibc}  {pythons}  "
            f"{record.created or '(created: see the image)'}"
        )
    return 0


def _show(engine: Engine, cache: Path, environ: Mapping[str, str], reference: str | None) -> int:
    if reference is None:
        records = sorted(_records(engine, cache, environ), key=lambda r: r.created)
        if not records:
            raise ContainerError(
                f"no local image in {engine.name}'s storage: `python -m multibuild image build`"
            )
        record: ImageRecord | None = records[-1]
    else:
        record = read_record(cache / "records" / f"{reference.rpartition(':')[2]}.json")
        if record is None or record.reference != reference:
            record = image_record(engine, reference, environ)
    if record is None:
        raise ConfigurationError(f"no image {reference} in {engine.name}'s storage")
    console.result(record.summary())
    return 0
