"""The served champion: the real server on 127.0.0.1, MLflow's REST protocol, safe errors."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from components.common.env import PROJECT_ROOT

pytestmark = pytest.mark.slow
MODEL = "serving-test-detector"


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A tiny fine-tuned detector registered as ``MODEL@champion``; a test image of its split."""
    import mlflow

    from components.data import layout
    from components.tracking.pyfunc_model import log_detector_model
    from components.tracking.runs import ensure_experiment
    from testkit.finetune import shared_tiny_run

    run = shared_tiny_run(tmp_path_factory.getbasetemp())
    final = run.result.final
    coco = json.loads(layout.coco_json(run.dataset.root, "test").read_text())
    image = layout.images_dir(run.dataset.root) / coco["images"][0]["file_name"]
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    with mlflow.start_run(experiment_id=ensure_experiment("serving-tests")):
        info = log_detector_model(final / "config.py", final / "model.safetensors",
                                  name="model", input_example=image.read_bytes())
    version = mlflow.register_model(info.model_uri, MODEL).version
    mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", version)
    return f"models:/{MODEL}@champion", image


@pytest.fixture(scope="module")
def server(champion):
    uri, _ = champion
    proc = subprocess.Popen(
        [sys.executable, "-m", "components.serving", "--model", uri, "--port", "0",
         "--max-pixels", "1000000", "--max-request-mb", "1", "--max-images", "8"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ))
    deadline, url = time.monotonic() + 240, None
    lines = []
    while time.monotonic() < deadline and url is None:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if line.startswith("serving "):
            url = line.split(" on ", 1)[1].strip().rsplit("/", 1)[0]
    assert url, "server did not start:\n" + "".join(lines[-30:])
    yield url
    os.kill(proc.pid, signal.SIGTERM)  # by its PID
    proc.wait(timeout=30)


def _post(url: str, body: bytes | dict, content_type: str = "application/json"):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url + "/invocations", data=data,
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_base64_image_matches_in_process_predict(server, champion):
    import mlflow
    import pandas as pd

    uri, image = champion
    status, body = _post(server, {"dataframe_split": {"columns": ["image"],
                                                       "data": [[_b64(image.read_bytes())]]}})
    assert status == 200, body
    served = body["predictions"]
    local = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"image": [image.read_bytes()]}))
    assert len(served) == 1 and set(served[0]) >= {"boxes", "labels", "scores", "masks"}
    assert served[0]["labels"] == local[0]["labels"]
    assert np.allclose(served[0]["scores"], local[0]["scores"], atol=1e-5)
    assert np.allclose(served[0]["boxes"], local[0]["boxes"], atol=1e-3)
    assert [m["counts"] for m in served[0]["masks"]] == [m["counts"] for m in local[0]["masks"]]
    # the same image as records and as a uint8 array through "inputs"
    status, records = _post(server, {"dataframe_records": [{"image": _b64(image.read_bytes())}]})
    assert status == 200 and records["predictions"][0]["labels"] == local[0]["labels"]
    import cv2

    rgb = cv2.imread(str(image))[:, :, ::-1]
    status, arrays = _post(server, {"inputs": [rgb.tolist()]})
    assert status == 200 and len(arrays["predictions"]) == 1


def test_logged_model_has_signature_and_example(champion):
    import mlflow

    uri, _ = champion
    meta = mlflow.models.get_model_info(uri)
    assert meta.signature is not None and meta.signature.inputs.input_names() == ["image"]
    assert meta.saved_input_example_info is not None


@pytest.mark.parametrize("name, body, status, needle", [
    ("a server path", {"dataframe_split": {"columns": ["image"], "data": [["/etc/passwd"]]}},
     400, "row 0: image: not valid base64"),
    ("a path, base64-encoded", {"dataframe_records": [{"image": _b64(b"/etc/passwd")}]},
     400, "row 0: image: not a JPEG or PNG"),
    ("garbage", {"dataframe_split": {"columns": ["image"], "data": [[_b64(os.urandom(300))]]}},
     400, "row 0: image: not a JPEG or PNG"),
    ("wrong column", {"dataframe_split": {"columns": ["img"], "data": [["x"]]}},
     400, "exactly one column 'image'"),
    ("not the protocol", {"data": [1, 2]}, 400, "exactly one of"),
    ("float array", {"inputs": [[[[0.5, 0.5, 0.5]]]]}, 400, "uint8"),
])
def test_bad_requests_get_one_line_and_a_4xx(server, name, body, status, needle):
    code, reply = _post(server, body)
    _assert_clean(code, reply, status, needle)


def _assert_clean(code, reply, status, needle):
    assert code == status, reply
    assert set(reply) == {"error_code", "message"} and needle in reply["message"], reply
    text = json.dumps(reply)
    assert "Traceback" not in text and "/work" not in text and str(PROJECT_ROOT) not in text
    assert "\n" not in reply["message"] and len(reply["message"]) < 300


def test_bombs_oversize_and_content_type_are_refused(server, tmp_path):
    import cv2

    ok, png = cv2.imencode(".png", np.zeros((1200, 1000, 3), np.uint8))  # 1.2 MP > 1 MP limit
    assert ok and len(png) < 100_000  # a small file that would decode to 3.6 MB
    code, reply = _post(server, {"dataframe_records": [{"image": _b64(png.tobytes())}]})
    _assert_clean(code, reply, 400, "1000x1200 = 1200000 pixels is more than 1000000")
    big = {"dataframe_records": [{"image": _b64(os.urandom(900_000))}]}  # > 1 MB as base64
    _assert_clean(*_post(server, big), 413, "limit")
    many = {"dataframe_records": [{"image": _b64(png.tobytes())}] * 9}
    _assert_clean(*_post(server, many), 413, "9 images in one request; the limit is 8")
    _assert_clean(*_post(server, b"image=1", "text/plain"), 415, "application/json")
    _assert_clean(*_post(server, b"{not json"), 400, "not valid JSON")
