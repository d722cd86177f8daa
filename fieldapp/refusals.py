"""Why something could not be done: one refusal type with one table of codes, kinds and words.

Every rule that says no raises `Refusal(code)`. Its `kind` says how a device shows it: a
`conflict` is "the world moved on" (reassigned, already closed), a `rejected` entry is
something to fix; `field` names the input field the message belongs next to, so a form can
show it there. Views ask the refusal for its message; an unknown code still has words.
"""

import math
from datetime import datetime

from flask_babel import lazy_gettext as _l

from fieldapp.models import ContactAttempt

# Help requests per officer and warning (fieldapp/helping.py); here as their messages say them.
HELP_COOLDOWN_MIN = 5
HELP_MAX_PER_WARNING = 3

UNKNOWN = _l("That change could not be made.")

# code -> (kind, message, field). kind: conflict (the world moved on), rejected (a bad
# entry) or applied; field: the input field the message belongs next to, if one.
MESSAGES = {
    "not_found": ("rejected", _l("This warning was not found."), None),
    "not_allowed": ("rejected", _l("You are not working on this warning."), None),
    "reassigned": (
        "conflict",
        _l("This warning was reassigned to a colleague; your entry was not recorded."),
        None,
    ),
    "resolved": (
        "conflict",
        _l("This warning was already closed; your entry was not recorded."),
        None,
    ),
    "reached_required": (
        "rejected",
        _l("Choose whether the person was reached: yes or no."),
        "reached",
    ),
    "not_owner": (
        "rejected",
        _l(
            "Only the officer who holds this warning (or a chief) can close it. "
            "You can still log your contacts."
        ),
        "outcome",
    ),
    "contact_required": (
        "rejected",
        _l(
            "Closing as persuaded needs a contact that reached the person. "
            "Log that contact first, with 'reached: yes'."
        ),
        "outcome",
    ),
    "visit_required": (
        "rejected",
        _l(
            "This station requires an in-person visit (见面劝阻) before a high-risk warning "
            "can be closed as persuaded. Log a visit that reached the person first."
        ),
        "outcome",
    ),
    "loss_required": (
        "rejected",
        _l("Give the amount lost for 'already lost money'."),
        "loss_amount",
    ),
    "future_time": (
        "rejected",
        _l("The time lies in the future. Check the time, and the clock of your phone."),
        "attempted_at",
    ),
    "time_before_warning": (
        "rejected",
        _l(
            "The time lies before this warning was received. "
            "Check the time, and the clock of your phone."
        ),
        "attempted_at",
    ),
    "follow_up_past": ("rejected", _l("The follow-up time must be in the future."), "follow_up_at"),
    "follow_up_too_far": (
        "rejected",
        _l("The follow-up time must be within a year from now."),
        "follow_up_at",
    ),
    "own_attempt": ("rejected", _l("Someone else must confirm your own contact."), None),
    "already_confirmed": ("conflict", _l("You already confirmed this contact."), None),
    "attempt_not_found": ("rejected", _l("This contact was not found."), None),
    "already_joined": ("conflict", _l("You are already working on this warning."), None),
    "field_roles_only": (
        "rejected",
        _l("Only officers and auxiliary officers work on warnings."),
        None,
    ),
    "offer_pending": (
        "rejected",
        _l("This warning is offered to you: accept it (or decline) instead of joining."),
        None,
    ),
    "join_not_asked": (
        "rejected",
        _l(
            "You can join a warning when its officer asks the station for help, "
            "or when a chief asks you to."
        ),
        None,
    ),
    "aux_needs_chief": (
        "rejected",
        _l("At this station auxiliary officers join a warning when a chief asks them to."),
        None,
    ),
    "help_too_soon": (
        "rejected",
        _l(
            "You asked for help on this warning less than %(n)d minutes ago and your "
            "colleagues on duty were told. Ask again later, or call the station chief.",
            n=HELP_COOLDOWN_MIN,
        ),
        None,
    ),
    "help_limit": (
        "rejected",
        _l(
            "You have asked for help on this warning %(n)d times already. "
            "Call the station chief instead.",
            n=HELP_MAX_PER_WARNING,
        ),
        None,
    ),
    "invitee_not_eligible": (
        "rejected",
        _l("Choose an active officer or auxiliary officer of this warning's station."),
        None,
    ),
    "invitee_working": ("conflict", _l("This officer already works on this warning."), None),
    "invitee_has_offer": (
        "conflict",
        _l("This warning is already offered to this officer: they can accept it."),
        None,
    ),
    "already_asked": ("conflict", _l("This officer was already asked to join."), None),
    "no_follow_up": ("rejected", _l("This warning has no follow-up waiting."), None),
    # dispatch: offers, taking and handing over a warning
    "taken": ("conflict", _l("A colleague already took this warning."), None),
    "closed": ("conflict", _l("This warning was already closed; nothing was changed."), None),
    "no_offer": (
        "conflict",
        _l("This offer is no longer open (it timed out or was withdrawn)."),
        None,
    ),
    "not_eligible": ("rejected", _l("You cannot take this warning."), None),
    "already_theirs": ("conflict", _l("This warning is already theirs."), None),
    "already_yours": ("conflict", _l("This warning is already yours."), None),
    # sync: how an entry fared on the server
    "collided": (
        "conflict",
        _l("This change crossed another one and was not recorded. Look at the warning again."),
        None,
    ),
    "client_id_taken": (
        "rejected",
        _l("This entry id belongs to another user; it was not applied."),
        None,
    ),
    "invalid": ("rejected", _l("The entry is not valid."), None),
    "busy": (
        "rejected",
        _l("The server could not save this entry just now; nothing was recorded. Send it again."),
        None,
    ),
    "error": (
        "rejected",
        _l("The server could not apply this entry; nothing was recorded. Tell your chief."),
        None,
    ),
    # confirmations of an applied change (sync's "done:<kind>" codes)
    "done:attempt": ("applied", _l("Attempt recorded."), None),
    "done:confirm": ("applied", _l("Contact confirmed."), None),
    "done:resolve": ("applied", _l("Outcome recorded; the warning is closed."), None),
    "done:help": ("applied", _l("Your colleagues on duty were asked for help."), None),
    "done:join": ("applied", _l("You joined this warning."), None),
    "done:accept": ("applied", _l("Warning accepted. It is yours now."), None),
    "done:decline": ("applied", _l("Offer declined; it moves on to the next officer."), None),
    "done:followup": ("applied", _l("Follow-up done."), None),
    # outcome amendment
    "no_outcome": ("rejected", _l("This warning has no outcome yet."), "outcome"),
    "loss_invalid": ("rejected", _l("Enter an amount in yuan, e.g. 5000."), "later_loss_amount"),
    # intake: warnings from a centre, by hand or from a file
    "unknown_station": ("rejected", _l("Unknown station."), "station_code"),
    "token_station": (
        "rejected",
        _l("This token may only send warnings for its own station."),
        "station_code",
    ),
    "no_station": ("rejected", _l("No station exists yet."), "station_code"),
    "own_station_only": (
        "rejected",
        _l("You can only enter warnings for your own station."),
        "station_code",
    ),
    "source_ref_taken": (
        "rejected",
        _l("A warning with this source_ref was already entered at this station."),
        "source_ref",
    ),
    # login
    "wrong_password": ("rejected", _l("Wrong username or password."), None),
    "throttled_seconds": (
        "rejected",
        _l("Too many failed attempts: try again in %(n)d seconds."),
        None,
    ),
    "throttled_minutes": (
        "rejected",
        _l("Too many failed attempts: try again in %(n)d minutes."),
        None,
    ),
    "current_password_wrong": ("rejected", _l("The current password is wrong."), None),
    "account_disabled": (
        "rejected",
        _l("This account is disabled. Ask your station chief."),
        None,
    ),
    "one_time_password_expired": (
        "rejected",
        _l("This one-time password has expired. Ask your station chief for a new one."),
        None,
    ),
    # devices: push subscriptions
    "endpoint_scheme": (
        "rejected",
        _l("Must be an https:// address of a Web Push service."),
        "endpoint",
    ),
    "endpoint_host": (
        "rejected",
        _l("This is not a Web Push service this server sends to."),
        "endpoint",
    ),
    "endpoint_refused": (
        "rejected",
        _l("This push service address is not allowed."),
        "endpoint",
    ),
    "endpoint_other_account": (
        "rejected",
        _l(
            "This browser already receives alerts for another account. Turn alerts off "
            "there first, or clear this site's data in the browser and turn alerts on again."
        ),
        "endpoint",
    ),
    # people management
    "changed": (
        "conflict",
        _l("This account changed meanwhile, so nothing was done. Check and try again."),
        None,
    ),
    "last_admin": (
        "rejected",
        _l("The last active administrator cannot be demoted or deactivated."),
        None,
    ),
    "already_inactive": ("conflict", _l("This account is already deactivated."), None),
    "already_active": ("conflict", _l("This account is already active."), None),
    "unchanged": ("rejected", _l("That is already their role."), None),
    "forbidden": ("rejected", _l("You may not change this account."), None),
}


