"""A small HTTP API for the tuned model, OpenAI-style, for any HTTP client or the OpenAI library.

    python -m helpers.serve --model tiny --adapter outputs/adapter --port 8000

    GET  /health                 → {"status": "ok", "model": …}
    POST /v1/chat/completions    {"messages": [{"role": "user", "content": "…"}], "max_tokens": 64}

Binds 127.0.0.1 unless told otherwise. Loads the model once; requests are answered one at a
time (a lock around generation), each on its own thread. Request size and max_tokens are bounded;
bad requests get a JSON error.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 * 1024
MAX_TOKENS = 512
ROLES = {"system", "user", "assistant"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def parse_request(body: bytes, max_tokens_limit: int) -> tuple[list[dict], dict]:
    """Validated (messages, generate kwargs) from a chat-completions request body."""
    try:
        request = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "body is not valid JSON")
    if not isinstance(request, dict):
        raise ApiError(400, "body must be a JSON object")
    messages = request.get("messages")
    if (not isinstance(messages, list) or not messages
            or not all(isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in messages)):
        raise ApiError(400, "'messages' must be a non-empty list of {role: system|user|assistant, content: string}")
    if request.get("stream"):
        raise ApiError(400, "stream=true is not supported by this server")
    max_tokens = request.get("max_tokens", request.get("max_completion_tokens", min(128, max_tokens_limit)))
    if not isinstance(max_tokens, int) or not 1 <= max_tokens <= max_tokens_limit:
        raise ApiError(400, f"'max_tokens' must be an integer from 1 to {max_tokens_limit}")
    kwargs = {"max_new_tokens": max_tokens}
    temperature = request.get("temperature", 0)
    if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise ApiError(400, "'temperature' must be a number from 0 to 2")
    if temperature > 0:
        kwargs |= {"do_sample": True, "temperature": float(temperature), "top_p": float(request.get("top_p", 1.0))}
    return [{"role": m["role"], "content": m["content"]} for m in messages], kwargs


def make_server(model, tokenizer, name: str, host: str = "127.0.0.1", port: int = 8000,
                max_tokens: int = MAX_TOKENS) -> ThreadingHTTPServer:
    from .generation import reply
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, payload: dict):
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, error: ApiError):
            self._send(error.status, {"error": {"message": error.message, "type": error.kind}})

        def do_GET(self):
            if self.path == "/health":
                self._send(200, {"status": "ok", "model": name})
            elif self.path == "/v1/chat/completions":
                self._error(ApiError(405, "use POST", "method_not_allowed"))
            else:
                self._error(ApiError(404, f"no route {self.path}", "not_found"))

        def do_POST(self):
            try:
                if self.path != "/v1/chat/completions":
                    raise ApiError(404, f"no route {self.path}", "not_found")
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    raise ApiError(413, f"request body over {MAX_BODY} bytes", "request_too_large")
                messages, kwargs = parse_request(self.rfile.read(length), max_tokens)
                with lock:
                    text, prompt_tokens, new_tokens, finish = reply(model, tokenizer, messages, **kwargs)
            except ApiError as error:
                self.close_connection = True
                return self._error(error)
            except Exception as error:  # the model failed: say so as JSON, keep serving
                return self._error(ApiError(500, f"generation failed: {error}", "server_error"))
            self._send(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": new_tokens,
                          "total_tokens": prompt_tokens + new_tokens}})

        def log_message(self, format, *args):  # quiet: one line per request on stderr is noise in a notebook
            pass

    return ThreadingHTTPServer((host, port), Handler)


def load(model: str, adapter: str | None):
    """Base model (+ adapter), once per process, in the precision this machine supports."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .env import choose_precision
    from .models import resolve
    precision = choose_precision()
    tokenizer = AutoTokenizer.from_pretrained(adapter or resolve(model))
    loaded = AutoModelForCausalLM.from_pretrained(resolve(model), dtype=precision.dtype, device_map=precision.device)
    if adapter:
        from peft import PeftModel
        loaded = PeftModel.from_pretrained(loaded, adapter)
    return loaded, tokenizer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="元のモデル (Hub の ID、フォルダ、または tiny)")
    parser.add_argument("--adapter", help="LoRA アダプターのフォルダか Hub の ID")
    parser.add_argument("--host", default="127.0.0.1", help="既定は 127.0.0.1 (このマシンからだけ)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    args = parser.parse_args(argv)
    model, tokenizer = load(args.model, args.adapter)
    server = make_server(model, tokenizer, args.adapter or args.model, args.host, args.port, args.max_tokens)
    print(f"http://{args.host}:{server.server_port}/v1/chat/completions で待っています (Ctrl+C で終了)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
