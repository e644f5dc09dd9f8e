"""Scenarios 2, 4 and 5: the incident page, reached from the link of an SMS;
its actions, their CSRF protection, and what a read-only user sees.

The page's contract: `#incident-status` holds the status word, the actions
form is `#incident-actions` with one button per action
(`button[value=acknowledge]`, ...), shown to responders and admins only."""

import urllib.parse

from support import ADMIN, MOBILE_WIDTH

ACKNOWLEDGE = "#incident-actions button[value=acknowledge]"


def test_sms_link_signs_in_and_returns_to_the_incident(ui, world):
    incident, title = world.new_incident()
    path = f"/incidents/{incident}"

    ui.sign_out()
    ui.open(path)
    assert ui.path() == "/login", f"signed out, {path} did not send the browser to sign in: {ui.driver.current_url}"
    query = urllib.parse.parse_qs(urllib.parse.urlparse(ui.driver.current_url).query)
    assert query.get("next") == [path], f"the sign-in page does not know where to go back to: {ui.driver.current_url}"
    ui.fill("#login-form #email", ADMIN.email)
    ui.fill("#login-form #password", ADMIN.password)
    ui.submit(ui.find("#login-form"))
    ui.wait_path(path)
    ui.account = ADMIN

    assert title in ui.find("main").text, "the incident page does not show the incident's title"
    assert ui.find("#incident-status").text.strip() == "triggered"
    assert ui.find(ACKNOWLEDGE).is_displayed(), "no visible Acknowledge button"
    ui.shot("incident")

    with ui.mobile():
        ui.settle()
        width = ui.driver.execute_script("return window.innerWidth")
        assert width == MOBILE_WIDTH, f"the viewport is {width} px wide, not {MOBILE_WIDTH}"
        assert ui.scroll_overflow() == 0, (
            f"at {MOBILE_WIDTH} px the incident page scrolls sideways by {ui.scroll_overflow()} px"
        )
        button = ui.find(ACKNOWLEDGE)
        assert button.is_displayed(), f"no visible Acknowledge button at {MOBILE_WIDTH} px"
        right = ui.driver.execute_script("return arguments[0].getBoundingClientRect().right", button)
        assert right <= MOBILE_WIDTH, f"the Acknowledge button ends at {right} px, off a {MOBILE_WIDTH} px screen"
        ui.shot("incident-375")

        button.click()
        ui.wait(
            lambda d: (
                d.find_elements("css selector", "#incident-status")
                and d.find_element("css selector", "#incident-status").text.strip() == "acknowledged"
            ),
            10,
            "#incident-status never showed acknowledged",
        )
        ui.settle()
        assert ui.path() == path, f"acknowledging left the incident page: {ui.driver.current_url}"
        assert ui.scroll_overflow() == 0, f"acknowledged, the page scrolls sideways at {MOBILE_WIDTH} px"
    assert world.api.incident(incident)["status"] == "acknowledged"


def test_a_form_without_its_csrf_token_is_refused(ui, world):
    incident, _ = world.new_incident()
    ui.as_user(ADMIN)
    ui.open(f"/incidents/{incident}")
    button = ui.find(ACKNOWLEDGE)
    removed = ui.driver.execute_script(
        "const field = arguments[0].form && arguments[0].form.querySelector('input[name=csrf_token]');"
        "if (!field) return false; field.remove(); return true;",
        button,
    )
    assert removed, "the acknowledge form has no csrf_token field"
    button.click()
    ui.wait(lambda d: "403" in ui.h1(), 10, "a form without its CSRF token was not answered with a 403 page")
    assert "Forbidden" in ui.h1(), ui.h1()
    assert world.api.incident(incident)["status"] == "triggered", "the refused form changed the incident"


def test_a_read_only_user_sees_no_actions(ui, world, reader):
    ui.as_user(reader)
    ui.open(f"/incidents/{world.incident}")
    assert not ui.h1().startswith(("403", "404", "500")), f"a read-only user cannot see the incident: {ui.h1()!r}"
    assert ui.find_all("#incident-status"), "the incident page has no #incident-status"
    assert not ui.find_all("#incident-actions"), "a read-only user is shown the incident actions form"
    assert not ui.find_all("button[value=acknowledge], button[value=resolve]"), "a read-only user is shown actions"

    ui.open("/alert-sources")
    assert not ui.h1().startswith(("403", "404", "500")), f"a read-only user cannot see alert sources: {ui.h1()!r}"
    assert not ui.find_all("form.regenerate-key"), "a read-only user is shown the key regeneration form"
