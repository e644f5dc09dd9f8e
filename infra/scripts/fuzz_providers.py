"""Outside providers for the schema fuzzing run: OpenAI, Anthropic, Perplexity
and Stripe answering as their APIs do, on 127.0.0.1, so the fuzzed host has
every integration configured and each route answers with its own behaviour
(not the 503 of an unconfigured provider, which `not_a_server_error` would
rightly flag). The stubs answer the happy path in the providers' real shapes;
their checks and failures are tested in tests/e2e (ai.rs, billing.rs).

`start()` serves them on a free port in a daemon thread and returns the
settings that point the host at them.
"""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def _completion(model):
    return {
        "id": "chatcmpl-fuzz",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Fuzzed answer."}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def _openai_stream(model):
    chunk = {"id": "chatcmpl-fuzz", "object": "chat.completion.chunk", "model": model}
    yield {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Fuzzed"}}]}
    yield {**chunk, "choices": [{"index": 0, "delta": {"content": " answer."}, "finish_reason": "stop"}]}
    yield {**chunk, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


def _anthropic_message(model):
    return {
        "id": "msg_fuzz",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Fuzzed answer."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 3},
    }


def _anthropic_stream(model):
    message = {**_anthropic_message(model), "content": [], "stop_reason": None}
    message["usage"] = {"input_tokens": 5, "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": message}
    yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Fuzzed answer."}}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 3}}
    yield "message_stop", {"type": "message_stop"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _events(self, lines):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for line in lines:
            self.wfile.write(line.encode())
            self.wfile.flush()
        self.close_connection = True

    def do_POST(self):
        path = urlparse(self.path).path
        body = self._body()
        if path in ("/v1/chat/completions", "/chat/completions"):
            request = json.loads(body or b"{}")
            model = request.get("model", "gpt-4o")
            if request.get("stream"):
                lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in _openai_stream(model)]
                return self._events(lines + ["data: [DONE]\n\n"])
            return self._json(200, _completion(model))
        if path == "/v1/messages":
            request = json.loads(body or b"{}")
            model = request.get("model", "claude-sonnet-4-5")
            if request.get("stream"):
                return self._events(
                    f"event: {name}\ndata: {json.dumps(event)}\n\n" for name, event in _anthropic_stream(model)
                )
            return self._json(200, _anthropic_message(model))
        form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
        if path == "/v1/customers":
            return self._json(200, {"id": f"cus_{uuid.uuid4().hex[:14]}", "object": "customer", "email": form.get("email")})
        if path == "/v1/checkout/sessions":
            session = f"cs_test_{uuid.uuid4().hex}"
            return self._json(
                200,
                {
                    "id": session,
                    "object": "checkout.session",
                    "mode": "subscription",
                    "customer": form.get("customer"),
                    "client_reference_id": form.get("client_reference_id"),
                    "url": f"https://checkout.stripe.com/c/pay/{session}",
                },
            )
        if path == "/v1/billing_portal/sessions":
            return self._json(
                200,
                {
                    "id": f"bps_{uuid.uuid4().hex[:14]}",
                    "object": "billing_portal.session",
                    "customer": form.get("customer"),
                    "return_url": form.get("return_url"),
                    "url": f"https://billing.stripe.com/p/session/test_{uuid.uuid4().hex[:14]}",
                },
            )
        return self._not_found(path)

    def do_GET(self):
        path = urlparse(self.path).path
        if path == "/oauth2/v3/certs":
            # No key the fuzzer could sign with: every push token is a 401.
            return self._json(200, {"keys": []})
        if path == "/v1/invoices":
            return self._json(200, {"object": "list", "data": [], "has_more": False, "url": "/v1/invoices"})
        return self._not_found(path)

    def do_DELETE(self):
        return self._not_found(urlparse(self.path).path)

    def _not_found(self, path):
        self._json(
            404,
            {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL (POST: {path})."}},
        )


def start():
    """Serves the stubs; returns the host settings that use them."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    return {
        "QUPER_OUTBOUND_ALLOW": "127.0.0.1/32",
        "QUPER_OPENAI_BASE_URL": f"{base}/v1",
        "QUPER_OPENAI_API_KEY": "sk-fuzz",
        "QUPER_ANTHROPIC_BASE_URL": base,
        "QUPER_ANTHROPIC_API_KEY": "sk-ant-fuzz",
        "QUPER_PERPLEXITY_BASE_URL": base,
        "QUPER_PERPLEXITY_API_KEY": "pplx-fuzz",
        "QUPER_STRIPE_BASE_URL": base,
        "QUPER_STRIPE_SECRET_KEY": "sk_test_fuzz",
        "QUPER_STRIPE_PRICE_MONTHLY": "price_fuzz_monthly",
        "QUPER_STRIPE_PRICE_YEARLY": "price_fuzz_yearly",
        # Webhooks verify what the fuzzer sends (unsigned: 400; no token: 401)
        # instead of answering 503 "not configured".
        "QUPER_STRIPE_WEBHOOK_SECRET": "whsec_fuzz-stripe-webhook-secret",
        "QUPER_GOOGLE_PUBSUB_AUDIENCE": "https://quper.invalid/api/v1/public/webhooks/google",
        "QUPER_GOOGLE_JWKS_URL": f"{base}/oauth2/v3/certs",
    }
