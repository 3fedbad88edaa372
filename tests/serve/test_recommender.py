"""The serving core without Ray: resolving songs, batching, excluding seen songs, cold songs, search, similar."""

import numpy as np
import pytest

from mmrec import artifacts
from mmrec.models import registry
from mmrec.serve.recommender import COLD_INPUT, UNKNOWN, Recommender, Request
from tests.serve.model_folder import COLD_URIS, N, uri, write_registered_model


@pytest.fixture(scope="module")
def recommender(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("root"))
    return Recommender(registry.load_model(artifacts.resolve(write_registered_model(root))))


def test_songs_resolve_by_uri_or_id_and_the_rest_is_listed_with_a_reason(recommender):
    answer, = recommender.recommend([Request((uri(1), 2, "spotify:track:nope", 999, COLD_URIS[0], "ünï💥"), k=5)])
    assert answer.used == 2
    assert answer.unknown == [{"track": "spotify:track:nope", "reason": UNKNOWN}, {"track": 999, "reason": UNKNOWN},
                              {"track": COLD_URIS[0], "reason": COLD_INPUT}, {"track": "ünï💥", "reason": UNKNOWN}]
    assert len(answer.recommendations) == 5


def test_recommendations_are_ranked_exclude_seen_songs_and_respect_k(recommender):
    history = (uri(1), uri(4), uri(7))
    answer, = recommender.recommend([Request(history, k=N)])
    scores = [s["score"] for s in answer.recommendations]
    assert scores == sorted(scores, reverse=True)
    assert not {s["track_uri"] for s in answer.recommendations} & set(history)
    kept, = recommender.recommend([Request(history, k=N + 2, exclude_seen=False)])
    assert {uri(1), uri(4), uri(7)} <= {s["track_uri"] for s in kept.recommendations}
    assert len(kept.recommendations) == N + 2  # every item and both cold songs


def test_a_batch_answers_exactly_as_requests_one_by_one(recommender):
    requests = [Request((uri(1),), k=7), Request(tuple(uri(i) for i in range(1, 20)), k=3),
                Request(("spotify:track:nope",), k=4), Request((uri(5), uri(2)), k=10, exclude_seen=False)]
    together = recommender.recommend(requests)
    for request, answer in zip(requests, together):
        alone, = recommender.recommend([request])
        assert [s["track_uri"] for s in answer.recommendations] == [s["track_uri"] for s in alone.recommendations]
        assert [s["score"] for s in answer.recommendations] == pytest.approx([s["score"] for s in alone.recommendations], abs=1e-4)


def test_cold_songs_are_recommendable_from_content(recommender):
    """No ID embedding: a cold song with an item's content scores exactly like that item (tied output)."""
    answer, = recommender.recommend([Request((uri(1), uri(2)), k=N + 2, exclude_seen=False)])
    score = {s["track_uri"]: s["score"] for s in answer.recommendations}
    assert score[COLD_URIS[0]] == pytest.approx(score[uri(4)], abs=1e-4)
    assert score[COLD_URIS[1]] == pytest.approx(score[uri(5)], abs=1e-4)
    cold = next(s for s in answer.recommendations if s["track_uri"] == COLD_URIS[0])
    assert cold["cold"] and cold["item_id"] is None and cold["track_name"] is None


def test_search_matches_every_word_most_played_first(recommender):
    found = recommender.catalogue.search("canyon DUST", limit=50)
    assert [s["track_name"] for s in found] == [f"Red Canyon {i}" for i in range(2, N + 1, 3)]  # genre 1, count order
    assert recommender.catalogue.search("canyon", limit=2) == found[:2]
    assert recommender.catalogue.search("   ", limit=5) == []
    assert recommender.catalogue.search("zzz", limit=5) == []


def test_similar_songs_share_the_content_and_unknown_songs_have_none(recommender):
    similar = recommender.similar(uri(4), k=6)
    assert similar[0]["track_uri"] == COLD_URIS[0]  # the same content
    assert {(int(s["track_uri"][-2:]) - 1) % 3 for s in similar if not s["cold"]} == {0}  # same genre as song 4
    assert uri(4) not in {s["track_uri"] for s in similar}
    assert recommender.similar("spotify:track:nope", k=5) is None


