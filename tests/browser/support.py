"""What the browser tests share: the server under test, the JSON API, raw
HTML as a signed-in browser fetches it, the HTML validator, and the Chromium
session (Debian's chromium driven by Debian's chromedriver through Selenium).

The server is started by infra/scripts/browser.sh, which passes its address in
QUPER_BROWSER_BASE; nothing here downloads a browser or a driver.
"""

import contextlib
import html.parser
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("QUPER_BROWSER_ARTIFACTS") or ROOT / "target" / "browser-artifacts")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
HTML_VALIDATE = Path(
    os.environ.get("HTML_VALIDATE") or ROOT / "infra" / "browser" / "node_modules" / ".bin" / "html-validate"
)
HTML_VALIDATE_CONFIG = ROOT / "infra" / "browser" / "htmlvalidate.json"

# What no page may ever show.
LEAKS = ("panicked", "stack backtrace", "RUST_BACKTRACE")
# The weight budget of a page: its HTML, stylesheets and scripts.
PAGE_BUDGET_BYTES = 100_000
MOBILE_WIDTH = 375


@dataclass(frozen=True)
class Account:
    full_name: str
    email: str
    password: str


# The first administrator, created through the first-run form.
ADMIN = Account("Ada Admin", "ada@example.com", "ada-password-1")


def base_url():
    base = os.environ.get("QUPER_BROWSER_BASE", "").rstrip("/")
    if not base:
        raise RuntimeError(
            "QUPER_BROWSER_BASE is not set: run the browser tests with infra/scripts/browser.sh, "
            "which starts quper serve and passes its address"
        )
    return base


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------
# HTTP


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict  # names in lower case
    url: str

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.body) if self.body else None


def lower(headers):
    return {name.lower(): value for name, value in headers.items()}


def send(opener, method, url, body=None, headers=None, timeout=30):
    """One request; an HTTP error status is a reply, not an exception."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=timeout) as response:
            return Reply(response.status, response.read(), lower(response.headers), response.geturl())
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.read(), lower(err.headers), url)


class Api:
    """The JSON API as one account (a bearer token from /api/v1/auth/token)."""

    def __init__(self, base, account):
        self.base = base
        self.opener = urllib.request.build_opener()
        self.token = None
        reply = self.send("POST", "/api/v1/auth/token", {"email": account.email, "password": account.password})
        if reply.status != 200:
            raise AssertionError(f"no API token for {account.email}: {reply.status} {reply.text[:300]}")
        self.token = reply.json()["access_token"]

    def send(self, method, path, body=None, headers=None):
        all_headers = {"accept": "application/json"}
        if body is not None:
            all_headers["content-type"] = "application/json"
        if self.token:
            all_headers["authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        data = None if body is None else json.dumps(body).encode()
        return send(self.opener, method, f"{self.base}{path}", data, all_headers)

    def call(self, method, path, body=None):
        """A call that must succeed; its JSON body."""
        reply = self.send(method, path, body)
        if not 200 <= reply.status < 300:
            raise AssertionError(f"{method} {path} answered {reply.status}: {reply.text[:500]}")
        return reply.json()

    def get(self, path):
        return self.call("GET", path)

    def post(self, path, body=None):
        return self.call("POST", path, body)

    def incident(self, incident_id):
        return self.get(f"/api/v1/incidents/{incident_id}")

    def ingest(self, key, title, external_id=None, severity="critical"):
        """An alert through a source key (no bearer token): the raw reply."""
        body = {"title": title, "severity": severity, "external_id": external_id or unique("ext")}
        return send(
            self.opener,
            "POST",
            f"{self.base}/api/v1/alerts",
            json.dumps(body).encode(),
            {"content-type": "application/json", "x-api-key": key},
        )


CSRF_FIELD = re.compile(r'name="csrf_token"\s+value="([^"]*)"')


class Web:
    """Pages as a browser fetches them (cookies kept, redirects followed),
    for the raw HTML the validator reads."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path):
        return send(self.opener, "GET", f"{self.base}{path}", headers={"accept": "text/html"})

    def post_form(self, path, fields, csrf_from="/login"):
        """Posts a form with the CSRF token of the page `csrf_from`."""
        page = self.get(csrf_from)
        match = CSRF_FIELD.search(page.text)
        if not match:
            raise AssertionError(f"{csrf_from} ({page.status}) has no csrf_token field")
        data = urllib.parse.urlencode({"csrf_token": match.group(1), **fields}).encode()
        headers = {"content-type": "application/x-www-form-urlencoded", "accept": "text/html"}
        return send(self.opener, "POST", f"{self.base}{path}", data, headers)

    def sign_in(self, account):
        reply = self.post_form("/login", {"email": account.email, "password": account.password, "next": "/dashboard"})
        if reply.status != 200 or not urllib.parse.urlparse(reply.url).path == "/dashboard":
            raise AssertionError(f"signing in {account.email} ended at {reply.url} ({reply.status})")
        return self


