"""What the officer-page browser tests share: the controls they tap, how they open a page as
an officer, read what was stored, tap twice like a hurried thumb, and take screenshots
($FIELDAPP_SHOTS when set)."""

import os

import sqlalchemy as sa

from fieldapp.extensions import db
from fieldapp.models import ContactAttempt, Outcome
from tests import factories
from tests.browser.conftest import login

CHANNEL = 'form[data-kind="attempt"] button[value="phone"]'
QUEUE_PENDING = "() => document.getElementById('queue').dataset.pending"


def shot(page, name: str) -> None:
    folder = os.environ.get("FIELDAPP_SHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"))


def open_page(context, base: str, path: str, username: str = "mj1"):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, username, factories.PASSWORD)
    page.goto(f"{base}{path}")
    page.errors = errors
    return page


def attempts(warning_id: int) -> list[ContactAttempt]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(ContactAttempt)
            .where(ContactAttempt.warning_id == warning_id)
            .order_by(ContactAttempt.id)
        )
    )


def outcome(warning_id: int) -> Outcome | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(Outcome).where(Outcome.warning_id == warning_id))


def double_tap(page, selector: str, gap_ms: int) -> None:
    """Two taps on the same spot of the screen, `gap_ms` apart, as a hurried thumb does."""
    box = page.locator(selector).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(x, y)
    page.wait_for_timeout(gap_ms)
    page.mouse.click(x, y)


def in_viewport(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"]
