"""Schemathesis hooks of the fuzz run (loaded through SCHEMATHESIS_HOOKS by
infra/scripts/fuzz.py, which sets the variables read here).

- Auth: every operation gets the credentials its `security` asks for: the
  superadmin's bearer token (bearerAuth/basicAuth), the seeded alert source's
  key as X-API-Key (alertSourceKey), the configured receipt token
  (infobipReceiptToken). The token is re-issued whenever the fuzzer itself
  changed the account's email or password (a token names one email), so the
  run never locks itself out; see docs/fuzzing.md.
- The live streams (`GET /api/v{1,2}/incidents/stream`, `/sync/stream`) run until
  its `max_seconds` (5 minutes without): a call with a valid or no
  `max_seconds` asks for 1 s instead, so no call waits long; an invalid value
  is left alone (it must still be refused).
- One extra check, `error_format`: every failure, on any route and any method
  the fuzzer tries (documented or not), is JSON in the one error format, with
  `meta` under /api/v2.
"""

import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import schemathesis

BASE = os.environ["QUPER_FUZZ_BASE"]
RECEIPT_TOKEN = os.environ["QUPER_FUZZ_RECEIPT_TOKEN"]
ADMIN_ID = int(os.environ["QUPER_FUZZ_ADMIN_ID"])


class _Account:
    """The superadmin's current credentials and token."""

    def __init__(self):
        self.lock = threading.Lock()
        self.email = os.environ["QUPER_FUZZ_ADMIN_EMAIL"]
        self.password = os.environ["QUPER_FUZZ_ADMIN_PASSWORD"]
        self.token = None
        self.relogins = 0

    def bearer(self):
        with self.lock:
            if self.token is None:
                self.token = self._log_in()
            return self.token

    def changed(self, email=None, password=None):
        with self.lock:
            if email:
                self.email = email
            if password:
                self.password = password
            self.token = None
            self.relogins += 1

    def _log_in(self):
        body = json.dumps({"email": self.email, "password": self.password, "tenant": "default"}).encode()
        request = urllib.request.Request(
            f"{BASE}/api/v1/auth/token", data=body, headers={"content-type": "application/json"}
        )
        for _ in range(3):
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.load(response)["access_token"]
            except urllib.error.HTTPError as err:
                if err.code != 429:
                    raise RuntimeError(
                        f"the fuzzing superadmin cannot log in as {self.email}: {err.code} {err.read()[:500]!r}"
                    ) from err
                # The fuzzer's own failed logins with this email hit the limit.
                time.sleep(int(err.headers.get("retry-after") or 60) + 1)
        raise RuntimeError(f"the fuzzing superadmin stays rate-limited as {self.email}")


ACCOUNT = _Account()


