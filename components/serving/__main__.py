"""``python -m components.serving --model models:/vitdet-maskrcnn@champion [--port 5001]``"""
from __future__ import annotations

import argparse
import sys

from components.common.env import apply_defaults
from components.serving.protocol import Limits


def main(argv: list[str] | None = None) -> int:
    apply_defaults()
    defaults = Limits()
    ap = argparse.ArgumentParser(
        prog="python -m components.serving",
        description="Serve an MLflow-registered detector with MLflow's scoring protocol "
                    "(POST /invocations; GET /ping /health /version). Bad requests get a 4xx "
                    "and one line; no stack traces, no server paths.")
    ap.add_argument("--model", default="models:/vitdet-maskrcnn@champion",
                    help="MLflow model URI (default: %(default)s; the alias moves what is served "
                         "at the next start)")
    ap.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    ap.add_argument("--port", type=int, default=5001, help="port (default: %(default)s; 0 = any "
                                                           "free port, printed at start)")
    ap.add_argument("--max-request-mb", type=float, default=defaults.max_body_bytes / 2**20)
    ap.add_argument("--max-images", type=int, default=defaults.max_images,
                    help="images per request (default: %(default)s)")
    ap.add_argument("--max-pixels", type=int, default=defaults.max_pixels,
                    help="pixels per image, from its header (default: %(default)s)")
    args = ap.parse_args(argv)

    import socket

    import uvicorn

    from components.serving.app import build_app, load_detector

    try:
        model, info = load_detector(args.model)
    except Exception as exc:  # noqa: BLE001 (a CLI: say what failed and how to fix it)
        print(f"error: cannot load {args.model}: {type(exc).__name__}: {str(exc)[:300]} "
              "(is MLFLOW_TRACKING_URI the store that holds it? `python -m components.tracking "
              "show` lists the aliases)", file=sys.stderr)
        return 1
    limits = Limits(int(args.max_request_mb * 2**20), args.max_images, args.max_pixels)
    app = build_app(model, info, limits)
    sock = socket.socket()
    sock.bind((args.host, args.port))
    sock.listen(128)  # listening before the address is printed: a client may connect at once
    host, port = sock.getsockname()[:2]
    print(f"serving {args.model} (loaded in {info['load_s']:.1f} s) on http://{host}:{port}"
          "/invocations", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
