"""The Serve application on a real local Ray, over HTTP on 127.0.0.1: every endpoint, the bad-request cases
(4xx and the server keeps serving), batching, and a model replica killed under load."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.serve.model_folder import COLD_URIS, N, uri, write_covers, write_registered_model

TIMEOUT = 20  # seconds per HTTP call: no test can hang on the server


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def server(ray_local, tmp_path_factory):
    """The app with 2 model replicas (so one can die) and small limits, on a free port of 127.0.0.1."""
    from ray import serve

    from mmrec.serve.app import build_app

    root = str(tmp_path_factory.mktemp("root"))
    write_registered_model(root)
    args = {"artifact_root": root, "model": "small", "album_art_index": write_covers(root), "model_cpus": 0.25,
            "ingress_cpus": 0.25, "max_body_bytes": 64 * 1024}
    quick_stop = {"graceful_shutdown_timeout_s": 2, "graceful_shutdown_wait_loop_s": 0.5}  # tests wait on teardown
    deployments = {"Recommender": {"num_replicas": 2, "max_ongoing_requests": 64, **quick_stop,
                                   "user_config": {"max_batch_size": 8, "batch_wait_timeout_s": 0.01}},
                   "Ingress": {"num_replicas": 1, "max_ongoing_requests": 128, **quick_stop}}
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args, deployments), name="mmrec", route_prefix="/")
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


def post(server, body, **kwargs):
    return requests.post(f"{server}/recommend", json=body, timeout=TIMEOUT, **kwargs)


def test_health_model_and_openapi(server):
    health = requests.get(f"{server}/healthz", timeout=TIMEOUT).json()
    assert health == {"status": "ok", "model": "small", "songs": N + 2}
    model = requests.get(f"{server}/model", timeout=TIMEOUT).json()
    assert model["name"] == "small" and model["config"]["num_items"] == N
    assert model["metrics"]["valid"]["ndcg@20"] == 0.5 and model["evaluation"]["test"]["metrics"]["ndcg@20"] == 0.25
    assert model["data_card"]["playlists_kept"] == 123
    schema = requests.get(f"{server}/openapi.json", timeout=TIMEOUT).json()
    assert {"/recommend", "/songs/search", "/similar/{track_uri}", "/healthz", "/model"} <= set(schema["paths"])
    request_schema = schema["components"]["schemas"]["RecommendRequest"]["properties"]
    assert request_schema["k"]["maximum"] == 500 and request_schema["tracks"]["maxItems"] == 1000
    assert "swagger" in requests.get(f"{server}/docs", timeout=TIMEOUT).text.lower()


def test_recommend_search_and_similar(server):
    answer = post(server, {"tracks": [uri(1), 4, "spotify:track:nope", COLD_URIS[1]], "k": 5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "small" and body["used"] == 2 and len(body["recommendations"]) == 5
    assert [u["track"] for u in body["unknown"]] == ["spotify:track:nope", COLD_URIS[1]]
    assert not {s["track_uri"] for s in body["recommendations"]} & {uri(1), uri(4)}
    first = body["recommendations"][0]
    assert {"track_uri", "track_name", "artist_name", "album_name", "score", "cold"} <= set(first)
    everything = post(server, {"tracks": [uri(1)], "k": 500, "exclude_seen": False}).json()["recommendations"]
    assert len(everything) == N + 2 and {s["track_uri"] for s in everything if s["cold"]} == set(COLD_URIS)
    found = requests.get(f"{server}/songs/search", params={"q": "green moss"}, timeout=TIMEOUT).json()
    assert found and all(s["track_name"].startswith("Green Valley") for s in found)
    similar = requests.get(f"{server}/similar/{uri(4)}", params={"k": 3}, timeout=TIMEOUT).json()
    assert similar[0]["track_uri"] == COLD_URIS[0]


def test_album_art_is_served_when_readable(server):
    good = requests.get(f"{server}/art", params={"album_uri": "spotify:album:al0"}, timeout=TIMEOUT)
    assert good.status_code == 200 and good.headers["content-type"] == "image/png" and good.content[:4] == b"\x89PNG"
    for album in ("spotify:album:al1", "spotify:album:al2", "spotify:album:al3"):  # truncated, missing, unlisted
        assert requests.get(f"{server}/art", params={"album_uri": album}, timeout=TIMEOUT).status_code == 404


def test_the_web_page_is_served(server):
    page = requests.get(server + "/", timeout=TIMEOUT)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="search"' in page.text and "recommend" in page.text


BAD_BODIES = {
    "tracks not a list": {"tracks": uri(1)},
    "a float track": {"tracks": [1.5]},
    "a boolean track": {"tracks": [True]},
    "a nested track": {"tracks": [[uri(1)]]},
    "empty list": {"tracks": []},
    "10,000 tracks": {"tracks": [1] * 10_000},  # 30 KB: under the body limit, over the list limit
    "k = 0": {"tracks": [uri(1)], "k": 0},
    "k = -1": {"tracks": [uri(1)], "k": -1},
    "k = 10^9": {"tracks": [uri(1)], "k": 10**9},
    "k as a string": {"tracks": [uri(1)], "k": "20"},
    "k as a boolean": {"tracks": [uri(1)], "k": True},
    "exclude_seen as a string": {"tracks": [uri(1)], "exclude_seen": "no"},
    "no tracks": {"k": 5},
    "an unknown field": {"tracks": [uri(1)], "user": "x"},
    "an overlong track": {"tracks": ["x" * 10_000]},
    "a list body": [uri(1)],
    "a null body": None,
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_bodies_get_a_422_naming_the_field(server, case):
    response = post(server, BAD_BODIES[case])
    assert response.status_code == 422, (case, response.status_code, response.text[:300])
    detail = response.json()["detail"]
    assert detail and all("loc" in d and "msg" in d for d in detail)
    assert len(response.content) < 5000  # the input is not echoed back


def test_non_json_huge_and_unsized_bodies_and_unknown_paths(server):
    junk = requests.post(f"{server}/recommend", data=b"\xff\xfe not json {", timeout=TIMEOUT,
                         headers={"Content-Type": "application/json"})
    assert junk.status_code == 400 and "pars" in junk.json()["detail"].lower(), junk.text  # not UTF-8, not JSON
    broken = requests.post(f"{server}/recommend", data=b'{"tracks": [1,', timeout=TIMEOUT,
                           headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and "json" in broken.text.lower(), broken.text
    huge = requests.post(f"{server}/recommend", data=b"{" + b" " * 100_000 + b"}", timeout=TIMEOUT,
                         headers={"Content-Type": "application/json"})
    assert huge.status_code == 413 and "65536" in huge.json()["detail"]
    chunked = requests.post(f"{server}/recommend", data=iter([b'{"tracks": ', b'["x"]}']), timeout=TIMEOUT,
                            headers={"Content-Type": "application/json"})
    assert chunked.status_code == 411
    assert requests.get(f"{server}/nowhere", timeout=TIMEOUT).status_code == 404
    assert requests.get(f"{server}/recommend", timeout=TIMEOUT).status_code == 405
    assert requests.get(f"{server}/songs/search", params={"q": ""}, timeout=TIMEOUT).status_code == 422
    assert requests.get(f"{server}/songs/search", params={"q": "a", "limit": 0}, timeout=TIMEOUT).status_code == 422
    assert requests.get(f"{server}/similar/spotify:track:nope", timeout=TIMEOUT).status_code == 404
    assert requests.get(f"{server}/similar/{uri(1)}", params={"k": 10**9}, timeout=TIMEOUT).status_code == 422


def test_unicode_junk_is_a_valid_request_with_the_songs_listed_unknown(server):
    junk = ["💥" * 50, "\u0000\u202e", "ünïcödé", "<script>alert(1)</script>"]
    response = post(server, {"tracks": junk, "k": 3})
    assert response.status_code == 200
    assert [u["track"] for u in response.json()["unknown"]] == junk
    assert response.json()["used"] == 0 and len(response.json()["recommendations"]) == 3  # the model's prior


def test_a_raw_socket_with_garbage_does_not_hurt_the_server(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        try:
            s.recv(1024)
        except OSError:
            pass
    assert post(server, {"tracks": [uri(1)]}).status_code == 200


def test_concurrent_requests_are_batched_and_answered_like_single_ones(server):
    bodies = [{"tracks": [uri(1 + i % N), uri(1 + (i * 7) % N)], "k": 5} for i in range(32)]
    single = [post(server, b).json()["recommendations"] for b in bodies[:4]]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda b: post(server, b), bodies))
    assert all(a.status_code == 200 for a in answers)
    for alone, together in zip(single, answers):
        assert_same_ranking(alone, together.json()["recommendations"])


def assert_same_ranking(first: list[dict], second: list[dict], tolerance: float = 1e-4) -> None:
    """The same scores rank by rank, and the same songs but where two scores tie within float error (the test
    model's cold songs are exact twins of items, and a batch's matrix product rounds differently from one row's)."""
    assert [s["score"] for s in first] == pytest.approx([s["score"] for s in second], abs=tolerance)
    for a, b in zip(first, second):
        if a["track_uri"] != b["track_uri"]:
            assert abs(a["score"] - b["score"]) <= tolerance
    clear = first[-1]["score"] + tolerance  # above the last place's score no tie can reorder songs
    assert {s["track_uri"] for s in first if s["score"] > clear} == {s["track_uri"] for s in second if s["score"] > clear}


def test_killing_a_model_replica_under_load_fails_no_request(server, ray_local):
    """8 clients send requests for 8 s; one of the 2 model replicas is killed after 2 s. The ingress retries
    calls whose replica died on the other one, so every request succeeds."""
    from ray import serve

    stop = time.time() + 8
    results, lock = [], threading.Lock()

    def client(i):
        while time.time() < stop:
            try:
                status = post(server, {"tracks": [uri(1 + i)], "k": 10}).status_code
            except requests.RequestException as error:
                status = type(error).__name__
            with lock:
                results.append(status)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(2)
    replicas = [a for a in ray_local.util.list_named_actors(all_namespaces=True)
                if a["namespace"] == "serve" and "#Recommender#" in a["name"]]
    assert len(replicas) == 2, replicas
    ray_local.kill(ray_local.get_actor(replicas[0]["name"], namespace="serve"), no_restart=True)
    killed_at = len(results)
    for t in threads:
        t.join(timeout=30)
    failures = [r for r in results if r != 200]
    logs = Path(ray_local._private.worker._global_node.get_logs_dir_path()) / "serve"
    retries = sum(Path(f).read_text().count("model replica lost") for f in logs.glob("replica_mmrec_Ingress_*.log"))
    print(f"replica kill under load: {len(results)} requests, {len(results) - killed_at} after the kill, "
          f"{len(failures)} failed, {retries} call(s) retried on the other replica")
    assert killed_at > 8 and len(results) - killed_at > 8
    assert failures == []
    # Serve replaces the replica; the deployment is healthy again with two replicas.
    deadline = time.time() + 90
    while serve.status().applications["mmrec"].deployments["Recommender"].status.value != "HEALTHY":
        assert time.time() < deadline, serve.status().applications["mmrec"].deployments["Recommender"]
        time.sleep(1)
    assert post(server, {"tracks": [uri(2)]}).status_code == 200
