"""Schema-driven fuzzing of `quper serve` with Schemathesis (run by
infra/scripts/fuzz.sh, which isolates the network first).

Starts the given `quper` binary on a free 127.0.0.1 port with a fresh data
directory and a bootstrap superadmin, seeds data over HTTP so that fuzzed path
ids hit real resources, and runs Schemathesis against the server's own
/openapi.json over every operation (both API versions) with a bounded number
of examples each. Exits non-zero on any finding or when anything cannot run,
printing Schemathesis' report and the server's log tail. The server is stopped
whatever happens.

Usage: fuzz.py QUPER_BINARY SCHEMATHESIS_BINARY
Settings (environment): QUPER_FUZZ_MAX_EXAMPLES (default 10),
QUPER_FUZZ_SEED (default: random, printed), QUPER_FUZZ_REPORT_DIR (default
target/fuzz).
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import fuzz_providers

ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "fuzz-admin@example.com"
ADMIN_PASSWORD = "fuzz-admin-password-1"
JWT_SECRET = "fuzz-jwt-secret-0123456789abcdef0123456789"
RECEIPT_TOKEN = "fuzz-infobip-receipt-token"
# The checks: every one that judges a response against the document, that a
# request the document forbids is refused, and our own `error_format`
# (fuzz_hooks.py), which holds every failure, on any route and with any
# method, to the one error format.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
    "negative_data_rejection",
    "error_format",
]
# Schemathesis' other checks judge behaviour the document does not promise,
# so they are off, named here so nothing is left out unsaid:
# - positive_data_acceptance wants 2xx for any schema-valid request, but
#   valid bodies can break business rules (deleting your own account or
#   environment is a 400, a duplicate a 409);
# - use_after_free, ensure_resource_availability and
#   object_level_authorization assume every created resource is readable by
#   any later step and caller, which deletions by other steps and tenancy
#   make untrue here; see docs/fuzzing.md.
OFF_CHECKS = [
    "positive_data_acceptance",
    "use_after_free",
    "ensure_resource_availability",
    "object_level_authorization",
]


def say(message):
    print(f"fuzz: {message}", flush=True)


def die(message):
    print(f"fuzz: FAILED: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    def __init__(self, base):
        self.base = base
        self.token = None

    def call(self, method, path, body=None, headers=None, expect=(200, 201, 202, 204)):
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"content-type": "application/json"} if body is not None else {}
        if self.token:
            all_headers["authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        if status not in expect:
            die(f"seeding: {method} {path} answered {status}: {raw[:500]!r}")
        return json.loads(raw) if raw else None


    def text(self, path):
        with urllib.request.urlopen(f"{self.base}{path}", timeout=30) as response:
            return response.read().decode("utf-8", errors="replace")


def seed(http, tag):
    """Creates a few of every resource, their names marked with `tag`;
    returns {name: [ids]} plus a source key."""
    http.token = http.call("POST", "/api/v1/auth/token", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})[
        "access_token"
    ]
    me = http.call("GET", "/api/v1/app/users/me")
    alerts_before = {alert["id"] for alert in http.call("GET", "/api/v1/alerts?limit=200")["items"]}
    ids = {"admin": me["id"]}

    users = [me["id"]]
    for n, role in enumerate(["admin", "responder", "responder", "user"]):
        user = http.call(
            "POST",
            "/api/v1/users",
            {
                "email": f"user{n}-{tag}@fuzz.example",
                "full_name": f"User {n}",
                "password": "user-password-1",
                "role": role,
            },
        )
        users.append(user["id"])
    ids["users"] = users
    people = users[1:]

    envs = []
    for n in range(2):
        env = http.call("POST", "/api/v1/environments", {"id": f"fuzz-{tag}-{n}", "name": f"Fuzz {tag} {n}"})
        http.call(
            "POST",
            f"/api/v1/environments/{env['id']}/admins",
            {"email": f"admin{n}-{tag}@fuzz-env.example", "password": "admin-password-1", "full_name": "Env admin"},
        )
        envs.append(env["id"])
    ids["environments"] = ["default", *envs]

    ids["roles"] = [
        http.call("POST", "/api/v1/roles", {"name": f"Role {n}", "permissions": []})["id"] for n in range(2)
    ]
    groups = []
    for n in range(2):
        group = http.call("POST", "/api/v1/groups", {"name": f"Group {n}", "role_ids": ids["roles"][:1]})
        http.call("POST", f"/api/v1/groups/{group['id']}/members", {"user_id": people[n]})
        groups.append(group["id"])
    ids["groups"] = groups

    schedules, entries = [], []
    for n in range(2):
        schedule = http.call(
            "POST",
            "/api/v1/schedules",
            {
                "name": f"Schedule {n}",
                "time_zone": "Europe/Berlin",
                "layers": [
                    {"user_ids": people[:2], "shift_length": 1, "shift_unit": "days", "start": "2026-01-05T09:00:00"}
                ],
            },
        )
        entry = http.call(
            "POST",
            f"/api/v1/schedules/{schedule['id']}/entries",
            {"user_id": people[2], "start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"},
        )
        schedules.append(schedule["id"])
        entries.append(entry["id"])
    ids["schedules"], ids["entries"] = schedules, entries

    policies, levels, assignees = [], [], []
    for n in range(2):
        policy = http.call("POST", "/api/v1/escalation-policies", {"name": f"Policy {n}", "repeat_count": 1})
        for number in (1, 2):
            level = http.call(
                "POST",
                f"/api/v1/escalation-policies/{policy['id']}/levels",
                {"level_number": number, "delay_minutes": 30, "assignees": [{"user_id": people[0]}]},
            )
            levels.append(level["id"])
            assignee = http.call(
                "POST",
                f"/api/v1/escalation-policies/{policy['id']}/levels/{level['id']}/assignees",
                {"schedule_id": schedules[0]},
            )
            assignees.append(assignee["id"])
        policies.append(policy["id"])
    ids["policies"], ids["levels"], ids["assignees"] = policies, levels, assignees

    teams = []
    for n in range(2):
        team = http.call(
            "POST", "/api/v1/teams", {"name": f"Team {n}", "default_escalation_policy_id": policies[n]}
        )
        for person in people[:3]:
            http.call("POST", f"/api/v1/teams/{team['id']}/members", {"user_id": person})
        teams.append(team["id"])
    ids["teams"] = teams

    sources, keys = [], []
    for n, kind in enumerate(["generic", "grafana", "cloudwatch"]):
        source = http.call(
            "POST", "/api/v1/alert-sources", {"name": f"Source {n}", "source_type": kind, "team_id": teams[0]}
        )
        sources.append(source["id"])
        keys.append(source["api_key"] if "api_key" in source else source["key"])
    ids["sources"] = sources

    ids["rules"] = [
        http.call(
            "POST",
            "/api/v1/alert-rules",
            {"name": f"Rule {n}", "conditions": {"severities": ["critical"]}, "actions": {"team_id": teams[n]}},
        )["id"]
        for n in range(2)
    ]

    incidents = []
    for n in range(3):
        incident = http.call(
            "POST",
            "/api/v1/alerts",
            {"title": f"Database {n} down", "severity": "critical", "external_id": f"{tag}-db-{n}", "team_id": teams[0]},
            headers={"x-api-key": keys[0]},
        )
        incidents.append(incident["id"])
    # One acknowledged, one resolved, one still triggered.
    http.call("POST", f"/api/v1/incidents/{incidents[1]}/ack")
    http.call("POST", f"/api/v1/incidents/{incidents[2]}/resolve")
    ids["incidents"] = incidents
    ids["alerts"] = [
        alert["id"]
        for alert in http.call("GET", "/api/v1/alerts?limit=200")["items"]
        if alert["id"] not in alerts_before
    ]

    ids["channels"] = [
        http.call("POST", "/api/v1/notifications/channels", body)["id"]
        for body in (
            {"name": "Ops mail", "kind": "email", "address": f"ops-{tag}@fuzz.example", "team_id": teams[0]},
            {"name": "Hook", "kind": "webhook", "address": "https://hooks.fuzz.example/quper"},
        )
    ]

    methods, rules = [], []
    for person in people[:2]:
        for kind, address in (("email", f"p{person}-{tag}@fuzz.example"), ("sms", "+4915112345678")):
            method = http.call(
                "POST", f"/api/v1/users/{person}/contact-methods", {"kind": kind, "address": address}
            )
            methods.append(method["id"])
            rule = http.call(
                "POST",
                f"/api/v1/users/{person}/notification-rules",
                {"contact_method_id": method["id"], "delay_minutes": 5},
            )
            rules.append(rule["id"])
    ids["methods"], ids["notification_rules"] = methods, rules

    return ids, keys[0]


def seed_docs(http):
    """The documentation UIs' files (content-hashed names), from their pages."""
    ids = {}
    for ui in ("docs", "redoc"):
        names, pending = set(), [f"/{ui}"]
        while pending:
            text = http.text(pending.pop())
            for name in re.findall(rf"/{ui}/([A-Za-z0-9._-]+)", text):
                if name not in names:
                    names.add(name)
                    if name.endswith((".css", ".js")):
                        pending.append(f"/{ui}/{name}")
        if not names:
            die(f"seeding: /{ui} names no files")
        ids[f"{ui}_files"] = sorted(names)
    return ids


