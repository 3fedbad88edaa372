"""SASRec (Kang & McAuley, ICDM 2018): next-song prediction with causal self-attention, a baseline for BERT4Rec.

The same item representation and sequence encoder as models/bert4rec.py, with a causal mask: position t sees
songs 1..t and predicts song t + 1, so every prefix of a window is a training example. Scores come from the
hidden state of the newest song against the tied item table (full softmax, or sampled with log-Q correction,
as BERT4Rec). With no content tables it is the classic ID-only SASRec.
"""

from __future__ import annotations

import torch

from mmrec.models.bert4rec import BERT4Rec


class SASRec(BERT4Rec):
    """forward(tokens, labels) -> loss, labels = the next song at each position (0 = none);
    score(histories) -> (B, N + 1 [+ C]) from the newest song's hidden state."""

    @torch.no_grad()
    def score(self, histories: torch.Tensor, cold_contents: list[torch.Tensor] | None = None,
              tables: list[torch.Tensor] | None = None) -> torch.Tensor:
        recent = histories[:, -(self.config.max_length - 1):]  # as long as the training inputs
        return self._score_newest(recent, cold_contents, tables)  # the newest song is always the last position (left padding)


def build(config, contents=None) -> BERT4Rec:
    """The model class the config's architecture names."""
    return (SASRec if config.architecture == "sasrec" else BERT4Rec)(config, contents)
