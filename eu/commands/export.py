"""Turn a training checkpoint into a plain Hugging Face model folder with its model card."""

from __future__ import annotations

from pathlib import Path

from eu.io import atomic_dir, check_output_dir
from eu.models.checkpoint import model_from_checkpoint


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    overwrite: bool = False,
    trust_remote_code: bool = False,
    relearn: str | Path | None = None,
    log_dir: str | Path | None = None,
) -> Path:
    """Write ``out_dir`` with safetensors weights, config, tokenizer, chat template and a model card.

    ``out_dir`` must not exist, be empty, or (with ``overwrite``) be an earlier ``eu export``;
    a folder holding anything else is never touched. The card (``README.md``, see
    :mod:`eu.commands.card`) states what the checkpoint and its run recorded: base model, objective,
    settings, the run's evaluation, and the relearning attack of ``relearn`` (an ``eu attack relearn``
    output folder) when given. ``log_dir`` names the run's log folder when it is not beside the
    checkpoint's run folder. A ``README.md`` of the user's in the folder being replaced is kept, and
    the card goes to ``README.eu.md`` beside it.
    """
    from eu.commands.card import checkpoint_summary, find_run_logs, keep_user_readme, read_relearn, write_export_card

    dest = check_output_dir(out_dir, "export", overwrite, "OUT_DIR")  # fail before loading the model
    summary = checkpoint_summary(checkpoint)
    find_run_logs(checkpoint, summary["step"], log_dir)  # a wrong --log_dir or --relearn fails before loading, too
    if relearn is not None:
        read_relearn(relearn, checkpoint)
    model, tokenizer = model_from_checkpoint(checkpoint, trust_remote_code)
    model.config.use_cache = True
    with atomic_dir(out_dir, "export", overwrite, "OUT_DIR") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if dest.is_dir():
            keep_user_readme(dest, tmp)
        write_export_card(summary, checkpoint, tmp, dest.name, relearn, log_dir)
    return Path(out_dir)


def export(
    checkpoint: str,
    out_dir: str,
    overwrite: bool = False,
    trust_remote_code: bool = False,
    relearn: str | None = None,
    log_dir: str | None = None,
) -> None:
    """Write a Hugging Face folder with a model card from a checkpoint.

    Args:
        checkpoint: a .ckpt written by eu fit.
        out_dir: output folder: new, empty, or an earlier eu export with --overwrite.
        overwrite: replace OUT_DIR if an earlier eu export wrote it.
        trust_remote_code: allow the base model repository's own Python code.
        relearn: an ``eu attack relearn`` output folder (relearn.json) to report on the card.
        log_dir: the run's log folder (config.yaml, evaluation.json); found when omitted.
    """
    out = export_checkpoint(checkpoint, out_dir, overwrite, trust_remote_code, relearn, log_dir)
    print(f"exported {checkpoint} to {out} (model card: {out}/README.md)")
