"""Loopback emulator of Composio's v3.1 Tool Router API (standard library only).

The real `composio` SDK runs against it unchanged; see docs/emulator.md.
"""

from __future__ import annotations

from .control import EmulatorControl, EmulatorControlError
from .faults import Faults
from .http import ENDPOINTS
from .server import Emulator, RecordedRequest
from .store import StateFileError

__all__ = [
    "ENDPOINTS",
    "Emulator",
    "EmulatorControl",
    "EmulatorControlError",
    "Faults",
    "RecordedRequest",
    "StateFileError",
]
