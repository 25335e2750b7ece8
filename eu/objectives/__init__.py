"""Training objectives; choose one in the config by ``class_path`` (``eu.objectives.ExclusiveUnlearning``).

Names are exported lazily (:mod:`eu.exports`), so that the data modules can import the pure loss
functions of :mod:`eu.objectives.losses` without importing every objective.
"""

from eu.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Objective": "eu.objectives.base",
        "ForgetWeighted": "eu.objectives.base",
        "AgainstReference": "eu.objectives.base",
        "DPO": "eu.objectives.dpo",
        "Eraser": "eu.objectives.eraser",
        "EraserRefusalSFT": "eu.objectives.eraser",
        "ExclusiveUnlearning": "eu.objectives.exclusive_unlearning",
        "GradientAscent": "eu.objectives.gradient_ascent",
        "NPO": "eu.objectives.npo",
        "ForgetToRefusal": "eu.objectives.refusals",
        "WithRefusals": "eu.objectives.refusals",
        "RetainOnly": "eu.objectives.retain_only",
        "SKUExpert": "eu.objectives.sku",
        "SKUNegation": "eu.objectives.sku",
        "SKURepaired": "eu.objectives.sku",
    },
)
