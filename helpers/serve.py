"""An OpenAI-compatible chat server for the tuned model, on FastAPI and uvicorn.

    python -m helpers.serve --model tiny --adapter outputs/adapter --port 8000 [--host H] [--api-key KEY] [--max-tokens N]

    GET  /health                       → {"status": "ok", "model": …}   (never needs the key)
    GET  /v1/models, /v1/models/{id}   → the one model served
    POST /v1/chat/completions          → OpenAI's chat.completion, or its chunks as server-sent events ("stream": true)

Binds 127.0.0.1 unless told otherwise. `--api-key` (or SERVE_API_KEY) makes every route but
/health require `Authorization: Bearer KEY`. One answer is generated at a time, requests in the
order they came; a request whose client has gone is stopped. Errors use OpenAI's error shape;
a client's mistake is a 4xx, never a 500.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import hmac
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.exceptions import HTTPException
from transformers import AutoTokenizer, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from . import REPO_ROOT, models
from .env import choose_precision
from .errors import TutorialError, japanese_errors
from .generation import reply
from .prompts import answer_opening, answer_text, prompt_ids, special_token_in

MAX_BODY = 1024 * 1024  # bytes, whatever the framing (Content-Length or chunked)
MAX_TOKENS = 512
MAX_WAITING = 32  # requests queued behind the one being answered; more get 503 (clients retry)
BODY_TIMEOUT = 30  # seconds to receive a request body
API_KEY_VARIABLE = "SERVE_API_KEY"
# Refused (400) unless given as their "off" value, rather than ignored: the answer would not be what was asked.
UNSUPPORTED = {name: (None, False, [], {}) for name in (
    "tools", "tool_choice", "functions", "function_call", "logprobs", "top_logprobs", "logit_bias", "audio",
    "modalities", "prediction", "web_search_options")} | {
    "response_format": (None, {"type": "text"}), "presence_penalty": (None, 0), "frequency_penalty": (None, 0)}
# Accepted and ignored: they label or route a request and change nothing in the answer.
IGNORED = {"user", "metadata", "store", "service_tier", "parallel_tool_calls", "safety_identifier", "prompt_cache_key"}


class ApiError(Exception):
    """An error sent in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error", headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "type": self.kind, "param": self.param,
                                       "code": self.code}}, status_code=self.status, headers=self.headers)


STRICT = ConfigDict(strict=True)  # "0.5" is not a number, true is not 1 (an int still counts as a float)


class Part(BaseModel):
    model_config = STRICT
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = STRICT | ConfigDict(extra="ignore")  # name, refusal, …: not used by a chat template
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[Part] | None = None
    tool_calls: None = None  # tools are not supported: refused, not dropped

    def plain(self) -> dict:
        """As the chat template wants it: `developer` is OpenAI's newer name for `system`; text parts joined."""
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content or [])
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class StreamOptions(BaseModel):
    model_config = STRICT
    include_usage: bool | None = None


class ChatRequest(BaseModel):
    model_config = STRICT | ConfigDict(extra="forbid")
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-2**63, le=2**63 - 1)  # OpenAI's int64
    stream: bool | None = None
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value):
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > 4 or not all(stops):
            raise ValueError("stop is one string or a list of up to 4 non-empty strings")
        return stops


def _param(location) -> str:
    """pydantic's error location as OpenAI names parameters: messages[0].content (no type tags)."""
    name = ""
    for part in location:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part.isidentifier() and part not in ("str", "int", "float", "bool"):
            name += f".{part}" if name else part
        else:
            break
    return name


