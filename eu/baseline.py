"""A deprecated alias: ``eu.baseline.RetainOnlyBaseline`` is now ``eu.callbacks.RetainOnlyBaseline``.

Configs that name the old class path keep working for one release, with a warning that says what
to change. The alias goes in the next release.
"""

import warnings

from eu.callbacks.retain_only import RetainOnlyBaseline

warnings.warn(
    "eu.baseline.RetainOnlyBaseline is now eu.callbacks.RetainOnlyBaseline: change the class_path in your "
    "config (the old name stops working in the next release)",
    FutureWarning,
    stacklevel=2,
)

__all__ = ["RetainOnlyBaseline"]
