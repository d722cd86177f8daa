"""Chinese first and complete; English second; compiled catalogues present."""

import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
ZH = ROOT / "translations" / "zh_Hans_CN" / "LC_MESSAGES"


def test_every_string_in_the_code_has_a_chinese_translation():
    result = subprocess.run(
        [sys.executable, "scripts/i18n.py", "check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def _key(value):
    # Plural messages (ngettext) carry their ids and strings as lists or tuples.
    return tuple(value) if isinstance(value, list | tuple) else value


def test_compiled_catalogue_matches_the_po_file():
    with (ZH / "messages.po").open("rb") as fh:
        po = {_key(m.id): _key(m.string) for m in read_po(fh) if m.id and any(_key(m.string))}
    with (ZH / "messages.mo").open("rb") as fh:
        mo = {_key(m.id): _key(m.string) for m in read_mo(fh) if m.id}
    assert po == mo, "run: python scripts/i18n.py compile"


def test_placeholders_survive_translation():
    import re

    with (ZH / "messages.po").open("rb") as fh:
        for message in read_po(fh):
            if not message.id or not message.string:
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strs = message.string if isinstance(message.string, tuple) else (message.string,)
            wanted = set(re.findall(r"%\(\w+\)[-.\d]*\w", ids[0]))
            for text in strs:
                assert set(re.findall(r"%\(\w+\)[-.\d]*\w", text)) == wanted, message.id


def test_language_switch_remembers_the_choice_on_the_user(make, auth, client):
    from fieldapp.extensions import db

    station = make.station()
    user = make.user(station, "officer", "lang_user")
    db.session.commit()
    auth.login("lang_user")
    client.post("/lang", data={"lang": "en", "csrf_token": auth.csrf("/field/"), "next": "/field/"})
    db.session.refresh(user)
    assert user.locale == "en"
    client.delete_cookie("lang")
    html = client.get("/field/").get_data(as_text=True)
    assert "My warnings" in html


def test_unknown_language_refused(client, auth):
    resp = client.post("/lang", data={"lang": "fr", "csrf_token": auth.csrf()})
    assert resp.status_code == 422
