"""No developer-style output: the audit log names its targets and says its actions and details in
words, a form's out-of-range number is refused in plain words, and an empty install's Overview
reads as empty rather than broken."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from db.people import acting_as, audit_entries, list_users, set_user_role
from tests.support.console import first_admin, make_user


def audit_table(at: AppTest):
    return next(d.value for d in at.dataframe if "Target" in d.value.columns)


def all_text(at: AppTest) -> str:
    return "\n".join(e.value for kind in ("markdown", "caption", "error", "warning", "info", "success")
                     for e in getattr(at, kind))


def test_the_audit_log_names_users_and_says_actions_and_details_in_words(console_as, db):
    edna = make_user(db, "editor", username="edna", display_name="Edna")
    with acting_as(db, first_admin(db)):
        set_user_role(db, edna.id, "operator")

    for role in ("admin", "operator"):  # operators may read every entry but not other accounts
        at = console_as(role, "pages/7_Admin.py").run()
        assert not at.exception
        rows = audit_table(at).to_dict("records")
        changed = next(r for r in rows if r["Action"] == "user role changed")
        assert (changed["Target"], changed["Details"]) == ("user edna", "to: operator, from: editor"), role
        created = next(r for r in rows if r["Action"] == "user created" and r["Target"] == "user edna")
        assert "{" not in created["Details"] and "organization id: " in created["Details"], created
        assert not any("." in r["Action"] or "_" in r["Action"] for r in rows), rows


def test_an_audit_targets_name_is_given_only_with_an_entry_the_reader_may_see(db):
    edna = make_user(db, "editor", username="edna", display_name="Edna")
    other = make_user(db, "editor", username="olaf", display_name="Olaf")
    [entry_id] = [e["id"] for e in audit_entries(db) if e["action"] == "user.created" and e["target_id"] == str(edna.id)]
    with acting_as(db, other):
        assert db.execute("SELECT inkwell.audit_target_name(%s)", (entry_id,)).fetchone()[0] is None
    assert [u.username for u in list_users(db) if u.id == edna.id] == ["edna"]  # the owner still sees her


def test_an_out_of_range_count_in_a_csv_is_refused_in_plain_words(console_as, db):
    at = console_as("editor", "pages/1_Submit.py").run()
    at.file_uploader(key="csv_file").set_value(("topics.csv", b"topic,count\nurban beekeeping,25\nwinter gardens,many\n", "text/csv"))
    at.button(key="csv_submit").click().run()

    assert not at.exception
    shown = all_text(at) + "\n".join(str(d.value.to_dict("records")) for d in at.dataframe)
    assert "count: must be at most 20" in shown and "count: must be a whole number" in shown, shown
    assert "Input should" not in shown


def test_an_empty_installs_overview_reads_as_empty(console_as):
    at = console_as().run()

    assert not at.exception
    assert at.get("vega_lite_chart") == []
    text = all_text(at)
    assert "No request has finished in the last hour." in text and "No request has finished in the last day." in text
    assert "the times appear once one has" in text
    assert "Over 0" not in text and "0.000000" not in text
