"""MostPop, EASE and SASRec on tiny data with known answers."""

import numpy as np
import torch

from mmrec.models.bert4rec import BERT4RecConfig
from mmrec.models.ease import EASE
from mmrec.models.popularity import MostPopular
from mmrec.models.sasrec import SASRec, build
from mmrec.train.config import TrainConfig
from mmrec.train.loop import train_epoch
from mmrec.train.sequences import epoch_batches, next_song_batch, training_windows


def test_most_popular_ranks_by_training_plays():
    scores = MostPopular(np.array([5, 9, 1])).score(torch.tensor([[0, 1], [2, 3]]))
    assert scores.shape == (2, 4) and torch.isneginf(scores[:, 0]).all()
    assert scores[0, 1:].argsort(descending=True).tolist() == [1, 0, 2]


def planted_pairs(num_items=20, playlists=300, seed=0):
    """Songs come in pairs (1, 2), (3, 4), ...; every playlist holding one song of a pair holds the other."""
    rng = np.random.default_rng(seed)
    histories = []
    for _ in range(playlists):
        pairs = rng.choice(num_items // 2, size=3, replace=False)
        histories.append(np.concatenate([[2 * p + 1, 2 * p + 2] for p in pairs]))
    counts = np.bincount(np.concatenate(histories), minlength=num_items + 1)[1:]
    return histories, counts


def test_ease_recovers_a_planted_co_occurrence():
    histories, counts = planted_pairs()
    model = EASE(histories, 20, counts, l2=10.0)
    assert model.mode == "dense"
    scores = model.score(torch.tensor([[0, 0, 7], [0, 0, 12]]))
    scores[0, 7] = scores[1, 12] = -np.inf  # the history itself
    assert scores.argmax(dim=1).tolist() == [8, 11]


def test_ease_on_too_many_songs_fits_the_most_played_and_ranks_the_rest_by_popularity():
    histories, counts = planted_pairs()
    counts = counts + np.arange(20)  # break ties: later songs more popular
    model = EASE(histories, 20, counts, l2=10.0, max_dense_songs=8)
    assert model.mode == "top_songs" and len(model.items) == 8
    fitted = set(model.items.tolist())
    assert fitted == set((np.argsort(-counts, kind="stable")[:8] + 1).tolist())
    scores = model.score(torch.tensor([[0, 19]]))[0]
    others = [i for i in range(1, 21) if i not in fitted]
    assert scores[sorted(fitted)].min() > scores[others].max()  # fitted songs first
    assert scores[others].argsort(descending=True)[0].item() == int(np.argmax(counts[np.array(others) - 1]))


def test_sasrec_is_causal():
    torch.manual_seed(0)
    config = BERT4RecConfig(num_items=10, architecture="sasrec", hidden=8, layers=1, heads=2, max_length=6, dropout=0.0)
    model = build(config).eval()
    assert isinstance(model, SASRec)
    a, _ = model.encode(torch.tensor([[0, 1, 2, 3, 4]]))
    b, _ = model.encode(torch.tensor([[0, 1, 2, 3, 9]]))  # only the newest song differs
    assert torch.allclose(a[0, :4], b[0, :4], atol=1e-6) and not torch.allclose(a[0, 4], b[0, 4])
    assert torch.isfinite(a).all()  # padding rows do not turn into NaN


def test_sasrec_learns_a_deterministic_next_song():
    """Playlists walk 1 -> 2 -> ... -> 12 from random starts; SASRec must learn the walk."""
    rng = np.random.default_rng(0)
    histories = [np.arange(s, min(s + 6, 13)) for s in rng.integers(1, 8, size=200)]
    config = BERT4RecConfig(num_items=12, architecture="sasrec", hidden=16, layers=1, heads=2, max_length=8,
                            dropout=0.0)
    cfg = TrainConfig(architecture="sasrec", modalities=(), batch_size=32, max_length=8, hidden=16, heads=2)
    torch.manual_seed(0)
    model = build(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    windows = training_windows(histories, 8)
    tokens, labels = next_song_batch([np.array([3, 4, 5])], 8)
    assert tokens.tolist() == [[3, 4]] and labels.tolist() == [[4, 5]]
    for _ in range(25):
        steps = epoch_batches(np.array([len(w) for w in windows]), 32, rng)
        train_epoch(model, optimizer, [[windows[i] for i in s[0]] for s in steps], cfg, 13, rng, torch.device("cpu"))
    scores = model.eval().score(torch.tensor([[0, 3, 4, 5], [0, 0, 8, 9]]))
    assert scores.argmax(dim=1).tolist() == [6, 10]


def test_content_knn_ranks_the_songs_nearest_the_history_first():
    from mmrec.models.content_knn import ContentKNN

    table = np.zeros((7, 2), np.float32)
    table[1:] = [[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [-1, 0], [0, 0]]  # song 6 has no content (zeros)
    scores = ContentKNN([table]).score(torch.tensor([[0, 1]]))[0]
    assert torch.isneginf(scores[0])
    assert scores[1:].argsort(descending=True)[:2].tolist() == [0, 1]  # song 1 itself, then its neighbour 2
    assert scores[5] < scores[6] == 0.0 < scores[4]


def test_the_oracle_ranks_by_the_historys_genre_share_times_popularity_within_the_genre():
    from mmrec.demo.oracle import GenrePopularityOracle

    genres = np.array([0, 0, 0, 1, 1, 2])  # songs 1..6
    counts = np.array([9, 4, 0, 19, 9, 99])
    scores = GenrePopularityOracle(genres, counts).score(torch.tensor([[0, 1, 2, 4]]))[0]  # 2/3 genre 0, 1/3 genre 1
    # genre 0 plays (+1 each) 10, 5, 1 of 16; genre 1: 20, 10 of 30 -> 2/3*10/16 = .417 > 1/3*20/30 = .222 > ...
    assert scores[1:].argsort(descending=True).tolist()[:5] == [0, 3, 1, 4, 2]
    assert scores[6] < scores[3]  # the most played song, of a genre the history never touched, comes last
