"""Training objectives; choose one in the config by ``class_path``."""

from eu.objectives.base import ForgetWeighted, Objective
from eu.objectives.dpo import DPO
from eu.objectives.exclusive_unlearning import ExclusiveUnlearning
from eu.objectives.gradient_ascent import GradientAscent
from eu.objectives.npo import NPO
from eu.objectives.retain_only import RetainOnly

__all__ = ["DPO", "NPO", "ExclusiveUnlearning", "ForgetWeighted", "GradientAscent", "Objective", "RetainOnly"]
