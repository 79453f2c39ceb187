"""Admin for the callback inbox: read-only, with Re-process. Superusers only: raw gateway bodies
hold customers' phone numbers and names."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator

from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin, money, nairobi
from console.kernel.confirm import confirm_page, confirmed
from console.kernel.date_filters import NairobiRangeDateTimeFilter
from console.kernel.redact import redact_json_strict, redact_text_strict
from ledger import selectors, services
from ledger.admin.display import pretty_json
from ledger.models import CallbackLog, CallbackOutcome

OUTCOME_COLOURS = {
    CallbackOutcome.RECEIVED: "info",
    CallbackOutcome.APPLIED: "success",
    CallbackOutcome.DUPLICATE: "info",
    CallbackOutcome.UNKNOWN_ORDER: "warning",
    CallbackOutcome.CONFIRMING: "warning",
    CallbackOutcome.UNCONFIRMED: "danger",
    CallbackOutcome.REJECTED: "danger",
    CallbackOutcome.ERROR: "danger",
}
REPROCESSED = "Callback #{pk} re-processed: {outcome}."
NOT_AUTHENTICATED = "Failed authentication (wrong token / IP not allowed): kept as an excerpt, never applied."
NOT_REPROCESSED = "Callback #{pk} not re-processed. " + NOT_AUTHENTICATED
AUTH_COLOURS = {"passed": "success", "failed": "danger"}


@admin.register(CallbackLog)
class CallbackLogAdmin(ReadOnlyAdminMixin, ModelAdmin):
    empty_message = (
        "No callbacks yet. Gateways post to /api/callbacks/<gateway>/<STK_CALLBACK_TOKEN>/; each one lands "
        "here before it is applied."
    )
    list_display = [
        "id",
        "display_received",
        "source",
        "display_outcome",
        "display_authenticated",
        "checkout_request_id",
        "receipt",
        "display_amount",
        "display_size_short",
        "display_detail",
    ]  # source IP and attempts are on the callback's page: twelve columns made every row tall
    list_filter = [
        ("outcome", ChoicesDropdownFilter),
        ("source", ChoicesDropdownFilter),
        "authenticated",
        ("received_at", NairobiRangeDateTimeFilter),
    ]
    list_filter_submit = True
    list_select_related = ["stk_request"]
    search_fields = ["checkout_request_id", "receipt"]
    show_full_result_count = False
    paginator = InfinitePaginator
    list_per_page = 50
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "source",
                    "received_at",
                    "outcome",
                    "display_detail_full",
                    "display_authentication",
                    "attempts",
                    "processed_at",
                    "next_attempt_at",
                ]
            },
        ),
        ("Matched", {"fields": ["checkout_request_id", "receipt", "amount", "stk_request"]}),
        ("Confirmation by status query", {"fields": ["display_confirmation"]}),
        (
            "Request",
            {"fields": ["remote_ip", "display_path", "display_headers", "display_size", "display_body"]},
        ),
    ]
    readonly_fields = [f for _, opts in fieldsets for f in opts["fields"]]
    actions = ["reprocess_selected"]
    actions_detail = ["reprocess"]

    def get_queryset(self, request):
        return selectors.callback_logs_for_admin()

    # Raw gateway bodies hold customers' phone numbers and names: superusers only, whatever
    # permissions a group is given.
    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def get_actions_detail(self, request, object_id):
        # A callback that failed authentication can never be applied: no button to try.
        actions = super().get_actions_detail(request, object_id)
        log = self.get_object(request, unquote(str(object_id))) if object_id else None
        if log is None or not log.authenticated:
            actions = [a for a in actions if a.action_name != "ledger_callbacklog_reprocess"]
        return actions

    # ---- columns and fields ----------------------------------------------------------------
    @display(description="received (Nairobi)", ordering="received_at")
    def display_received(self, obj):
        return nairobi(obj.received_at)

    @display(description="outcome", ordering="outcome", label=OUTCOME_COLOURS)
    def display_outcome(self, obj):
        return obj.outcome, obj.get_outcome_display()

    @display(description="authentication", ordering="authenticated", label=AUTH_COLOURS)
    def display_authenticated(self, obj):
        return ("passed", "Passed") if obj.authenticated else ("failed", "Failed")

    @display(description="authentication")
    def display_authentication(self, obj):
        if obj.authenticated:
            return "Passed (callback token and source IP)."
        return format_html('<strong class="text-red-600 dark:text-red-500">{}</strong>', NOT_AUTHENTICATED)

    @display(description="amount (KES)", ordering="amount")
    def display_amount(self, obj):
        return money(obj.amount)

    @display(description="detail")
    def display_detail(self, obj):
        detail = redact_text_strict(obj.detail)
        return (detail[:80] + "…") if len(detail) > 80 else detail

    @display(description="detail")
    def display_detail_full(self, obj):
        return redact_text_strict(obj.detail) or "—"

    @display(description="path")
    def display_path(self, obj):
        return redact_text_strict(obj.path) or "—"

    @display(description="body size", ordering="body_size")
    def display_size_short(self, obj):
        return f"{obj.body_size:,} bytes" + (" (excerpt)" if obj.body_truncated else "")

    @display(description="body size")
    def display_size(self, obj):
        size = f"{obj.body_size:,} bytes"
        if obj.body_truncated:
            return f"{size} (truncated excerpt: first {len(obj.body.encode('utf-8')):,} bytes kept)"
        return size

    @display(description="body")
    def display_body(self, obj):
        if obj.body_truncated:
            return format_html(
                '<p class="text-xs mb-2">Truncated excerpt: the rest was not kept.</p>{}',
                pretty_json(obj.body),
            )
        return pretty_json(obj.body)

    @display(description="headers")
    def display_headers(self, obj):
        return pretty_json(obj.headers)

    @display(description="callback vs gateway")
    def display_confirmation(self, obj):
        return _confirmation_table(obj.confirmation)

    # ---- Re-process (detail and bulk) --------------------------------------------------------
    @action(
        description="Re-process", icon="sync", permissions=["ledger.reprocess_callback"], url_path="reprocess"
    )
    def reprocess(self, request, object_id):
        log = get_object_or_404(CallbackLog, pk=object_id)
        change_url = reverse("admin:ledger_callbacklog_change", args=[log.pk])
        if not log.authenticated:
            # Refused here as well as in the service: a crafted POST changes nothing either.
            messages.error(request, NOT_REPROCESSED.format(pk=log.pk))
            return redirect(change_url)
        if confirmed(request):
            outcome = services.callback_reprocess(log=log, actor=request.user)
            messages.info(request, REPROCESSED.format(pk=log.pk, outcome=CallbackOutcome(outcome).label))
            return redirect(change_url)
        return self._confirm_reprocess(request, [log], cancel_url=change_url)

    def has_reprocess_callback_permission(self, request, obj=None):
        return request.user.has_perm("ledger.reprocess_callback")

    @action(description="Re-process selected callbacks", permissions=["reprocess_callback"])
    def reprocess_selected(self, request, queryset):
        selected = list(queryset.order_by("received_at", "pk"))
        logs = [log for log in selected if log.authenticated]
        for log in selected:
            if not log.authenticated:
                messages.warning(request, NOT_REPROCESSED.format(pk=log.pk))
        if not logs:
            return None
        if not confirmed(request):
            return self._confirm_reprocess(
                request,
                logs,
                cancel_url=reverse("admin:ledger_callbacklog_changelist"),
                action_name="reprocess_selected",
            )
        for log in logs:
            outcome = services.callback_reprocess(log=log, actor=request.user)
            messages.info(request, REPROCESSED.format(pk=log.pk, outcome=CallbackOutcome(outcome).label))
        return None

    def _confirm_reprocess(self, request, logs, *, cancel_url, action_name=None):
        # Re-processing can mark an order paid and post to the books: say so before doing it.
        return confirm_page(
            self,
            request,
            title="Re-process callbacks",
            question=f"Apply {len(logs)} callback(s) again?",
            intro=(
                "A callback for an order still waiting is applied as if it had just arrived: a success is "
                "first confirmed with the gateway's status query, then the order may become paid and the "
                "payment is booked. One already applied changes nothing."
            ),
            tables=[
                {
                    "headers": [
                        "#",
                        "Received (Nairobi)",
                        "Source",
                        "Outcome",
                        "Checkout request",
                        "Receipt",
                    ],
                    "rows": [
                        [
                            log.pk,
                            nairobi(log.received_at),
                            log.get_source_display(),
                            log.get_outcome_display(),
                            log.checkout_request_id or "—",
                            log.receipt or "—",
                        ]
                        for log in logs
                    ],
                }
            ],
            action_name=action_name,
            selected=[log.pk for log in logs],
            confirm_label="Re-process",
            cancel_url=cancel_url,
        )


_CONFIRMATION_ROWS = [
    ("status", "Status"),
    ("result_code", "Result code"),
    ("amount", "Amount (KES)"),
    ("receipt", "Receipt"),
    ("phone", "Phone"),
    ("description", "Description"),
]


def _confirmation_table(confirmation) -> str:
    """The callback's figures beside the gateway's status answer, then any disagreement.

    Expects {"callback": {...}, "gateway": {...}, "disagreements": [...]} (ledger.services); any
    other shape is shown as JSON. Every value is redacted.
    """
    if not confirmation:
        return "— (no status query was needed or made)"
    confirmation = redact_json_strict(confirmation)
    callback, gateway = confirmation.get("callback"), confirmation.get("gateway")
    if not isinstance(callback, dict) or not isinstance(gateway, dict):
        return pretty_json(confirmation)

    def cell(value) -> str:
        return "—" if value in (None, "") else str(value)

    rows = [(label, cell(callback.get(key)), cell(gateway.get(key))) for key, label in _CONFIRMATION_ROWS]
    return render_to_string(
        "admin/ledger/callbacklog/confirmation.html",
        {"rows": rows, "disagreements": confirmation.get("disagreements") or []},
    )
