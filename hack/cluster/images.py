"""Build the project's images (``Dockerfile.runtime``, ``Dockerfile.operator``) with podman and
load them into the real node's containerd.

No registry is reachable here, so the base image is made locally: ``debootstrap`` writes a
minimal Debian bookworm with python3.11 and venv, which is imported into podman as
``modelyard.local/base:<BASE_IMAGE_VERSION>`` and passed as the Dockerfiles' ``BASE_IMAGE``.
Podman keeps its storage under ``~/.cache/modelyard/containers`` (so the base image and the
build's layers survive between runs) and runs builds with runc (crun fails on this cgroup
layout), host networking, explicit ulimits, and the host's pip.conf and CA bundle mounted.

    python -m hack.cluster.images build runtime     # prints the tag
    python -m hack.cluster.images build operator
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hack.cluster.base import ROOT
from hack.cluster.node import RealNode, cache_dir

VERSIONS = ROOT / "hack" / "cluster" / "versions.env"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
PIP_FILES = ("/etc/pip.conf", "/etc/ssl/certs/ca-certificates.crt")
TAGS = {"runtime": "modelyard.local/modelyard-runtime:dev",
        "operator": "modelyard.local/modelyard-operator:dev"}  # fmt: skip


class ImageError(RuntimeError):
    """A build step failed; the message carries its output."""


def base_version() -> str:
    for line in VERSIONS.read_text().splitlines():
        if line.startswith("BASE_IMAGE_VERSION="):
            return line.split("=", 1)[1].split("#")[0].strip()
    raise ImageError(f"BASE_IMAGE_VERSION is not set in {VERSIONS}")


def base_tag() -> str:
    return f"modelyard.local/base:{base_version()}"


def missing_prerequisites() -> list[str]:
    missing = [t for t in ("podman", "runc", "debootstrap") if shutil.which(t) is None]
    if os.geteuid() != 0:
        missing.append("root (debootstrap and rootful podman)")
    return missing


def podman(*args: str, timeout: float = 1800) -> str:
    store = cache_dir().parent / "containers"
    # podman's defaults exceed this machine's hard limits, and runc cannot raise them; an nproc
    # at the hard limit is refused too, so stay well under it.
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1] // 2, 32768)
    if args and args[0] in ("build", "run"):  # the limits are options of the subcommand
        limits = (f"--ulimit=nofile={nofile}:{nofile}", f"--ulimit=nproc={nproc}:{nproc}")
        args = (args[0], *limits, *args[1:])
    command = [
        "podman", f"--root={store / 'storage'}", f"--runroot={store / 'run'}",
        "--runtime=runc", "--storage-driver=overlay", "--cgroup-manager=cgroupfs",
        "--events-backend=file", *args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise ImageError(
            f"podman {' '.join(args)} failed:\n{(result.stdout + result.stderr)[-4000:]}"
        )
    return result.stdout


def image_id(tag: str) -> str | None:
    try:
        return podman("image", "inspect", "--format", "{{.Id}}", tag).strip()
    except ImageError:
        return None


def ensure_base() -> str:
    """The local base image, made with debootstrap once per BASE_IMAGE_VERSION."""
    tag = base_tag()
    if image_id(tag):
        return tag
    archive = cache_dir().parent / "images" / f"base-{base_version()}.tar"
    if not archive.exists():
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=archive.parent) as work:
            rootfs = Path(work) / "rootfs"
            run = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
                 str(rootfs), MIRROR], capture_output=True, text=True,
            )  # fmt: skip
            if run.returncode != 0:
                raise ImageError(f"debootstrap failed:\n{(run.stdout + run.stderr)[-4000:]}")
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                         "usr/share/man", "usr/share/locale"):  # fmt: skip
                shutil.rmtree(rootfs / junk, ignore_errors=True)
                (rootfs / junk).mkdir(parents=True, exist_ok=True)
            partial = archive.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
            partial.rename(archive)
    podman("import", "--change", "CMD=/usr/bin/python3", str(archive), tag)
    return tag


def build(kind: str) -> str:
    """Build ``Dockerfile.<kind>`` on the local base; returns the tag."""
    tag = TAGS[kind]
    volumes = [f"--volume={path}:{path}:ro" for path in PIP_FILES if Path(path).exists()]
    args = [f"--build-arg=BASE_IMAGE={ensure_base()}"]
    if kind == "runtime":
        args.append("--build-arg=EXTRAS=runtime")  # CPU only here: no CUDA wheels for tests
    podman(
        "build", "--network=host", "--layers", *volumes, *args,
        f"--file={ROOT / f'Dockerfile.{kind}'}", f"--tag={tag}", str(ROOT),
    )  # fmt: skip
    return tag


def save(tag: str, path: Path) -> Path:
    """Write ``tag`` as an OCI archive, for ``ctr images import``."""
    path.unlink(missing_ok=True)
    podman("save", "--format=oci-archive", f"--output={path}", tag)
    return path


def load(kind: str, node: RealNode, workdir: Path) -> str:
    """Build ``kind`` and import it into the real node unless it already holds that build
    (containerd lists an imported image under its config digest, podman's image id)."""
    tag = build(kind)
    if not node.has_image(f"sha256:{image_id(tag)}"):
        archive = save(tag, workdir / f"{kind}.tar")
        node.import_image(archive, tag)
        archive.unlink()
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the project's images with podman.")
    parser.add_argument("action", choices=("build",))
    parser.add_argument("kind", choices=sorted(TAGS))
    args = parser.parse_args(argv)
    missing = missing_prerequisites()
    if missing:
        print(
            f"images: missing {', '.join(missing)} (run hack/cluster/node-deps.sh)", file=sys.stderr
        )
        return 1
    started = time.monotonic()
    try:
        tag = build(args.kind)
    except ImageError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{tag} built in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
