"""Hard (stochastic) attention: pick one element of the sequence.

Xu et al., "Show, Attend and Tell: Neural Image Caption Generation with Visual Attention",
ICML 2015 (hard attention). https://arxiv.org/abs/1502.03044
Williams, "Simple Statistical Gradient-Following Algorithms for Connectionist Reinforcement
Learning", Machine Learning 1992 (REINFORCE).

The scores of soft attention define a categorical distribution over the real elements. In
training one element is sampled from it, in evaluation the most likely one is taken; the
output is that element. The pick is not differentiable, so the module returns its
log-probability: adding `-(reward - baseline).detach() * log_prob` to the loss trains the
scorer (REINFORCE), while the task loss still trains whatever produced the elements.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .functional import Pooled, masked_log_softmax, masked_softmax
from .soft import AttentionScorer, Hidden, weighted_sum

__all__ = ["HardAttentionPooling"]


class HardAttentionPooling(nn.Module):
    def __init__(
        self,
        dim: int,
        *,
        hidden: Hidden | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.score = AttentionScorer(dim, dim if hidden is None else hidden, device=device, dtype=dtype)

    def distribution(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The probabilities a pick is drawn from, (B, N); zero at masked elements."""
        return masked_softmax(self.score(x), mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> Pooled:
        """(B, N, dim), mask (B, N) -> Pooled((B, dim), one-hot (B, N), log-probability (B,)).

        Samples in training mode, takes the argmax in evaluation mode. A sequence with no
        real element gets zeros and a log-probability of 0.
        """
        scores = self.score(x)
        log_probs = masked_log_softmax(scores, mask)  # rows without elements: all 0
        if self.training:
            index = torch.multinomial(log_probs.detach().exp(), 1).squeeze(1)
        else:
            index = log_probs.argmax(dim=-1)
        weights = F.one_hot(index, x.shape[1]).to(x.dtype)
        if mask is not None:  # a row with no element to pick (whatever the mask's dtype) picks nothing
            weights = weights * (masked_softmax(scores, mask).sum(dim=-1, keepdim=True) > 0)
        log_prob = log_probs.gather(1, index.unsqueeze(1)).squeeze(1)
        return Pooled(weighted_sum(weights, x), weights, log_prob)
