"""Roles are Django groups with explicit permissions. `manage.py setup_roles` applies this map."""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

SUPPORT_AGENT = "Support agent"
FINANCE = "Finance"
CATALOGUE_MANAGER = "Catalogue manager"


def _view(*models):
    return [f"{app}.view_{model}" for app, model in (m.split(".") for m in models)]


ROLE_PERMISSIONS: dict[str, list[str]] = {
    SUPPORT_AGENT: [
        *_view(
            "catalog.bundle",
            "ledger.order",
            "ledger.stkrequest",
            "reconciliation.claim",
            "reconciliation.tillreceipt",
            "reconciliation.whatsappmessage",
            "reconciliation.whatsappimport",
        ),
        "ledger.add_order",
        "ledger.send_stk",
        "ledger.mark_delivered",
        "ledger.cancel_order",
        "reconciliation.add_whatsappmessage",
        "reconciliation.add_whatsappimport",
        "reconciliation.verify_claim",
        "reconciliation.reject_claim",
    ],
    FINANCE: [
        *_view(
            "catalog.bundle",
            "catalog.bundlepricechange",
            "ledger.order",
            "ledger.stkrequest",
            "ledger.account",
            "ledger.journalentry",
            "ledger.posting",
            "ledger.exportjob",
            "reconciliation.claim",
            "reconciliation.tillreceipt",
            "reconciliation.statementimport",
            "reconciliation.whatsappmessage",
            "reconciliation.whatsappimport",
            "reconciliation.reconciliationrun",
            "reconciliation.dayclose",
            "console.auditevent",
        ),
        "ledger.refund_order",
        "ledger.post_adjustment",
        "ledger.reverse_entry",
        "ledger.export_ledger",
        "ledger.add_exportjob",
        "reconciliation.add_statementimport",
        "reconciliation.import_statement",
        "reconciliation.run_reconciliation",
        "reconciliation.undo_verification",
        "reconciliation.verify_claim",
        "reconciliation.reject_claim",
        "reconciliation.add_dayclose",
    ],
    CATALOGUE_MANAGER: [
        *_view("catalog.bundle", "catalog.bundlepricechange"),
        "catalog.add_bundle",
        "catalog.change_bundle",
        "catalog.delete_bundle",
    ],
}


class MissingPermission(Exception):
    pass


@transaction.atomic
def roles_setup() -> dict[str, int]:
    """Create or update the role groups so each holds exactly its listed permissions.

    Idempotent: running it again changes nothing. Raises MissingPermission for a name that does
    not exist (a typo here must fail loudly, not leave a role short of a permission).
    """
    counts = {}
    for role, names in ROLE_PERMISSIONS.items():
        perms = []
        for name in names:
            app_label, codename = name.split(".")
            try:
                perms.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
            except Permission.DoesNotExist:
                raise MissingPermission(f"{role}: no permission {name}")
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(perms)
        counts[role] = len(perms)
    return counts
