"""Seeded, resumable plans of which examples each optimizer step sees, per stream and rank.

A stream walks through its examples in a fresh seeded permutation each epoch. A step takes
either a fixed number of examples or as many as fit a token budget. The plan depends only on
``(seed, stream, lengths, step)``, so every rank computes the same plan without talking to
the others, and a run resumed at step ``k`` sees exactly the steps an uninterrupted run sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from eu.data.packing import first_fit_decreasing


def epoch_permutation(n: int, seed: int, stream: int, epoch: int) -> list[int]:
    """The example order of one epoch of one stream."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + stream * 10_007 + epoch)
    return torch.randperm(n, generator=gen).tolist()


@dataclass
class StepPlan:
    """For one step and stream: the example indices and their row assignment on each rank."""

    rows: list[list[list[int]]]
    """``rows[rank][row]`` lists the examples packed into that row on that rank."""

    def examples(self, rank: int) -> list[int]:
        return [i for row in self.rows[rank] for i in row]

    @property
    def total_examples(self) -> int:
        return sum(len(row) for rank in self.rows for row in rank)


class StreamPlanner:
    """Plans the examples of every step of one stream.

    Exactly one of ``examples_per_step`` (per rank) and ``tokens_per_step`` (per rank, a
    multiple of ``block_length``) sets the step size.
    """

    def __init__(
        self,
        lengths: list[int],
        block_length: int,
        seed: int,
        stream: int,
        world_size: int = 1,
        examples_per_step: int | None = 4,
        tokens_per_step: int | None = None,
    ) -> None:
        if (examples_per_step is None) == (tokens_per_step is None):
            raise ValueError("set exactly one of examples_per_step and tokens_per_step")
        if tokens_per_step is not None and tokens_per_step % block_length:
            raise ValueError(f"tokens_per_step ({tokens_per_step}) must be a multiple of block_length ({block_length})")
        if not lengths:
            raise ValueError("a stream needs at least one example")
        self.lengths = lengths
        self.block_length = block_length
        self.seed = seed
        self.stream = stream
        self.world_size = world_size
        self.examples_per_step = examples_per_step
        self.tokens_per_step = tokens_per_step

    def _order(self, start: int = 0) -> Iterator[int]:
        n = len(self.lengths)
        epoch, offset = divmod(start, n)
        while True:
            yield from epoch_permutation(n, self.seed, self.stream, epoch)[offset:]
            epoch, offset = epoch + 1, 0

    def steps(self, start_step: int = 0) -> Iterator[StepPlan]:
        """Plans of steps ``start_step``, ``start_step + 1``, ... (endless)."""
        if self.examples_per_step is not None:
            yield from self._example_steps(start_step)
        else:
            it = self._token_steps()
            for _ in range(start_step):
                next(it)
            yield from it

    def _example_steps(self, start_step: int) -> Iterator[StepPlan]:
        k, w = self.examples_per_step, self.world_size
        order = self._order(start_step * k * w)
        while True:
            plan = []
            for _ in range(w):
                chosen = [next(order) for _ in range(k)]
                bins = first_fit_decreasing([self.lengths[i] for i in chosen], self.block_length)
                plan.append([[chosen[j] for j in b] for b in bins])
            yield StepPlan(plan)

    def _token_steps(self) -> Iterator[StepPlan]:
        n_rows = self.tokens_per_step // self.block_length
        order = self._order(0)
        pending = next(order)
        while True:
            plan = []
            for _ in range(self.world_size):
                rows: list[list[int]] = [[] for _ in range(n_rows)]
                room = [self.block_length] * n_rows
                while True:
                    need = self.lengths[pending]
                    fit = next((r for r in range(n_rows) if room[r] >= need), None)
                    if fit is None:
                        break
                    rows[fit].append(pending)
                    room[fit] -= need
                    pending = next(order)
                plan.append(rows)
            yield StepPlan(plan)
