"""Read chat examples from files or Hugging Face datasets into ``(system, user, assistant)``.

Files (JSON, JSONL, CSV, Parquet) and dataset names are read through ``datasets``. JSON files
are parsed here first so that a syntax error names the file and line. Rows with ``chosen`` and
``rejected`` responses are preference pairs (:class:`PreferenceRecord`, for DPO).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eu.data.sources import resolve_source
from eu.errors import EUError
from eu.io import read_jsonl
from eu.prompts import ChatRecord

FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
# File types people try that eu cannot read: such a path is a file, never a dataset name.
UNSUPPORTED_SUFFIXES = frozenset(
    {".txt", ".tsv", ".xlsx", ".xls", ".ods", ".xml", ".html", ".md", ".yaml", ".yml", ".pdf", ".docx", ".arrow"}
    | {".feather", ".pkl", ".pickle", ".gz", ".zip", ".tar", ".bz2", ".xz", ".zst"}
)

# Field layouts recognised without configuration, in order of preference.
KNOWN_LAYOUTS: tuple[dict[str, str], ...] = (
    {"user": "user_text", "assistant": "assistant_text"},
    {"user": "instruction", "input": "input", "assistant": "output"},
    {"user": "query", "assistant": "response"},
    {"user": "prompt", "assistant": "response"},
    {"user": "question", "assistant": "answer"},
    {"user": "user", "assistant": "assistant"},
)


@dataclass
class Fields:
    """Which record fields make up an example; ``None`` everywhere means auto-detect."""

    user: str | None = None
    """Field with the user turn (e.g. ``instruction``, ``user_text``)."""
    assistant: str | None = None
    """Field with the assistant response (e.g. ``output``, ``assistant_text``)."""
    input: str | None = None
    """Optional field appended to the user turn on a new line (Alpaca's ``input``), as the reference does."""
    system: str | None = None
    """Optional field with a system prompt; a record's ``system`` field is used when present.
    An empty value renders an empty system turn, a missing or null one none."""


PREFERENCE_FIELDS = ("chosen", "rejected")
# Fields holding the prompt of a preference row when ``fields.user`` is unset, in order of preference.
PREFERENCE_PROMPTS = ("prompt", "user", "user_text", "instruction", "question", "query")


@dataclass(frozen=True)
class PreferenceRecord:
    """One prompt with a preferred (``chosen``) and a dispreferred (``rejected``) response."""

    user: str
    chosen: str
    rejected: str
    system: str | None = None

    def records(self) -> tuple[ChatRecord, ChatRecord]:
        """The chosen and the rejected conversation; both share the prompt."""
        return (
            ChatRecord(user=self.user, assistant=self.chosen, system=self.system),
            ChatRecord(user=self.user, assistant=self.rejected, system=self.system),
        )


def is_preference(records: list[ChatRecord] | list[PreferenceRecord]) -> bool:
    """Whether ``records`` (from :func:`read_stream`) are preference pairs."""
    return bool(records) and isinstance(records[0], PreferenceRecord)


def is_local(source: str) -> bool:
    """True when ``source`` looks like a file path rather than a Hugging Face dataset name."""
    suffix = Path(source).suffix.lower()
    return suffix in FILE_BUILDERS or suffix in UNSUPPORTED_SUFFIXES or Path(source).exists()


def _check_json_syntax(path: Path) -> int:
    """Raise with the line of the first syntax error; return the number of records."""
    if path.suffix.lower() == ".jsonl":
        return len(read_jsonl(path))
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise EUError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    return len(value) if isinstance(value, list) else 1


def _no_records(source: str | Path) -> EUError:
    return EUError(f"{source}: no records (the data is empty); add at least one example or use another file")


def load_table(source: str, split: str = "train") -> list[dict[str, Any]]:
    """Rows of a data file or a Hugging Face dataset split, as dictionaries."""
    import datasets

    source = resolve_source(source)
    if is_local(source):
        path = Path(source)
        if not path.is_file():
            raise EUError(f"data file not found: {path} (check the path, relative to {Path.cwd()})")
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise EUError(
                f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; eu reads "
                f"{', '.join(FILE_BUILDERS)} files: convert it, e.g. to JSONL with one "
                '{"user_text": ..., "assistant_text": ...} object per line'
            )
        if path.stat().st_size == 0 or (builder == "json" and _check_json_syntax(path) == 0):
            raise _no_records(path)
        try:
            table = datasets.load_dataset(builder, data_files=str(path), split="train")
        except Exception as err:  # datasets raises many types; the user needs the file name
            raise EUError(f"{path}: could not be read as {builder} ({err})") from None
    else:
        try:
            table = datasets.load_dataset(source, split=split)
        except Exception as err:
            raise EUError(
                f"could not load Hugging Face dataset {source!r} split {split!r} ({err}); "
                "give a local .jsonl/.json/.csv/.parquet file instead if the hub is unreachable"
            ) from None
    return list(table)


def _resolve_fields(fields: Fields, row: dict[str, Any], source: str) -> Fields:
    if fields.user and fields.assistant:
        return fields
    for layout in KNOWN_LAYOUTS:
        if layout["user"] in row and layout["assistant"] in row:
            return Fields(
                user=fields.user or layout["user"],
                assistant=fields.assistant or layout["assistant"],
                input=fields.input or layout.get("input"),
                system=fields.system,
            )
    raise EUError(
        f"{source}: cannot tell which fields hold the user turn and the response "
        f"(record has {sorted(row)}); set fields.user and fields.assistant in the data config"
    )


def _empty_turn(source: str, index: int, role: str, field: str | None) -> EUError:
    return EUError(f"{_location(source, index)}: the {role} turn ({field!r}) is empty; fill it in or remove the record")


def _text(row: dict[str, Any], field: str | None, source: str, index: int, role: str | None = None) -> str:
    """The text of ``field`` in ``row``; with a ``role`` (user, assistant) the field must hold a value."""
    if field is None or (field not in row and role is None):
        return ""
    if field not in row:
        raise EUError(f"{source}: record {index + 1} has no field {field!r} (it has {sorted(row)})")
    if row[field] is None and role is not None:
        raise _empty_turn(source, index, role, field)
    return "" if row[field] is None else str(row[field])


def _system(row: dict[str, Any], field: str | None) -> str | None:
    """The system turn of ``row``: ``None`` when it has none (missing or null), else its text."""
    value = row.get(field or "system")
    return None if value is None else str(value)


def _location(source: str, index: int) -> str:
    """``FILE:LINE`` of record ``index`` of a JSONL file, else ``SOURCE: record N``."""
    path = Path(resolve_source(source))
    if path.suffix.lower() == ".jsonl" and path.is_file():
        with path.open(encoding="utf-8") as fh:
            record_lines = (lineno for lineno, line in enumerate(fh, 1) if line.strip())
            lineno = next(itertools.islice(record_lines, index, None), None)
        if lineno is not None:
            return f"{path}:{lineno}"
    return f"{source}: record {index + 1}"


def _rows(source: str, split: str) -> list[dict[str, Any]]:
    rows = load_table(source, split)
    if not rows:
        raise _no_records(source)
    return rows


def _user(row: dict[str, Any], fields: Fields, source: str, index: int) -> str:
    """The user turn: stripped, with the ``input`` field joined by one newline, as the reference builds it."""
    user = _text(row, fields.user, source, index, role="user").strip()
    extra = _text(row, fields.input, source, index).strip()
    return f"{user}\n{extra}".strip() if extra else user


def _response(row: dict[str, Any], field: str | None, source: str, index: int) -> str:
    """A non-blank response (nothing to train on otherwise)."""
    text = _text(row, field, source, index, role="assistant").strip()
    if not text:
        raise _empty_turn(source, index, "assistant", field)
    return text


def _chat_records(rows: list[dict[str, Any]], fields: Fields, source: str) -> list[ChatRecord]:
    resolved = _resolve_fields(fields, rows[0], source)
    return [
        ChatRecord(
            user=_user(row, resolved, source, i),
            assistant=_response(row, resolved.assistant, source, i),
            system=_system(row, resolved.system),
        )
        for i, row in enumerate(rows)
    ]


def _preference_records(rows: list[dict[str, Any]], fields: Fields, source: str) -> list[PreferenceRecord]:
    user = fields.user or next((f for f in PREFERENCE_PROMPTS if f in rows[0]), None)
    if user is None:
        raise EUError(
            f"{source}: preference records need a prompt field ({', '.join(PREFERENCE_PROMPTS)}) beside "
            f"chosen and rejected (record has {sorted(rows[0])}); set fields.user in the data config"
        )
    resolved = Fields(user=user, input=fields.input, system=fields.system)
    records = []
    for i, row in enumerate(rows):
        for name in PREFERENCE_FIELDS:
            if row.get(name) is not None and not isinstance(row[name], str):
                raise EUError(f"{_location(source, i)}: {name!r} must be the response text, not a list of messages")
        chosen, rejected = (_response(row, name, source, i) for name in PREFERENCE_FIELDS)
        records.append(PreferenceRecord(_user(row, resolved, source, i), chosen, rejected, _system(row, fields.system)))
    return records


def read_records(source: str, fields: Fields | None = None, split: str = "train") -> list[ChatRecord]:
    """Read ``source`` into chat records, mapping fields as configured or auto-detected.

    Every record needs a non-blank response; a blank one is refused with its file and line.
    """
    return _chat_records(_rows(source, split), fields or Fields(), source)


def read_stream(
    source: str, fields: Fields | None = None, split: str = "train"
) -> list[ChatRecord] | list[PreferenceRecord]:
    """:func:`read_records`, or preference pairs when the rows have ``chosen`` and ``rejected`` fields
    (and ``fields.assistant`` is unset): ``prompt`` (or another user field), ``chosen``, ``rejected``."""
    rows, fields = _rows(source, split), fields or Fields()
    if fields.assistant is None and all(name in rows[0] for name in PREFERENCE_FIELDS):
        return _preference_records(rows, fields, source)
    return _chat_records(rows, fields, source)
