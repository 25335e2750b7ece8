"""Pack variable-length examples into fixed-width rows with per-example ``position_ids``.

Positions restart at 0 for each example. Hugging Face decoders given ``position_ids`` and no
attention mask build a block-diagonal causal mask from those restarts, so no token attends
across an example boundary. Padding is its own segment and carries no loss. A preference pair
(see :mod:`eu.data.tokenized`) is two sequences side by side in one row, chosen then rejected.
"""

from __future__ import annotations

import torch

from eu.data.tokenized import TokenizedExamples
from eu.objectives.losses import IGNORE_INDEX


def first_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Assign items (by index) to as few bins of ``capacity`` as first-fit decreasing finds."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        if lengths[i] > capacity:
            raise ValueError(f"item of length {lengths[i]} exceeds bin capacity {capacity}")
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(capacity - lengths[i])
    return bins


def pack_rows(
    examples: TokenizedExamples,
    rows: list[list[int]],
    width: int,
    pad_id: int,
    num_rows: int | None = None,
) -> dict[str, torch.Tensor]:
    """Build a packed batch: ``rows[r]`` lists the example indices placed in row ``r``.

    Returns ``input_ids``, ``position_ids``, ``targets`` (next token where it is a response
    token, else ``IGNORE_INDEX``) and ``sequence_index`` (sequence number within the batch,
    -1 on padding), each ``[num_rows, width]``. For preference pairs also ``pairs``
    (``[num_pairs, 2]``): the sequence numbers of each pair's chosen and rejected sequence.
    """
    n_rows = num_rows if num_rows is not None else len(rows)
    input_ids = torch.full((n_rows, width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((n_rows, width), dtype=torch.long)
    targets = torch.full((n_rows, width), IGNORE_INDEX, dtype=torch.long)
    sequence_index = torch.full((n_rows, width), -1, dtype=torch.long)
    seq = 0
    for r, members in enumerate(rows):
        col = 0
        for ids, n_prompt in (sequence for i in members for sequence in examples.sequences(i)):
            n = len(ids)
            if col + n > width:
                raise ValueError(f"row {r} overflows its width {width}")
            input_ids[r, col : col + n] = ids
            position_ids[r, col : col + n] = torch.arange(n)
            # position t predicts token t+1; supervise predictions of response tokens only
            start = max(n_prompt - 1, 0)
            targets[r, col + start : col + n - 1] = ids[start + 1 :].long()
            sequence_index[r, col : col + n] = seq
            seq += 1
            col += n
        position_ids[r, col:] = torch.arange(width - col)
    batch = {
        "input_ids": input_ids,
        "position_ids": position_ids,
        "targets": targets,
        "sequence_index": sequence_index,
    }
    if examples.pair_split is not None:
        batch["pairs"] = torch.arange(seq).reshape(-1, 2)
    return batch


def round_up(n: int, multiple: int) -> int:
    """``n`` rounded up to a multiple of ``multiple``."""
    return -(-n // multiple) * multiple
