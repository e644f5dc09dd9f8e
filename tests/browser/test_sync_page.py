"""The sync page (/sync) is live: clicking "Run now" on a job runs it (the
host's timer worker fires the one-shot schedule) and the job's new result
appears in its row and in the latest runs without a reload. The buttons'
forms are boosted by htmx (the page is not left) and the sync stream
(`/sync/events`, Server-Sent Events) makes htmx fetch `/sync/live` again."""

from support import ADMIN

LIVE_TIMEOUT = 20
JOB = "table_stats_sync"
JOB_NAME = "Table Statistics Sync"


def finished_manual_runs(driver):
    """The rows of the latest runs that are finished manual runs of JOB."""
    rows = driver.find_elements("css selector", "#sync-runs tr.run")
    return [
        row.text
        for row in rows
        if JOB_NAME in row.text and "manual" in row.text and ("success" in row.text or "failed" in row.text)
    ]


def test_run_now_shows_the_new_result_without_a_reload(ui, admin):
    ui.as_user(ADMIN)
    ui.open("/sync")
    row = f"#job-{JOB}"
    assert ui.find_all(row), "the sync page has no row of table_stats_sync"
    before = len(finished_manual_runs(ui.driver))
    ui.driver.execute_script("window.__marker = 1;")

    ui.submit(ui.find(f"{row} form.run-job"))
    try:
        ui.wait(lambda d: len(finished_manual_runs(d)) > before, LIVE_TIMEOUT, "timed out")
    except AssertionError as failure:
        history = admin.get(f"/api/v1/sync/history?job_id={JOB}")
        raise AssertionError(
            f"the triggered run did not appear in the latest runs without a reload ({failure}); "
            f"the API's history: {history['items']}"
        ) from None
    result = ui.find(f"#result-{JOB}").text
    assert result.startswith(("success", "failed")), f"the job's last result: {result!r}"
    assert ui.driver.execute_script("return window.__marker") == 1, "the page was reloaded"
    assert ui.path() == "/sync"

    history = admin.get(f"/api/v1/sync/history?job_id={JOB}")
    statuses = [run["status"] for run in history["items"] if run["trigger"] == "manual"]
    assert statuses and statuses[0] in ("success", "failed"), f"the API's history: {history}"
    assert result.startswith(statuses[0]), f"page {result!r}, API {statuses[0]!r}"
    ui.shot("sync-live")


def test_a_boosted_post_without_its_token_shows_the_refusal_and_changes_nothing(ui, admin):
    ui.as_user(ADMIN)
    ui.open("/sync")
    form = "#job-query_history_sync form.pause-job"
    assert ui.find_all(form), "no pause form for query_history_sync"
    # The job list refreshes itself (`/sync/live`), which may swap in a fresh
    # form, token and all, between two WebDriver calls: the token is removed
    # and the button clicked in one script, so no refresh comes between.
    ui.driver.execute_script(
        f"const form = document.querySelector('{form}');"
        "form.querySelector('input[name=csrf_token]').remove();"
        "form.querySelector('button[type=submit], button:not([type]), input[type=submit]').click();"
    )
    ui.wait(lambda d: ui.h1().startswith("403"), 10, "the refused post showed no 403 page")
    jobs = admin.get("/api/v1/sync/status")["jobs"]
    assert [j["status"] for j in jobs if j["job_id"] == "query_history_sync"] == ["active"], jobs
