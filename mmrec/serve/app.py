"""The Ray Serve application: an HTTP ingress (FastAPI) in front of a batched, autoscaled model deployment.

    Ingress      FastAPI: validation, size limits, search, covers, the web page; retries a call whose
                 model replica died. Light (a quarter CPU); scales on its own.
    Recommender  the registered model (serve/recommender.py), requests batched by @serve.batch into one forward
                 pass; a GPU per replica when the cluster has GPUs; scales on its own.

`build_app(args)` is the application builder a Serve config file names (`import_path:
mmrec.serve.app:build_app`), so `serve run configs/serve.yaml`, `serve deploy` and KubeRay's RayService all start
the same application `mmrec serve` does. Deployment options (autoscaling, max ongoing requests) come from that
file; batching is the Recommender's `user_config`, which Serve can change without restarting replicas.
"""

# No `from __future__ import annotations`: Serve pickles the ingress class by value, and FastAPI must see its
# parameter annotations as types, not as names to look up in a module the pickle does not carry.
import asyncio
import io
import logging
from functools import lru_cache
from importlib import resources
from typing import Annotated

import orjson
from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.handle import DeploymentHandle

from mmrec import __version__, artifacts
from mmrec.serve.config import AppArgs

log = logging.getLogger("ray.serve")  # in a replica, Serve writes this logger to the replica's log file

MAX_TRACKS = 1000  # songs per request; the model reads only the newest max_length - 1 of them
MAX_K = 500
MAX_TRACK_CHARS = 256
DEFAULT_MAX_BODY_BYTES = 256 * 1024
INGRESS, MODEL = "Ingress", "Recommender"


# --- the HTTP contract (FastAPI turns these into /docs and /openapi.json) ---------------------------------

Track = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_TRACK_CHARS)] | \
    Annotated[int, Strict()]


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tracks: list[Track] = Field(min_length=1, max_length=MAX_TRACKS,
                                description="the playlist so far, oldest first: Spotify track URIs or item ids")
    k: Annotated[int, Strict()] = Field(20, ge=1, le=MAX_K, description="how many songs to recommend")
    exclude_seen: Annotated[bool, Strict()] = Field(True, description="leave out songs already in the playlist")


class Song(BaseModel):
    track_uri: str
    item_id: int | None = Field(description="the model's item id; null for a cold song (content only)")
    cold: bool
    track_name: str | None
    artist_name: str | None
    album_name: str | None
    album_uri: str | None
    score: float | None = None


class Unknown(BaseModel):
    track: str | int
    reason: str


class RecommendResponse(BaseModel):
    model: str
    recommendations: list[Song]
    used: int = Field(description="songs of the request the model read (the newest max_length - 1 known ones)")
    unknown: list[Unknown] = Field(description="songs of the request the model could not use as input")


api = FastAPI(title="mmrec", version=__version__,
              description="Playlist continuation with a multimodal BERT4Rec: recommend songs for a playlist, "
                          "search songs, find similar songs. Try it at `/`.")


