"""Scenario 6: regenerating an alert source's key on /alert-sources. The
form (`form.regenerate-key`, one per source) needs its confirm checkbox
ticked; the new key is shown once (`#new-key`), works at once, and the old key
is refused."""

from support import ADMIN, unique

# The source's own form: its action names the source's id, else the row or
# card it sits in names the source.
FORM_OF_SOURCE = r"""
const [id, name] = arguments;
const forms = [...document.querySelectorAll('form.regenerate-key')];
const byAction = forms.find((f) => new RegExp('/' + id + '(/|$|\\?)').test(f.getAttribute('action') || ''));
if (byAction) return byAction;
const holder = (f) => f.closest('tr, li, article, section, details, .card') || f;
const byName = forms.filter((f) => holder(f).textContent.includes(name));
return byName.length === 1 ? byName[0] : null;
"""


def test_a_regenerated_key_is_shown_once_and_replaces_the_old(ui, world):
    name = unique("Grafana")
    source = world.api.post("/api/v1/alert-sources", {"name": name, "source_type": "generic"})
    old_key = source["api_key"]
    accepted = world.api.ingest(old_key, unique("Before the new key"))
    assert accepted.status in (200, 201), f"the first key was refused: {accepted.status} {accepted.text[:300]}"

    ui.as_user(ADMIN)
    ui.open("/alert-sources")
    assert name in ui.find("main").text, "the new source is not listed on /alert-sources"
    ui.shot("alert-sources")
    form = ui.driver.execute_script(FORM_OF_SOURCE, source["id"], name)
    assert form is not None, f"no form.regenerate-key for source {source['id']} ({name})"
    # A form folded away in a <details> is opened as a person would: by its summary.
    summary = ui.driver.execute_script(
        "const d = arguments[0].closest('details'); return d && !d.open ? d.querySelector('summary') : null;", form
    )
    if summary is not None:
        summary.click()
    confirm = form.find_elements("css selector", "input[type=checkbox]")
    assert confirm, "the regeneration form has no confirm checkbox"
    if not confirm[0].is_selected():
        confirm[0].click()
    ui.submit(form)
    ui.wait(lambda d: d.find_elements("css selector", "#new-key"), 10, "#new-key did not show the new key")
    ui.settle()
    shown = ui.find("#new-key")
    new_key = (shown.get_attribute("value") or shown.text).strip()
    assert new_key and new_key != old_key, f"#new-key shows {new_key!r}"
    assert len(new_key) > 12, f"#new-key shows {new_key!r}, not a whole key"
    ui.shot("alert-sources-new-key")

    fresh = world.api.ingest(new_key, unique("With the new key"))
    assert fresh.status in (200, 201), f"the new key was refused: {fresh.status} {fresh.text[:300]}"
    stale = world.api.ingest(old_key, unique("With the old key"))
    assert stale.status in (401, 403), f"the old key still ingests: {stale.status} {stale.text[:300]}"

    ui.open("/alert-sources")
    assert not ui.find_all("#new-key"), "reloading /alert-sources shows a key again"
    assert new_key not in ui.driver.page_source, "reloading /alert-sources shows the new key"
