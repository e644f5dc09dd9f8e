"""Scenario 1: the first run. A fresh installation's /login is the form that
creates the first administrator; afterwards it is only ever the sign-in form.
Runs first (conftest.py), on the server browser.sh started empty."""

from support import ADMIN, Api, Web


def test_first_run_creates_the_administrator_then_login_only_signs_in(ui, base):
    ui.sign_out()
    ui.open("/login")
    assert ui.find_all("#bootstrap-form"), f"a fresh install's /login shows no #bootstrap-form (h1 {ui.h1()!r})"
    assert not ui.find_all("#login-form"), "a fresh install's /login shows the sign-in form too"
    ui.shot("bootstrap")

    ui.fill("#bootstrap-form #full_name", ADMIN.full_name)
    ui.fill("#bootstrap-form #email", ADMIN.email)
    ui.fill("#bootstrap-form #password", ADMIN.password)
    ui.submit(ui.find("#bootstrap-form"))
    ui.wait_path("/dashboard")
    ui.account = ADMIN
    assert ui.h1() == "Dashboard", ui.h1()
    assert ADMIN.email in ui.find("header").text, "the header does not name who is signed in"

    # Signing out through the page: /login is the sign-in form now.
    ui.open("/logout")
    ui.submit(ui.find("form[action='/logout']"))
    ui.wait_path("/login")
    ui.account = None
    assert_sign_in_form(ui)
    ui.shot("login")

    # A browser that never signed in sees the same.
    ui.sign_out()
    ui.open("/login")
    assert_sign_in_form(ui)
    ui.open("/login?next=/dashboard")
    assert_sign_in_form(ui)

    # The first-run form is refused once an administrator exists.
    refused = Web(base).post_form(
        "/bootstrap/admin", {"full_name": "Mallory", "email": "mallory@example.com", "password": "mallory-password-1"}
    )
    assert refused.status == 409, f"a second bootstrap answered {refused.status}: {refused.text[:300]}"
    assert "mallory@example.com" not in Api(base, ADMIN).send("GET", "/api/v1/users").text

    # The administrator it made can sign in with the form.
    ui.sign_in(ADMIN)
    assert ui.path() == "/dashboard", ui.driver.current_url


def assert_sign_in_form(ui):
    assert ui.find_all("#login-form"), f"/login shows no #login-form (h1 {ui.h1()!r})"
    assert ui.find_all("#login-form #email") and ui.find_all("#login-form #password")
    assert not ui.find_all("#bootstrap-form"), "/login shows the first-run form after the first administrator"