def parse(body: bytes) -> ChatRequest:
    """A chat-completions request, or an ApiError (400) that names the parameter."""
    try:
        payload = json.loads(body)
        json.dumps(payload, ensure_ascii=False).encode("utf-8")  # lone surrogates ("\ud800") can't become text
    except (ValueError, RecursionError, UnicodeError):
        raise ApiError(400, "The body is not valid JSON (UTF-8, not too deeply nested).") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "The body must be a JSON object.")
    for name, off in UNSUPPORTED.items():
        if payload.get(name) not in off:
            raise ApiError(400, f"'{name}' is not supported by this server.", param=name, code="unsupported_parameter")
    try:
        request = ChatRequest.model_validate_json(json.dumps(
            {k: v for k, v in payload.items() if k not in IGNORED and k not in UNSUPPORTED}, ensure_ascii=False))
    except ValidationError as error:
        first = error.errors()[0]
        param = _param(first["loc"]) or None
        message = f"Invalid '{param}': {first['msg']}"
        if param == "n":
            message += " (only n=1 is supported)"
        elif re.fullmatch(r"messages\[\d+\]\.content.*", param or ""):
            param, message = param.split(".content")[0] + ".content", (
                f"Invalid '{param.split('.content')[0]}.content': give a string or a list of text parts "
                '({"type": "text", "text": "…"}); images and other parts are not supported.')
        elif re.fullmatch(r"messages\[\d+\]\.tool_calls", param or ""):
            message = f"'{param}' is not supported by this server (no tools)."
        raise ApiError(400, message, param=param,
                       code="unknown_parameter" if first["type"] == "extra_forbidden" else "invalid_value") from None
    return request


class Job:
    """One answer, generated in the worker thread; token ids reach the event loop as they come."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop, self.ids, self.cancelled = loop, asyncio.Queue(), threading.Event()

    def put(self, item) -> None:
        self.loop.call_soon_threadsafe(self.ids.put_nowait, item)


class Streamer(BaseStreamer):
    """Hands each new token id to the job (`generate` gives the prompt first: skipped)."""

    def __init__(self, job: Job):
        self.job, self.prompt_seen = job, False

    def put(self, value):
        if self.prompt_seen:
            self.job.put(value.reshape(-1).tolist())
        self.prompt_seen = True

    def end(self):
        pass


class Cancelled(StoppingCriteria):
    def __init__(self, job: Job):
        self.job = job

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), self.job.cancelled.is_set(), dtype=torch.bool, device=input_ids.device)


class StopStrings(StoppingCriteria):
    """Ends generation in the worker thread at once when the answer holds a stop string (the event
    loop, which cuts the text, may see it only after a few more tokens on a busy machine)."""

    def __init__(self, tokenizer, stops: list[str]):
        self.texts = Texts(tokenizer, stops)

    def __call__(self, input_ids, scores, **kwargs):
        self.texts.add(input_ids[0, -1:].tolist())  # called once per new token
        self.texts.text()  # notes a stop string
        return torch.full((input_ids.shape[0],), self.texts.stopped, dtype=torch.bool, device=input_ids.device)


class Texts:
    """The answer as it grows. `delta()` is the new text that can no longer change: a character
    still being completed, trailing spaces, an ending that may begin a stop string and the start
    of the template's answer opening are held back. The deltas add up to `text()` at the end."""

    def __init__(self, tokenizer, stops: list[str]):
        self.tokenizer, self.stops, self.ids, self.sent, self.stopped = tokenizer, stops, [], "", False
        self.opening = answer_opening(tokenizer).strip()

    def add(self, ids: list[int]) -> None:
        self.ids += ids

    def text(self) -> str:
        """The answer so far, cut before the first stop string (OpenAI leaves the stop string out)."""
        text = answer_text(self.tokenizer, self.ids)
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        self.stopped = self.stopped or cut >= 0
        return text[:cut] if cut >= 0 else text

    def _settled(self, text: str) -> str:
        if self.opening and self.opening.startswith(text):  # maybe the template's opening, removed later
            return ""
        text = text.rstrip().rstrip("\ufffd")
        maybe_stop = max((n for s in self.stops for n in range(1, len(s)) if text.endswith(s[:n])), default=0)
        return text[:len(text) - maybe_stop]

    def delta(self, final: bool = False) -> str:
        text = self.text()
        if not (final or self.stopped):
            text = self._settled(text)
        if not text.startswith(self.sent) or len(text) <= len(self.sent):
            return ""
        new, self.sent = text[len(self.sent):], text
        return new


