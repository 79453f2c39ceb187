"""The admin's sidebar, grouped by job. Settings point here by dotted path."""

from django.conf import settings
from django.urls import reverse


def environment_callback(request):
    if settings.DEBUG:
        return ["Development", "warning"]
    return ["Production", "success"]


SUPERUSER_ONLY = "superuser"  # an item no group permission opens (see the Callback inbox admin)
FIND = "find"  # "Find anything": for whoever may see one of its sections (console.access)


def sidebar_item_visible(user, perm) -> bool:
    from console.access import can_find

    if perm == SUPERUSER_ONLY:
        return user.is_superuser
    if perm == FIND:
        return can_find(user)
    return perm is None or user.has_perm(perm)


def _item(title, icon, url_name, perm):
    return {
        "title": title,
        "icon": icon,
        "link": reverse(url_name),
        "permission": lambda request, perm=perm: sidebar_item_visible(request.user, perm),
    }


# (group, [(title, icon, admin url name, permission needed to see it)])
SIDEBAR = [
    (
        "Work",
        [
            ("Dashboard", "dashboard", "admin:index", None),
            ("Find anything", "search", "console_find", FIND),
        ],
    ),
    ("Catalogue", [("Bundles", "sell", "admin:catalog_bundle_changelist", "catalog.view_bundle")]),
    (
        "Payments",
        [
            ("Orders", "receipt_long", "admin:ledger_order_changelist", "ledger.view_order"),
            ("STK requests", "phone_iphone", "admin:ledger_stkrequest_changelist", "ledger.view_stkrequest"),
            ("Callback inbox", "inbox", "admin:ledger_callbacklog_changelist", SUPERUSER_ONLY),
        ],
    ),
    (
        "Reconciliation",
        [
            ("Claims", "fact_check", "admin:reconciliation_claim_changelist", "reconciliation.view_claim"),
            (
                "Till receipts",
                "payments",
                "admin:reconciliation_tillreceipt_changelist",
                "reconciliation.view_tillreceipt",
            ),
            (
                "WhatsApp messages",
                "chat",
                "admin:reconciliation_whatsappmessage_changelist",
                "reconciliation.view_whatsappmessage",
            ),
            (
                "Statement imports",
                "upload_file",
                "admin:reconciliation_statementimport_changelist",
                "reconciliation.view_statementimport",
            ),
            (
                "Reconciliation runs",
                "sync",
                "admin:reconciliation_reconciliationrun_changelist",
                "reconciliation.view_reconciliationrun",
            ),
            (
                "Daily close",
                "event_available",
                "admin:reconciliation_dayclose_changelist",
                "reconciliation.view_dayclose",
            ),
        ],
    ),
    (
        "Books",
        [
            ("Journal", "menu_book", "admin:ledger_journalentry_changelist", "ledger.view_journalentry"),
            ("Accounts", "account_balance", "admin:ledger_account_changelist", "ledger.view_account"),
            ("Trial balance", "balance", "admin:ledger_trial_balance", "ledger.view_account"),
            ("Daily summary", "today", "admin:ledger_daily_summary", "ledger.view_journalentry"),
            ("Exports", "download", "admin:ledger_exportjob_changelist", "ledger.view_exportjob"),
        ],
    ),
    (
        "System",
        [
            ("Users", "person", "admin:auth_user_changelist", "auth.view_user"),
            ("Groups", "group", "admin:auth_group_changelist", "auth.view_group"),
            ("Audit trail", "history", "admin:console_auditevent_changelist", "console.view_auditevent"),
            ("Two-step login", "phonelink_lock", "console_security", None),
            ("Failed logins", "lock_person", "admin:axes_accessattempt_changelist", SUPERUSER_ONLY),
            ("2FA devices", "smartphone", "admin:otp_totp_totpdevice_changelist", SUPERUSER_ONLY),
            ("Scheduled tasks", "schedule", "admin:django_q_schedule_changelist", "django_q.view_schedule"),
            ("Successful tasks", "task_alt", "admin:django_q_success_changelist", "django_q.view_success"),
            ("Failed tasks", "error", "admin:django_q_failure_changelist", "django_q.view_failure"),
        ],
    ),
]


def navigation(request):
    """Sidebar groups; items whose admin is not registered (yet) are left out."""
    from django.urls import NoReverseMatch

    groups = []
    for title, items in SIDEBAR:
        built = []
        for item in items:
            try:
                built.append(_item(*item))
            except NoReverseMatch:
                continue
        if built:
            groups.append({"title": title, "separator": True, "collapsible": False, "items": built})
    return groups