def bootstrap_open(base):
    return 'id="bootstrap-form"' in Web(base).get("/login").text


class Assets(html.parser.HTMLParser):
    """The stylesheets and scripts a page loads."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and "stylesheet" in (attrs.get("rel") or "").split() and attrs.get("href"):
            self.urls.append(attrs["href"])
        elif tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])


def page_assets(page_html):
    parser = Assets()
    parser.feed(page_html)
    return parser.urls


# ---------------------------------------------------------------------------
# The HTML validator (html-validate from npm, infra/browser/)


def validate(documents):
    """Validates {name: html} at once; {name: [message, ...]} of the
    problems found (an empty list for a valid document)."""
    if not HTML_VALIDATE.is_file():
        raise AssertionError(
            f"{HTML_VALIDATE} is missing: install the validator with "
            "`npm ci --prefix infra/browser` (infra/scripts/test.sh does)"
        )
    work = Path(tempfile.mkdtemp(prefix="quper-html-"))
    try:
        files = {}
        for name, text in documents.items():
            path = work / f"{name}.html"
            path.write_text(text, encoding="utf-8")
            files[str(path)] = name
        run = subprocess.run(
            [str(HTML_VALIDATE), "--config", str(HTML_VALIDATE_CONFIG), "--formatter", "json", *files],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if run.returncode not in (0, 1):
            raise AssertionError(f"html-validate failed ({run.returncode}): {run.stderr or run.stdout}")
        found = {name: [] for name in documents}
        for result in json.loads(run.stdout or "[]"):
            name = files.get(result["filePath"]) or files.get(str(Path(result["filePath"]).resolve()))
            if name is None:
                raise AssertionError(f"html-validate reported an unknown file {result['filePath']}")
            found[name] = [
                f"{m['line']}:{m['column']} {m['ruleId']}: {m['message']}"
                + (f" (at {m['selector']})" if m.get("selector") else "")
                for m in result["messages"]
            ]
        return found
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fragment_document(fragment):
    """A partial (an htmx fragment) inside a minimal valid page, to validate it."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Partial</title>\n</head>\n'
        f"<body>\n<main>\n{fragment}\n</main>\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------
# The browser

A11Y_SCRIPT = r"""
const problems = [];
const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
  + (el.getAttribute('name') ? '[name=' + el.getAttribute('name') + ']' : '')
  + (el.getAttribute('class') ? '.' + el.getAttribute('class').trim().split(/\s+/).join('.') : '');
const text = (value) => (value || '').trim();
if (!text(document.documentElement.getAttribute('lang'))) problems.push('<html> has no lang attribute');
const h1 = document.querySelectorAll('h1').length;
if (h1 !== 1) problems.push(h1 + ' <h1> elements (want exactly one)');
const mains = document.querySelectorAll('main').length;
if (mains !== 1) problems.push(mains + ' <main> elements (want one)');
const named = (el) => text(el.getAttribute('aria-label'))
  || (el.getAttribute('aria-labelledby') || '').split(/\s+/).some((id) => id && document.getElementById(id));
for (const el of document.querySelectorAll('input, select, textarea')) {
  const type = (el.getAttribute('type') || '').toLowerCase();
  if (el.tagName === 'INPUT' && ['hidden', 'submit', 'button', 'reset', 'image'].includes(type)) continue;
  const label = el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
  if (!label && !named(el) && !el.closest('label')) problems.push(describe(el) + ' has no label');
}
for (const el of document.querySelectorAll('img, svg')) {
  if (el.closest('[aria-hidden="true"]')) continue;
  if (el.tagName.toLowerCase() === 'svg' && el.parentElement && el.parentElement.closest('svg')) continue;
  const isImg = el.tagName === 'IMG';
  const role = el.getAttribute('role') || (isImg ? 'img' : '');
  if (isImg && el.getAttribute('alt') === '' && !el.getAttribute('role')) continue; // decorative
  const title = isImg ? text(el.getAttribute('alt')) : text(el.querySelector(':scope > title')?.textContent);
  if (!(role === 'img' && (named(el) || title))) {
    problems.push(describe(el) + ' is neither an image with a name (role="img" and aria-label, aria-labelledby '
      + 'or a title/alt) nor hidden (aria-hidden="true")');
  }
}
return problems;
"""

# Page state worth waiting for before a page is judged: loaded, and htmx's
# first requests (the active-incident strip) answered.
SETTLED_SCRIPT = r"""
if (document.readyState !== 'complete') return false;
if (document.querySelector('.htmx-request')) return false;
const strip = document.getElementById('gstrip');
return !strip || !strip.hasAttribute('hx-get') || strip.childElementCount > 0 || strip.textContent.trim() !== '';
"""


