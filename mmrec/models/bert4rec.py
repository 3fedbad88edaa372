"""Multimodal BERT4Rec: a bidirectional transformer over playlists whose songs are represented by their content.

BERT4Rec (Sun et al., CIKM 2019) learns next-item prediction as a cloze task: random songs of a playlist are
replaced by [MASK] and predicted from both sides. The USC report "Multimodal Music Recommender System" starts the
item embeddings from fused song content (audio, lyrics, album art, artist biography) and fine-tunes them.

Method, in reading order:
1. Item representation. A song's content vector goes through a projection (linear, or a 2-layer MLP); an
   optional learned ID embedding is added; then LayerNorm, or none (free rows whose norm can carry popularity).
   The content table is a parameter, fine-tuned or frozen. With no content at all this is plain ID-only BERT4Rec.
   With `id_dropout` p, each training step leaves a share p of the songs without their ID row (DropoutNet, Volkovs
   et al., NeurIPS 2017; one draw for every fusion stream): content alone must place them, as it must for rare
   songs and songs never played.
2. Sequence encoder. Item representations plus learned positions, then a bidirectional transformer.
3. Fusion. `concat`: the modality vectors are concatenated and projected once, one encoder. `per_modality`: one
   representation and one encoder per modality (the report's Figure 2b); hidden states and item tables are
   combined with learned softmax weights, then LayerNorm.
4. Tied output. A hidden state is scored against the same item representations the input used, so any song with
   a content vector, including songs never seen in training, can be ranked.
5. Training computes states and logits only at masked positions (the last transformer layer's projection and
   feed-forward run only there), with a full softmax or a sampled softmax with log-Q correction. At inference
   [MASK] is appended after the full history, never written over its last song.
6. Popularity. With `logit_adjustment` tau, training logits get tau x log(1 + training plays) added (the
   logit-adjusted loss of Menon et al., ICLR 2021), so the item rows learn what popularity does not explain
   instead of pushing the long tail down; scores keep the term. Scoring may add more, popularity_weight x the same
   log, that weight chosen on validation (never part of the loss): it recalibrates the head at scoring time.

Token ids: 0 = padding, 1..N = songs (item_idx), N + 1 = [MASK]. No file I/O, no Ray, no config files here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

PADDING = 0
ID_STD = 0.02  # free ID rows and the positions beside them start here, as in RecBole
PRIOR_BUFFERS = ("popularity_log", "popularity_weight")  # saved with the weights, not parameters


def left_pad(sequences: list[np.ndarray], length: int, padding: int = PADDING) -> np.ndarray:
    """(B, length) int64 token rows: each sequence's last `length` entries, right-aligned, padding on the left
    (the model's input layout: the newest song is always the last position)."""
    out = np.full((len(sequences), length), padding, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        tail = sequence[-length:] if length else sequence[:0]
        if len(tail):
            out[row, length - len(tail):] = tail
    return out


# --- 1. item representation -------------------------------------------------------------------------------

class ItemRepresentation(nn.Module):
    """Rows 0..N of the item table, (N + 1, hidden): projected content (+ an ID embedding), LayerNorm."""

    def __init__(self, num_items: int, hidden: int, content: torch.Tensor | None, projection: str,
                 id_embedding: bool, content_trainable: bool, normalise: bool = True):
        super().__init__()
        if content is None and not id_embedding:
            raise ValueError("an item representation needs content, an ID embedding, or both")
        self.content = None if content is None else nn.Parameter(content.float().clone(),
                                                                 requires_grad=content_trainable)  # (N + 1, D)
        if content is not None:
            width = content.shape[1]
            self.project = (nn.Linear(width, hidden) if projection == "linear" else
                            nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, hidden)))
        self.ids = nn.Embedding(num_items + 1, hidden, padding_idx=PADDING) if id_embedding else None
        if self.ids is not None:
            nn.init.normal_(self.ids.weight, std=ID_STD)
            with torch.no_grad():
                self.ids.weight[PADDING].zero_()
        # LayerNorm puts content and IDs on one scale, but gives every song the same norm; without it a song's
        # norm is free to carry its popularity, as in RecBole's SASRec.
        self.norm = nn.LayerNorm(hidden) if normalise else nn.Identity()
        if content is not None and not normalise:
            self._start_content_at(ID_STD)

    @torch.no_grad()
    def _start_content_at(self, std: float) -> None:
        """Scale the projection's last layer so projected content rows start at `std`, the free ID rows' scale.
        Unit-variance content through torch's default init gives rows of std ~0.6: beside positions at 0.02 and
        with logits unscaled, the first epochs would fight a saturated softmax (loss 15 against 6.6 at epoch 1 on
        the peer split, docs/benchmarks.md)."""
        last = self.project if isinstance(self.project, nn.Linear) else self.project[-1]
        rows = self.content[1:]  # row 0 is padding
        produced = float(self.project(rows[:: max(1, len(rows) // 65536)]).std())  # a sample: catalogues are huge
        if produced > 0:
            last.weight.mul_(std / produced)
            last.bias.mul_(std / produced)

    def rows(self, ids: torch.Tensor, ids_kept: torch.Tensor | None = None) -> torch.Tensor:
        """Rows `ids` (U,) of the item table, (U, H), computed for those songs only (what a sampled-softmax step
        reads: its songs, targets and negatives, whatever the catalogue's size). LayerNorm is per row, so each
        row equals the full table's. `ids_kept` (U,) bool: which of these songs keep their ID row (ID dropout)."""
        parts = []
        if self.content is not None:
            parts.append(self.project(self.content[ids]))
        if self.ids is not None:
            parts.append(_drop_ids(self.ids(ids), ids_kept))
        return self.norm(torch.stack(parts).sum(0))

    def forward(self, cold_content: torch.Tensor | None = None, ids_kept: torch.Tensor | None = None) -> torch.Tensor:
        """The item table (N + 1, H); with `cold_content` (C, D), C more rows for songs outside the catalogue,
        from content alone. `ids_kept` (N + 1,) bool: which songs keep their ID row (ID dropout)."""
        rows = []
        if self.content is not None:
            rows.append(self.project(self.content))
        if self.ids is not None:
            rows.append(_drop_ids(self.ids.weight, ids_kept))
        table = self.norm(torch.stack(rows).sum(0))  # (N + 1, H)
        if cold_content is not None:
            if self.content is None:
                raise ValueError("an ID-only model cannot score songs outside its catalogue")
            table = torch.cat([table, self.norm(self.project(cold_content.to(table.dtype)))])  # (N + 1 + C, H)
        return table


def _drop_ids(id_rows: torch.Tensor, kept: torch.Tensor | None) -> torch.Tensor:
    """ID rows (R, H) with the songs not `kept` (R,) zeroed, each row whole: those songs are content alone for this
    step, in the input and in the softmax alike. Unscaled, unlike activation dropout: a song without its ID row is
    what a cold song is at scoring time."""
    return id_rows if kept is None else id_rows * kept[:, None].to(id_rows.dtype)


# --- 2. sequence encoder ----------------------------------------------------------------------------------

class SequenceEncoder(nn.Module):
    """Embedded items (B, L, H) + learned positions -> bidirectional transformer -> hidden states (B, L, H)."""

    def __init__(self, hidden: int, layers: int, heads: int, max_length: int, dropout: float, causal: bool = False,
                 position_std: float = 1.0):
        super().__init__()
        self.causal, self.heads = causal, heads  # causal: each position sees only itself and earlier ones (SASRec)
        # Positions start at the item rows' scale: unit variance beside layer-normalised rows, std 0.02 beside a
        # free ID table initialised at 0.02 (as RecBole does), or they would drown the songs at the input.
        self.positions = nn.Embedding(max_length, hidden)  # torch's default: N(0, 1)
        if position_std != 1.0:
            nn.init.normal_(self.positions.weight, std=position_std)
        self.mask_embedding = nn.Parameter(torch.randn(hidden) * 0.02)  # [MASK] has no content
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=4 * hidden, dropout=dropout,
                                           activation="gelu", batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, tokens: torch.Tensor, item_table: torch.Tensor, mask_token: int,
                outputs: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states (B, L, H); with `outputs` (B, L) bool, only those positions' states (M, H), in row-major
        order. Every layer but the last must run at every position (they are the last one's keys and values), but
        the last layer's output projection and feed-forward, most of its cost, run only where a state is read:
        the masked positions in training (about a fifth), the appended [MASK] at inference."""
        embedded = item_table[tokens.clamp(max=mask_token - 1)]  # (B, L, H); [MASK] rows replaced next
        embedded = torch.where((tokens == mask_token)[..., None], self.mask_embedding, embedded)
        # Right-aligned positions: the newest song (or the appended [MASK]) is always position max_length - 1,
        # whatever the padding of the batch it is in, in training and at inference alike.
        positions = torch.arange(self.positions.num_embeddings - tokens.shape[1], self.positions.num_embeddings,
                                 device=tokens.device)
        x = self.dropout(self.norm(embedded + self.positions(positions)))  # (B, L, H)
        visible = self._visible(tokens)
        layers = self.transformer.layers
        for i, layer in enumerate(layers):
            x = encoder_layer(layer, x, visible, outputs if i == len(layers) - 1 else None)
        return x

    def _visible(self, tokens: torch.Tensor) -> torch.Tensor:
        """Which keys each query may attend to, (B, 1, L, L) or (B, 1, 1, L) bool (True = visible)."""
        visible = (tokens != PADDING)[:, None, None, :]  # (B, 1, 1, L)
        if not self.causal:
            return visible
        length = tokens.shape[1]
        earlier = torch.ones(length, length, dtype=torch.bool, device=tokens.device).tril()  # (L, L)
        # A position may always see itself, so a padding row (no visible song yet) never goes empty.
        return (visible & earlier) | torch.eye(length, dtype=torch.bool, device=tokens.device)


def encoder_layer(layer: nn.TransformerEncoderLayer, x: torch.Tensor, visible: torch.Tensor,
                  outputs: torch.Tensor | None) -> torch.Tensor:
    """torch's post-norm TransformerEncoderLayer (its own weights and dropouts), computed at `outputs` only:
    attention runs over every position, then the rows nobody reads are dropped before the output projection."""
    attention = layer.self_attn
    batch, length, hidden = x.shape
    heads = attention.num_heads
    q, k, v = F.linear(x, attention.in_proj_weight, attention.in_proj_bias).view(
        batch, length, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)  # 3 x (B, heads, L, H / heads)
    attended = F.scaled_dot_product_attention(q, k, v, attn_mask=visible,
                                              dropout_p=attention.dropout if layer.training else 0.0)
    attended = attended.transpose(1, 2).reshape(batch, length, hidden)  # (B, L, H)
    if outputs is not None:
        x, attended = x[outputs], attended[outputs]  # (M, H)
    x = layer.norm1(x + layer.dropout1(attention.out_proj(attended)))
    return layer.norm2(x + layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))))


# --- 3. configuration and the model -----------------------------------------------------------------------

@dataclass(frozen=True)
class BERT4RecConfig:
    num_items: int  # N; item ids 1..N
    architecture: Literal["bert4rec", "sasrec"] = "bert4rec"  # sasrec: models/sasrec.py
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    max_length: int = 50
    dropout: float = 0.2
    fusion: Literal["concat", "per_modality"] = "concat"
    modalities: tuple[str, ...] = ()  # names of the content tables, in order; () = ID-only
    content_dims: tuple[int, ...] = ()  # width of each content table
    projection: Literal["linear", "mlp"] = "linear"
    id_embedding: bool = True
    content_trainable: bool = True  # fine-tuned (the report found frozen worse)
    item_norm: bool = True  # LayerNorm on item rows (every song the same norm); False: free norms, logit scale 1
    loss: Literal["full", "sampled"] = "full"
    negatives: int = 1024  # sampled softmax: shared negatives per batch
    logit_adjustment: float = 0.0  # tau: training logits + tau x log(1 + training plays), kept in scores
    id_dropout: float = 0.0  # share of songs whose ID row a training step leaves out (content alone places them)
    extra: dict = field(default_factory=dict)  # free-form notes kept with the weights (never read by the model)

    @property
    def mask_token(self) -> int:
        return self.num_items + 1

    def to_dict(self) -> dict:
        return {**asdict(self), "modalities": list(self.modalities), "content_dims": list(self.content_dims)}

    @classmethod
    def from_dict(cls, values: dict) -> "BERT4RecConfig":
        return cls(**{**values, "modalities": tuple(values.get("modalities", ())),
                      "content_dims": tuple(values.get("content_dims", ()))})


class BERT4Rec(nn.Module):
    """forward(tokens, labels) -> training loss; score(histories) -> (B, N + 1 [+ C]) scores for the next song."""

    def __init__(self, config: BERT4RecConfig, contents: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.config = config
        contents = contents or {}
        if set(contents) != set(config.modalities):
            raise ValueError(f"content tables {sorted(contents)} do not match config.modalities {config.modalities}")
        tables = [contents[name] for name in config.modalities]
        if config.fusion == "per_modality" and tables:
            streams = [(t, config.id_embedding) for t in tables]
        else:  # concat, or ID-only
            streams = [(torch.cat(tables, dim=1) if tables else None, config.id_embedding)]
        self.items = nn.ModuleList(
            ItemRepresentation(config.num_items, config.hidden, table, config.projection, use_ids,
                               config.content_trainable, config.item_norm)
            for table, use_ids in streams)
        self.encoders = nn.ModuleList(
            SequenceEncoder(config.hidden, config.layers, config.heads, config.max_length, config.dropout,
                            causal=config.architecture == "sasrec", position_std=1.0 if config.item_norm else ID_STD)
            for _ in streams)
        self.stream_weights = nn.Parameter(torch.zeros(len(streams)))  # softmax -> equal weights at the start
        self.output_norm = nn.LayerNorm(config.hidden) if len(streams) > 1 else nn.Identity()
        # Hidden states and item rows are both layer-normalised (norm about sqrt(H)), so raw dot products start
        # near +-H and the first epochs would fight saturated softmaxes; a learned scale starts them at 1/sqrt(H).
        self.logit_scale = nn.Parameter(torch.tensor(config.hidden ** -0.5 if config.item_norm else 1.0))
        # Sampled softmax draws negatives from this distribution (uniform unless set from song counts).
        self.register_buffer("sampling_probabilities", torch.full((config.num_items,), 1.0 / config.num_items),
                             persistent=False)
        # A popularity prior added to every score: (logit_adjustment + popularity_weight) x log(1 + a song's
        # training plays). The first part is in the training logits too; popularity_weight is chosen on validation
        # (train.popularity_weights) and never part of the loss: late in training the model ranks rare songs better
        # and popular ones worse, and it gives the head back at scoring time. Both buffers are saved with the
        # weights; weights from before they existed load with popularity_weight off.
        self.register_buffer("popularity_log", torch.zeros(config.num_items + 1))
        self.register_buffer("popularity_weight", torch.zeros(()))
        self._register_load_state_dict_pre_hook(_prior_off_when_missing, with_module=True)

    def set_popularity(self, train_counts, artists=None) -> None:
        """The prior's song term from training plays (N,) of songs 1..N. A song without plays (held out of
        training) is unknown, not unpopular: it gets the mean song's term, as songs outside the catalogue do, so
        the prior never buries the songs only content can rank. With `artists` (N,) ints (-1 = unknown), it gets
        its artist's instead: the mean term of the artist's played songs, shrunk towards the mean song's as if
        the artist had one more song at the mean (an artist's songs share an audience; content does not carry it)."""
        device = self.popularity_log.device
        counts = torch.as_tensor(train_counts, dtype=torch.float32, device=device)
        logs = torch.log1p(counts)
        played = counts > 0
        mean = logs[played].mean() if played.any() else torch.zeros((), device=device)
        unplayed = mean.expand_as(logs)
        if artists is not None:
            artists = torch.as_tensor(artists, dtype=torch.long, device=device)
            known = played & (artists >= 0)
            size = max(int(artists.max()) + 1 if len(artists) else 0, 1)  # >= 1: indexable when every artist is -1
            sums = torch.zeros(size, device=device).index_add_(0, artists[known], logs[known])
            songs = torch.zeros(size, device=device).index_add_(0, artists[known], torch.ones_like(logs[known]))
            by_artist = (sums + mean) / (songs + 1)
            unplayed = torch.where(artists >= 0, by_artist[artists.clamp(min=0)], mean)
        self.popularity_log[1:] = torch.where(played, logs, unplayed)

    def prior_weight(self) -> torch.Tensor:
        """The scoring prior's whole weight: the logit adjustment training used, plus the validated extra."""
        return self.popularity_weight + self.config.logit_adjustment

    def popularity_prior(self, columns: int) -> torch.Tensor:
        """The prior (columns,) for scores over songs 0..N and any C cold songs after them (the mean song's)."""
        prior = self.prior_weight() * self.popularity_log
        return F.pad(prior, (0, columns - len(prior)), value=float(prior[1:].mean()) if len(prior) > 1 else 0.0)

    # The shared path: hidden states and the (tied) item table.
    def stream_tables(self, cold_contents: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Each stream's item table (N + 1 [+ C], H). Fixed once training is over: a server computes them once
        and passes them to `score` (the content projections are most of a small request's cost)."""
        kept = self.ids_kept()
        return [items(None if cold_contents is None else cold_contents[i], kept) for i, items in enumerate(self.items)]

    def ids_kept(self) -> torch.Tensor | None:
        """In training with `id_dropout` p, which songs keep their ID row this step, (N + 1,) bool; None when every
        song keeps it (evaluation, no ID dropout, or an ID-only table, which has nothing else to place a song by).
        One draw for every stream: with per-modality fusion each stream has an ID table of its own, and a song
        dropped from one but kept by another would still be placed by its ID."""
        config = self.config
        if not (self.training and config.id_dropout and config.modalities and config.id_embedding):
            return None
        return torch.rand(config.num_items + 1, device=self.popularity_log.device) >= config.id_dropout

    def encode(self, tokens: torch.Tensor, cold_contents: list[torch.Tensor] | None = None,
               outputs: torch.Tensor | None = None, tables: list[torch.Tensor] | None = None,
               mask_token: int | None = None):
        """Hidden states (B, L, H), scaled for scoring, and the item table (N + 1 [+ C], H) they are scored against;
        with `outputs` (B, L) bool, the hidden states of those positions only, (M, H). `tables` and `mask_token`
        may describe a compact table (some rows only), with tokens numbered by its rows."""
        weights = torch.softmax(self.stream_weights, dim=0)
        tables = self.stream_tables(cold_contents) if tables is None else tables
        mask_token = self.config.mask_token if mask_token is None else mask_token
        hidden, table = 0, 0
        for i, (stream_table, encoder) in enumerate(zip(tables, self.encoders)):
            hidden = hidden + weights[i] * encoder(tokens, stream_table[: self.config.num_items + 1], mask_token,
                                                   outputs)
            table = table + weights[i] * stream_table
        return self.output_norm(hidden) * self.logit_scale, table

    def item_table(self, cold_contents: list[torch.Tensor] | None = None,
                   tables: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The tied item table (N + 1 [+ C], H) that hidden states are scored against (what `encode` returns)."""
        weights = torch.softmax(self.stream_weights, dim=0)
        tables = self.stream_tables(cold_contents) if tables is None else tables
        return sum(weights[i] * table for i, table in enumerate(tables))

    def forward(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cloze loss. tokens (B, L) with [MASK] at some positions; labels (B, L): the song there, else 0."""
        masked = labels > 0
        targets = labels[masked] - 1  # (M,); song j + 1 is column j of the softmax
        if self.config.loss == "full":
            h, table = self.encode(tokens, outputs=masked)  # (M, H): states and logits only where masked
            logits = h @ table[1:].T  # (M, N)
            if self.config.logit_adjustment:
                logits = logits + self.config.logit_adjustment * self.popularity_log[1:]
            return F.cross_entropy(logits, targets)
        negatives = self.draw_negatives()
        h, target_rows, negative_rows = self._encode_read_rows(tokens, masked, targets, negatives)
        return self._sampled_softmax(h, target_rows, negative_rows, targets, negatives)

    def draw_negatives(self) -> torch.Tensor:
        """K shared negatives (K,), song columns 0..N-1 drawn from q (sampled softmax)."""
        return torch.multinomial(self.sampling_probabilities, self.config.negatives, replacement=True)

    def _encode_read_rows(self, tokens: torch.Tensor, masked: torch.Tensor, targets: torch.Tensor,
                          negatives: torch.Tensor):
        """States at masked positions (M, H) and the item rows of the targets (M, H) and negatives (K, H), with only
        the rows a step reads computed (its songs, targets, negatives): the projection of every song's content,
        2.26M rows x H forward and backward per step on the full MPD, is what this avoids. (The optimizer still
        updates the whole content and ID tables: their gradients are dense.)"""
        mask_token = self.config.mask_token
        songs = tokens[(tokens > PADDING) & (tokens < mask_token)]
        padding = torch.zeros(1, dtype=tokens.dtype, device=tokens.device)
        ids = torch.unique(torch.cat([padding, songs, targets + 1, negatives + 1]))  # sorted; ids[0] = padding
        compact = torch.where(tokens == mask_token, len(ids), torch.searchsorted(ids, tokens.clamp(max=mask_token - 1)))
        kept = self.ids_kept()
        tables = [items.rows(ids, None if kept is None else kept[ids]) for items in self.items]
        h, table = self.encode(compact, outputs=masked, tables=tables, mask_token=len(ids))  # (M, H), (U, H)
        return h, table[torch.searchsorted(ids, targets + 1)], table[torch.searchsorted(ids, negatives + 1)]

    def _sampled_softmax(self, h: torch.Tensor, target_rows: torch.Tensor, negative_rows: torch.Tensor,
                         targets: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Softmax over the target and K shared negatives drawn from q, each logit corrected by -log(K q) so the
        estimate is unbiased for the full softmax (Bengio & Senecal; Yi et al. 2019), each logit adjusted for
        popularity as the full softmax's are."""
        log_kq = torch.log(self.sampling_probabilities * self.config.negatives)
        log_kq = log_kq - self.config.logit_adjustment * self.popularity_log[1:]  # the full softmax's shift
        positive = (h * target_rows).sum(-1, keepdim=True) - log_kq[targets][:, None]  # (M, 1)
        negative = h @ negative_rows.T - log_kq[negatives][None, :]  # (M, K)
        negative = negative.masked_fill(negatives[None, :] == targets[:, None], float("-inf"))  # accidental hits
        logits = torch.cat([positive, negative], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(h), dtype=torch.long, device=h.device))

    def scorer(self, cold_contents: list[torch.Tensor] | None = None):
        """`score` with the item tables computed once, for scoring many batches with fixed weights (validation,
        evaluation): recomputing every song's row per batch costs as much as the batch on a large catalogue."""
        with torch.no_grad():
            tables = self.stream_tables(cold_contents)
        return lambda histories: self.score(histories, cold_contents, tables)

    @torch.no_grad()
    def score(self, histories: torch.Tensor, cold_contents: list[torch.Tensor] | None = None,
              tables: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Next-song scores (B, N + 1 [+ C]) for left-padded histories (B, T): the most recent max_length - 1 songs,
        then [MASK] appended after them. Column j is song j; column 0 (padding) is -inf."""
        recent = histories[:, -(self.config.max_length - 1):]
        mask = torch.full((len(recent), 1), self.config.mask_token, dtype=recent.dtype, device=recent.device)
        return self._score_newest(torch.cat([recent, mask], dim=1), cold_contents, tables)

    def _score_newest(self, tokens: torch.Tensor, cold_contents: list[torch.Tensor] | None,
                      tables: list[torch.Tensor] | None) -> torch.Tensor:
        """Scores (B, N + 1 [+ C]) from the hidden state at the last position of left-padded tokens (B, L)."""
        newest = torch.zeros(tokens.shape, dtype=torch.bool, device=tokens.device)
        newest[:, -1] = True
        hidden, table = self.encode(tokens, cold_contents, outputs=newest, tables=tables)  # (B, H)
        scores = hidden @ table.T  # (B, N + 1 [+ C])
        if self.prior_weight() != 0:
            scores = scores + self.popularity_prior(scores.shape[1])
        scores[:, PADDING] = float("-inf")
        return scores


def _prior_off_when_missing(module: BERT4Rec, state_dict: dict, prefix: str, *args) -> None:
    """Weights saved before the popularity prior existed load with it off (their scores unchanged)."""
    for name in PRIOR_BUFFERS:
        state_dict.setdefault(prefix + name, torch.zeros_like(getattr(module, name)))
