"""Scenario 3: the dashboard is live. An alert ingested through the API shows
up in the active-incident table (`#live`) and the strip every page has
(`#gstrip`) without a reload: the incident stream (`/dashboard/events`, Server-
Sent Events) makes htmx refresh both."""

from support import ADMIN, unique

LIVE_TIMEOUT = 15


def test_an_ingested_alert_appears_without_a_reload(ui, world):
    ui.as_user(ADMIN)
    ui.open("/dashboard")
    assert ui.find_all("#live"), "the dashboard has no #live"
    assert ui.find_all("#gstrip"), "the dashboard has no #gstrip"
    assert world.incident_title in ui.find("#live").text, "the seeded incident is not on the dashboard"
    ui.shot("dashboard")
    ui.driver.execute_script("window.__marker = 1;")

    title = unique("Checkout latency above 2 s")
    reply = world.api.ingest(world.source_key, title)
    assert reply.status in (200, 201), f"ingest answered {reply.status}: {reply.text[:300]}"

    for region in ("#live", "#gstrip"):
        ui.wait(
            lambda d, region=region: title in d.find_element("css selector", region).text,
            LIVE_TIMEOUT,
            f"the new incident {title!r} did not appear in {region} without a reload",
        )
    assert ui.driver.execute_script("return window.__marker") == 1, "the dashboard was reloaded"
    ui.shot("dashboard-live")
