"""The web page end to end in headless Chromium (Debian's, driven by Playwright) against a real Serve on
127.0.0.1: search a song, add it, see recommendations with album art; the screenshot is kept as a test artifact
in test-artifacts/serve-page.png."""

import shutil

import pytest

from tests.conftest import REPO, free_port
from tests.serve.model_folder import COLD_URIS, write_covers, write_registered_model

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As the machine notes advise: no background networking, no first-run or component fetches on a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def album_of(track_uri: str) -> str | None:
    """The album model_folder gives a song: song i is on album al(i % 4); cold songs have none."""
    if track_uri in COLD_URIS:
        return None
    return f"spotify:album:al{int(track_uri.rsplit('song', 1)[1]) % 4}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import ray
    from ray import serve

    from mmrec.serve.app import build_app

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    root = str(tmp_path_factory.mktemp("root"))
    write_registered_model(root)
    args = {"artifact_root": root, "model": "small", "album_art_index": write_covers(root), "model_cpus": 0.25,
            "ingress_cpus": 0.25}
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args), name="mmrec", route_prefix="/")
    yield f"http://127.0.0.1:{port}/"
    serve.shutdown()
    ray.shutdown()


def test_search_add_and_see_recommendations_in_a_real_browser(server):
    from playwright.sync_api import expect, sync_playwright

    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(20_000)
            page.goto(server)
            expect(page.locator("#model")).to_contain_text("model small")
            expect(page.locator("#model")).to_contain_text("0.250")  # test NDCG@20 from evaluation.json

            page.fill("#search", "blue harbor")
            results = page.locator("#results li")
            expect(results.first).to_contain_text("Blue Harbor")
            results.first.locator("button").click()  # the most played Blue Harbor song: "Blue Harbor 1"
            expect(page.locator("#playlist li")).to_have_count(1)
            expect(page.locator("#playlist li").first).to_contain_text("Blue Harbor 1")

            recommendations = page.locator("#recommendations li")
            expect(recommendations).to_have_count(20)
            expect(page.locator("#status")).to_contain_text("from 1 song(s)")
            first_answer = recommendations.all_inner_texts()
            assert not any("Blue Harbor 1\n" in text for text in first_answer)  # the seen song is left out

            page.fill("#search", "dust riders")  # a second song changes the recommendations
            expect(page.locator("#results li").first).to_contain_text("Red Canyon")
            page.locator("#results li").first.locator("button").click()
            expect(page.locator("#playlist li")).to_have_count(2)
            expect(page.locator("#status")).to_contain_text("from 2 song(s)")
            assert recommendations.all_inner_texts() != first_answer

            # Covers settle to "shown" (al0: a readable PNG) or "none" (al1 truncated, al2 listed but missing, al3
            # unlisted, cold songs without an album). Wait for that condition, never for a time.
            page.wait_for_function("() => [...document.querySelectorAll('.cover')]"
                                   ".every(box => box.dataset.state !== 'loading')")
            covers = recommendations.evaluate_all("""items => items.map(li => {
                const box = li.querySelector('.cover'), img = box.querySelector('img');
                return {uri: li.dataset.uri, state: box.dataset.state,
                        width: img ? img.naturalWidth : null, complete: img ? img.complete : null};
            })""")
            expected = {c["uri"]: "shown" if album_of(c["uri"]) == "spotify:album:al0" else "none" for c in covers}
            assert {c["uri"]: c["state"] for c in covers} == expected
            assert "shown" in expected.values() and "none" in expected.values()
            assert all(c["complete"] and c["width"] == 8 for c in covers if c["state"] == "shown")
            assert all(c["width"] is None for c in covers if c["state"] == "none")  # no <img> left behind
            # Nowhere on the page is a broken image visible (search results and the playlist have covers too).
            visible_broken = page.evaluate("""() => [...document.images].filter(i => i.complete && i.naturalWidth === 0
                && getComputedStyle(i).visibility === 'visible').length""")
            assert visible_broken == 0
            page.screenshot(path=str(out / "serve-page.png"), full_page=True)
        finally:
            browser.close()
    assert (out / "serve-page.png").stat().st_size > 10_000