# Which seeded ids each path parameter names, by the path's resource.
# `{version}` entries apply to each API version with that version's own seeded
# set, so destructive operations of one version do not use up the other's.
API = "/api/{version}"
PATH_IDS = [
    # (path regex, {parameter: seeded list})
    (r"/docs/\{file\}", {"file": "docs_files"}),
    (r"/redoc/\{file\}", {"file": "redoc_files"}),
    (API + r"/(admin/)?users/\{id\}", {"id": "users"}),
    (API + r"/users/\{id\}/contact-methods(/.*)?", {"id": "users", "method_id": "methods"}),
    (API + r"/users/\{id\}/notification-rules(/.*)?", {"id": "users", "rule_id": "notification_rules"}),
    (API + r"/environments/\{id\}(/.*)?", {"id": "environments"}),
    (API + r"/groups/\{id\}(/.*)?", {"id": "groups", "user_id": "users"}),
    (API + r"/roles/\{id\}", {"id": "roles"}),
    (API + r"/teams/\{id\}(/.*)?", {"id": "teams", "user_id": "users"}),
    (API + r"/schedules/\{id\}(/.*)?", {"id": "schedules", "entry_id": "entries"}),
    (
        API + r"/escalation-policies/\{id\}(/.*)?",
        {"id": "policies", "level_id": "levels", "assignee_id": "assignees"},
    ),
    (API + r"/alert-sources/\{id\}(/.*)?", {"id": "sources"}),
    (API + r"/alert-rules/\{id\}", {"id": "rules"}),
    (API + r"/alerts/\{id\}", {"id": "alerts"}),
    (API + r"/incidents/\{id\}(/.*)?", {"id": "incidents"}),
    (API + r"/notifications/channels/\{id\}", {"id": "channels"}),
    (API + r"/admin/usage/summary/\{user_id\}", {"user_id": "users"}),
]