class Refusal(Exception):
    """The rules say no. `code` says why; `kind` is conflict or rejected; `field` names the
    input field it concerns (or None); `retry_at` is when a retry may succeed, if that is known;
    `then` is a second refusal whose words follow (a wrong password that also starts a wait).
    """

    def __init__(
        self,
        code: str,
        *,
        field: str | None = None,
        retry_at: datetime | None = None,
        then: "Refusal | None" = None,
        **params,
    ):
        super().__init__(code)
        self.code = code
        self.kind, _message, default_field = MESSAGES.get(code, ("rejected", UNKNOWN, None))
        self.field = field or default_field
        self.retry_at = retry_at or (then.retry_at if then is not None else None)
        self.then = then
        self.params = params

    def message(self) -> str:
        """The translated sentence, in the current language."""
        text = message(self.code, **self.params)
        return f"{text} {self.then.message()}" if self.then is not None else text

    def errors(self) -> dict[str, str]:
        """{field: message}, for a form or a 422 body (the field "" when it names none)."""
        return {self.field or "": self.message()}

    def retry_after_s(self, now: datetime) -> int:
        """Whole seconds until a retry may succeed (for Retry-After); 0 when it need not wait."""
        if self.retry_at is None:
            return 0
        return max(1, math.ceil((self.retry_at - now).total_seconds()))


class Duplicate(Exception):
    """The same attempt was just recorded (a second tap): nothing new is stored. `effect` is
    what recording it answered."""

    def __init__(self, attempt: ContactAttempt):
        super().__init__(attempt.id)
        self.effect = {"attempt_id": attempt.id}


def message(code: str, **params) -> str:
    """The translated sentence for a code (also used to re-render stored results)."""
    text = str(MESSAGES[code][1]) if code in MESSAGES else str(UNKNOWN)
    return text % params if params else text


def kind(code: str) -> str:
    """conflict, rejected (or applied, for a done: code); rejected for an unknown code."""
    return MESSAGES[code][0] if code in MESSAGES else "rejected"


def field(code: str) -> str | None:
    """The input field a code belongs next to, if one."""
    return MESSAGES[code][2] if code in MESSAGES else None
