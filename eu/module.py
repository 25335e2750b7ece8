"""The LightningModule: one causal LM, one objective, AdamW with a linear schedule."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import lightning as L
import torch
from jsonargparse import lazy_instance
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.utilities import rank_zero_warn

from eu.errors import EUError
from eu.models import check_attn_implementation, check_dtype, compile_decoder, load_model, sampling_dtype
from eu.models.checkpoint import checkpoint_metadata
from eu.models.logits import check_logit_path
from eu.models.lora import LoraOptions, adapter_state, apply_lora, check_lora_strategy
from eu.objectives import ExclusiveUnlearning, Objective
from eu.objectives.robust import check_robust_strategy, robust_losses, robust_options
from eu.optim import loses_updates, use_fused_kernel
from eu.prompts import load_chat_template, load_chat_tokenizer
from eu.rng import preserved_rng, rng_states, set_rng_states

DEFAULT_OBJECTIVE = lazy_instance(ExclusiveUnlearning)


def default_optimizer(params: Any) -> torch.optim.Optimizer:
    """AdamW at the reference learning rate 1e-5 without weight decay."""
    return torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)


class UnlearningModule(L.LightningModule):
    """Owns the causal LM and the objective; ``training_step`` gets ``{"retain", "forget"}``."""

    def __init__(
        self,
        model: str,
        objective: Objective = DEFAULT_OBJECTIVE,
        dtype: str | None = None,
        trust_remote_code: bool = False,
        chat_template: str | None = None,
        optimizer: OptimizerCallable = default_optimizer,
        lr_schedule: str = "linear",
        warmup_steps: int = 0,
        gradient_checkpointing: bool = False,
        attn_implementation: str | None = None,
        lora: LoraOptions | None = None,
        compile: bool = False,
        robust: str | None = None,
        robust_rho: float = 0.01,
        robust_steps: int = 1,
        robust_lr: float = 1e-3,
        robust_data: str = "retain",
    ) -> None:
        """
        Args:
            model: Hugging Face id, local folder or alias (``tiny-llama``).
            objective: the training objective; defaults to ExclusiveUnlearning(λ=0.4).
            dtype: weights dtype (``float32``, ``bfloat16``, ``float16``); for mixed precision
                use ``trainer.precision`` instead.
            trust_remote_code: allow custom model code from the model repository.
            chat_template: Jinja template (string or ``.jinja`` path) overriding the tokenizer's.
            optimizer: optimizer factory; AdamW at lr 1e-5 by default.
            lr_schedule: a transformers scheduler name (``linear``, ``cosine``, ``constant``, ...).
            warmup_steps: learning-rate warm-up steps (0 in the reference recipe).
            gradient_checkpointing: recompute decoder activations in backward to save memory.
            attn_implementation: ``sdpa``, ``eager``, ``flex_attention`` or ``flash_attention_2``/``_3``;
                each keeps packed examples from attending to one another. Unset: the model family's
                default (SDPA where the family supports it, eager otherwise, e.g. Gemma-2).
            lora: train low-rank adapters instead of all weights (needs ``peft``).
            compile: ``torch.compile`` the decoder (dynamic shapes; a C++ compiler on CPU). Off by
                default: on a small CPU its compile time can outweigh the faster steps of a short
                run (docs/performance.md measures it).
            robust: take the forget term's gradient where relearning would move the weights
                (docs/tamper_resistance.md): ``sam`` (at θ + ρ·g/‖g‖) or ``adversarial`` (after
                ``robust_steps`` simulated SGD steps); unset: plain gradient. Needs a λ-weighted
                objective (ExclusiveUnlearning and the other ``ForgetWeighted`` ones).
            robust_rho: SAM's perturbation radius ρ.
            robust_steps: simulated fine-tuning steps k of ``adversarial``.
            robust_lr: learning rate of those simulated SGD steps.
            robust_data: what they fine-tune on: the step's ``retain`` batch or the ``forget`` responses.
        """
        check_dtype(dtype)  # before anything is loaded
        check_attn_implementation(attn_implementation)
        robust_settings = robust_options(robust, robust_rho, robust_steps, robust_lr, robust_data, objective)
        super().__init__()
        self.save_hyperparameters(ignore=["objective", "optimizer"])
        self.model_name = model
        self.objective = objective
        self.dtype_name = dtype
        self.trust_remote_code = trust_remote_code
        self.chat_template = chat_template
        self.optimizer_factory = optimizer
        self.lr_schedule = lr_schedule
        self.warmup_steps = warmup_steps
        self.gradient_checkpointing = gradient_checkpointing
        self.attn_implementation = attn_implementation
        self.lora = lora
        self.compile = compile
        self.robust = robust_settings
        # LoRA checkpoints hold only the adapter and none hold the frozen reference: both come
        # from ``model`` when the module is rebuilt
        self.strict_loading = lora is None and not objective.needs_reference
        self.model: Any = None
        self.reference_model: Any = None
        self._tokenizer: Any = None
        self._resumed_rng: dict[str, Any] | None = None

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = load_chat_tokenizer(self.model_name, self.trust_remote_code, self.chat_template)
        return self._tokenizer

    def connect_data(self, datamodule: Any) -> None:
        """Give ``datamodule`` (an :class:`eu.data.UnlearningDataModule`) this model's chat tokenizer
        and what a self-generated forget corpus is sampled from: a loader of a fresh copy of the base
        model and the dtype it loads in, decided once (:func:`eu.models.sampling_dtype`: bfloat16
        where the device computes it natively), so the corpus cache is keyed by the dtype it was
        really sampled in."""
        dtype = sampling_dtype()
        datamodule.connect(self.tokenizer, self.model_name, lambda: self._load_base(dtype), dtype)

    def _load_base(self, dtype: str | None) -> Any:
        return load_model(self.model_name, dtype, self.trust_remote_code, self.attn_implementation)

    def prepare_data(self) -> None:
        """Fetch or convert the model and the callbacks' evaluation data once, before any rank needs them.

        Lightning calls this on local rank 0 while the other ranks wait.
        """
        from eu.models import resolve_model

        with preserved_rng():  # converting a model on the first run must not shift training's random draws
            resolve_model(self.model_name)
            for callback in self._trainer.callbacks if self._trainer is not None else []:
                prepare = getattr(callback, "prepare_data", None)
                if callable(prepare):
                    prepare()

    def configure_model(self) -> None:
        if self.model is not None:
            return
        check_lora_strategy(getattr(self._trainer, "strategy", None), self.lora)
        check_robust_strategy(getattr(self._trainer, "strategy", None), self.robust)
        self.model = self._load_base(self.dtype_name)
        if self.gradient_checkpointing:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.model.config.use_cache = False
        check_logit_path(self.model)
        if self.lora is not None and self.objective.rewrites_weights:
            raise EUError(
                f"{type(self.objective).__name__} rewrites the base weights, which LoRA checkpoints do not hold "
                "(eu export would rebuild the model without the change): drop model.lora"
            )
        self.objective.prepare_model(self.model)
        if self.lora is not None:
            self.model = apply_lora(self.model, self.lora)
        elif self.objective.needs_reference:
            # a registered submodule, so FSDP shards it like the trained copy
            self.reference_model = self._load_base(self.dtype_name)
            self.reference_model.requires_grad_(False).eval()
            self.reference_model.config.use_cache = False
        if self.compile:
            compile_decoder(self.model)
        self.model.train()

    def train(self, mode: bool = True) -> UnlearningModule:
        """Switch the trained model's mode; the frozen reference always stays in eval mode."""
        super().train(mode)
        if self.reference_model is not None:
            self.reference_model.eval()
        return self

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def _losses(self, batch: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if self.objective.needs_reference:
            return self.objective(self.model, batch, reference=self.reference_model)
        return self.objective(self.model, batch)

    def step_losses(self, batch: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """A training step's losses; with ``robust``, ``loss/total``'s gradient holds the forget gradient
        at the perturbed or adapted weights (:mod:`eu.objectives.robust`), the weights back at θ."""
        if self.robust is None:
            return self._losses(batch)
        return robust_losses(self.objective, self.model, batch, self.robust)  # type: ignore[arg-type]

    def training_step(self, batch: dict[str, dict[str, torch.Tensor]], batch_idx: int) -> torch.Tensor:
        losses = self.step_losses(batch)
        self._stop_if_non_finite("loss", losses)
        positions = sum(b["input_ids"].numel() for b in batch.values())
        real = sum(int((b["sequence_index"] >= 0).sum()) for b in batch.values())
        self.log_dict(losses, prog_bar=False, sync_dist=True, batch_size=1)
        self.log("loss", losses["loss/total"].detach(), prog_bar=True, logger=False, batch_size=1)
        self.log("data/packing_efficiency", real / max(positions, 1), batch_size=1)
        optimizer = self.optimizers(use_pl_optimizer=False)
        self.log("lr", optimizer.param_groups[0]["lr"], prog_bar=True, batch_size=1)
        if self.global_step == 0 and batch_idx == 0 and self.trainer.log_every_n_steps > 1:
            self._log_first_step(losses)
        return losses["loss/total"]

    def _log_first_step(self, losses: dict[str, torch.Tensor]) -> None:
        """Write the first step's losses, averaged over ranks, at step 0.

        Lightning logs every ``log_every_n_steps``-th step only, from step n − 1 on; the first
        step shows where every term starts (for example whether Eraser's ascent is active at all).
        """
        values = {
            k: float(self.trainer.strategy.reduce(v.detach().float(), reduce_op="mean")) for k, v in losses.items()
        }
        for logger in self.loggers:
            logger.log_metrics(values, step=0)

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        """Step the optimizer, unless the objective leaves the weights as they are (``updates_weights``
        false): then only the step's losses are computed (and logged)."""
        if self.objective.updates_weights:
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        elif optimizer_closure is not None:
            optimizer_closure()

    def _stop_if_non_finite(self, what: str, values: dict[str, torch.Tensor]) -> None:
        """Stop ``fit`` (on every rank) before a non-finite value can reach the weights or a checkpoint."""
        finite = bool(torch.stack([torch.isfinite(v).all() for v in values.values()]).all())  # one host sync
        if self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            return
        shown = ", ".join(f"{k}={float(v.detach().float().norm()):.6g}" for k, v in values.items())
        where = "on this rank" if not finite else "on another rank"
        raise EUError(
            f"non-finite {what} at step {self.global_step} {where} ({shown}); training stopped before the update, "
            "so the last checkpoint holds finite weights. Lower the learning rate, use float32 or bf16-mixed "
            "instead of float16, or check the data of this step"
        )

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads:
            self._stop_if_non_finite("gradient", {"grad_norm": torch.nn.utils.get_total_norm(grads)})

    def _eval_step(self, batch: dict[str, dict[str, torch.Tensor]], prefix: str) -> None:
        losses = self._losses(batch)
        self.log_dict({f"{prefix}/{k}": v for k, v in losses.items()}, sync_dist=True, batch_size=1)

    def validation_step(self, batch: dict[str, dict[str, torch.Tensor]], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, dict[str, torch.Tensor]], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self) -> Any:
        from transformers import get_scheduler

        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params)
        precision_plugin = getattr(self._trainer, "precision_plugin", None)
        use_fused_kernel(optimizer, grad_scaler=getattr(precision_plugin, "scaler", None) is not None)
        if loses_updates(optimizer):
            rank_zero_warn(
                f"eu: {type(optimizer).__name__} updates 16-bit weights in 16 bits, so updates below 1/256 of a "
                "weight round away; use --model.optimizer eu.optim.MasterWeightAdamW (float32 master weights) "
                "or trainer.precision bf16-mixed"
            )
        if not self.objective.updates_weights:  # never stepped, so no schedule to step either
            return optimizer
        total = self.trainer.estimated_stepping_batches if self.trainer is not None else None
        if total is None or total == float("inf"):
            if self.lr_schedule not in ("constant", "constant_with_warmup"):
                raise EUError(f"lr_schedule={self.lr_schedule!r} needs a finite trainer.max_steps")
            total = 0
        scheduler = get_scheduler(
            self.lr_schedule, optimizer, num_warmup_steps=self.warmup_steps, num_training_steps=int(total)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.lora is not None:
            checkpoint["state_dict"] = adapter_state(checkpoint["state_dict"])
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("reference_model.")
        }
        checkpoint["eu"] = checkpoint_metadata(
            self.model_name,
            self.dtype_name,
            self.trust_remote_code,
            load_chat_template(self.chat_template),
            self.objective,
            asdict(self.lora) if self.lora is not None else None,
        )
        checkpoint["eu_rng"] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resumed_rng = checkpoint.get("eu_rng")

    def on_train_start(self) -> None:
        # restored here, after the checkpoint and any sanity check, so a resumed run draws the
        # same random numbers (dropout, sampling) as the uninterrupted one from this step on
        if self._resumed_rng is not None:
            set_rng_states(self._resumed_rng)
            self._resumed_rng = None

    def configure_callbacks(self) -> list[L.Callback]:
        from eu.callbacks.throughput import ThroughputLogger

        return [ThroughputLogger()]
