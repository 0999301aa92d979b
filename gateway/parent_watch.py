"""A child of ``ztgate up`` ends with it, even when ``up`` is killed outright.

``ztgate up`` stops its core banks and agent supervisors itself on SIGINT or
SIGTERM; a SIGKILL or a crash gives it no chance to, and they would run on,
orphaned, holding their ports. So ``up`` puts its pid in ``ZTGATE_PARENT_PID``,
and the child's entry point calls `die_with_parent`: Linux then sends the child
SIGTERM when that parent dies (``prctl(PR_SET_PDEATHSIG)``), and the child's own
graceful stop runs. The variable is consumed, so the child's own children (an
agent's workers) are not tied to a process that is not their parent.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Final

__all__ = ["PARENT_ENV", "die_with_parent"]

PARENT_ENV: Final = "ZTGATE_PARENT_PID"
_PR_SET_PDEATHSIG: Final = 1


def die_with_parent() -> None:
    """Ask for SIGTERM when the process named in ``ZTGATE_PARENT_PID`` dies (Linux);
    nothing without the variable or on another system."""
    expected = os.environ.pop(PARENT_ENV, None)
    if not expected or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return  # not fatal: ``up`` still stops its children on a normal exit
    if not expected.isdigit() or os.getppid() != int(expected):
        os.kill(os.getpid(), signal.SIGTERM)  # the parent is already gone
