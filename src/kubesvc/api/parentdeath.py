"""A child process that stops when the process that started it is gone.

``kubesvc up`` starts agents, the components process and DNS workers; none of
them may outlive it, even when it is killed outright.  The kernel does this
for us (``PR_SET_PDEATHSIG``): the child gets a signal, here SIGTERM, which
its usual handler turns into a clean stop.  No polling.
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def exit_with_parent(parent: int | None = None, sig: int = signal.SIGTERM) -> bool:
    """Have ``sig`` sent when the parent dies.  False when it is already gone (the signal will
    never come): it is not ``parent``, or, with no pid given, the child was handed to init."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    now = os.getppid()
    return now == parent if parent is not None else now != 1
