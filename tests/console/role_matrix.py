"""Who may open every console URL, and who may POST to it: the one declared access matrix.

`test_role_matrix.py` walks every URL the project resolves under /admin/ (each ModelAdmin's
standard pages, its custom views, unfold's list, detail and row actions, each bulk action of
each changelist) and requests it as each role. A URL without a rule here fails the suite, so a
new page cannot ship without someone deciding who sees it.

Each rule is (roles allowed to GET, roles allowed to POST). POST ``None`` means the URL changes
nothing and is not posted to. Allowed means 200 or a redirect that stays in the admin; denied
means 403 or a redirect to the login page, and for a POST, that no row changed.
"""

from __future__ import annotations

AGENT, FINANCE, MANAGER, SUPERUSER, ANONYMOUS = "agent", "finance", "manager", "superuser", "anonymous"
ROLES = (AGENT, FINANCE, MANAGER, SUPERUSER, ANONYMOUS)

A, F, M, S = AGENT, FINANCE, MANAGER, SUPERUSER
STAFF = frozenset({A, F, M, S})
EVERYONE = STAFF | {ANONYMOUS}
NOBODY = frozenset()


def roles(*names) -> frozenset:
    return frozenset(names)


# ---- special outcomes ---------------------------------------------------------------------------
# URL -> status every role in the rule's set gets instead of 200/302 (the rest are denied as usual)
ALLOWED_STATUS = {
    "admin:logout GET": 405,  # logging out is a POST
    "admin:catch_all GET": 404,
    "admin:view_on_site GET": 404,  # no model here has a public page of its own
    "console_otp_enrol POST": 403,  # the sample POST carries no code: refused, nothing enrolled
}
# GETs allowed to write: opening set-up creates the not-yet-confirmed key it shows (once per
# user; opening it again shows the same key), and nothing else.
GET_WRITES = {"console_otp_enrol"}
# URL -> status a denied role gets instead of 403 / login redirect
DENIED_STATUS = {"admin:app_list": 404}  # Django answers "no such page" for an app you may not see
# URL -> where a denied role is sent instead of the login page
DENIED_REDIRECT = {"admin:logout": "/admin/"}  # a visitor who is not logged in has nothing to end


AUDIT_TRAIL = frozenset({F, S})  # who may read the audit trail (console.auditevent below)


def model_pages(label: str, view, add=NOBODY, change=NOBODY, delete=NOBODY) -> dict:
    """The standard pages of a ModelAdmin: list, add, change (view), delete, history, redirect."""
    app, model = label.split(".")
    base = f"admin:{app}_{model}"
    return {
        f"{base}_changelist": (view, None),
        f"{base}_add": (add, add),
        f"{base}_change": (view, change),
        f"{base}_delete": (delete, delete),
        # The history is the record's audit trail: for those who may see both.
        f"{base}_history": (frozenset(view) & AUDIT_TRAIL, None),
        # /admin/<app>/<model>/<id>/ only redirects to the change page, which then checks.
        f"admin/{app}/{model}/<path:object_id>/": (STAFF, None),
        f"{base}_changelist action=delete_selected": (None, delete),
    }


def actions(label: str, **rules) -> dict:
    """unfold actions (list, detail and row) by URL name suffix: the same roles for GET and POST."""
    app, model = label.split(".")
    return {f"admin:{app}_{model}_{name}": (who, who) for name, who in rules.items()}


def bulk(label: str, **rules) -> dict:
    """Bulk actions of a changelist (always a POST): who may run each."""
    app, model = label.split(".")
    return {f"admin:{app}_{model}_changelist action={name}": (None, who) for name, who in rules.items()}


SU = roles(S)
AFS = roles(A, F, S)
AS = roles(A, S)
FS = roles(F, S)
MS = roles(M, S)