def test_tied_scores_go_to_the_lower_column_whatever_the_batch():
    from mmrec.serve.recommender import top_k
    import torch

    scores = torch.tensor([float("-inf"), 0.5, 0.9, 0.5, 0.9, 0.1, 0.5])
    assert top_k(scores, 3) == [(2, pytest.approx(0.9)), (4, pytest.approx(0.9)), (1, pytest.approx(0.5))]
    assert [c for c, _ in top_k(scores, 5)] == [2, 4, 1, 3, 6]
    assert [c for c, _ in top_k(scores, 100)] == [2, 4, 1, 3, 6, 5]  # k beyond the catalogue: every song



def test_the_word_index_matches_word_prefixes_of_every_query_word():
    from mmrec.serve.recommender import WordIndex

    index = WordIndex(["Blue Harbor The Tides", "Blue Moon Dust Riders", "", "Café Über Alles", "harbor lights"])
    assert index.matching("blue").tolist() == [0, 1]
    assert index.matching("BLUE har").tolist() == [0]  # every word, in any case
    assert index.matching("har").tolist() == [0, 4]
    assert index.matching("arbor").tolist() == []  # word prefixes, not any substring
    assert index.matching("café üb").tolist() == [3]
    assert index.matching("blue zzz").tolist() == [] and index.matching("   ").tolist() == []


@pytest.mark.parametrize("short", [50_000, 0])  # postings merged as arrays, or every prefix checked on the text
def test_the_word_index_answers_in_its_order_and_stops_at_the_limit(short):
    from mmrec.serve.recommender import WordIndex

    texts = ["Blue Harbor\tThe Tides", "Blue Moon", "Harbor Blue", "Red Canyon", "blue  harbor lights"]
    index = WordIndex(texts, order=np.array([4, 2, 0, 1, 3]))  # row 4 is the most preferred
    index.SHORT = short
    assert index.matching("blue har").tolist() == [4, 2, 0]
    assert index.matching("blue har", limit=2).tolist() == [4, 2]
    assert index.matching("blue").tolist() == [4, 2, 0, 1]
    assert index.matching("tides").tolist() == [0]  # a word after a tab
    assert index.matching("blue canyon").tolist() == [] and index.matching("").tolist() == []


@pytest.fixture(scope="module")
def hybrid_recommender(tmp_path_factory):
    """The small model with a hybrid beside it: EASE fitted on playlists where song 1 is always followed by song
    17, weighted 0.9 (EASE nearly alone), written as `mmrec train` registers one."""
    from mmrec.models.ease import EASE
    from mmrec.models.hybrid import Hybrid

    root = str(tmp_path_factory.mktemp("root"))
    loc = artifacts.resolve(write_registered_model(root, name="hybrid"))
    rng = np.random.default_rng(0)
    playlists = [np.array([*rng.choice(np.arange(2, 17), size=4, replace=False), 1, 17]) for _ in range(200)]
    hybrid = Hybrid(EASE(playlists, N, np.arange(N, 0, -1), l2=10.0), 0.9)
    artifacts.write_bytes(loc.join("ease.safetensors"), hybrid.to_bytes())
    artifacts.write_json(loc.join("hybrid.json"), hybrid.description())
    return Recommender(registry.load_model(loc))


def test_a_hybrid_model_serves_the_blend_and_reads_the_whole_request(hybrid_recommender, recommender):
    answer, = hybrid_recommender.recommend([Request((uri(1),), k=3)])
    assert answer.recommendations[0]["track_uri"] == uri(17)  # EASE's partner of song 1 leads the blend
    alone, = recommender.recommend([Request((uri(1),), k=3)])
    assert alone.recommendations[0]["track_uri"] != uri(17)  # the model alone has no such opinion
    long = tuple(uri(i) for i in range(2, 16))  # longer than the model's window of 7 songs: EASE reads all 14
    assert hybrid_recommender.recommend([Request(long, k=3)])[0].used == 14
    assert recommender.recommend([Request(long, k=3)])[0].used == 7
    kept, = hybrid_recommender.recommend([Request((uri(1), uri(17)), k=N + 2, exclude_seen=False)])
    assert {uri(1), uri(17), *COLD_URIS} <= {s["track_uri"] for s in kept.recommendations}  # seen and cold songs too
    requests = [Request((uri(1),), k=5), Request(long, k=5), Request((uri(3), uri(1)), k=5, exclude_seen=False)]
    for request, together in zip(requests, hybrid_recommender.recommend(requests)):
        by_itself, = hybrid_recommender.recommend([request])
        assert [s["track_uri"] for s in together.recommendations] == [s["track_uri"] for s in by_itself.recommendations]
