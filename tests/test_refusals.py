"""One refusal type, one message table (issue 13, finding 3)."""

import pytest
from flask_babel import force_locale

from fieldapp import refusals
from fieldapp.refusals import MESSAGES, Refusal


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_every_code_has_a_kind_and_words_in_each_language(app, locale):
    with app.test_request_context(), force_locale(locale):
        for code, (kind, _message, _field) in MESSAGES.items():
            assert kind in ("conflict", "rejected", "applied"), code
            params = {"n": 3} if code.startswith("throttled_") else {}
            text = Refusal(code, **params).message()
            assert text and "%(" not in text, code


def test_zh_cn_translates_every_message(app):
    with app.test_request_context(), force_locale("zh_CN"):
        untranslated = [c for c in MESSAGES if refusals.message(c, n=3) == _english(app, c)]
    assert untranslated == []


def _english(app, code):
    with force_locale("en"):
        return refusals.message(code, n=3)


def test_an_unknown_code_is_rejected_with_words_not_a_key_error(app):
    with app.test_request_context(), force_locale("en"):
        refusal = Refusal("a_code_added_later")
        assert refusal.kind == "rejected" and refusal.field is None
        assert refusal.message() == "That change could not be made."
        assert refusals.kind("a_code_added_later") == "rejected"


def test_a_refusal_names_its_field_and_a_following_wait(app):
    with app.test_request_context(), force_locale("en"):
        assert Refusal("source_ref_taken").errors() == {
            "source_ref": "A warning with this source_ref was already entered at this station."
        }
        wait = Refusal("throttled_seconds", n=30)
        both = Refusal("wrong_password", then=wait)
        assert both.message() == (
            "Wrong username or password. Too many failed attempts: try again in 30 seconds."
        )