class Server:
    """The model, its name, limits, and the one worker thread that generates."""

    def __init__(self, model, tokenizer, name: str, max_tokens: int = MAX_TOKENS, api_key: str | None = None):
        self.model, self.tokenizer, self.name, self.max_tokens, self.api_key = model, tokenizer, name, max_tokens, api_key
        self.context = getattr(model.config, "max_position_embeddings", None) or tokenizer.model_max_length
        self.worker, self.waiting, self.created = ThreadPoolExecutor(1, thread_name_prefix="generate"), 0, int(time.time())

    def limits(self, request: ChatRequest, messages: list[dict]) -> int:
        """max_new_tokens for the request, after checking the prompt and the answer fit the model's context."""
        for i, message in enumerate(messages):  # "</s>" typed into a message would end a turn: refused
            if special_token_in(self.tokenizer, message["content"]):
                raise ApiError(400, f"'messages[{i}].content' contains a special token of the model's chat format.",
                               param=f"messages[{i}].content", code="invalid_value")
        try:
            prompt = len(prompt_ids(self.tokenizer, messages))
        except Exception as error:  # the template refuses this conversation (e.g. a system message)
            raise ApiError(400, f"The model's chat template refused these messages: {error}", param="messages") from None
        asked = request.max_completion_tokens or request.max_tokens
        if asked and asked > self.max_tokens:
            raise ApiError(400, f"max_tokens must be at most {self.max_tokens} on this server.", param="max_tokens",
                           code="invalid_value")
        wanted = asked or min(self.max_tokens, max(self.context - prompt, 1))
        if prompt + wanted > self.context:
            raise ApiError(400, f"This model's maximum context length is {self.context} tokens. However, you requested "
                                f"{prompt + wanted} tokens ({prompt} in the messages, {wanted} in the completion). "
                                "Please reduce the length of the messages or completion.",
                           param="messages", code="context_length_exceeded")
        return wanted

    def generate(self, job: Job, messages: list[dict], kwargs: dict, seed: int | None, stops: list[str] | None = None):
        """Runs in the worker thread: skipped when the client left while it waited."""
        if job.cancelled.is_set():
            return None
        if seed is not None:
            torch.manual_seed(seed % 2**64)
        criteria = [Cancelled(job)] + ([StopStrings(self.tokenizer, stops)] if stops else [])
        return reply(self.model, self.tokenizer, messages, streamer=Streamer(job),
                     stopping_criteria=StoppingCriteriaList(criteria), **kwargs)

    async def answer(self, http: Request, request: ChatRequest):
        messages = [m.plain() for m in request.messages]
        kwargs = {"max_new_tokens": await asyncio.to_thread(self.limits, request, messages)}  # long prompts: off the loop
        if (request.temperature or 0) >= 1e-5:  # 0 (or a value too small to sample with): greedy
            kwargs |= {"do_sample": True, "temperature": request.temperature, "top_p": request.top_p or 1.0}
        if self.waiting > MAX_WAITING:  # one being answered, MAX_WAITING waiting
            raise ApiError(503, "The server is busy; try again shortly.", kind="server_error", code="server_busy",
                           headers={"Retry-After": "5"})
        loop = asyncio.get_running_loop()
        job, texts = Job(loop), Texts(self.tokenizer, request.stop or [])
        self.waiting += 1
        future = loop.run_in_executor(self.worker, self.generate, job, messages, kwargs, request.seed,
                                      request.stop or [])
        future.add_done_callback(lambda _: setattr(self, "waiting", self.waiting - 1))
        future.add_done_callback(lambda _: job.put(None))
        meta = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": self.name}
        if request.stream:
            usage = bool(request.stream_options and request.stream_options.include_usage)
            return StreamingResponse(self._chunks(job, texts, future, meta, usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        collecting = asyncio.ensure_future(_collect(self._deltas(job, texts)))
        while not collecting.done():  # stop generating for a client that has gone
            await asyncio.wait([collecting], timeout=0.5)
            if not collecting.done() and await http.is_disconnected():
                job.cancelled.set()
        result = await future
        if result is None:  # the client left before its turn
            return JSONResponse({}, status_code=499)
        return JSONResponse(meta | {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": texts.text()}, "logprobs": None,
                         "finish_reason": _finish(texts, result)}],
            "usage": _usage(result)})

    async def _deltas(self, job: Job, texts: Texts):
        """The answer's new text as it settles, while the worker generates; a stop string ends generation."""
        while (ids := await job.ids.get()) is not None:
            texts.add(ids)
            if new := texts.delta():
                yield new
            if texts.stopped:
                job.cancelled.set()

    async def _chunks(self, job: Job, texts: Texts, future, meta: dict, usage: bool):
        def event(delta: dict, finish=None, **extra) -> str:
            chunk = meta | {"object": "chat.completion.chunk",
                            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                            **({"usage": None} if usage else {})} | extra
            return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

        try:
            yield event({"role": "assistant", "content": ""})
            async for new in self._deltas(job, texts):
                yield event({"content": new})
            result = await future
            if new := texts.delta(final=True):
                yield event({"content": new})
            yield event({}, _finish(texts, result))
            if usage:
                yield event({}, choices=[], usage=_usage(result))
        except Exception as error:  # the status line is sent already: report it the way OpenAI's stream does
            print(f"internal error: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            failed = {"message": f"The server failed to answer ({type(error).__name__}).", "type": "server_error",
                      "param": None, "code": None}
            yield f"data: {json.dumps({'error': failed})}\n\n"
        finally:  # also when the client disconnects mid-stream
            job.cancelled.set()
        yield "data: [DONE]\n\n"


