"""The FastAPI app: MLflow's scoring protocol around a detector pyfunc, errors as one line.

Status codes: 200 ``{"predictions": [...]}`` (one dict per image: ``boxes``, ``labels``,
``scores``, ``masks`` as COCO RLE, ``label_names``); 400 a bad request (JSON, column, base64,
not JPEG/PNG, corrupt, too many pixels); 413 a body or batch over the limits; 415 not JSON;
500 a failure inside the model (logged with its trace on the server only). Every error body is
``{"error_code": ..., "message": "<one line>"}``.
"""

import logging  # no `from __future__ import annotations`: FastAPI reads the handlers' hints at run time
import time
from typing import Any

import numpy as np

from components.serving.protocol import Limits, RequestError, parse_request

__all__ = ["build_app", "load_detector"]

log = logging.getLogger("components.serving")
CODES = {400: "BAD_REQUEST", 413: "REQUEST_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
         500: "INTERNAL_ERROR"}
DRAIN_FACTOR = 8  # how far past the body limit an oversized upload is still read


def load_detector(model_uri: str) -> tuple[Any, dict[str, Any]]:
    """(the detector's python model, facts about it) for an MLflow model URI."""
    import mlflow

    t0 = time.perf_counter()
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    info = {"model_uri": model_uri, "load_s": round(time.perf_counter() - t0, 3),
            "model_id": getattr(pyfunc.metadata, "model_id", None),
            "signature": str(pyfunc.metadata.signature) if pyfunc.metadata.signature else None}
    return pyfunc.unwrap_python_model(), info


def _error(status: int, message: str):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error_code": CODES.get(status, "BAD_REQUEST"), "message": message},
                        status_code=status)


async def _body(request, limit: int) -> bytes:
    """The request body, or 413 once it passes ``limit`` bytes.

    An oversized body is still read (and discarded) up to ``DRAIN_FACTOR * limit`` so the
    client, still sending, receives the 413 instead of a broken pipe; past that the
    connection is cut short.
    """
    drain = DRAIN_FACTOR * limit
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > drain:
        raise RequestError(413, f"request body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > drain:
            break
    if size > limit:
        raise RequestError(413, f"request body is over the limit of {limit} bytes")
    return b"".join(chunks)


def build_app(model: Any, info: dict[str, Any] | None = None, limits: Limits = Limits()):
    """The app serving ``model`` (a :class:`DetectorPyFunc` with its context loaded)."""
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse

    from components.tracking.pyfunc_model import InvalidImage

    model.max_pixels = limits.max_pixels
    app = FastAPI(title="vitdet detector", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/ping")
    @app.get("/health")
    async def ping():
        return JSONResponse({"status": "ok"})

    @app.get("/version")
    async def version():
        import mlflow

        return JSONResponse({"mlflow": mlflow.__version__, **(info or {})})

    @app.post("/invocations")
    async def invocations(request: Request):
        try:
            body = await _body(request, limits.max_body_bytes)
            images = parse_request(body, request.headers.get("content-type"), limits)
            assert all(isinstance(i, (bytes, np.ndarray)) for i in images)  # never a path
            predictions = await run_in_threadpool(model.predict, None, images)
        except RequestError as exc:
            return _error(exc.status, exc.message)
        except InvalidImage as exc:
            return _error(400, str(exc))
        except Exception:  # noqa: BLE001 (the trace goes to the server log, not the client)
            log.exception("prediction failed")
            return _error(500, "prediction failed inside the model; the server log has details")
        return JSONResponse({"predictions": predictions})

    return app
