"""A client for OpenAI-compatible chat-completions servers (vLLM, SGLang, Ollama, hosted providers).

Three questions about frames (sent as base64 JPEG data URLs): a caption, a 1-5 quality rating and a
yes/no check that an instruction describes a source/target pair. Each answer must be one JSON object
that validates against a strict pydantic model; anything else (malformed, refused, timed out, an
HTTP error after the retries) is a `VlmError` subclass that the stage turns into an `errors` row.

Concurrency is bounded per client (a semaphore shared by every thread using it); 429, 5xx, timeouts
and dropped connections are retried with exponential backoff and full jitter, and a 429's
Retry-After is honoured (capped). The API key comes from the environment variable the config names;
it goes only into the Authorization header, and every error message is scrubbed of it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import cv2
import httpx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

LOG = logging.getLogger("curation.models.vlm")
A = TypeVar("A", bound=BaseModel)
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
REFUSAL = re.compile(r"^\s*(i'?m sorry|i am sorry|i can(no|')t|i am unable|i'?m unable|sorry,)", re.IGNORECASE)


class VlmConfig(BaseModel):
    """Which server and model to ask, and how patiently (a section of the VLM stage's config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(min_length=1)  # e.g. http://127.0.0.1:8000/v1 (the path before /chat/completions)
    model: str = Field(min_length=1)
    api_key_env: str | None = "OPENAI_API_KEY"  # the NAME of the variable holding the key; None = no key
    max_concurrency: int = Field(4, ge=1)
    max_retries: int = Field(3, ge=0)
    timeout_s: float = Field(60.0, gt=0)
    backoff_s: float = Field(1.0, ge=0)
    max_backoff_s: float = Field(30.0, ge=0)
    max_tokens: int = Field(300, ge=1)
    image_short_side: int = Field(336, ge=16)
    jpeg_quality: int = Field(90, ge=10, le=100)


class VlmError(Exception):
    """A VLM answer that could not be had or used; the message is one line, never the key."""


class VlmHttpError(VlmError):
    """The server answered with an HTTP error (after retries when retryable)."""


class VlmTimeout(VlmError):
    """No answer within the timeout (after retries), or the connection failed."""


class VlmMalformed(VlmError):
    """The answer was not one JSON object of the asked shape."""


class VlmRefused(VlmError):
    """The model declined to answer (a refusal field, a content filter, or a refusal sentence)."""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Caption(_Answer):
    caption: str = Field(min_length=1, max_length=2000)


class QualityRating(_Answer):
    rating: int = Field(ge=1, le=5)
    reason: str


class InstructionCheck(_Answer):
    matches: bool
    reason: str


CAPTION_PROMPT = ("Describe what happens in these video frames in one or two sentences. "
                  'Answer with only a JSON object: {"caption": "<text>"}.')
QUALITY_PROMPT = ("Rate the visual quality of this video clip for training a video editing model (sharpness, "
                  "exposure, stability, no overlays or watermarks), 1 = unusable, 5 = excellent. "
                  'Answer with only a JSON object: {"rating": <1-5>, "reason": "<short reason>"}.')
CHECK_PROMPT = ("The first {n} frames are a source clip, the next {n} the edited clip. Does this instruction "
                "describe the edit exactly: {instruction!r}? "
                'Answer with only a JSON object: {{"matches": true|false, "reason": "<short reason>"}}.')


def encode_frame(frame: np.ndarray, short_side: int, quality: int) -> str:
    """An RGB uint8 frame (H, W, 3) as a JPEG data URL, shrunk so its short side is at most `short_side`."""
    h, w = frame.shape[:2]
    scale = min(1.0, short_side / min(h, w))
    if scale < 1.0:
        frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VlmError("could not encode a frame as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def parse_answer(content: Any, shape: type[A]) -> A:
    """The model's text as `shape`: one JSON object (a single ```json fence allowed), validated strictly."""
    if not isinstance(content, str) or not content.strip():
        raise VlmMalformed("empty answer")
    text = content.strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    if fence:
        text = fence.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if REFUSAL.match(text):
            raise VlmRefused(f"model refused: {text[:120]!r}") from None
        raise VlmMalformed(f"answer is not JSON ({exc.msg} at char {exc.pos}): {text[:80]!r}") from None
    try:
        return shape.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise VlmMalformed(f"answer does not fit {shape.__name__}: {where}: {first['msg']}") from None


class VlmClient:
    """Ask one OpenAI-compatible server questions about frames; thread-safe, bounded concurrency."""

    def __init__(self, config: VlmConfig, env: Mapping[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        env = os.environ if env is None else env
        self.config = config
        self._key = None
        if config.api_key_env is not None:
            self._key = env.get(config.api_key_env)
            if not self._key:
                raise VlmError(f"VLM API key: environment variable {config.api_key_env} is not set "
                               "(set it, or api_key_env: null for a server without keys)")
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._http = httpx.Client(base_url=config.base_url.rstrip("/"), headers=headers,
                                  timeout=httpx.Timeout(config.timeout_s), trust_env=False)
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"VlmClient(base_url={self.config.base_url!r}, model={self.config.model!r})"

    def close(self) -> None:
        self._http.close()

    def caption(self, frames: np.ndarray) -> Caption:
        return self.ask(CAPTION_PROMPT, frames, Caption)

    def rate_quality(self, frames: np.ndarray) -> QualityRating:
        return self.ask(QUALITY_PROMPT, frames, QualityRating)

    def check_instruction(self, source: np.ndarray, target: np.ndarray, instruction: str) -> InstructionCheck:
        """Whether `instruction` turns the source frames into the target frames (same number of each)."""
        prompt = CHECK_PROMPT.format(n=len(source), instruction=instruction)
        return self.ask(prompt, np.concatenate([source, target]), InstructionCheck)

    def ask(self, prompt: str, frames: np.ndarray, shape: type[A]) -> A:
        """One question with frames (T, H, W, 3) attached; the answer parsed as `shape` or a VlmError."""
        images = [{"type": "image_url", "image_url": {"url": encode_frame(f, self.config.image_short_side,
                                                                            self.config.jpeg_quality)}}
                  for f in frames]
        body = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}, *images]}],
            "max_tokens": self.config.max_tokens,
            "temperature": 0.0,
            "response_format": {"type": "json_object"},
        }
        message, finish = self._complete(body)
        if message.get("refusal") or finish == "content_filter":
            raise VlmRefused(self._scrub(f"model refused: {str(message.get('refusal') or finish)[:120]!r}"))
        try:
            return parse_answer(message.get("content"), shape)
        except VlmError as exc:
            raise type(exc)(self._scrub(str(exc))) from None

    def map(self, fn: Callable[[ItemT], ResultT], items: Sequence[ItemT]) -> list[ResultT | VlmError]:
        """`fn` over items on up to max_concurrency threads; a VlmError is returned in place, in order."""

        def one(item: ItemT) -> ResultT | VlmError:
            try:
                return fn(item)
            except VlmError as exc:
                return exc

        with ThreadPoolExecutor(self.config.max_concurrency) as pool:
            return list(pool.map(one, items))

    def _complete(self, body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """POST the request with retries; (message, finish_reason) of the first choice."""
        last, retry_after = "", None
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self._sleep(self._delay(attempt, last, retry_after))
            try:
                with self._slots:
                    resp = self._http.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                last = f"timed out after {self.config.timeout_s:g} s"
                continue
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__})"
                continue
            if resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}"
                retry_after = resp.headers.get("retry-after") if resp.status_code == 429 else None
                continue
            if resp.status_code >= 400:
                raise VlmHttpError(self._scrub(f"HTTP {resp.status_code} from {self.config.base_url}: {resp.text[:160]}"))
            return self._first_choice(resp)
        tries = self.config.max_retries + 1
        kind = VlmTimeout if last.startswith(("timed out", "connection")) else VlmHttpError
        raise kind(self._scrub(f"{last} from {self.config.base_url} ({tries} tries)"))

    def _first_choice(self, resp: httpx.Response) -> tuple[dict[str, Any], str | None]:
        try:
            choice = resp.json()["choices"][0]
            message = choice["message"]
            if not isinstance(message, dict):
                raise TypeError("message is not an object")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise VlmMalformed(self._scrub(f"response is not a chat completion ({type(exc).__name__}): "
                                           f"{resp.text[:120]!r}")) from None
        return message, choice.get("finish_reason")

    def _delay(self, attempt: int, last: str, retry_after: str | None) -> float:
        """Full-jitter exponential backoff; a 429's Retry-After (seconds) when it asks for longer."""
        cap = self.config.max_backoff_s
        delay = random.uniform(0, min(cap, self.config.backoff_s * 2 ** (attempt - 1)))
        if retry_after is not None:
            try:
                delay = max(delay, min(cap, float(retry_after)))
            except ValueError:
                pass
        LOG.info("VLM retry %d after %s, waiting %.2f s", attempt, last, delay)
        return delay

    def _scrub(self, text: str) -> str:
        """One line, with the API key replaced wherever a server echoed it."""
        flat = " ".join(str(text).split())
        return flat.replace(self._key, "***") if self._key else flat
