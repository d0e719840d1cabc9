"""The network: a pretrained encoder with token heads (SI, per-technique) and a span classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoModel

from unspin.techniques import TECHNIQUES

__all__ = ["Network", "N_FEATS"]

N_FEATS = 6


class Network(nn.Module):
    def __init__(
        self, encoder_dir: str | Path, dropout: float = 0.1, layers: int | None = None
    ) -> None:
        super().__init__()
        self.encoder = AutoModel.from_pretrained(str(encoder_dir), local_files_only=True)
        if layers:  # keep the bottom `layers` transformer layers (a faster, smaller model)
            self.encoder.encoder.layer = self.encoder.encoder.layer[:layers]
            self.encoder.config.num_hidden_layers = layers
        h = self.encoder.config.hidden_size
        k = len(TECHNIQUES)
        self.drop = nn.Dropout(dropout)
        self.si = nn.Linear(h, 3)
        self.tech = nn.Linear(h, k)
        self.tc1 = nn.Linear(4 * h + k + N_FEATS, h)
        self.tc2 = nn.Linear(h, k)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        x = self.drop(hidden)
        return self.si(x), self.tech(x), hidden

    def span_logits(
        self,
        hidden: torch.Tensor,
        tech_logits: torch.Tensor,
        spans: list[tuple[int, int, int, torch.Tensor]],
    ) -> torch.Tensor:
        """spans: (batch row, a, b, feats) -> technique logits (m, 14)."""
        rows = []
        tech_p = torch.sigmoid(tech_logits)
        for r, a, b, feats in spans:
            h = hidden[r]
            rows.append(
                torch.cat(
                    [h[a:b].mean(0), h[a], h[b - 1], h[0], tech_p[r, a:b].mean(0), feats.to(h)]
                )
            )
        x = self.drop(torch.stack(rows).float())
        return self.tc2(nn.functional.gelu(self.tc1(x), approximate="tanh"))

    def tc_head_arrays(self) -> dict[str, np.ndarray]:
        return {
            "w1": self.tc1.weight.detach().float().cpu().numpy(),
            "b1": self.tc1.bias.detach().float().cpu().numpy(),
            "w2": self.tc2.weight.detach().float().cpu().numpy(),
            "b2": self.tc2.bias.detach().float().cpu().numpy(),
        }
