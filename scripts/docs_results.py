"""Write a docs results file: a table command's output under a header naming the machine and commit.

Usage: ``python scripts/docs_results.py NAME [--ran "CMD" ...] -- TABLE_COMMAND ...``. Runs
TABLE_COMMAND, and writes its standard output to ``docs/results/NAME.md`` (atomically, only when it
succeeds) after a header that states the machine (CPU model and cores, or the GPU), the commit, the
date and the commands given with ``--ran`` (the runs the table reads). A page includes the file with
``--8<-- "docs/results/NAME.md"``; ``nox -s numbers -- NAME`` runs the whole chain.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
HEADER = "<!-- written by scripts/docs_results.py; regenerate with `nox -s numbers -- {name}`, never by hand -->"


def machine() -> str:
    """The CPU model and core count, and the GPU when torch sees one."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{model}, {os.cpu_count()} cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


def commit() -> str:
    """The short commit hash of the working tree, with ``+changes`` when it differs from the commit."""
    run = lambda *args: subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
    head = run("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if run("status", "--porcelain", "--untracked-files=no") else "")


def header(name: str, ran: list[str], table_command: list[str]) -> str:
    """The lines above the table: what wrote it, where, when, and with which commands."""
    commands = "\n".join(f"    {c}" for c in [*ran, " ".join(table_command)])
    today = datetime.date.today().isoformat()
    return (
        HEADER.format(name=name) + f"\n\nMeasured on {machine()}, commit `{commit()}`, {today}, by:\n\n{commands}\n\n"
    )


def main(argv: list[str]) -> int:
    if "--" not in argv:
        sys.exit("usage: python scripts/docs_results.py NAME [--ran CMD ...] -- TABLE_COMMAND ...")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="docs_results.py")
    parser.add_argument("name", help="the results file: docs/results/NAME.md")
    parser.add_argument("--ran", action="append", default=[], help="a command whose output the table reads")
    args = parser.parse_args(argv[:split])
    table_command = argv[split + 1 :]
    if not table_command:
        sys.exit("docs_results.py: give the table command after --")
    done = subprocess.run(table_command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        sys.exit(f"docs_results.py: {' '.join(table_command)} failed (exit {done.returncode}); nothing written")
    RESULTS.mkdir(parents=True, exist_ok=True)
    dest = RESULTS / f"{args.name}.md"
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(header(args.name, args.ran, table_command) + done.stdout, encoding="utf-8")
    tmp.replace(dest)
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
