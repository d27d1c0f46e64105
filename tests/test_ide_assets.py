"""The GraphiQL asset installer takes only tarballs and files whose hashes the manifest names."""

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

from taskql import ide_assets
from taskql.ide_assets import Asset, IntegrityError, Manifest, Package, sri

WIDGET_JS = b"window.Widget = function () { return 'widget'; };\n"
FILES = {
    "package.json": b'{"name": "widget", "version": "1.0.0"}',
    "umd/widget.min.js": WIDGET_JS,
    "evil.js": b"alert('not in the manifest');\n",
}


def build_tarball(path: Path, files: dict[str, bytes]) -> Path:
    """A tarball laid out as npm packs one: every file under `package/`."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def widget(tarball: Path, *, file_integrity: str | None = None) -> Package:
    """The manifest entry of the widget package whose tarball is `tarball`, as it is now."""
    asset = Asset(
        "widget",
        "1.0.0",
        "umd/widget.min.js",
        "widget-1.0.0.min.js",
        file_integrity or sri(WIDGET_JS),
    )
    return Package("widget", "1.0.0", sri(tarball.read_bytes(), "sha512"), (asset,))


def fake_npm(tmp_path: Path, tarballs: Path) -> str:
    """An `npm` whose `pack NAME@VERSION` copies NAME-VERSION.tgz out of `tarballs`."""
    script = tmp_path / "bin" / "npm"
    script.parent.mkdir()
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, shutil, sys\n"
        "name = sys.argv[2].replace('@', '-') + '.tgz'\n"
        f"shutil.copy({str(tarballs)!r} + '/' + name, name)\n"
        "print(json.dumps([{'filename': name}]))\n"
    )
    script.chmod(0o755)
    return str(script)


def test_a_tarball_with_the_manifest_hash_gives_only_the_named_files(tmp_path: Path) -> None:
    tarball = build_tarball(tmp_path / "widget-1.0.0.tgz", FILES)
    package = widget(tarball)
    dest = tmp_path / "vendor"
    dest.mkdir()

    ide_assets.verify_tarball(tarball, package)
    ide_assets.extract(tarball, package, dest)

    assert sorted(p.name for p in dest.iterdir()) == ["widget-1.0.0.min.js"]
    assert (dest / "widget-1.0.0.min.js").read_bytes() == WIDGET_JS


def test_a_tampered_tarball_is_refused_and_deleted(tmp_path: Path) -> None:
    tarball = build_tarball(tmp_path / "widget-1.0.0.tgz", FILES)
    package = widget(tarball)
    build_tarball(tarball, {**FILES, "umd/widget.min.js": WIDGET_JS + b"stealCookies();\n"})

    with pytest.raises(IntegrityError, match=r"widget@1\.0\.0"):
        ide_assets.verify_tarball(tarball, package)
    assert not tarball.exists()


def test_a_file_unlike_its_own_hash_is_refused(tmp_path: Path) -> None:
    tarball = build_tarball(tmp_path / "widget-1.0.0.tgz", FILES)
    package = widget(tarball, file_integrity=sri(b"some other file"))
    dest = tmp_path / "vendor"
    dest.mkdir()

    ide_assets.verify_tarball(tarball, package)
    with pytest.raises(IntegrityError, match=r"umd/widget\.min\.js"):
        ide_assets.extract(tarball, package, dest)
    assert list(dest.iterdir()) == []


def test_install_through_npm_refuses_a_tampered_tarball_and_changes_nothing(
    tmp_path: Path,
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    tarball = build_tarball(served / "widget-1.0.0.tgz", FILES)
    manifest = Manifest((widget(tarball),), digest="widget-manifest")
    npm = fake_npm(tmp_path, served)
    dest = tmp_path / "vendor"

    ide_assets.install(manifest, dest, npm=npm)
    assert ide_assets.is_installed(manifest, dest)
    assert (dest / ide_assets.STAMP_NAME).read_text().strip() == "widget-manifest"

    build_tarball(tarball, {**FILES, "umd/widget.min.js": b"window.Widget = 'evil';\n"})
    with pytest.raises(IntegrityError):
        ide_assets.install(manifest, dest, npm=npm)
    assert (dest / "widget-1.0.0.min.js").read_bytes() == WIDGET_JS  # the old, checked copy
    assert sorted(p.name for p in dest.iterdir()) == [".installed", "widget-1.0.0.min.js"]


def test_without_npm_the_install_warns_and_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    dest = tmp_path / "vendor"

    assert ide_assets.main(["install", "--dest", str(dest)]) == 0
    assert "warning: npm was not found" in capsys.readouterr().err
    assert not dest.exists()
    assert ide_assets.main(["status", "--dest", str(dest)]) == 1


def test_the_committed_manifest_pins_every_tarball_and_file() -> None:
    manifest = ide_assets.load_manifest()
    raw = json.loads(ide_assets.MANIFEST_PATH.read_text())
    assert [p["name"] for p in raw["packages"]] == ["react", "react-dom", "graphiql"]
    for package in manifest.packages:
        assert package.integrity.startswith("sha512-"), package.spec
        for asset in package.files:
            assert asset.integrity.startswith("sha384-"), asset.path
            assert package.version in asset.serve_as  # cached forever: a new version, a new name
            assert asset.serve_as.endswith((".js", ".css"))
    scripts = [name for name, asset in manifest.assets.items() if asset.is_script]
    assert scripts == [
        "react-18.2.0.production.min.js",
        "react-dom-18.2.0.production.min.js",
        "graphiql-3.8.3.min.js",
    ]
