"""The VLM client against a local OpenAI-compatible server on 127.0.0.1: good, slow, failing, 429, malformed, refused.

The server is the test double at the outside boundary; the client, its HTTP stack, retries and
parsing are the real code. Sleeps between retries go to a recorder, so no test waits on backoff.
"""

from __future__ import annotations

import base64
import collections
import http.server
import json
import logging
import threading
import time

import numpy as np
import pytest

from curation.models.vlm import (
    Caption,
    QualityRating,
    VlmClient,
    VlmConfig,
    VlmError,
    VlmHttpError,
    VlmMalformed,
    VlmRefused,
    VlmTimeout,
)

KEY = "sk-test-SECRET-0123456789abcdef"


def _completion(content=None, refusal=None, finish="stop") -> dict:
    message = {"role": "assistant", "content": content}
    if refusal is not None:
        message["refusal"] = refusal
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": finish}]}


class FakeVlm(http.server.BaseHTTPRequestHandler):
    """Behaviour picked by the first path segment: /<scenario>/v1/chat/completions."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        server = self.server
        scenario = self.path.strip("/").split("/")[0]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with server.lock:
            server.counts[scenario] += 1
            n = server.counts[scenario]
            server.inflight[scenario] += 1  # per scenario: slow answers of earlier tests may still be running
            server.max_inflight[scenario] = max(server.max_inflight[scenario], server.inflight[scenario])
            server.requests.append((scenario, dict(self.headers), body))
        try:
            self._answer(scenario, n, body)
        finally:
            with server.lock:
                server.inflight[scenario] -= 1

    def _send(self, status: int, payload, headers: dict | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, scenario: str, n: int, body: dict) -> None:
        ok = _completion(json.dumps({"caption": "a red disc moves left"}))
        if scenario == "ok":
            self._send(200, ok)
        elif scenario == "slow":
            time.sleep(1.0)
            self._send(200, ok)
        elif scenario == "fail500":
            self._send(500, {"error": "boom"})
        elif scenario == "flaky":
            self._send(500 if n <= 2 else 200, {"error": "boom"} if n <= 2 else ok)
        elif scenario == "ratelimit":
            self._send(429, {"error": "slow down"}, {"Retry-After": "7"}) if n == 1 else self._send(200, ok)
        elif scenario == "malformed":
            self._send(200, _completion("here you go: {caption: oops"))
        elif scenario == "wrongshape":
            self._send(200, _completion('{"rating": 9, "reason": "great"}'))
        elif scenario == "fenced":
            self._send(200, _completion('```json\n{"rating": 4, "reason": "sharp"}\n```'))
        elif scenario == "refusal":
            self._send(200, _completion(None, refusal="I can't help with that."))
        elif scenario == "sorry":
            self._send(200, _completion("I'm sorry, but I cannot describe these images."))
        elif scenario == "notcompletion":
            self._send(200, b"<html>gateway</html>")
        elif scenario == "echo400":
            self._send(400, {"error": f"bad request, you sent {self.headers['Authorization']}"})
        elif scenario == "echo500":
            self._send(500, {"error": f"upstream rejected {self.headers['Authorization']}"})
        elif scenario == "stage":  # answers whichever question was asked
            prompt = body["messages"][0]["content"][0]["text"]
            answer = {"rating": 4, "reason": "sharp"} if "Rate the visual quality" in prompt else {"caption": "a disc"}
            self._send(200, _completion(json.dumps(answer)))
        elif scenario == "busy":
            time.sleep(0.05)
            self._send(200, ok)


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeVlm)
    srv.daemon_threads = True
    srv.handle_error = lambda request, address: None  # a client that timed out and left is expected here
    srv.lock = threading.Lock()
    srv.counts = collections.Counter()
    srv.requests = []
    srv.inflight, srv.max_inflight = collections.Counter(), collections.Counter()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


FRAMES = np.random.default_rng(0).integers(0, 255, (2, 40, 64, 3), dtype=np.uint8)


def client(server, scenario: str, sleeps: list | None = None, **overrides) -> VlmClient:
    config = VlmConfig(base_url=f"http://127.0.0.1:{server.server_port}/{scenario}/v1", model="tiny-vlm",
                       api_key_env="TEST_VLM_KEY", timeout_s=overrides.pop("timeout_s", 5.0),
                       max_retries=overrides.pop("max_retries", 2), **overrides)
    return VlmClient(config, env={"TEST_VLM_KEY": KEY}, sleep=(sleeps if sleeps is not None else []).append)


def test_caption_sends_model_key_and_base64_jpeg_frames(server):
    got = client(server, "ok").caption(FRAMES)
    assert got == Caption(caption="a red disc moves left")
    _, headers, body = [r for r in server.requests if r[0] == "ok"][-1]
    assert headers["Authorization"] == f"Bearer {KEY}" and body["model"] == "tiny-vlm"
    images = [part["image_url"]["url"] for part in body["messages"][0]["content"] if part["type"] == "image_url"]
    assert len(images) == 2 and all(u.startswith("data:image/jpeg;base64,") for u in images)
    assert base64.b64decode(images[0].split(",", 1)[1])[:3] == b"\xff\xd8\xff"  # a JPEG


def test_timeouts_retry_a_bounded_number_of_times(server):
    sleeps: list[float] = []
    with pytest.raises(VlmTimeout, match="timed out after 0.2 s .* \\(3 tries\\)"):
        client(server, "slow", sleeps, timeout_s=0.2).caption(FRAMES)
    assert server.counts["slow"] == 3 and len(sleeps) == 2


def test_server_errors_retry_then_fail_or_recover(server):
    with pytest.raises(VlmHttpError, match="HTTP 500"):
        client(server, "fail500").caption(FRAMES)
    assert server.counts["fail500"] == 3
    sleeps: list[float] = []
    assert client(server, "flaky", sleeps).caption(FRAMES).caption.startswith("a red disc")
    assert server.counts["flaky"] == 3
    # full jitter: each wait within [0, backoff * 2**(attempt-1)]
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0


def test_429_honours_retry_after(server):
    sleeps: list[float] = []
    assert client(server, "ratelimit", sleeps, backoff_s=0.01).caption(FRAMES).caption
    assert server.counts["ratelimit"] == 2 and sleeps == [7.0]


def test_malformed_and_wrong_shape_answers_are_typed_and_not_retried(server):
    with pytest.raises(VlmMalformed, match="not JSON"):
        client(server, "malformed").caption(FRAMES)
    with pytest.raises(VlmMalformed, match="rating"):
        client(server, "wrongshape").rate_quality(FRAMES)
    with pytest.raises(VlmMalformed, match="not a chat completion"):
        client(server, "notcompletion").caption(FRAMES)
    assert (server.counts["malformed"], server.counts["wrongshape"], server.counts["notcompletion"]) == (1, 1, 1)
    assert client(server, "fenced").rate_quality(FRAMES) == QualityRating(rating=4, reason="sharp")


def test_refusals_are_typed(server):
    with pytest.raises(VlmRefused):
        client(server, "refusal").caption(FRAMES)
    with pytest.raises(VlmRefused):
        client(server, "sorry").caption(FRAMES)


def test_client_errors_are_not_retried(server):
    with pytest.raises(VlmHttpError, match="HTTP 400"):
        client(server, "echo400").caption(FRAMES)
    assert server.counts["echo400"] == 1


def test_the_key_never_appears_in_errors_or_logs(server, caplog):
    caught: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for scenario in ("echo400", "echo500"):
            c = client(server, scenario)
            with pytest.raises(VlmError) as err:
                c.caption(FRAMES)
            caught.append(str(err.value))
            caught.append(repr(c))
    assert "***" in caught[0] and all(KEY not in text for text in caught)
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_missing_key_variable_stops_at_start(server):
    config = VlmConfig(base_url="http://127.0.0.1:9/v1", model="m", api_key_env="NOT_SET_ANYWHERE")
    with pytest.raises(VlmError, match="NOT_SET_ANYWHERE is not set"):
        VlmClient(config, env={})


def test_map_bounds_concurrency_and_keeps_order_with_errors_in_place(server):
    c = client(server, "busy", max_concurrency=2)
    got = c.map(lambda i: c.caption(FRAMES[:1]) if i % 3 else (_ for _ in ()).throw(VlmRefused(f"item {i}")), list(range(8)))
    assert [isinstance(g, VlmRefused) for g in got] == [i % 3 == 0 for i in range(8)]
    assert str(got[3]) == "item 3" and server.counts["busy"] == 5
    assert 1 <= server.max_inflight["busy"] <= 2


def _stage_unit(root, server, scenario: str):
    from curation.stage import WorkUnit
    from curation.stages.vlm_scores import VlmScoresConfig, VlmScoresStage
    from manifests.media.encode import VideoWriter

    with VideoWriter(root / "a.mp4", fps=25.0) as w:
        for f in np.repeat(FRAMES[:1], 3, axis=0):
            w.write(f)
    (root / "broken.mp4").write_bytes(b"junk")
    cfg = VlmScoresConfig(client=VlmConfig(base_url=f"http://127.0.0.1:{server.server_port}/{scenario}/v1",
                                           model="tiny-vlm", api_key_env="TEST_VLM_STAGE_KEY", max_retries=0))
    stage = VlmScoresStage(cfg)
    clips = [{"clip_id": c, "status": "ok", "uri": f"{c}.mp4"} for c in ("a", "broken")]
    return stage, WorkUnit("b000003", [], str(root), tables={"clips": clips})


def test_stage_writes_quality_rows_captions_and_errors_rows(server, tmp_path, monkeypatch):
    from manifests import SCHEMAS

    monkeypatch.setenv("TEST_VLM_STAGE_KEY", KEY)
    stage, unit = _stage_unit(tmp_path, server, "stage")
    stage.setup()
    out = stage.process(unit).rows
    (row,) = out["scores"]
    assert set(row) == set(SCHEMAS["scores"].names)
    assert (row["clip_id"], row["signal"], row["value"], row["passed"]) == ("a", "vlm_quality", 4.0, None)
    assert (row["model_name"], row["weights_id"]) == ("tiny-vlm", "served:tiny-vlm")
    assert [e["input"] for e in out["errors"]] == ["broken"]
    (caption,) = out["captions"]
    assert set(caption) == set(SCHEMAS["captions"].names)
    assert (caption["clip_id"], caption["caption"], caption["weights_id"]) == ("a", "a disc", "served:tiny-vlm")


def test_stage_turns_bad_answers_into_errors_rows_without_the_key(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_VLM_STAGE_KEY", KEY)
    for scenario, error_class in (("malformed", "VlmMalformed"), ("refusal", "VlmRefused"), ("echo500", "VlmHttpError")):
        stage, unit = _stage_unit(tmp_path, server, scenario)
        stage.setup()
        out = stage.process(unit).rows
        assert out["scores"] == []
        errors = {e["input"]: e for e in out["errors"]}
        assert errors["a"]["error_class"] == error_class and KEY not in json.dumps(out)
