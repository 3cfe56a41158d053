"""The container cibuildwheel builds Linux wheels in: which image and engine (decided once per
run), and getting them ready (the engine answers, the image is there and starts).

On a CI provider the image is the official manylinux one settings.toml names, pulled by
cibuildwheel with its own default engine, as the generated cibuildwheel.toml says. Anywhere
else (this machine, an air-gapped builder: no registry to pull from) it is the local image,
made from Debian packages by `python -m multibuild image build` and found by its content key,
or any image a user names. Our settings reach cibuildwheel through its own options only,
never by changing it: CIBW_CONTAINER_ENGINE (the engine, create_args mounting the host's CA
bundle and mirrors read-only, no host mount), CIBW_MANYLINUX_<ARCH>_IMAGE, and
CIBW_ENVIRONMENT_PASS_LINUX (variables the hooks need inside); podman also gets our
containers.conf through CONTAINERS_CONF (multibuild.images.oci). Another architecture's jobs
(aarch64 on x86_64) run in that architecture's image under QEMU emulation, as cibuildwheel
documents; the run refuses at once when this machine cannot emulate it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from multibuild.errors import ConfigurationError
from multibuild.images.build import ImageBuilder, image_record
from multibuild.images.emulation import require_emulation
from multibuild.images.oci import (
    ENGINES,
    Engine,
    answering_engine,
    find_engine,
    inspect,
    is_local_reference,
    preflight,
    require_image,
)
from multibuild.images.recipe import DEFAULT_GLIBC, SUITES, image_spec
from multibuild.images.record import ImageRecord
from multibuild.log import Logger
from multibuild.util.pythons import PythonVersion

IMAGE_KINDS = ("official", "local")
# The host's CA bundle when SSL_CERT_FILE names none: mounted read-only at the same path, so
# PIP_CERT and SSL_CERT_FILE mean the same file on both sides.
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Where --mirror directories appear inside the container (read-only).
CONTAINER_MIRRORS = PurePosixPath("/tmp/multibuild/mirrors")
# Variables the hooks read that cibuildwheel.toml's `environment` cannot know (the run's).
ALWAYS_PASSED = ("MB_TEST_LEVEL",)


@dataclass(frozen=True)
class ContainerChoice:
    """Which image (`official`, `local` or a reference) and engine (None: the one that
    answers; for the official image on CI, cibuildwheel's default) the run uses."""

    image: str
    engine: str | None
    official: str  # settings' manylinux image: what cibuildwheel.toml names
    on_ci: bool

    @property
    def origin(self) -> str:
        return self.image if self.image in IMAGE_KINDS else "given"

    def describe(self) -> str:
        engine = self.engine or (
            "docker, cibuildwheel's default" if self.on_ci else "docker or podman"
        )
        if self.origin == "official":
            return f"the official {self.official} image, pulled by cibuildwheel ({engine})"
        if self.origin == "local":
            suite = SUITES[DEFAULT_GLIBC]
            return (
                f"the local image made from Debian {suite.name} packages (glibc {suite.glibc}, "
                f"GCC {suite.gcc}), built or found by its content key before the build ({engine})"
            )
        return f"the image {self.image} ({engine})"

    def as_record(self) -> dict[str, Any]:
        return {"image": self.image, "engine": self.engine, "origin": self.origin}


def choose_container(
    image: str | None, engine: str | None, *, on_ci: bool, official: str
) -> ContainerChoice:
    """The run's one container decision: the official image on CI providers, the local one
    anywhere else, unless --image names one (`official`, `local` or a reference)."""
    if engine is not None and engine not in ENGINES:
        raise ConfigurationError(f"--container-engine is one of {', '.join(ENGINES)}")
    chosen = image or ("official" if on_ci else "local")
    if not chosen.strip() or any(c.isspace() for c in chosen):
        raise ConfigurationError(f"--image {image!r}: official, local or an image reference")
    return ContainerChoice(image=chosen, engine=engine, official=official, on_ci=on_ci)


def container_tools(choice: ContainerChoice, environ: Mapping[str, str]) -> tuple[str, ...]:
    """The system tools the container route needs here, for --install-system-deps: podman
    (with runc and catatonit) unless docker is asked for or answers, and mmdebstrap for the
    local image."""
    if choice.on_ci and choice.engine is None and choice.origin == "official":
        return ()
    docker = choice.engine == "docker" or (
        choice.engine is None and answering_engine(environ, "docker") is not None
    )
    tools = () if docker else ("podman", "runc", "catatonit")
    return (*tools, "mmdebstrap") if choice.origin == "local" else tools


def host_ca_bundle(environ: Mapping[str, str]) -> Path | None:
    given = environ.get("SSL_CERT_FILE")
    for candidate in (Path(given) if given else None, SYSTEM_CA_BUNDLE):
        if candidate is not None and candidate.is_file():
            return candidate.resolve()
    return None


@dataclass(frozen=True)
class PreparedContainer:
    """The container, ready: what cibuildwheel gets and what the record says."""

    choice: ContainerChoice
    engine: Engine | None  # None: cibuildwheel's own default engine (the official image on CI)
    reference: str
    image: ImageRecord | None = None  # the local image's record
    create_args: tuple[str, ...] = ()
    host_environ: Mapping[str, str] = field(default_factory=dict)
    passed: tuple[str, ...] = ALWAYS_PASSED

    def cibuildwheel_environ(self, arch: str, *, musl: bool = False) -> dict[str, str]:
        """cibuildwheel's own options for this container, as environment variables (they win
        over cibuildwheel.toml), plus the host variables those options refer to; `musl`: the
        image of a musllinux build."""
        env = dict(self.host_environ)
        env["CIBW_ENVIRONMENT_PASS_LINUX"] = " ".join(self.passed)
        if self.engine is None and not self.create_args:
            return env
        # cibuildwheel's default engine is docker: its create_args (the build cache's mount)
        # need it named.
        options = [self.engine.name if self.engine else "docker"]
        if self.create_args:
            options.append("create_args: " + " ".join(shlex.quote(a) for a in self.create_args))
        options.append("disable_host_mount: true")
        env["CIBW_CONTAINER_ENGINE"] = "; ".join(options)
        if self.engine is None:
            return env
        family = "MUSLLINUX" if musl else "MANYLINUX"
        env[f"CIBW_{family}_{arch.upper()}_IMAGE"] = self.reference
        return env

    def describe(self) -> str:
        engine = self.engine.name if self.engine else "cibuildwheel's default engine"
        lines = [f"container  {self.reference} ({self.choice.origin}, {engine})"]
        if self.image is not None:
            pythons = ", ".join(
                f"{tag} {info.get('version', '')}"
                for tag, info in sorted(self.image.pythons.items())
            )
            lines.append(
                f"           Debian {self.image.suite}, glibc {self.image.glibc}, gcc "
                f"{self.image.tools.get('gcc', '?')}, {pythons}"
            )
        return "\n".join(lines)

    def as_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            **self.choice.as_record(),
            "engine": self.engine.name if self.engine else None,
            "reference": self.reference,
        }
        if self.image is not None:
            record.update(
                content_key=self.image.content_key,
                image_id=self.image.image_id,
                suite=self.image.suite,
                glibc=self.image.glibc,
                platform_tag=self.image.platform_tag,
                pythons={tag: info.get("version") for tag, info in self.image.pythons.items()},
            )
        return record

    def tools(self) -> dict[str, str]:
        """The tools that built inside the container, for the build record."""
        if self.image is None:
            return {"image": self.reference}
        return {
            "image": self.reference,
            **{k: v for k, v in self.image.tools.items() if v},
            **{tag: str(info.get("version")) for tag, info in self.image.pythons.items()},
        }