def _admin_call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"authorization": f"Bearer {ACCOUNT.bearer()}"}
    if body is not None:
        headers["content-type"] = "application/json"
    request = urllib.request.Request(f"{BASE}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, None


class _Source:
    """The alert source whose key the ingestion operations present. The
    fuzzer may regenerate its key, deactivate or delete it: then the new key
    is taken, or a fresh source is made, so ingestion is never fuzzed with a
    dead key only."""

    def __init__(self):
        self.lock = threading.Lock()
        self.id = int(os.environ["QUPER_FUZZ_SOURCE_ID"])
        self.key = os.environ["QUPER_FUZZ_SOURCE_KEY"]
        self.suspect = False
        self.replaced = 0

    def current_key(self):
        with self.lock:
            if self.suspect:
                self.suspect = False
                status, source = _admin_call("GET", f"/api/v1/alert-sources/{self.id}")
                if status != 200 or not source.get("is_active"):
                    status, source = _admin_call(
                        "POST", "/api/v1/alert-sources", {"name": "Fuzz ingestion", "source_type": "generic"}
                    )
                    if status != 201:
                        raise RuntimeError(f"cannot create a replacement alert source: {status}")
                    self.id, self.key = source["id"], source["api_key"]
                    self.replaced += 1
            return self.key

    def touched(self, new_key=None):
        with self.lock:
            if new_key:
                self.key = new_key
            self.suspect = True


SOURCE = _Source()


def _schemes(case):
    security = case.operation.definition.raw.get("security") or []
    return {name for requirement in security for name in requirement}


@schemathesis.auth(refresh_interval=None)
class QuperAuth:
    def get(self, case, ctx):
        schemes = _schemes(case)
        if "bearerAuth" in schemes or "basicAuth" in schemes:
            return ("Authorization", f"Bearer {ACCOUNT.bearer()}")
        if "alertSourceKey" in schemes:
            return ("X-API-Key", SOURCE.current_key())
        if "infobipReceiptToken" in schemes:
            return ("X-Infobip-Receipt-Token", RECEIPT_TOKEN)
        return None

    def set(self, case, data, ctx):
        if data is None:
            return
        name, value = data
        case.headers = dict(case.headers or {})
        case.headers[name] = value


STREAM_PATHS = (
    "/api/v1/incidents/stream",
    "/api/v2/incidents/stream",
    "/api/v1/sync/stream",
    "/api/v2/sync/stream",
)
STREAM_MAX_SECONDS = 300


def _valid_seconds(value):
    """Whether the server would take `value` as `max_seconds` (an integer,
    as `u64::from_str` reads it, from 1 to 300)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\+?[0-9]+", value):
        number = int(value)
    else:
        return False
    return 1 <= number <= STREAM_MAX_SECONDS


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path not in STREAM_PATHS:
        return
    query = dict(case.query or {})
    value = query.get("max_seconds")
    if value is None or _valid_seconds(value):
        query["max_seconds"] = 1
        case.query = query


def _user_update_target(case):
    """The user id an update of a user account names, or None."""
    path = case.operation.path
    method = case.method.upper()
    for prefix in ("/api/v1", "/api/v2"):
        if method in ("PUT", "PATCH") and path in (f"{prefix}/users/{{id}}", f"{prefix}/admin/users/{{id}}"):
            return case.path_parameters.get("id") if case.path_parameters else None
    return None


def _unwrap(case, body):
    if case.operation.path.startswith("/api/v2") and isinstance(body, dict):
        return body.get("data")
    return body


@schemathesis.hook
def after_call(context, case, response):
    # A successful change of the fuzzing account's own email or password makes
    # its token stale: log in again with what it is now.
    if not 200 <= response.status_code < 300:
        return
    _track_source(case, response)
    target = _user_update_target(case)
    changed_password = None
    if target is not None and str(target) == str(ADMIN_ID) and isinstance(case.body, dict):
        changed_password = case.body.get("password")
        try:
            user = _unwrap(case, response.json())
        except ValueError:
            user = None
        email = user.get("email") if isinstance(user, dict) else None
        ACCOUNT.changed(email=email, password=changed_password)
    elif case.operation.path.endswith("/auth/password") and isinstance(case.body, dict):
        ACCOUNT.changed(password=case.body.get("new_password"))


def _track_source(case, response):
    if "/alert-sources/{id}" not in case.operation.path or case.method.upper() == "GET":
        return
    if str((case.path_parameters or {}).get("id")) != str(SOURCE.id):
        return
    new_key = None
    if case.operation.path.endswith("/regenerate-key"):
        try:
            new_key = (_unwrap(case, response.json()) or {}).get("api_key")
        except ValueError:
            new_key = None
    SOURCE.touched(new_key)


def _fail(message, response):
    text = response.text if hasattr(response, "text") else ""
    raise AssertionError(f"{message}\n\nStatus: {response.status_code}\nBody: {text[:1000]}")


@schemathesis.check
def error_format(ctx, response, case):
    """Every failure is `{"success": false, "error": {"code", "message", "details"}}` (+ `meta` under /api/v2)."""
    if response.status_code < 400:
        return None
    method = (response.request.method or "").upper()
    if method == "HEAD":
        # A HEAD answer has no body by definition; its headers are those of GET.
        return None
    content_type = ";".join(response.headers.get("content-type", []))
    if not content_type.startswith("application/json"):
        _fail(f"A {response.status_code} is not JSON (Content-Type: {content_type or 'none'})", response)
    try:
        body = response.json()
    except ValueError:
        _fail(f"A {response.status_code} body is not JSON", response)
    error = body.get("error") if isinstance(body, dict) else None
    if not (
        isinstance(body, dict)
        and body.get("success") is False
        and isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
        and isinstance(error.get("details"), dict)
    ):
        _fail(f"A {response.status_code} is not in the error format", response)
    url_path = urllib.parse.urlsplit(response.request.url).path
    if url_path.startswith("/api/v2/") and not isinstance(body.get("meta"), dict):
        _fail(f"A {response.status_code} under /api/v2 carries no `meta`", response)
    return None
