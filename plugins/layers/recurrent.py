"""Recurrent encoders of padded batches."""

from __future__ import annotations

import torch
from torch import nn

from zoo.errors import ArgumentError

__all__ = ["LSTMEncoder"]


class LSTMEncoder(nn.Module):
    """An LSTM over a padded batch: `(B, T, F)` and lengths -> every step's output and the
    final states.

    Padded steps are skipped (packed sequences), so a backward LSTM starts at each
    sequence's own last element; their outputs are zeros. Outputs are `(B, T, output_size)`
    with `output_size = hidden_size * (2 if bidirectional else 1)`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.output_size = hidden_size * (2 if bidirectional else 1)
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
            device=device,
            dtype=dtype,
        )

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """-> outputs (B, T, output_size), (h_n, c_n) each (layers * directions, B, hidden_size)."""
        if x.ndim != 3 or x.shape[0] == 0:
            raise ArgumentError(f"expected a (B, T, features) batch with B >= 1, got {tuple(x.shape)}")
        if lengths is None:
            return self.lstm(x)
        # packing needs lengths on the CPU and at least one step; empty sequences are masked later
        lengths = _checked_lengths(torch.as_tensor(lengths).to("cpu", torch.int64), x)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        outputs, state = self.lstm(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=x.shape[1])
        return outputs, state


def _checked_lengths(lengths: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Lengths that fit the batch, at least 1 each; read on the CPU, where packing needs them."""
    batch, steps = x.shape[:2]
    if lengths.shape != (batch,):
        raise ArgumentError(
            f"lengths must be (B,) = ({batch},), one per sequence; got {tuple(lengths.shape)}"
        )
    longest = int(lengths.max())
    if longest > steps or int(lengths.min()) < 0:
        raise ArgumentError(f"lengths must lie in 0..{steps}, the batch's steps; got up to {longest}")
    return lengths.clamp_min(1)