async def _collect(deltas) -> None:
    async for _ in deltas:
        pass


def _finish(texts: Texts, result) -> str:
    texts.text()  # notes a stop string
    return "stop" if texts.stopped else result[3]


def _usage(result) -> dict:
    _, prompt, new, _ = result
    return {"prompt_tokens": prompt, "completion_tokens": new, "total_tokens": prompt + new}


class Guard:
    """ASGI middleware: trailing slashes ignored; with a key, every route but /health needs it."""

    def __init__(self, app, api_key: str | None):
        self.app, self.api_key = app, api_key

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope["path"] = scope["path"].rstrip("/") or "/"
            if self.api_key and scope["path"] != "/health":
                scheme, _, given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1").strip().partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.api_key.encode()):
                    return await ApiError(401, "Incorrect or missing API key: send 'Authorization: Bearer <key>'.",
                                          code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}).response()(
                        scope, receive, send)
        await self.app(scope, receive, send)


def create_app(server: Server) -> FastAPI:
    app = FastAPI(title="llm-finetune-ja chat server", docs_url=None, redoc_url=None, openapi_url=None)

    def model_card() -> dict:
        return {"id": server.name, "object": "model", "created": server.created, "owned_by": "llm-finetune-ja"}

    app.add_middleware(Guard, api_key=server.api_key)

    @app.exception_handler(ApiError)
    async def api_error(request, error: ApiError):
        return error.response()

    @app.exception_handler(HTTPException)
    async def http_error(request, error: HTTPException):
        kind = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code)
        return ApiError(error.status_code, f"{request.method} {request.url.path}: {error.detail}", code=kind).response()

    @app.exception_handler(Exception)
    async def server_error(request, error: Exception):
        print(f"internal error: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return ApiError(500, f"The server failed to answer ({type(error).__name__}).", kind="server_error").response()

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": server.name}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def one_model(model_id: str):
        if model_id != server.name:
            raise ApiError(404, f"The model '{model_id}' does not exist; this server has '{server.name}'.",
                           param="model", code="model_not_found")
        return model_card()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            parsed = parse(await asyncio.wait_for(_read(request), BODY_TIMEOUT))
        except TimeoutError:
            raise ApiError(408, f"The request body did not arrive within {BODY_TIMEOUT} s.") from None
        return await server.answer(request, parsed)  # one model is served, whatever `model` says

    return app


async def _read(request: Request) -> bytes:
    """The body, refused (413) as soon as it is over MAX_BODY: by its declared length or as it arrives."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, f"The request body is over {MAX_BODY} bytes.", code="request_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, f"The request body is over {MAX_BODY} bytes.", code="request_too_large")
    return bytes(body)


def open_to_all(host: str) -> bool:
    """Whether `host` listens on every interface (0.0.0.0, ::, 0, …)."""
    try:
        return any(ipaddress.ip_address(info[4][0].split("%")[0]).is_unspecified
                   for info in socket.getaddrinfo(host or None, 0, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE))
    except (OSError, ValueError):
        return False


def public_name(model: str, adapter: str | None) -> str:
    """What callers see: Hub ids as they are, local folders by their last name only (no paths of this machine)."""
    def name(source: str) -> str:
        return Path(source).name if Path(source).expanduser().exists() else source
    return name(model) + (f"+{name(adapter)}" if adapter else "")


def load(model: str, adapter: str | None):
    """Base model (+ adapter), in the precision this machine supports, and the tokenizer (the adapter's when given)."""
    precision = choose_precision(model)
    with japanese_errors(adapter or model):
        return models.load(model, precision, adapter=adapter), AutoTokenizer.from_pretrained(adapter or models.resolve(model))


def _tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:]) or "(ログは空です)"