def chrome():
    """Headless Debian chromium through Debian's chromedriver."""
    for binary, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(binary, os.X_OK):
            raise AssertionError(
                f"{binary} is missing: install Debian's {package} package (infra/scripts/test.sh does)"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="quper-chromium-")
    for argument in (
        "--headless=new",
        "--window-size=1280,900",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        # The machine reaches no other host: nothing in the background.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--disable-features=Translate,OptimizationHints,MediaRouter",
        "--lang=en-US",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(ARTIFACTS / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver, profile


class Ui:
    """One Chromium session for the whole run, signed in as one account at a
    time (switching accounts clears the cookies)."""

    def __init__(self, driver, base):
        self.driver = driver
        self.base = base
        self.account = None
        # Whether the current test drove the browser (else a failure's
        # screenshot would show another test's page).
        self.used = False

    # -- navigation
    def open(self, path):
        self.used = True
        self.driver.get(f"{self.base}{path}")
        self.settle()

    def settle(self, timeout=10):
        self.wait(lambda d: d.execute_script(SETTLED_SCRIPT), timeout, "the page did not settle")

    def wait(self, condition, timeout=10, message="timed out"):
        try:
            # A condition that reads an element htmx replaces in the meantime
            # (a swap, a live update) is tried again, not failed.
            return WebDriverWait(
                self.driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
            ).until(condition)
        except TimeoutException:
            raise AssertionError(f"{message} (after {timeout} s; at {self.driver.current_url})") from None

    def path(self):
        return urllib.parse.urlparse(self.driver.current_url).path

    def wait_path(self, path, timeout=10):
        self.wait(lambda d: urllib.parse.urlparse(d.current_url).path == path, timeout, f"never reached {path}")
        self.settle()

    # -- elements
    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def fill(self, css, value):
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def submit(self, form):
        """Clicks the form's submit button, as a person would."""
        button = form.find_element(By.CSS_SELECTOR, "button[type=submit], button:not([type]), input[type=submit]")
        button.click()

    def h1(self):
        headings = self.find_all("h1")
        return headings[0].text.strip() if headings else ""

    # -- accounts
    def sign_out(self):
        self.driver.get(f"{self.base}/health")  # a page of the origin whose cookies go
        self.driver.delete_all_cookies()
        self.account = None

    def sign_in(self, account, start="/login"):
        """Signs in through the sign-in form (starting at `start`, which
        must show it); ends wherever the form leads."""
        self.sign_out()
        self.open(start)
        if not self.find_all("#login-form"):
            raise AssertionError(f"{start} shows no #login-form (at {self.driver.current_url}, h1 {self.h1()!r})")
        self.fill("#login-form #email", account.email)
        self.fill("#login-form #password", account.password)
        self.submit(self.find("#login-form"))
        self.wait(
            lambda d: urllib.parse.urlparse(d.current_url).path != "/login", 10, f"{account.email} was not signed in"
        )
        self.settle()
        self.account = account

    def as_user(self, account):
        if self.account != account:
            self.sign_in(account)

    # -- what the browser saw
    def console(self):
        """The browser's console entries since the last call."""
        return self.driver.get_log("browser")

    def shot(self, name):
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def scroll_overflow(self):
        """How many CSS pixels the page is wider than the viewport (0: none)."""
        return self.driver.execute_script(
            "return Math.max(0, document.documentElement.scrollWidth - window.innerWidth);"
        )

    @contextlib.contextmanager
    def mobile(self, width=MOBILE_WIDTH, height=812):
        """A phone's viewport (mobile emulation, the page's viewport meta applies)."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True},
        )
        try:
            yield
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def accessibility_problems(self):
        return self.driver.execute_script(A11Y_SCRIPT)


def console_problems(entries, error_page_url=None):
    """The console entries that are a failure: any error (a JS error, a failed
    load) and anything about the Content-Security-Policy. Not counted: the
    status of `error_page_url`, a page that is meant to be an error page, and
    Chromium's own /favicon.ico request (the UI serves no icon)."""
    problems = []
    for entry in entries:
        message = entry.get("message", "")
        csp = "Content Security Policy" in message or "Content-Security-Policy" in message
        if entry.get("level") != "SEVERE" and not csp:
            continue
        if not csp and entry.get("source") == "network":
            failed = message.split(" - ", 1)[0]
            if urllib.parse.urlparse(failed).path == "/favicon.ico":
                continue
            if error_page_url and failed == error_page_url:
                continue
        problems.append(f"{entry.get('level')} {entry.get('source')}: {message}")
    return problems
