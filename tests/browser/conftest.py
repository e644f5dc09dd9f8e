"""Fixtures of the browser tests: one Chromium session and one seeded
environment for the whole run (see support.py and docs/browser-tests.md)."""

import shutil
from dataclasses import dataclass

import pytest
import support
from support import ADMIN, ARTIFACTS, Account, Api, Ui, Web, unique

# The first-run scenario needs the fresh server before anything else signs
# in: its module runs first, whatever order pytest collected.
FIRST = "test_first_run.py"


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: 0 if item.nodeid.split("::")[0].endswith(FIRST) else 1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # A failed test leaves what the browser showed: a screenshot and the DOM.
    if report.failed and call.when in ("setup", "call"):
        ui = item.funcargs.get("ui") if hasattr(item, "funcargs") else None
        if ui is not None and ui.used:
            name = "failed-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in item.name)
            try:
                ui.shot(name)
                (ARTIFACTS / f"{name}.html").write_text(ui.driver.page_source, encoding="utf-8")
            except Exception as err:  # the browser may be what failed
                report.sections.append(("browser artifacts", f"could not save {name}: {err}"))
    return report


@pytest.fixture(scope="session")
def base():
    return support.base_url()


@pytest.fixture(scope="session")
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver, profile = support.chrome()
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def session_ui(browser, base):
    return Ui(browser, base)


@pytest.fixture
def ui(session_ui):
    """The run's browser (it remembers who is signed in); each test starts
    from an empty console log."""
    session_ui.console()
    session_ui.used = False
    return session_ui


@pytest.fixture(scope="session")
def admin(base):
    """The first administrator's API (created through the first-run form
    over HTTP when the first-run test has not done it already)."""
    if support.bootstrap_open(base):
        reply = Web(base).post_form(
            "/bootstrap/admin",
            {"full_name": ADMIN.full_name, "email": ADMIN.email, "password": ADMIN.password},
        )
        assert reply.status == 200, f"bootstrap answered {reply.status}: {reply.text[:300]}"
    return Api(base, ADMIN)


def create_user(api, role):
    account = Account(f"{role.title()} Person", f"{unique(role)}@example.com", f"{role}-password-1")
    user = api.post(
        "/api/v1/users",
        {"email": account.email, "full_name": account.full_name, "password": account.password, "role": role},
    )
    return account, user["id"]


@dataclass
class World:
    """One environment with a bit of everything, made through the API."""

    api: Api
    responder: Account
    responder_id: int
    schedule: int
    policy: int
    team: int
    source: int
    source_key: str
    incident: int
    incident_title: str

    def new_incident(self, title=None):
        title = title or unique("Disk full on db")
        reply = self.api.ingest(self.source_key, title)
        assert reply.status in (200, 201), f"ingest answered {reply.status}: {reply.text[:300]}"
        return reply.json()["id"], title


@pytest.fixture(scope="session")
def world(admin):
    me = admin.get("/api/v1/app/users/me")
    responder, responder_id = create_user(admin, "responder")
    schedule = admin.post(
        "/api/v1/schedules",
        {
            "name": "Primary on-call",
            "time_zone": "Europe/Berlin",
            "layers": [
                {
                    "user_ids": [responder_id, me["id"]],
                    "shift_length": 1,
                    "shift_unit": "weeks",
                    "start": "2026-01-05T09:00:00",
                }
            ],
        },
    )["id"]
    policy = admin.post("/api/v1/escalation-policies", {"name": "Page the database team", "repeat_count": 1})["id"]
    admin.post(
        f"/api/v1/escalation-policies/{policy}/levels",
        {"level_number": 1, "delay_minutes": 15, "assignees": [{"schedule_id": schedule}]},
    )
    admin.post(
        f"/api/v1/escalation-policies/{policy}/levels",
        {"level_number": 2, "delay_minutes": 30, "assignees": [{"user_id": me["id"]}]},
    )
    team = admin.post("/api/v1/teams", {"name": "Databases", "default_escalation_policy_id": policy})["id"]
    for person in (responder_id, me["id"]):
        admin.post(f"/api/v1/teams/{team}/members", {"user_id": person})
    source = admin.post("/api/v1/alert-sources", {"name": "Prometheus", "source_type": "generic", "team_id": team})
    world = World(
        api=admin,
        responder=responder,
        responder_id=responder_id,
        schedule=schedule,
        policy=policy,
        team=team,
        source=source["id"],
        source_key=source["api_key"],
        incident=0,
        incident_title="",
    )
    world.incident, world.incident_title = world.new_incident("Primary database unreachable")
    return world


@pytest.fixture(scope="session")
def reader(admin):
    """A read-only user (role `user`) with a password."""
    account, _ = create_user(admin, "user")
    return account
