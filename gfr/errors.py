"""User-facing errors: each is shown as one line, without a traceback."""


class GfrError(Exception):
    """A user's mistake or bad input; the message names what and where."""


class WeightsUnavailable(GfrError):
    """A backbone's ImageNet weights cannot be had on this machine (the run is skipped)."""
