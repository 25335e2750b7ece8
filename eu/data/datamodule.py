"""The LightningDataModule: streams (retain, forget; optional keep, align, refuse) of packed, mixed step batches."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset

from eu.data.mixing import StepPlan, StreamPlanner, epoch_permutation
from eu.data.noise import PromptNoise, add_prompt_noise, check_prompt_noise, noise_vocabulary, step_generator
from eu.data.packing import first_fit_decreasing, pack_rows, round_up
from eu.data.records import Fields, is_preference, read_stream
from eu.data.sampler import SampleSettings, check_sample_settings
from eu.data.self_generated import ModelLoader, ensure_corpus
from eu.data.sources import resolve_source
from eu.data.tokenized import TokenizedExamples, tokenize_cached
from eu.errors import EUError
from eu.generation import pad_id
from eu.rng import preserved_rng
from eu.settings import change_line, changed

STREAMS = ("retain", "forget", "keep", "align", "refuse")
"""Stream names, in the order that numbers their seeds (a new stream goes last, so older plans stay)."""
SELF_GENERATED_STREAMS = ("forget", "refuse")
"""Streams that may name the ``self-generated`` corpus."""


@dataclass
class StreamConfig:
    """Where one stream's examples come from and how many each step takes."""

    path: str | None = None
    """A .jsonl/.json/.csv/.parquet file, a Hugging Face dataset name, built-in data
    (``eu:math/train``, ``eu:medicine/train``) or, for forget, ``self-generated``."""
    split: str = "train"
    """Dataset split when ``path`` is a Hugging Face dataset name."""
    fields: Fields = field(default_factory=Fields)
    """Record fields holding the user turn and the response (auto-detected when unset)."""
    block_length: int = 512
    """Row width of packed batches; longer examples are truncated to it."""
    examples_per_step: int | None = 4
    """Examples per optimizer step and device (the reference recipe uses 4)."""
    tokens_per_step: int | None = None
    """If set, replaces ``examples_per_step``: a token budget per step and device (a multiple of
    ``block_length``) filled with as many examples as fit, always the same batch shape."""
    val_examples: int = 0
    """Examples held out from this stream for validation and test."""
    prompt_noise: PromptNoise | None = None
    """Random tokens around the user's request of every training example, drawn anew each step
    (Eraser's noise; ``eu.data.noise``); held-out examples stay clean. Single-answer records only."""
    extra_paths: list[str] | None = None
    """Further sources whose records join ``path``'s, read with the same ``fields`` and ``split``
    (e.g. ``eu:medicine-harmful/train`` beside a ``self-generated`` forget corpus)."""
    fixed_response: str | None = None
    """If set, every record's response is replaced by this text (e.g. one short refusal, so the
    stream's prompts are trained towards it); single-answer records only."""


@dataclass
class StreamData:
    """A stream after tokenization: its training and held-out examples."""

    name: str
    config: StreamConfig
    train: TokenizedExamples
    val: TokenizedExamples

    @functools.cached_property
    def digest(self) -> str:
        """sha256 of the training examples, hashed once and stored in every checkpoint's data plan."""
        return examples_digest(self.train)


def _supervised(examples: TokenizedExamples, index: list[int]) -> int:
    return sum(examples.supervised(i) for i in index)


def _tokens(examples: TokenizedExamples, index: list[int]) -> int:
    return sum(int(examples.lengths[i]) for i in index)


def _sequences(examples: TokenizedExamples, index: list[int]) -> int:
    """Sequences with a supervised token (a preference pair counts two)."""
    return sum(len(examples.sequences(i)) for i in index if examples.supervised(i) > 0)