def prepare_container(
    choice: ContainerChoice,
    *,
    pythons: Sequence[PythonVersion],
    mirrors: Sequence[Path],
    passed: Sequence[str],
    cache_dir: Path,
    logger: Logger,
    environ: Mapping[str, str],
    arch: str | None = None,
) -> PreparedContainer:
    """The engine that answers, the image of `arch` (default: this machine's) present (the
    local one built or found by its content key) and starting; ContainerError (exit code 13)
    otherwise, also when `arch` cannot be emulated here."""
    names = tuple(dict.fromkeys([*ALWAYS_PASSED, *passed]))
    if choice.origin == "official" and choice.on_ci and choice.engine is None:
        # CI as it always ran: the generated cibuildwheel.toml's image and engine.
        return PreparedContainer(
            choice=choice, engine=None, reference=choice.official, passed=names
        )
    engine = find_engine(choice.engine, environ, cache_dir)
    if arch is not None:
        require_emulation(arch)
    record = None
    if choice.origin == "local":
        spec = image_spec(pythons, arch=arch)
        record = ImageBuilder(
            spec, engine, cache_dir=cache_dir, logger=logger, environ=environ
        ).ensure()
        reference = record.reference
    elif choice.origin == "official":
        reference = choice.official
    else:
        reference = choice.image
        if is_local_reference(reference):
            require_image(engine, reference, environ)
            record = image_record(engine, reference, environ)  # a local image says what it is
    if inspect(engine, reference, environ) is not None:
        preflight(engine, reference, environ)
    else:
        logger.info(f"{reference} is not in {engine.name}'s storage: cibuildwheel pulls it")
    create_args: list[str] = []
    host: dict[str, str] = dict(engine.environ)
    bundle = host_ca_bundle(environ)
    if bundle is not None and not choice.on_ci:
        # Here the package index is reached through a CA only the host's bundle holds.
        create_args.append(f"--volume={bundle}:{bundle}:ro")
        host.update(PIP_CERT=str(bundle), SSL_CERT_FILE=str(bundle))
        names += ("PIP_CERT", "SSL_CERT_FILE")
    if mirrors:
        inside = [CONTAINER_MIRRORS / str(i) for i in range(len(mirrors))]
        create_args += [f"--volume={m}:{c}:ro" for m, c in zip(mirrors, inside, strict=True)]
        host["MB_MIRROR_DIRS"] = ":".join(str(c) for c in inside)
        names += ("MB_MIRROR_DIRS",)
    return PreparedContainer(
        choice=choice,
        engine=engine,
        reference=reference,
        image=record,
        create_args=tuple(create_args),
        host_environ=host,
        passed=tuple(dict.fromkeys(names)),
    )
