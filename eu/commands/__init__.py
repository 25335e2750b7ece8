"""The commands on top of the package: ``eu export``, ``eu evaluate``, ``eu chat``, ``eu sample``."""
