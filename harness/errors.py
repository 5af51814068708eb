"""Errors a user can act on: shown as one line, never as a traceback."""


class HarnessError(Exception):
    """Base: the message is one line that names the problem and the fix."""


class UsageError(HarnessError):
    """Bad input (role, fault, topology, URL, parameter): nothing has been touched."""


class HostError(HarnessError):
    """The host did not do what was asked (did not boot, did not answer)."""


class NotSteady(HostError):
    """The guests did not all boot, or their devices did not all progress, within the host's
    deadline: on a loaded host (harness/scale.py) this is saturation, elsewhere a failure."""
