"""The embedded AWS emulator: moto with Step Functions execution on and Lambda run in local processes.

    from sfncopy.emulator import Emulator, free_port
    with Emulator(port=free_port()) as emulator:
        ...  # point boto3 at emulator.endpoint

Modules: ``server`` (Emulator, run_forever), ``bridges`` (the moto gaps), ``lambda_runner`` /
``lambda_worker`` (Lambda in local worker processes), ``faults`` (fault plans), ``middleware`` (S3
counting, SlowDown, the ``/_sfncopy/`` control endpoint), ``control`` (its client), ``stats``.

Names are imported lazily: a Lambda worker process imports ``lambda_worker`` without loading moto.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfncopy.emulator.faults import FaultPlan, FaultPlanError, LambdaFault, S3Faults
    from sfncopy.emulator.server import (
        DEFAULT_PORT,
        SFN_ENDPOINT_VARIABLE,
        Emulator,
        EmulatorError,
        free_port,
        run_forever,
        stepfunctions_endpoint,
    )

_EXPORTS = {
    "DEFAULT_PORT": "server", "SFN_ENDPOINT_VARIABLE": "server", "Emulator": "server", "EmulatorError": "server",
    "free_port": "server", "run_forever": "server", "stepfunctions_endpoint": "server",
    "FaultPlan": "faults", "FaultPlanError": "faults", "LambdaFault": "faults", "S3Faults": "faults",
}
__all__ = [
    "DEFAULT_PORT", "SFN_ENDPOINT_VARIABLE", "Emulator", "EmulatorError", "FaultPlan", "FaultPlanError",
    "LambdaFault", "S3Faults", "free_port", "run_forever", "stepfunctions_endpoint",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
