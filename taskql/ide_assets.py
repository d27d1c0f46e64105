"""GraphiQL's scripts and styles, vendored at install time: `python -m taskql.ide_assets install`.

The committed manifest (ide_assets.json) names npm packages, exact versions and their tarballs'
sha512. `npm pack` (the ordinary client; this module names no URL) fetches each tarball into a
temporary folder; one whose hash differs from the manifest's is deleted and the install refused.
Only the files the page needs are taken out, each checked against its own SRI hash, into
VENDOR_DIR (git-ignored), and a stamp records the manifest they came from.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

MANIFEST_PATH = Path(__file__).with_name("ide_assets.json")
VENDOR_DIR = Path(__file__).resolve().parent.parent / "vendor" / "graphiql"
STAMP_NAME = ".installed"
HASHES = ("sha256", "sha384", "sha512")
NPM_TIMEOUT_SECONDS = 300
CDN_FALLBACK = (
    "the GraphiQL page will load its scripts from a CDN, so the browser needs internet access; "
    "`make ide` with npm at hand gives an offline playground"
)


class IntegrityError(Exception):
    """A tarball or a file in it is not what the manifest says: nothing of it is used."""


@dataclass(frozen=True)
class Asset:
    """One file the page loads: `path` inside its package, served as `serve_as`."""

    package: str
    version: str
    path: str
    serve_as: str
    integrity: str

    @property
    def is_script(self) -> bool:
        return self.serve_as.endswith(".js")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str
    files: tuple[Asset, ...]

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Manifest:
    packages: tuple[Package, ...]
    digest: str  # the manifest's own sha256: a stamp holding it is current

    @cached_property
    def assets(self) -> dict[str, Asset]:
        """Every file by the name it is served as, in the order the page loads them."""
        return {asset.serve_as: asset for package in self.packages for asset in package.files}


@cache
def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    """Read the manifest (once per path)."""
    raw = path.read_bytes()
    packages = []
    for entry in json.loads(raw)["packages"]:
        name, version = entry["name"], entry["version"]
        files = tuple(
            Asset(name, version, f["path"], f["serve_as"], f["integrity"]) for f in entry["files"]
        )
        packages.append(Package(name, version, entry["integrity"], files))
    return Manifest(tuple(packages), hashlib.sha256(raw).hexdigest())


def sri(data: bytes, algorithm: str = "sha384") -> str:
    """The Subresource Integrity string of `data`, as npm's `dist.integrity` also writes it."""
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def matches(data: bytes, integrity: str) -> bool:
    """Whether `data` hashes to `integrity` (`sha256-`, `sha384-` or `sha512-` and base64)."""
    algorithm = integrity.partition("-")[0]
    if algorithm not in HASHES:
        raise IntegrityError(f"unsupported integrity {integrity!r}: use one of {HASHES}")
    return hmac.compare_digest(sri(data, algorithm), integrity)


def verify_tarball(tarball: Path, package: Package) -> None:
    """Refuse (and delete) a tarball whose hash is not the manifest's."""
    if not matches(tarball.read_bytes(), package.integrity):
        tarball.unlink(missing_ok=True)
        raise IntegrityError(
            f"{package.spec}: the tarball's hash is not the manifest's {package.integrity[:20]}…; "
            "deleted it, nothing was installed"
        )


def extract(tarball: Path, package: Package, dest: Path) -> None:
    """Write the package's named files (and nothing else) into `dest`, each checked."""
    with tarfile.open(tarball, "r:gz") as tar:
        for asset in package.files:
            try:
                member = tar.getmember(f"package/{asset.path}")
            except KeyError:
                raise IntegrityError(f"{package.spec} has no {asset.path}") from None
            stream = tar.extractfile(member) if member.isfile() else None
            if stream is None:
                raise IntegrityError(f"{package.spec}: {asset.path} is not a regular file")
            data = stream.read()
            if not matches(data, asset.integrity):
                raise IntegrityError(f"{package.spec}: {asset.path} is not the manifest's file")
            (dest / asset.serve_as).write_bytes(data)


def npm_pack(package: Package, workdir: Path, npm: str) -> Path:
    """Fetch the package's tarball into `workdir` with `npm pack`; its path."""
    env = dict(os.environ, npm_config_fund="false", npm_config_update_notifier="false")
    done = subprocess.run(  # noqa: S603 - a fixed command line; the spec comes from the manifest
        [npm, "pack", package.spec, "--json", "--ignore-scripts"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=NPM_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    name = Path(json.loads(done.stdout)[0]["filename"]).name
    return workdir / name


def is_installed(manifest: Manifest, dest: Path = VENDOR_DIR) -> bool:
    """Whether `dest` holds every file of this very manifest."""
    stamp = dest / STAMP_NAME
    return (
        stamp.is_file()
        and stamp.read_text().strip() == manifest.digest
        and all((dest / name).is_file() for name in manifest.assets)
    )


def install(manifest: Manifest, dest: Path = VENDOR_DIR, *, npm: str = "npm") -> None:
    """Fetch, check and extract every package; `dest` changes only when all of them passed."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work, tempfile.TemporaryDirectory(dir=dest) as staged:
        for package in manifest.packages:
            tarball = npm_pack(package, Path(work), npm)
            verify_tarball(tarball, package)
            extract(tarball, package, Path(staged))
        (dest / STAMP_NAME).unlink(missing_ok=True)
        for name in manifest.assets:
            os.replace(Path(staged) / name, dest / name)
    (dest / STAMP_NAME).write_text(manifest.digest + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """`install [--dest DIR] [--force]`: vendor the assets; `status`: say whether they are."""
    parser = argparse.ArgumentParser(prog="python -m taskql.ide_assets", description=__doc__)
    parser.add_argument("command", choices=["install", "status"])
    parser.add_argument("--dest", type=Path, default=VENDOR_DIR)
    parser.add_argument("--force", action="store_true", help="install even when up to date")
    args = parser.parse_args(argv)
    manifest = load_manifest()
    if is_installed(manifest, args.dest) and not args.force:
        (args.dest / STAMP_NAME).touch()  # newer than the manifest: make is satisfied
        print(f"GraphiQL assets are installed in {args.dest}")
        return 0
    if args.command == "status":
        print(f"GraphiQL assets are not installed in {args.dest}: run `make ide`")
        return 1
    npm = shutil.which("npm")
    if npm is None:
        print(f"warning: npm was not found: {CDN_FALLBACK}.", file=sys.stderr)
        return 0
    try:
        install(manifest, args.dest, npm=npm)
    except IntegrityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, subprocess.SubprocessError, ValueError, LookupError) as exc:
        detail = str(getattr(exc, "stderr", None) or exc).strip()
        print(
            f"warning: npm could not fetch the assets ({detail}): {CDN_FALLBACK}.", file=sys.stderr
        )
        return 0
    names = ", ".join(manifest.assets)
    print(f"GraphiQL assets installed in {args.dest}: {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