STREAM_PATH_REGEX = r"^/api/v[12]/(incidents|sync)/stream$"


def toml_value(value):
    return json.dumps(value)


def write_config(path, ids, max_examples, seed_value, report_dir):
    lines = [
        "# Written by infra/scripts/fuzz.py for one run.",
        f"seed = {seed_value}",
        "workers = 1",
        "request-timeout = 30.0",
        "continue-on-failure = true",
        "",
        "[generation]",
        f"max-examples = {max_examples}",
        "mode = \"all\"",
        "",
        "[phases.stateful]",
        "enabled = true",
        "max-steps = 20",
        "",
        "[checks]",
        *(f"{name}.enabled = true" for name in CHECKS),
        *(f"{name}.enabled = false" for name in OFF_CHECKS),
        # A body the document refuses may also be too large to read at all:
        # the 413 of the body limit is a refusal like a 422 (a `messages`
        # array over its maxItems of long texts is over 256 KiB).
        "negative_data_rejection.expected-statuses = "
        + toml_value(["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]),
        "",
        "[reports]",
        f"directory = {toml_value(str(report_dir))}",
        "junit.enabled = true",
        "",
    ]
    for name, values in sorted(ids.items()):
        if isinstance(values, list) and values:
            lines += [f"[dictionaries.{name}]", f"values = {toml_value(values)}", ""]
    for template, params in PATH_IDS:
        versions = ("v1", "v2") if "{version}" in template else (None,)
        for version in versions:
            regex = template.replace("{version}", version) if version else template
            bindings = ", ".join(
                f'"path.{param}" = {{ dictionary = "{name}", probability = 0.7 }}'
                for param, name in ((param, f"{name}_{version}" if version else name) for param, name in params.items())
                if ids.get(name)
            )
            lines += [
                "[[operations]]",
                f"include-path-regex = {toml_value('^' + regex + '$')}",
                f"parameters = {{ {bindings} }}",
                "",
            ]
    # The live streams take at least a second a call (the hooks ask
    # for max_seconds=1): fewer examples keep the run short.
    lines += [
        "[[operations]]",
        f"include-path-regex = {toml_value(STREAM_PATH_REGEX)}",
        f"generation.max-examples = {min(max_examples, 3)}",
        "",
    ]
    Path(path).write_text("\n".join(lines))


def check_document_route(base):
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=30) as response:
        content_type = response.headers.get("content-type", "")
        body = json.loads(response.read())
        if response.status != 200 or not content_type.startswith("application/json"):
            die(f"GET /openapi.json answered {response.status} {content_type}")
    if body.get("openapi") != "3.1.0" or not body.get("paths"):
        die("GET /openapi.json is not an OpenAPI 3.1 document")


def untested_operations(document, report_dir):
    """The document's operations that the JUnit report does not show as run
    (absent, skipped or errored): none may be left out unsaid."""
    import xml.etree.ElementTree as ElementTree

    reports = sorted(report_dir.glob("junit-*.xml"))
    if not reports:
        return ["(no JUnit report was written)"]
    tested = {
        case.get("name")
        for case in ElementTree.parse(reports[-1]).getroot().iter("testcase")
        if case.find("skipped") is None and case.find("error") is None
    }
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return sorted(
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in methods and f"{method.upper()} {path}" not in tested
    )


def main():
    if len(sys.argv) != 3:
        die("usage: fuzz.py QUPER_BINARY SCHEMATHESIS_BINARY")
    quper, st = sys.argv[1], sys.argv[2]
    for binary in (quper, st):
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            die(f"{binary} is missing or not executable")
    max_examples = int(os.environ.get("QUPER_FUZZ_MAX_EXAMPLES", "10"))
    seed_value = int(os.environ.get("QUPER_FUZZ_SEED") or random.randrange(1, 2**31))
    report_dir = Path(os.environ.get("QUPER_FUZZ_REPORT_DIR", ROOT / "target" / "fuzz"))
    shutil.rmtree(report_dir, ignore_errors=True)
    report_dir.mkdir(parents=True)

    work = Path(tempfile.mkdtemp(prefix="quper-fuzz-"))
    log_path = report_dir / "server.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    empty_certs = work / "sns-certs"
    empty_certs.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("QUPER_", "AWS_")) and key not in ("RUST_LOG",)
    }
    env.update(
        {
            "QUPER_DATA_DIR": str(work / "data"),
            "QUPER_JWT_SECRET": JWT_SECRET,
            "QUPER_BOOTSTRAP_EMAIL": ADMIN_EMAIL,
            "QUPER_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD,
            "QUPER_INFOBIP_RECEIPT_TOKEN": RECEIPT_TOKEN,
            # SNS signatures are checked against local certificates only (none
            # here): the fuzzer's SigningCertURLs are never fetched.
            "QUPER_SNS_CERT_DIR": str(empty_certs),
            # The Clerk and Supabase user webhooks verify what the fuzzer
            # sends (unsigned: 400; no bearer secret: 401) instead of
            # answering 503 "not configured".
            "QUPER_CLERK_WEBHOOK_SECRET": "whsec_ZnV6ei1jbGVyay13ZWJob29rLXNlY3JldA==",
            "QUPER_SUPABASE_WEBHOOK_SECRET": "fuzz-supabase-webhook-secret",
            # The failed-login limit answers 429 to a client that keeps sending
            # wrong credentials; the fuzzer sends made-up Basic credentials on
            # purpose (ignored_auth) and must see the 401 each deserves. The
            # limits themselves are tested in tests/e2e/auth.rs and
            # tests/e2e/credentials.rs.
            "QUPER_LOGIN_MAX_FAILURES": "1000000000",
            "QUPER_LOGIN_MAX_FAILURES_PER_CLIENT": "1000000000",
            # Every request comes from 127.0.0.1 as a few users: generous
            # request rate limits, so each answer is the route's own (the
            # limits are tested in tests/e2e/rate_limits.rs).
            "QUPER_RATE_LIMIT_DEFAULT": "1000000000/minute",
            "QUPER_RATE_LIMIT_AI": "1000000000/minute",
            "QUPER_RATE_LIMIT_AUTH": "1000000000/minute",
            "QUPER_RATE_LIMIT_INGEST": "1000000000/minute",
            "RUST_LOG": "info",
            "NO_COLOR": "1",
        }
    )
    # OpenAI, Anthropic, Perplexity and Stripe as local stubs, and every
    # webhook's secret set: each route answers with its own behaviour.
    env.update(fuzz_providers.start())
    log = open(log_path, "wb")
    server = subprocess.Popen(
        [quper, "serve", "--addr", f"127.0.0.1:{port}"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    status = 1
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                die(f"quper serve exited with {server.returncode} before answering")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                die("quper serve did not answer /health within 60 s")
            time.sleep(0.1)
        say(f"quper serve answers at {base}")

        http = Http(base)
        ids = seed_docs(http)
        for version in ("v1", "v2"):
            version_ids, key = seed(http, version)
            ids.update({f"{name}_{version}": values for name, values in version_ids.items()})
            if version == "v1":
                source_key, source_id, admin_id = key, version_ids["sources"][0], version_ids["admin"]
        say("seeded: " + ", ".join(f"{name} {values}" for name, values in ids.items()))

        config = work / "schemathesis.toml"
        write_config(config, ids, max_examples, seed_value, report_dir)
        st_env = dict(os.environ)
        st_env.update(
            {
                "SCHEMATHESIS_HOOKS": "fuzz_hooks",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": str(Path(__file__).resolve().parent),
                "QUPER_FUZZ_BASE": base,
                "QUPER_FUZZ_SOURCE_KEY": source_key,
                "QUPER_FUZZ_SOURCE_ID": str(source_id),
                "QUPER_FUZZ_RECEIPT_TOKEN": RECEIPT_TOKEN,
                "QUPER_FUZZ_ADMIN_ID": str(admin_id),
                "QUPER_FUZZ_ADMIN_EMAIL": ADMIN_EMAIL,
                "QUPER_FUZZ_ADMIN_PASSWORD": ADMIN_PASSWORD,
            }
        )
        command = [st, "--config-file", str(config), "run", f"{base}/openapi.json", "--no-color"]
        say(f"seed {seed_value}, at most {max_examples} examples per operation and phase")
        say("running: " + " ".join(command))
        started = time.monotonic()
        status = subprocess.call(command, env=st_env, cwd=work)
        say(f"schemathesis exited with {status} after {time.monotonic() - started:.0f} s")
        document = json.loads(http.text("/openapi.json"))
        untested = untested_operations(document, report_dir)
        if "GET /openapi.json" in untested:
            # Schemathesis leaves out the operation it loaded the schema from;
            # it is checked here, as its document says it answers.
            check_document_route(base)
            untested.remove("GET /openapi.json")
            say("GET /openapi.json (the schema Schemathesis loaded) checked directly")
        if untested:
            say(f"{len(untested)} operations of the document were not tested: " + ", ".join(untested))
            status = status or 1
        else:
            say("every operation of the document was tested")
        if server.poll() is not None:
            say(f"quper serve died during the run (exit {server.returncode})")
            status = status or 1
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()
        if status != 0:
            lines = log_path.read_text(errors="replace").splitlines()
            print(f"\n---- quper serve log, last 60 of {len(lines)} lines ({log_path}) ----", file=sys.stderr)
            print("\n".join(lines[-60:]), file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    if status != 0:
        die(f"the fuzz run failed (see above); reports in {report_dir}")
    say(f"no findings; reports in {report_dir}")


if __name__ == "__main__":
    main()
