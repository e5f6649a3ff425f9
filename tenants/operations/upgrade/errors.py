class UpgradeError(RuntimeError):
    """The upgrade cannot go on; the message says why and what to do."""
