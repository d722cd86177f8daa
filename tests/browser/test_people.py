"""People management in a real browser at 360x640 (#12 item 5): a throttled officer is
unlocked by the chief and logs in; a reset password forces a change at the first login.

Screenshots go to $FIELDAPP_SCREENSHOTS (or the test's tmp dir) for a person to look at.
"""

import os
import re
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from fieldapp.extensions import db
from fieldapp.models import Event
from tests import factories

pytestmark = pytest.mark.browser


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("FIELDAPP_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def shoot(page, name):
        page.screenshot(path=str(folder / f"people-{name}.png"), full_page=True)

    return shoot


@pytest.fixture
def people(make):
    station = make.station("CG", name="城关派出所")
    officer = make.user(station, "officer", "mj_wang", display_name="王明")
    make.user(station, "chief", "chief_cg", display_name="李所长")
    db.session.commit()
    return officer


def phone(browser):
    ctx = browser.new_context(viewport={"width": 360, "height": 640}, locale="zh-CN")
    ctx.set_default_timeout(10_000)
    return ctx


def submit_login(page, base, username, password):
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("main form button[type=submit]")


def open_person(page, base, name):
    submit_login(page, base, "chief_cg", factories.PASSWORD)
    page.wait_for_url("**/board/")
    page.click("nav.topnav >> text=人员")
    page.wait_for_url("**/people/")
    page.click(f"main >> text={name}")
    page.wait_for_url(re.compile(r".*/people/\d+$"))


def no_horizontal_scroll(page):
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_throttled_officer_is_unlocked_by_the_chief_then_logs_in(
    browser, live_server, people, shots
):
    officer_ctx, chief_ctx = phone(browser), phone(browser)
    try:
        officer = officer_ctx.new_page()
        for _ in range(7):
            submit_login(officer, live_server, "mj_wang", "wrong-password-1")
        body = officer.locator(".error-summary").inner_text()
        assert "秒后再试" in body and "之后可以再试" in body
        shots(officer, "1-officer-throttled")
        # The right password is no use while the wait lasts.
        submit_login(officer, live_server, "mj_wang", factories.PASSWORD)
        assert "秒后再试" in officer.locator(".error-summary").inner_text()

        chief = chief_ctx.new_page()
        open_person(chief, live_server, "王明")
        assert "暂停登录至" in chief.locator("main").inner_text()
        no_horizontal_scroll(chief)
        shots(chief, "2-chief-sees-throttle")
        chief.click("text=解除登录限制")
        chief.wait_for_selector(".flash-success")
        assert "暂停登录至" not in chief.locator("main").inner_text()
        shots(chief, "3-chief-unlocked")
        chief.click("text=← 人员")
        chief.wait_for_url("**/people/")
        no_horizontal_scroll(chief)
        shots(chief, "3b-people-list")

        submit_login(officer, live_server, "mj_wang", factories.PASSWORD)
        officer.wait_for_url("**/field/**")
    finally:
        officer_ctx.close()
        chief_ctx.close()
        time.sleep(0.5)  # the board's stream ends before the tables are emptied


def test_a_reset_password_forces_a_change_at_first_login(browser, live_server, people, shots):
    officer_ctx, chief_ctx = phone(browser), phone(browser)
    try:
        chief = chief_ctx.new_page()
        open_person(chief, live_server, "王明")
        chief.click("text=重置密码…")
        chief.wait_for_url("**/reset-password")
        no_horizontal_scroll(chief)
        shots(chief, "4-chief-confirms-reset")
        # A double tap on a slow phone: one reset, one password.
        chief.dblclick("main form button[type=submit]")
        chief.wait_for_selector("#otp")
        one_time = chief.locator("#otp").inner_text().strip()
        assert re.fullmatch(r"[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}", one_time)
        no_horizontal_scroll(chief)
        shots(chief, "5-one-time-password")
        resets = db.session.scalars(sa.select(Event).where(Event.kind == "password_reset")).all()
        assert len(resets) == 1

        officer = officer_ctx.new_page()
        submit_login(officer, live_server, "mj_wang", one_time)
        officer.wait_for_url("**/account/password")
        shots(officer, "6-forced-change")
        officer.goto(f"{live_server}/field/")
        officer.wait_for_url("**/account/password")  # nothing else until it is changed
        officer.fill("#new_password", "short")
        officer.fill("#confirm_password", "short")
        officer.click("main form button[type=submit]")
        assert "至少" in officer.locator("main").inner_text()
        shots(officer, "7-forced-change-refused")
        officer.fill("#new_password", "wang-own-pass-26")
        officer.fill("#confirm_password", "wang-own-pass-26")
        officer.click("main form button[type=submit]")
        officer.wait_for_url("**/field/**")
    finally:
        officer_ctx.close()
        chief_ctx.close()
        time.sleep(0.5)


def test_people_pages_have_no_serious_accessibility_violations(browser, live_server, people):
    from tests.browser.test_a11y import violations

    ctx = browser.new_context(viewport={"width": 360, "height": 640}, bypass_csp=True)
    ctx.set_default_timeout(10_000)
    try:
        page = ctx.new_page()
        open_person(page, live_server, "王明")
        person_url = page.url
        for url in (
            f"{live_server}/people/",
            person_url,
            f"{person_url}/reset-password",
            f"{person_url}/deactivate",
            f"{live_server}/account/password",
        ):
            page.goto(url)
            assert violations(page) == [], url
        page.goto(f"{live_server}/account/password")
        page.click("main form button[type=submit]")  # empty: the error summary and field errors
        assert violations(page) == []
    finally:
        ctx.close()
        time.sleep(0.5)