class BodyLimit:
    """Refuse large request bodies from their Content-Length, before reading them; a body of unknown length is
    refused too (411). Plain ASGI: Starlette's BaseHTTPMiddleware costs milliseconds per request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            limit = getattr(scope["app"].state, "max_body_bytes", DEFAULT_MAX_BODY_BYTES) if "app" in scope \
                else DEFAULT_MAX_BODY_BYTES
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            problem = (411, "a Content-Length header is required") if length is None else \
                (413, f"request body over {limit} bytes") if not length.isdigit() or int(length) > limit else None
            if problem:
                await JSONResponse({"detail": problem[1]}, status_code=problem[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)


api.add_middleware(BodyLimit)


@api.exception_handler(RequestValidationError)
async def explain_validation_error(request: Request, error: RequestValidationError):
    """422 naming each bad field, without echoing the (possibly huge) input back."""
    problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                for e in error.errors()][:20]
    return JSONResponse({"detail": jsonable_encoder(problems)}, status_code=422)


# --- the model deployment ---------------------------------------------------------------------------------

@serve.deployment(name=MODEL)
class RecommenderDeployment:
    def __init__(self, model_uri: str, device: str):
        from mmrec.models import registry
        from mmrec.serve.recommender import Recommender

        import torch

        if device == "cuda" and not torch.cuda.is_available():
            device = "cpu"
        self.core = Recommender(registry.load_model(artifacts.resolve(model_uri), device), device)
        self.name = model_uri.rstrip("/").rsplit("/", 1)[-1]
        log.info("model %s loaded on %s: %d songs", self.name, device, len(self.core.catalogue))

    def reconfigure(self, user_config: dict) -> None:
        """Batching from the Serve config's user_config, changeable without restarting replicas."""
        self.recommend.set_max_batch_size(int(user_config.get("max_batch_size", 16)))
        self.recommend.set_batch_wait_timeout_s(float(user_config.get("batch_wait_timeout_s", 0.005)))

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def recommend(self, requests: list[dict]) -> list[dict]:
        from mmrec.serve.recommender import Request as Query

        answers = self.core.recommend([Query(tuple(r["tracks"]), r["k"], r["exclude_seen"]) for r in requests])
        return [{"model": self.name, **a.to_dict()} for a in answers]

    async def similar(self, track: str, k: int) -> list[dict] | None:
        return self.core.similar(track, k)

    async def health(self) -> dict:
        return {"model": self.name, "songs": len(self.core.catalogue)}


# --- the ingress ------------------------------------------------------------------------------------------

