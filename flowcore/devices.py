"""Where tensors live: ``"auto"`` picks CUDA when this machine has it, else the CPU."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a
    device.

    Raises:
        ValueError: For any other name, or a CUDA device that this machine does not have.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("gpu")
        Traceback (most recent call last):
        ...
        ValueError: device must be one of 'auto', 'cpu', 'cuda', 'cuda:N'; got 'gpu'
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or not (
        device in ("cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())
    ):
        raise ValueError(f"device must be one of 'auto', 'cpu', 'cuda', 'cuda:N'; got {device!r}")
    if device.startswith("cuda"):
        index = int(device[5:]) if ":" in device else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} was requested but this machine has no such CUDA device; "
                "use 'auto' or 'cpu'"
            )
    return torch.device(device)