MATRIX: dict[str, tuple[frozenset | None, frozenset | None]] = {
    # ---- the site ------------------------------------------------------------------------------
    "admin:index": (STAFF, None),
    "admin:login": (EVERYONE, None),  # staff are sent on to the dashboard
    "admin:logout": (STAFF, STAFF),
    "admin:password_change": (STAFF, STAFF),
    "admin:password_change_done": (STAFF, None),
    # No admin here declares autocomplete fields: every request to it is refused.
    "admin:autocomplete": (NOBODY, None),
    "admin:jsi18n": (STAFF, None),
    "admin:view_on_site": (STAFF, None),
    "admin:search": (STAFF, None),  # unfold's search only looks in the apps the user may see
    "admin:app_list": (None, None),  # per app, below
    "admin:catch_all": (STAFF, None),
    # ---- console pages outside one model ------------------------------------------------------
    "console_find": (AFS, None),  # sections filtered further by the view permission of each
    "console_customer": (AFS, None),
    # ---- system -------------------------------------------------------------------------------
    **model_pages("auth.user", SU, SU, SU, SU),
    "admin:auth_user_password_change": (SU, SU),
    **model_pages("auth.group", SU, SU, SU, SU),
    **model_pages("django_q.schedule", SU, SU, SU, SU),
    **model_pages("django_q.success", SU, NOBODY, SU, SU),
    **bulk("django_q.success", resubmit_task=SU),
    **model_pages("django_q.failure", SU, NOBODY, SU, SU),
    **bulk("django_q.failure", resubmit_task=SU),
    **model_pages("django_q.ormq", SU, NOBODY, SU, SU),
    **model_pages("console.auditevent", FS),
    # ---- logins: failed attempts (unlock) and second-factor devices: superusers only -----------
    **model_pages("axes.accessattempt", SU, NOBODY, NOBODY, SU),
    **bulk("axes.accessattempt", unlock=SU),
    **model_pages("otp_totp.totpdevice", SU, NOBODY, NOBODY, SU),
    **model_pages("otp_static.staticdevice", SU, NOBODY, NOBODY, SU),
    # Everyone's own two-step login page, its set-up and its code check.
    "console_security": (STAFF, STAFF),
    "console_otp_verify": (STAFF, STAFF),
    "console_otp_enrol": (STAFF, STAFF),
    # ---- catalogue ----------------------------------------------------------------------------
    **model_pages("catalog.bundle", STAFF, MS, MS, MS),
    **actions("catalog.bundle", retire_bundle=MS),
    "admin:catalog_bundle_import": (MS, MS),
    "admin:catalog_bundle_process_import": (None, MS),  # only ever POSTed (405 to a GET)
    "admin:catalog_bundle_export": (STAFF, STAFF),  # the catalogue is the public storefront
    **bulk(
        "catalog.bundle",
        activate_selected=MS,
        deactivate_selected=MS,
        feature_selected=MS,
        unfeature_selected=MS,
    ),
    **model_pages("catalog.bundlepricechange", roles(F, M, S)),
    # ---- payments -----------------------------------------------------------------------------
    **model_pages("ledger.order", AFS),  # orders come from STK pushes, the storefront and claims
    **actions(
        "ledger.order",
        new_stk_push=AS,
        find_anything=AFS,
        mark_delivered=AS,
        retry=AS,
        cancel_order=AS,
        refund=FS,
    ),
    **bulk("ledger.order", mark_delivered_selected=AS),
    **model_pages("ledger.stkrequest", AFS),
    **model_pages("ledger.callbacklog", SU),  # the callback inbox: superusers only
    **actions("ledger.callbacklog", reprocess=SU),
    **bulk("ledger.callbacklog", reprocess_selected=SU),
    # ---- books --------------------------------------------------------------------------------
    **model_pages("ledger.account", FS),
    "admin:ledger_trial_balance": (FS, None),
    **actions("ledger.account", trial_balance=FS),
    **model_pages("ledger.journalentry", FS),
    "admin:ledger_daily_summary": (FS, None),
    **actions(
        "ledger.journalentry",
        daily_summary=FS,
        trial_balance=FS,
        post_adjustment=FS,
        reverse_entry=FS,
    ),
    **model_pages("ledger.exportjob", FS),
    "admin:ledger_exportjob_download": (FS, None),
    **actions("ledger.exportjob", new_export=FS),
    # ---- reconciliation -----------------------------------------------------------------------
    **model_pages("reconciliation.claim", AFS),
    **actions(
        "reconciliation.claim",
        take_next=AFS,
        find_anything=AFS,
        paste_message=AS,
        upload_chat=AS,
        export_claims=AFS,
        run_matcher=FS,
        verify=AFS,
        reject=AFS,
        take_over=AFS,
        release=AFS,
        undo_verification=FS,
    ),
    **model_pages("reconciliation.whatsappmessage", AFS),
    **actions("reconciliation.whatsappmessage", paste_message=AS),
    **model_pages("reconciliation.whatsappimport", AFS),
    **actions("reconciliation.whatsappimport", upload_chat=AS),
    **model_pages("reconciliation.tillreceipt", AFS),
    **actions("reconciliation.tillreceipt", paste_till_sms=FS, upload_statement=FS),
    **model_pages("reconciliation.statementimport", FS),
    **actions("reconciliation.statementimport", upload_statement=FS, import_rows=FS, resume_import=FS),
    **model_pages("reconciliation.reconciliationrun", FS),
    **actions("reconciliation.reconciliationrun", close_abandoned=FS),
    **model_pages("reconciliation.dayclose", FS),
    **actions("reconciliation.dayclose", close_a_day=FS, reopen_day=FS),
}

# admin/<app_label>/: the app's page lists the models the user may see; no model, no page.
APP_PAGES = {
    "auth": SU,
    "django_q": SU,
    "console": FS,
    "axes": SU,
    "otp_totp": SU,
    "otp_static": SU,
    "catalog": STAFF,
    "ledger": AFS,
    "reconciliation": AFS,
}