def launch(port: int, *args: str, log: Path, wait: float = 900) -> subprocess.Popen:
    """The server in the background, output into `log`: back once /health answers; if it dies, a Japanese error with the log's end."""
    with socket.socket() as probe:  # a server left running would answer /health in place of the new one
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise TutorialError(f"ポート {port} は、ほかのプログラム (前に起動したサーバーなど) が使っています。"
                                "前のサーバーを止める (server.terminate()、またはランタイムを再起動) か、別のポートにしてください。")
    log = Path(log)
    with japanese_errors("サーバーの起動"):  # the log goes to the output folder: read-only or full, said in Japanese
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w", encoding="utf-8") as output:
            process = subprocess.Popen([sys.executable, "-m", "helpers.serve", "--port", str(port), *args],
                                       cwd=str(REPO_ROOT), stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + wait
    while process.poll() is None and time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except OSError:
            time.sleep(0.5)
    if process.poll() is None:  # still loading after `wait` seconds
        process.terminate()
        process.wait()
        raise TutorialError(f"API サーバーが {wait:.0f} 秒たっても答えないので止めました。サーバーのログ {log} の最後:\n{_tail(log)}\n"
                            "モデルの読み込みが遅いだけなら、もう一度実行してください。")
    raise TutorialError(f"API サーバー (python -m helpers.serve) が、準備の途中で終了しました (終了コード {process.returncode})。"
                        f"原因はサーバーのログ {log} の最後にあります:\n{_tail(log)}\n"
                        "よくある原因: ポートが使用中 (Address already in use) → 別のポートにする / GPU のメモリ不足 (out of memory)"
                        " → ランタイムを再起動して、このノートブックを上から実行し直す。直したら、このセルをもう一度実行してください。")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="元のモデル (Hub の ID、フォルダ、または tiny)")
    parser.add_argument("--adapter", help="LoRA アダプターのフォルダか Hub の ID")
    parser.add_argument("--host", default="127.0.0.1", help="既定は 127.0.0.1 (このマシンからだけ)。すべてに開くなら 0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", default=os.environ.get(API_KEY_VARIABLE),
                        help=f"これを Authorization: Bearer で送る呼び出しだけに答える (既定: 環境変数 {API_KEY_VARIABLE})")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS, help="1 回の答えの最大トークン数")
    parser.add_argument("--name", help="呼び出し側に見せるモデルの名前 (既定: モデルとアダプターの名前。パスは見せない)")
    args = parser.parse_args(argv)
    if open_to_all(args.host) and not args.api_key:
        print(f"警告: --host {args.host} では、ほかのマシンからも鍵なしで誰でも呼べます。"
              f"--api-key (または環境変数 {API_KEY_VARIABLE}) を付けるか、--host 127.0.0.1 にしてください。", file=sys.stderr, flush=True)
    model, tokenizer = load(args.model, args.adapter)
    server = Server(model, tokenizer, args.name or public_name(args.model, args.adapter), args.max_tokens, args.api_key)
    gc.collect()  # what loading left behind, then the rest (libraries, model) lives as long as the server:
    gc.freeze()  # frozen, no full collection walks it in the middle of an answer (0.3 s each)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"http://{host}:{args.port}/v1 で待っています (モデル名: {server.name}。Ctrl+C で終了)", flush=True)
    # No limit_concurrency: it counts idle connections too, so a few idle sockets would shut everyone out;
    # the work itself is bounded by MAX_WAITING. Behind the internet, put a reverse proxy in front (header timeouts).
    uvicorn.run(create_app(server), host=args.host, port=args.port, log_level="warning", timeout_keep_alive=5)


if __name__ == "__main__":
    main()
