"""Serve a registered detector over HTTP with MLflow's scoring protocol, safely.

Why not ``mlflow models serve`` alone: MLflow's scoring server answers a failing request with
the whole input echoed back and a Python stack trace with server paths. This thin ASGI app
speaks the same protocol (``POST /invocations`` with ``dataframe_split`` /
``dataframe_records`` / ``inputs`` / ``instances``; ``GET /ping``, ``/health``, ``/version``)
around the same pyfunc model, and answers a bad request with one line naming the row and the
rule and a 4xx status: no trace, no server path, no echo.

* :mod:`.protocol`: request JSON -> the images (base64 strings decoded here; a string is never a
  path) with size limits;
* :mod:`.app`: the FastAPI app;
* ``python -m components.serving --model models:/vitdet-maskrcnn@champion`` (127.0.0.1).
"""
