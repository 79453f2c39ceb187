"""What the customer reads on WhatsApp about their claim: one sentence per outcome.

A reject reason is for staff; the customer gets the polite sentence of the reason picked
(REJECT_REPLIES), never the note typed for colleagues.
"""

from __future__ import annotations

from django.conf import settings

from console.kernel.phones import phone_display, whatsapp_link  # noqa: F401 (the admin's link)
from reconciliation.models import Claim, ClaimReason, ClaimStatus

# The reasons an agent picks when rejecting; the key is kept in claim.explanation["reject_reason"].
REJECT_REASONS = [
    ("no_payment", "No such payment reached our till"),
    ("other_payee", "Paid to another till or business"),
    ("code_used", "Code already used for a bundle"),
    ("amount", "Amount does not buy a bundle"),
    ("unclear", "Message or code unclear"),
    ("other", "Other (say why in the note)"),
]
REJECT_REPLIES = {
    "no_payment": (
        "Sorry, we could not find payment {code} on our till {till}. Please check the M-Pesa message "
        "and send it to us unchanged so we can look again."
    ),
    "other_payee": (
        "Sorry, payment {code} was not made to our till {till}, so we cannot load a bundle for it. "
        "If you paid us, please forward the original M-Pesa SMS unchanged."
    ),
    "code_used": (
        "Sorry, payment {code} has already been used for a bundle, so we cannot load another one with it."
    ),
    "amount": (
        "Sorry, the amount of payment {code} does not match any of our bundles. Please contact us so we "
        "can sort it out."
    ),
    "unclear": (
        "Sorry, we could not read your message about {code}. Please send the full M-Pesa message and "
        "the number to load."
    ),
    "other": (
        "Sorry, we could not confirm payment {code}. Please send the full M-Pesa message so we can "
        "check again."
    ),
}
REJECT_REASON_LABELS = dict(REJECT_REASONS)


def shop_name() -> str:
    return getattr(settings, "SHOP_NAME", "") or "us"


def _till() -> str:
    """Our till as the customer knows it: "TILLBOOK DATA (6944804)"."""
    name = getattr(settings, "TILL_NAME", "") or ""
    number = getattr(settings, "TILL_NUMBER", "") or ""
    return f"{name} ({number})" if name and number else name or number


def reject_reply(claim: Claim) -> str:
    key = (claim.explanation or {}).get("reject_reason")
    sentence = REJECT_REPLIES.get(key) or REJECT_REPLIES["other"]
    return sentence.format(code=claim.code or "you sent", till=_till())


def whatsapp_reply(claim: Claim) -> str:
    """The text an agent sends back to the customer, signed with the shop's name."""
    shop = shop_name()
    if claim.status == ClaimStatus.VERIFIED and claim.bundle_id:
        return (
            f"Thank you! We received your payment {claim.code} of KES {claim.receipt.amount:,.0f}. "
            f"Your {claim.bundle.name} bundle for {phone_display(claim.recipient_msisdn)} is being loaded "
            f"(order {claim.order.reference}). - {shop}"
        )
    if claim.status == ClaimStatus.SUPERSEDED and claim.superseded_by_id:
        return (
            f"Thank you! We have your corrected code {claim.superseded_by.code}; your bundle is "
            f"handled under it, so you can ignore {claim.code or 'the earlier message'}. - {shop}"
        )
    paid_by = (claim.explanation or {}).get("paid_by") or {}
    if claim.reason == ClaimReason.PAID_BY_STK and paid_by.get("order"):
        return (
            f"Thank you! Payment {claim.code} was already received through the M-Pesa prompt for "
            f"order {paid_by['order']}; your bundle is loaded under that order and there is nothing more "
            f"to pay. - {shop}"
        )
    if claim.status == ClaimStatus.REJECTED:
        return f"{reject_reply(claim)} - {shop}"
    if claim.reason == ClaimReason.OTHER_MERCHANT:
        # Neutral: the customer may simply have pasted the wrong message.
        return (
            f"Thank you for your message about {claim.code}. We could not match the M-Pesa message "
            f"you sent to a payment to our till {_till()}. Please forward the original M-Pesa "
            f"confirmation SMS for this payment, unchanged, so we can check it. - {shop}"
        )
    return (
        f"Thank you, we have your message about {claim.code}. We are checking the payment "
        f"and will load your bundle as soon as it is confirmed. - {shop}"
    )
