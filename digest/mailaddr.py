"""Pure: the one rule for a subscriber's or recipient's address (CLI, web form, import,
``email.to``).

Mail goes out without SMTPUTF8, so every address must be ASCII on the wire: a non-ASCII
domain is turned into its IDNA (``xn--``) form, a non-ASCII local part is refused (an
encoded word inside an address is invalid and undeliverable).
"""

from __future__ import annotations

NO_SMTPUTF8 = (
    "letters outside ASCII before the @ need SMTPUTF8 (internationalised local parts), "
    "which this mailer does not support: use an address with only ASCII before the @"
)


def ascii_address(value: str) -> str:
    """``value`` stripped, as given when it is ASCII, else with its domain in IDNA form;
    ValueError saying why when it is not a deliverable address."""
    from email_validator import EmailNotValidError, validate_email

    text = value.strip()
    local, at, _ = text.rpartition("@")
    if at and not local.isascii():
        raise ValueError(NO_SMTPUTF8)
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError as err:
        raise ValueError(str(err)) from None
    if text.isascii():
        return text  # as given, case and all: compared through subscribers.normalise
    if valid.ascii_email is None:  # email-validator found SMTPUTF8 needed elsewhere
        raise ValueError(NO_SMTPUTF8)
    return valid.ascii_email
