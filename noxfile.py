"""Developer sessions: ``nox -s tests``, ``nox -s unit``, ``nox -s lint``, ``nox -s docs``, ``nox -s bench``."""

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
    session.install("mkdocs")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session
def bench(session: nox.Session) -> None:
    """Forget-loss memory (chunked vs naive), the training-step benchmark (eu vs reference) and sampling's draw."""
    _install(session)
    session.run("python", "benchmarks/forget_loss_memory.py")
    session.run("python", "benchmarks/train_step.py", *session.posargs)
    session.run("python", "benchmarks/sampling.py")
