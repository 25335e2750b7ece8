"""Training objectives; choose one in the config by ``class_path``."""

from eu.objectives.base import Objective
from eu.objectives.exclusive_unlearning import ExclusiveUnlearning
from eu.objectives.retain_only import RetainOnly

__all__ = ["ExclusiveUnlearning", "Objective", "RetainOnly"]
