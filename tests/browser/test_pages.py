"""Scenarios 7 and 8, for every page route: valid HTML (html-validate), a
weight budget, no leaked panic, a clean browser console (no CSP violation, no
JS error, no failed load), the accessibility basics, and no sideways scroll on
a 375 px phone. Each page is fetched once as raw HTML (as the signed-in admin;
/login signed out) and visited once in the browser, where its screenshots
(desktop and 375 px) are taken."""

import time
import urllib.parse

import pytest
import support
from support import ADMIN, LEAKS, MOBILE_WIDTH, PAGE_BUDGET_BYTES, Web

# (name, path, signed in, status). `{...}` are ids of the seeded world.
PAGES = [
    ("login", "/login", False, 200),
    ("dashboard", "/dashboard", True, 200),
    ("incidents", "/incidents", True, 200),
    ("incident", "/incidents/{incident}", True, 200),
    ("on-call", "/on-call", True, 200),
    ("teams", "/teams", True, 200),
    ("team", "/teams/{team}", True, 200),
    ("schedules", "/schedules", True, 200),
    ("schedule", "/schedules/{schedule}", True, 200),
    ("escalation-policies", "/escalation-policies", True, 200),
    ("escalation-policy", "/escalation-policies/{policy}", True, 200),
    ("alert-sources", "/alert-sources", True, 200),
    ("settings", "/settings", True, 200),
    ("sync", "/sync", True, 200),
    ("sign-out", "/logout", True, 200),
    ("not-found", "/no-such-page", True, 404),
]
# htmx fragments, validated inside a minimal page.
PARTIALS = [
    ("partial-live", "/dashboard/live"),
    ("partial-gstrip", "/_partials/gstrip"),
    ("partial-sync-live", "/sync/live"),
]
NAMES = [name for name, *_ in PAGES]
BY_NAME = {name: (path, signed_in, status) for name, path, signed_in, status in PAGES}


def path_of(name, world):
    return BY_NAME[name][0].format(
        incident=world.incident, team=world.team, schedule=world.schedule, policy=world.policy
    )


@pytest.fixture(scope="session")
def fetched(base, world):
    """Every page's raw HTML, fetched once: {name: Reply}."""
    admin = Web(base).sign_in(ADMIN)
    anonymous = Web(base)
    pages = {
        name: (admin if signed_in else anonymous).get(path_of(name, world))
        for name, (_, signed_in, _) in BY_NAME.items()
    }
    for name, path in PARTIALS:
        pages[name] = admin.get(path)
    return pages


@pytest.fixture(scope="session")
def validated(fetched):
    """html-validate's messages for every page and partial, in one run."""
    documents = {}
    for name, reply in fetched.items():
        documents[name] = support.fragment_document(reply.text) if name.startswith("partial-") else reply.text
    return support.validate(documents)


@pytest.fixture(scope="session")
def asset_sizes(base):
    client = Web(base)
    sizes = {}

    def size(url):
        if url not in sizes:
            reply = client.get(url)
            assert reply.status == 200, f"{url} answered {reply.status}"
            sizes[url] = len(reply.body)
        return sizes[url]

    return size


@pytest.fixture(scope="session")
def visits(session_ui, world):
    """Each page visited once in the browser: what the console said, the
    accessibility problems, the DOM; a screenshot in the artifacts."""
    seen = {}

    def visit(name):
        if name not in seen:
            path, signed_in, status = BY_NAME[name]
            if signed_in:
                session_ui.as_user(ADMIN)
            else:
                session_ui.sign_out()
            session_ui.console()
            url = f"{session_ui.base}{path_of(name, world)}"
            session_ui.open(path_of(name, world))
            # An EventSource or htmx request that fails does so at once; give
            # it a moment to reach the console.
            time.sleep(0.3)
            seen[name] = {
                "console": support.console_problems(
                    session_ui.console(), error_page_url=url if status >= 400 else None
                ),
                "a11y": session_ui.accessibility_problems(),
                "dom": session_ui.driver.page_source,
                "url": session_ui.driver.current_url,
            }
            session_ui.shot(name)
            with session_ui.mobile():
                session_ui.settle()
                seen[name]["overflow"] = session_ui.scroll_overflow()
                session_ui.shot(f"{name}-{MOBILE_WIDTH}")
        return seen[name]

    return visit


def assert_status(name, fetched):
    """The page's raw reply, which must have the page's status (a page that
    does not exist yet fails every check of it here)."""
    reply = fetched[name]
    want = BY_NAME[name][2] if name in BY_NAME else 200
    assert reply.status == want, f"{reply.url} answered {reply.status}, not {want}"
    return reply


@pytest.mark.parametrize("name", NAMES + [name for name, _ in PARTIALS])
def test_html_is_valid(name, fetched, validated):
    reply = assert_status(name, fetched)
    assert "text/html" in reply.headers.get("content-type", ""), reply.headers
    problems = validated[name]
    assert not problems, f"{name} ({reply.url}) is not valid HTML:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_page_weight_and_no_leaks(name, fetched, asset_sizes):
    reply = assert_status(name, fetched)
    assets = support.page_assets(reply.text)
    total = len(reply.body) + sum(asset_sizes(url) for url in assets)
    assert total < PAGE_BUDGET_BYTES, (
        f"{name} weighs {total} bytes with its stylesheets and scripts ({', '.join(assets)}): "
        f"over the {PAGE_BUDGET_BYTES} byte budget"
    )
    for leak in LEAKS:
        assert leak not in reply.text, f"{name} shows {leak!r}"


@pytest.mark.parametrize("name", NAMES)
def test_browser_console_is_clean(name, ui, visits, world, fetched):
    assert_status(name, fetched)
    seen = visits(name)
    assert urllib.parse.urlparse(seen["url"]).path == path_of(name, world), f"{name} ended at {seen['url']}"
    assert not seen["console"], f"{name} ({seen['url']}) logged:\n  " + "\n  ".join(seen["console"])
    for leak in LEAKS:
        assert leak not in seen["dom"], f"{name} shows {leak!r} in the browser"


@pytest.mark.parametrize("name", NAMES)
def test_accessibility_basics(name, ui, visits, fetched):
    assert_status(name, fetched)
    seen = visits(name)
    assert not seen["a11y"], f"{name} ({seen['url']}):\n  " + "\n  ".join(seen["a11y"])


@pytest.mark.parametrize("name", NAMES)
def test_no_sideways_scroll_on_a_phone(name, ui, visits, fetched):
    """Mobile first: at 375 px only a table's own box (`.table-wrap`) may scroll."""
    assert_status(name, fetched)
    seen = visits(name)
    assert seen["overflow"] == 0, f"at {MOBILE_WIDTH} px {name} scrolls sideways by {seen['overflow']} px"