def collate_stream(
    examples: TokenizedExamples,
    rows: list[list[int]],
    config: StreamConfig,
    pad_id: int,
    pad_to_multiple_of: int,
    static_shape: bool,
    norm_sequences: float,
    norm_targets: float,
    norm_tokens: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Pack one stream's examples for one device and attach loss normalisers (the step's
    sequences, supervised tokens and tokens, per device)."""
    if config.tokens_per_step is not None:
        width, n_rows = config.block_length, config.tokens_per_step // config.block_length
    elif static_shape:
        width, n_rows = config.block_length, config.examples_per_step
    else:
        fill = max(int(sum(examples.lengths[i] for i in row)) for row in rows)
        width, n_rows = min(round_up(fill, pad_to_multiple_of), config.block_length), len(rows)
    batch = pack_rows(examples, rows, width, pad_id, num_rows=n_rows)
    batch["num_sequences_norm"] = torch.tensor(norm_sequences, dtype=torch.float32)
    batch["num_targets_norm"] = torch.tensor(norm_targets, dtype=torch.float32)
    batch["num_tokens_norm"] = torch.tensor(norm_tokens, dtype=torch.float32)
    return batch


class PackedSteps(IterableDataset):
    """Endless step batches ``{"retain": ..., "forget": ...}`` for one rank, from ``start_step``."""

    def __init__(self, dm: UnlearningDataModule, rank: int, world_size: int, start_step: int) -> None:
        self.dm, self.rank, self.world_size, self.start_step = dm, rank, world_size, start_step

    def __iter__(self) -> Iterator[dict[str, dict[str, torch.Tensor]]]:
        iters = {name: self.dm.planner(name, self.world_size).steps(self.start_step) for name in self.dm.streams}
        step = self.start_step
        while True:
            yield {name: self.dm.collate_plan(name, next(it), self.rank, step) for name, it in iters.items()}
            step += 1


class UnlearningDataModule(L.LightningDataModule):
    """Retain, forget and (optionally) keep and align streams, tokenized once (cached), packed and mixed per step."""

    def __init__(
        self,
        retain: StreamConfig,
        forget: StreamConfig | None = None,
        seed: int = 42,
        pad_to_multiple_of: int = 8,
        static_shape: bool = False,
        num_workers: int = 0,
        sample: SampleSettings | None = None,
        keep: StreamConfig | None = None,
        align: StreamConfig | None = None,
        refuse: StreamConfig | None = None,
    ) -> None:
        """
        Args:
            retain: the domain data the model keeps (supervised with cross-entropy).
            forget: the data whose output distribution is pushed towards uniform.
            seed: seed of the example order; identical on every rank.
            pad_to_multiple_of: round packed rows up to this width (dynamic shapes only).
            static_shape: always emit ``[examples_per_step, block_length]`` batches (for compile).
            num_workers: DataLoader workers; must be 0 until the step dataset shards across workers.
            sample: how a ``self-generated`` forget corpus is sampled (the paper's recipe by
                default); used when ``forget.path`` is ``self-generated``.
            keep: a second stream of data the model keeps, which an objective weighs on its own
                (Eraser's answers about the harmful prompts' entities, ``eu:harmful/entity-answers``);
                objectives that do not read it ignore it.
            align: a third stream of data the model keeps, weighed on its own by the objectives
                that read it (Eraser's own answers of the model to the harmful prompts,
                ``eu:harmful/model-answers``); others ignore it.
            refuse: harmful requests with the refusals the model should give, trained with
                cross-entropy by ``eu.objectives.WithRefusals`` (``eu:medicine-harmful/train``: harmful
                requests inside the medical domain); other objectives ignore it.
        """
        super().__init__()
        self.stream_configs = {"retain": retain, "forget": forget, "keep": keep, "align": align, "refuse": refuse}
        self.tokenizer: Any = None
        self.model_name = ""
        self.load_model: ModelLoader | None = None
        self.load_dtype: str | None = None
        self.seed = seed
        self.pad_to_multiple_of = pad_to_multiple_of
        self.static_shape = static_shape
        self.num_workers = num_workers
        self.sample = sample or SampleSettings()
        self.data: dict[str, StreamData] = {}
        self.stats: dict[str, dict[str, int]] = {}
        self.pad_id = 0
        self.noise_vocabulary: torch.Tensor | None = None
        for name, cfg in self.stream_configs.items():
            if cfg is not None:
                _check_stream_config(name, cfg)
        check_sample_settings(self.sample)
        if num_workers != 0:
            raise EUError(
                f"data.num_workers={num_workers} is not supported yet: the step dataset does not shard across "
                "DataLoader workers, so every worker would replay every step; set data.num_workers=0"
            )

    def connect(
        self,
        tokenizer: Any,
        model_name: str = "",
        load_model: ModelLoader | None = None,
        load_dtype: str | None = None,
    ) -> None:
        """Give the data the model's chat tokenizer (``eu fit`` calls this before any data is read).

        Args:
            tokenizer: the tokenizer, with its chat template, that renders every example.
            model_name: the model's reference, keying the cached self-generated corpus.
            load_model: returns the model to sample a ``self-generated`` forget corpus from;
                called only when that corpus is not cached yet.
            load_dtype: the dtype ``load_model``'s model comes in (``None``: float32); it keys the
                cached corpora sampled from it.
        """
        self.tokenizer, self.model_name, self.load_model = tokenizer, model_name, load_model
        self.load_dtype = load_dtype

    def _self_generated(self) -> Path:
        if self.load_model is None or not self.model_name:
            raise EUError("self-generated forget data needs the model: connect(tokenizer, model_name, load_model)")
        return ensure_corpus(self.model_name, self.sample, self.tokenizer, self.load_model, self.load_dtype)

    def _entity_answers(self) -> Path:
        if self.load_model is None or not self.model_name:
            raise EUError("eu:harmful/entity-answers needs the model: connect(tokenizer, model_name, load_model)")
        from eu.data.harmful_eraser import ensure_entity_answers

        return ensure_entity_answers(self.model_name, self.tokenizer, self.load_model, dtype=self.load_dtype)

    def _model_answers(self) -> Path:
        if self.load_model is None or not self.model_name:
            raise EUError("eu:harmful/model-answers needs the model: connect(tokenizer, model_name, load_model)")
        from eu.data.harmful_eraser import ensure_model_answers

        return ensure_model_answers(self.model_name, self.tokenizer, self.load_model, dtype=self.load_dtype)

    @property
    def streams(self) -> list[str]:
        return [s for s in STREAMS if self.stream_configs[s] is not None and self.stream_configs[s].path]

    def _load(self) -> None:
        if self.data:
            return
        if self.tokenizer is None:
            raise EUError("the data has no tokenizer: call connect(tokenizer, ...) first (eu fit does)")
        if not self.stream_configs["retain"] or not self.stream_configs["retain"].path:
            raise EUError("data.retain.path is required: the domain data the model must keep")
        tokenizer = self.tokenizer
        self.pad_id = pad_id(tokenizer)
        for name in self.streams:
            cfg = self.stream_configs[name]
            records = self._read(name, cfg)
            if name != "forget" and is_preference(records):
                raise EUError(
                    f"data.{name}.path: {cfg.path} holds preference pairs (chosen/rejected); they belong in "
                    "data.forget for eu.objectives.DPO, retain data needs one response per prompt"
                )
            if cfg.prompt_noise is not None and is_preference(records):
                raise EUError(
                    f"data.{name}.prompt_noise: {cfg.path} holds preference pairs; noise goes around the prompt of "
                    f"single-answer records (e.g. eu:harmful/answers), so drop data.{name}.prompt_noise"
                )
            noised = cfg.prompt_noise is not None
            examples = tokenize_cached(tokenizer, records, cfg.block_length, user_spans=noised)
            if noised and self.noise_vocabulary is None:
                self.noise_vocabulary = noise_vocabulary(tokenizer)
            if len(examples) == 0:
                raise EUError(
                    f"data.{name}.block_length={cfg.block_length} is too small for any example of "
                    f"{cfg.path}: every prompt fills the block, so no response token remains; raise it"
                )
            order = epoch_permutation(len(examples), self.seed, STREAMS.index(name), -1)
            n_val = cfg.val_examples
            if n_val >= len(examples):
                raise EUError(
                    f"data.{name}.val_examples={n_val} leaves no training example: {cfg.path} has "
                    f"{len(examples)} usable examples; set data.{name}.val_examples below {len(examples)}"
                )
            self.data[name] = StreamData(
                name, cfg, train=examples.subset(order[n_val:]), val=examples.subset(order[:n_val])
            )
            self.stats[name] = {
                "records": len(records),
                "examples": len(examples),
                "truncated": examples.truncated,
                "dropped": examples.dropped,
                "tokens": int(examples.lengths.sum()),
            }
        if self._world()[0] == 0:
            for name in self.streams:
                print(stats_line(name, self.stats[name], self.stream_configs[name].block_length), file=sys.stderr)

    def _read(self, name: str, cfg: StreamConfig) -> list[Any]:
        """The records of stream ``name``: its ``path``'s and then each of ``extra_paths``'s, with
        ``fixed_response`` applied."""
        records: list[Any] = []
        for key, path in [("path", cfg.path), *(("extra_paths", p) for p in cfg.extra_paths or [])]:
            try:
                source = resolve_source(
                    path,
                    self._self_generated if name in SELF_GENERATED_STREAMS else None,
                    self._entity_answers,
                    self._model_answers,
                )
                part = read_stream(source, cfg.fields, cfg.split)
            except EUError as err:
                raise EUError(f"data.{name}.{key}: {err}") from None
            if records and is_preference(part) != is_preference(records):
                raise EUError(
                    f"data.{name}.extra_paths: {path} and {cfg.path} mix preference pairs with single-answer "
                    "records; one stream holds one kind, so name them in different streams"
                )
            records += part
        if cfg.fixed_response is not None:
            if is_preference(records):
                raise EUError(
                    f"data.{name}.fixed_response: {cfg.path} holds preference pairs; a fixed response replaces "
                    f"the answer of single-answer records, so drop data.{name}.fixed_response"
                )
            records = [dataclasses.replace(r, assistant=cfg.fixed_response) for r in records]
        return records

    def prepare_data(self) -> None:
        with preserved_rng():  # sampling a corpus on the first run must not shift training's random draws
            self._load()

    def setup(self, stage: str | None = None) -> None:
        with preserved_rng():
            self._load()

    def planner(self, name: str, world_size: int) -> StreamPlanner:
        data = self.data[name]
        lengths = data.train.lengths
        if data.config.prompt_noise is not None:  # room for the most noise an example can get
            lengths = (lengths + data.config.prompt_noise.most).clamp_max(data.config.block_length)
        return StreamPlanner(
            lengths.tolist(),
            data.config.block_length,
            seed=self.seed,
            stream=STREAMS.index(name),
            world_size=world_size,
            examples_per_step=data.config.examples_per_step if data.config.tokens_per_step is None else None,
            tokens_per_step=data.config.tokens_per_step,
        )

    def collate_plan(self, name: str, plan: StepPlan, rank: int, step: int = 0) -> dict[str, torch.Tensor]:
        """The batch of ``rank`` for one planned step (number ``step``), normalised by the global step's counts.

        A stream with ``prompt_noise`` gets fresh noise here, drawn for every example of the step
        on every rank alike (so the normalisers agree), from a generator seeded by the step.
        """
        data = self.data[name]
        world = len(plan.rows)
        all_examples = [i for r in range(world) for i in plan.examples(r)]
        examples, rows = data.train, plan.rows[rank]
        if data.config.prompt_noise is not None:
            assert self.noise_vocabulary is not None
            noise, generator = data.config.prompt_noise, step_generator(self.seed, name, step)
            vocabulary, width = self.noise_vocabulary, data.config.block_length
            examples = add_prompt_noise(examples, all_examples, noise, vocabulary, generator, width)
            # the copies are numbered in step order; this rank's come after the earlier ranks'
            first = sum(len(plan.examples(r)) for r in range(rank))
            numbering = iter(range(first, first + len(plan.examples(rank))))
            rows = [[next(numbering) for _ in row] for row in rows]
            all_examples = list(range(len(examples)))
        return collate_stream(
            examples,
            rows,
            data.config,
            self.pad_id,
            self.pad_to_multiple_of,
            self.static_shape,
            norm_sequences=_sequences(examples, all_examples) / world,
            norm_targets=_supervised(examples, all_examples) / world,
            norm_tokens=_tokens(examples, all_examples) / world,
        )

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._world()
        start = 0
        if self.trainer is not None:
            start = self.trainer.global_step * self.trainer.accumulate_grad_batches
        return self._loader(PackedSteps(self, rank, world, start))

    def _loader(self, dataset: Any) -> DataLoader:
        return DataLoader(dataset, batch_size=None, num_workers=self.num_workers, pin_memory=torch.cuda.is_available())

    def val_batches(self) -> list[dict[str, dict[str, torch.Tensor]]]:
        """Held-out examples of both streams as fixed step batches, sharded by rank."""
        rank, world = self._world()
        chunks = {}
        for name in self.streams:
            data = self.data[name]
            k = data.config.examples_per_step or 4
            idx = list(range(len(data.val)))
            chunks[name] = [idx[i : i + k] for i in range(0, len(idx), k)]
        n_steps = max((len(c) for c in chunks.values()), default=0)
        if n_steps == 0:
            return []
        n_steps = round_up(n_steps, world)
        steps = []
        for s in range(rank, n_steps, world):
            step = {}
            for name, c in chunks.items():
                if not c:
                    continue
                data, members = self.data[name], c[s % len(c)]
                rows = first_fit_decreasing([int(data.val.lengths[i]) for i in members], data.config.block_length)
                rows = [[members[j] for j in row] for row in rows]
                n_seq = _sequences(data.val, members)
                step[name] = collate_stream(
                    data.val,
                    rows,
                    data.config,
                    self.pad_id,
                    self.pad_to_multiple_of,
                    self.static_shape,
                    n_seq,
                    _supervised(data.val, members),
                    _tokens(data.val, members),
                )
            steps.append(step)
        return steps

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_batches())

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def data_plan(self) -> dict[str, Any]:
        """What fixes the sequence of step batches: a resumed run must see the same plan."""
        plan: dict[str, Any] = {"seed": self.seed, "world_size": self._world()[1]}
        for name in self.streams:
            data = self.data[name]
            plan[name] = {
                "examples_per_step": data.config.examples_per_step,
                "tokens_per_step": data.config.tokens_per_step,
                "block_length": data.config.block_length,
                "val_examples": data.config.val_examples,
                "examples_sha256": data.digest,
            }
            if data.config.prompt_noise is not None:
                plan[name]["prompt_noise"] = asdict(data.config.prompt_noise)
        return plan

    def state_dict(self) -> dict[str, Any]:
        return {"data_plan": self.data_plan()} if self.data else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Refuse to resume against another data plan, naming what changed."""
        saved = state_dict.get("data_plan")
        if saved is None or not self.data:
            return
        changes = plan_changes(saved, self.data_plan())
        if changes:
            raise EUError(
                "the checkpoint was trained with another data plan, so resuming would not continue the same run: "
                + "; ".join(changes)
                + ". Resume with the original settings and data, or start a new run"
            )


