"""Training objectives; choose one in the config by ``class_path``."""

from eu.objectives.base import ForgetWeighted, Objective
from eu.objectives.dpo import DPO
from eu.objectives.eraser import Eraser, EraserRefusalSFT
from eu.objectives.exclusive_unlearning import ExclusiveUnlearning
from eu.objectives.gradient_ascent import GradientAscent
from eu.objectives.npo import NPO
from eu.objectives.refusals import ForgetToRefusal, WithRefusals
from eu.objectives.retain_only import RetainOnly
from eu.objectives.sku import SKUExpert, SKUNegation, SKURepaired

__all__ = [
    "DPO",
    "NPO",
    "Eraser",
    "EraserRefusalSFT",
    "ExclusiveUnlearning",
    "ForgetToRefusal",
    "ForgetWeighted",
    "GradientAscent",
    "Objective",
    "RetainOnly",
    "SKUExpert",
    "SKUNegation",
    "SKURepaired",
    "WithRefusals",
]