# Serve pickles the deployment classes as they are decorated, so what their methods call is defined first.
def _cover_index(index_uri: str) -> dict[str, str]:
    """album_uri -> cover URI, from a JSON-lines index {album_uri, path} (paths relative to its folder)."""
    import json

    if not index_uri:
        return {}
    loc = artifacts.resolve(index_uri)
    if not loc.exists():
        log.warning("no album-art index at %s: the page shows no covers", loc.uri)
        return {}
    folder = index_uri.rsplit("/", 1)[0]
    covers = {}
    for line in artifacts.read_bytes(loc).decode("utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            covers[record["album_uri"]] = f"{folder}/{record['path']}"
    return covers


@lru_cache(maxsize=4096)
def _read_cover(uri: str) -> tuple[bytes, str] | None:
    """(bytes, media type) of a cover that decodes, else None (missing, empty and truncated files exist)."""
    from PIL import Image

    if not uri:
        return None
    try:
        data = artifacts.read_bytes(artifacts.resolve(uri))
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            media_type = Image.MIME.get(image.format or "", "application/octet-stream")
    except Exception:  # any unreadable cover is simply absent
        return None
    return data, media_type



@serve.deployment(name=INGRESS)
@serve.ingress(api)
class Ingress:
    def __init__(self, model: DeploymentHandle, model_uri: str, data_card_uri: str, album_art_index: str,
                 max_body_bytes: int, model_retries: int):
        from mmrec.serve.recommender import load_catalogue

        api.state.max_body_bytes = max_body_bytes
        self.model, self.retries = model, model_retries
        self.location = artifacts.resolve(model_uri)
        self.name = self.location.uri.rstrip("/").rsplit("/", 1)[-1]
        self.catalogue = load_catalogue(self.location)
        self.catalogue.words  # the search index, before the first keystroke rather than on it
        self.data_card_uri = data_card_uri
        self.covers = _cover_index(album_art_index)

    async def _call(self, method: str, *args):
        """A call to the model deployment, retried on another replica when the one it went to died."""
        for attempt in range(self.retries + 1):
            try:
                return await getattr(self.model, method).remote(*args)
            except (RayActorError, ActorUnavailableError) as error:
                if attempt == self.retries:
                    raise HTTPException(503, "the model is unavailable; try again shortly") from error
                log.warning("model replica lost (%s); retrying (%d/%d)", type(error).__name__, attempt + 1,
                            self.retries)
                await asyncio.sleep(0.2 * 2 ** attempt)

    @api.post("/recommend", response_model=RecommendResponse, summary="recommend songs to continue a playlist")
    async def recommend(self, body: RecommendRequest) -> Response:
        # The replica built the answer to RecommendResponse's shape; send its bytes without validating it again.
        return Response(orjson.dumps(await self._call("recommend", body.model_dump())), media_type="application/json")

    @api.get("/songs/search", response_model=list[Song], summary="find songs by track or artist name")
    async def search(self, q: Annotated[str, Query(min_length=1, max_length=100)],
                     limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[dict]:
        return self.catalogue.search(q, limit)

    @api.get("/similar/{track_uri}", response_model=list[Song], summary="songs nearest a song in the model's space")
    async def similar(self, track_uri: Annotated[str, Path(max_length=MAX_TRACK_CHARS)],
                      k: Annotated[int, Query(ge=1, le=MAX_K)] = 20) -> list[dict]:
        songs = await self._call("similar", track_uri, k)
        if songs is None:
            raise HTTPException(404, f"{track_uri!r} is not a song of model {self.name}")
        return songs

    @api.get("/healthz", summary="the ingress and a model replica answer")
    async def healthz(self) -> dict:
        return {"status": "ok", **(await self._call("health"))}

    @api.get("/model", summary="the served model: name, settings, metrics, data card")
    async def model_card(self) -> dict:
        def optional(loc):
            return artifacts.read_json(loc) if loc.exists() else None

        return {"name": self.name, "config": optional(self.location.join("config.json")),
                "metrics": optional(self.location.join("metrics.json")),
                "evaluation": optional(self.location.join("evaluation.json")),
                "hybrid": optional(self.location.join("hybrid.json")),
                "card": optional(self.location.join("card.json")),
                "data_card": optional(artifacts.resolve(self.data_card_uri))}

    @api.get("/art", summary="an album's cover image, where the corpus has a readable one")
    async def art(self, album_uri: Annotated[str, Query(min_length=1, max_length=MAX_TRACK_CHARS)]) -> Response:
        cover = _read_cover(self.covers.get(album_uri, ""))
        if cover is None:
            raise HTTPException(404, f"no readable cover for {album_uri!r}")
        data, media_type = cover
        return Response(data, media_type=media_type, headers={"Cache-Control": "max-age=86400"})

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(self) -> str:
        return resources.files("mmrec.serve").joinpath("static/index.html").read_text(encoding="utf-8")


# --- the builder ------------------------------------------------------------------------------------------

def build_app(args: dict, deployments: dict[str, dict] | None = None):
    """The application from a Serve config's `args:`; `deployments` (name -> options) is what `mmrec serve`
    passes from the same file (`serve run` / `serve deploy` apply the file's deployment options themselves)."""
    from mmrec import layout
    from mmrec.config import load_config
    from mmrec.ray_runtime import cluster_gpus

    settings = AppArgs.model_validate(args or {})
    overrides = {"artifact_root": settings.artifact_root} if settings.artifact_root else {}
    config = load_config(settings.config or None, overrides)
    root = artifacts.resolve(config.artifact_root)
    model = layout.registered_model(root.uri, settings.model or layout.run_name(config.train, root.uri))
    gpus = settings.use_gpu == "yes" or (settings.use_gpu == "auto" and cluster_gpus() > 0)
    deployments = deployments or {}
    recommender = RecommenderDeployment.options(**{
        "ray_actor_options": {"num_cpus": settings.model_cpus, "num_gpus": 1 if gpus else 0},
        **deployments.get(MODEL, {})})
    ingress = Ingress.options(**{"ray_actor_options": {"num_cpus": settings.ingress_cpus},
                                 **deployments.get(INGRESS, {})})
    art_index = settings.album_art_index or layout.modality_source(
        root.uri, "album_art_index", config.embed.album_art_index, config.demo_data.output).uri
    return ingress.bind(recommender.bind(model.uri, "cuda" if gpus else "cpu"), model.uri,
                        root.join("data", "card.json").uri, art_index, settings.max_body_bytes,
                        settings.model_retries)
