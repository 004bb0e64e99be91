"""What a request would need in memory, checked against what a device has before it is
allocated: one line naming both sizes instead of minutes of swapping or an allocator's
traceback."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ArgumentError

if TYPE_CHECKING:
    import torch

__all__ = ["MAX_MODULES", "available_bytes", "build_limits", "check_fits", "format_bytes"]

MAX_MODULES = 20_000
"""Modules one model may have: the largest in the zoo has under a thousand, and a Python module
object costs memory and time even on `meta`."""


def format_bytes(size: float) -> str:
    """Bytes in decimal units, as memory is quoted: `512 B`, `25.7 GB`."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"


def available_bytes(device: torch.device | str | None = None) -> int | None:
    """Memory that `device` can still give (default cpu): MemAvailable of /proc/meminfo for the
    CPU, the free memory of a CUDA GPU; None where it is not known or not spent (`meta`)."""
    import torch

    device = torch.device(device if device is not None else "cpu")
    if device.type == "cpu":
        return _mem_available()
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.mem_get_info(device)[0]
    return None


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits(needed: int, what: str, device: torch.device | str | None = None) -> None:
    """Refuse `what` (`"a batch of 100000"`) in one line if it would need more than `device`
    has available; nothing happens where that is not known."""
    available = available_bytes(device)
    if available is not None and needed > available:
        raise ArgumentError(f"{what} would need {format_bytes(needed)}; {_has(device, available)}")


def _has(device: torch.device | str | None, available: int) -> str:
    where = str(device) if device is not None and str(device) != "cpu" else "this machine"
    return f"{where} has {format_bytes(available)} available"


class _BuildTally:
    """Modules and tensor bytes registered while a model is built, by one thread."""

    def __init__(self, label: str, device: torch.device | str | None) -> None:
        self.label = label
        self.device = device
        self.thread = threading.get_ident()
        self.modules = 0
        self.bytes = 0
        self.seen: set[int] = set()  # tied tensors are registered twice, allocated once
        self.available = available_bytes(device)  # None on meta: nothing to spend

    def module(self, module: object, name: str, submodule: object) -> None:
        if threading.get_ident() != self.thread:
            return
        self.modules += 1
        if self.modules > MAX_MODULES:
            raise ArgumentError(
                f"{self.label} would have more than {MAX_MODULES:,} modules (no model of the zoo "
                "comes near); check its depth, layers or other size arguments"
            )

    def tensor(self, module: object, name: str, tensor: torch.Tensor | None) -> None:
        if (
            tensor is None
            or tensor.is_meta
            or threading.get_ident() != self.thread
            or id(tensor) in self.seen
        ):
            return  # a tensor on meta costs nothing (a module built there, then given its own)
        self.seen.add(id(tensor))
        self.bytes += tensor.numel() * tensor.element_size()
        if self.available is not None and self.bytes > self.available:
            raise ArgumentError(
                f"{self.label} would need more than {format_bytes(self.bytes)} for its parameters "
                f"and buffers; {_has(self.device, self.available)}"
            )


@contextlib.contextmanager
def build_limits(label: str, device: torch.device | str | None) -> Iterator[None]:
    """While a model is built in this block (on `device`, default cpu), refuse it
    (`ArgumentError`) once it has more than `MAX_MODULES` modules, or once its parameters and
    buffers pass the memory `device` has available: counted as each is registered, before
    the rest is allocated or initialised."""
    from torch.nn.modules import module as hooks

    tally = _BuildTally(label, device)
    handles = [
        hooks.register_module_module_registration_hook(tally.module),
        hooks.register_module_parameter_registration_hook(tally.tensor),
        hooks.register_module_buffer_registration_hook(tally.tensor),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