def examples_digest(examples: TokenizedExamples) -> str:
    """sha256 of the token ids and prompt lengths of ``examples`` (their order included)."""
    h = hashlib.sha256()
    parts = (examples.tokens, examples.offsets, examples.prompt_lengths)
    for part in parts if examples.pair_split is None else (*parts, examples.pair_split):
        h.update(part.to(torch.int64).numpy().tobytes())
    return h.hexdigest()


def plan_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences between two data plans (``data.retain.block_length: 256 -> 128``)."""
    changes = []
    for key, old, new in changed(saved, current):
        stream, _, field = key.rpartition(".")
        if field == "examples_sha256":
            changes.append(f"the examples of data.{stream} changed (other files, tokenizer or order)")
        else:
            changes.append(change_line("world size (processes)" if key == "world_size" else f"data.{key}", old, new))
    return changes


def stats_line(name: str, stats: dict[str, int], block_length: int) -> str:
    """One line on how many examples of stream ``name`` were truncated or dropped for length."""
    return (
        f"eu: data.{name}: {stats['records']} examples, {stats['truncated']} truncated to "
        f"block_length={block_length} ({stats['dropped']} of them dropped: no response token left)"
    )


def _check_stream_config(name: str, cfg: StreamConfig) -> None:
    if cfg.block_length < 2:
        raise EUError(f"data.{name}.block_length must be at least 2, got {cfg.block_length}")
    if cfg.examples_per_step is None and cfg.tokens_per_step is None:
        raise EUError(f"data.{name}: set examples_per_step or tokens_per_step")
    if cfg.examples_per_step is not None and cfg.examples_per_step < 1:
        raise EUError(f"data.{name}.examples_per_step must be >= 1, got {cfg.examples_per_step}")
    if cfg.tokens_per_step is not None and (
        cfg.tokens_per_step < cfg.block_length or cfg.tokens_per_step % cfg.block_length
    ):
        raise EUError(f"data.{name}.tokens_per_step must be a positive multiple of block_length ({cfg.block_length})")
    if cfg.val_examples < 0:
        raise EUError(f"data.{name}.val_examples must be >= 0")
    if cfg.prompt_noise is not None:
        check_prompt_noise(name, cfg.prompt_noise)
    if cfg.fixed_response is not None and not cfg.fixed_response.strip():
        raise EUError(f"data.{name}.fixed_response is blank; give the response text (e.g. a short refusal) or drop it")
    if cfg.extra_paths and not cfg.path:
        raise EUError(f"data.{name}.extra_paths is set but data.{name}.path is not; set path to the main source")
