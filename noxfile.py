"""Developer sessions: ``nox -s tests``, ``unit``, ``lint``, ``numbers``, ``docs``, ``bench``."""

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

# The CPU wheel of torch first, so that installing eu never pulls a multi-GB CUDA build.
TORCH = "torch==2.13.0"


def _install(session: nox.Session) -> None:
    session.install(TORCH)
    session.install("-e", ".[dev]")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (tiny model, offline)."""
    _install(session)
    session.run("pytest", "-q", *session.posargs)


@nox.session
def unit(session: nox.Session) -> None:
    """The unit tests alone: the suite without the end-to-end runs (marked ``integration``)."""
    _install(session)
    session.run("pytest", "-q", "-m", "not slow and not integration", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff")
    session.run("ruff", "check", "eu", "tests", "benchmarks", "scripts", "noxfile.py")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly."""
    session.install("mkdocs", "pymdown-extensions")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session
def bench(session: nox.Session) -> None:
    """Forget-loss memory (chunked vs naive), the training-step benchmark (eu vs reference) and sampling's draw."""
    _install(session)
    session.run("python", "benchmarks/forget_loss_memory.py")
    session.run("python", "benchmarks/train_step.py", *session.posargs)
    session.run("python", "benchmarks/sampling.py")


MEDICINE_EVAL = (
    "eu evaluate --model smollm2-135m-instruct --model runs/numbers/medicine/checkpoints/last.ckpt"
    " --model runs/numbers/medicine_safe/checkpoints/last.ckpt"
    " --model runs/numbers/harmful_forget/checkpoints/last.ckpt"
    " --suites domain,offdomain,harmful,jailbreak,medical-harmful --domain medicine --domain_size 198"
    " --harmful_size 75 --jailbreak_size 75 --max_new_tokens 32 --batch_size 25 --out runs/numbers/medicine_eval"
)
NUMBERS = {
    "in_domain_refusals": (
        [
            "eu fit -c configs/recipes/smollm2_medicine_safe.yaml -c configs/steps/no_evaluation.yaml"
            " --trainer.default_root_dir runs/numbers/medicine_safe",
            "eu fit -c configs/recipes/smollm2_medicine.yaml -c configs/steps/no_evaluation.yaml"
            " --trainer.default_root_dir runs/numbers/medicine",
            "eu fit -c configs/recipes/smollm2_medicine_safe.yaml -c configs/safety/medicine_harmful_forget.yaml"
            " -c configs/steps/no_evaluation.yaml --trainer.default_root_dir runs/numbers/harmful_forget",
            MEDICINE_EVAL,
        ],
        "python scripts/in_domain_table.py runs/numbers/medicine_eval",
    ),
}
"""Per results file (docs/results/NAME.md): the runs it reads, then the command that prints its table."""


@nox.session
def numbers(session: nox.Session) -> None:
    """Regenerate docs results files: ``nox -s numbers -- NAME`` (all of them without NAME); hours on a CPU.

    Each named chain runs its commands, then writes docs/results/NAME.md with the machine and commit in
    its header. ``eu fit`` refuses a run folder that exists: remove runs/numbers/ to measure afresh."""
    _install(session)
    for name in session.posargs or sorted(NUMBERS):
        if name not in NUMBERS:
            session.error(f"unknown results file {name!r}; known: {', '.join(sorted(NUMBERS))}")
        ran, table = NUMBERS[name]
        for command in ran:
            session.run(*command.split())
        recorded = [arg for command in ran for arg in ("--ran", command)]
        session.run("python", "scripts/docs_results.py", name, *recorded, "--", *table.split())
