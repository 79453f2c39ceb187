"""WhatsApp messages and chat imports: their admin pages and the paste / upload forms."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator

from console.kernel.admin_base import ModelAdmin, ReadOnlyAdminMixin, nairobi
from console.kernel.date_filters import NairobiRangeDateTimeFilter
from console.kernel.exceptions import DomainError
from console.kernel.links import customer_link
from console.kernel.phones import phone_display, phone_search_term
from console.kernel.uploads import UploadRefused, limit, read_limited
from reconciliation.admin.common import form_page
from reconciliation.forms import PasteMessageForm, WhatsAppUploadForm
from reconciliation.models import ImportStatus, WhatsAppImport, WhatsAppMessage
from reconciliation.services import claims as claim_services
from reconciliation.services.errors import ImportRefused

PASTED = "Message kept: {claims} new claim(s). {kind_note}"
KIND_NOTES = {
    "claim": "",
    "chatter": "No M-Pesa code in it, so no claim.",
    "unparseable": "It talks about a payment but holds no valid M-Pesa code: ask the customer for the code.",
    "business": "It is from our own number, so no claim.",
}
MATCH_NOTES = {
    claim_services.MATCHED_NOW: "Matched now: each claim shows what the matcher found.",
    claim_services.MATCHED_LATER: "Matching in the background: the claims update within a minute or two.",
}
CHAT_QUEUED = "{name} is being imported in the background; this page shows when it is done."


def paste_message_view(model_admin, request):
    form = PasteMessageForm(request.POST or None)
    changelist = reverse("admin:reconciliation_claim_changelist")
    if request.method == "POST" and form.is_valid():
        try:
            result = claim_services.message_paste(
                sender=form.cleaned_data["sender"], text=form.cleaned_data["text"], user=request.user
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            text = PASTED.format(
                claims=result["claims_new"], kind_note=KIND_NOTES.get(result["kind"], "")
            ).strip()
            messages.success(request, f"{text} {MATCH_NOTES.get(result['matched'], '')}".strip())
            claims = result["claims"]
            if len(claims) == 1:
                return redirect("admin:reconciliation_claim_change", claims[0].pk)
            return redirect(changelist)
    return form_page(
        model_admin,
        request,
        "Paste a customer's message",
        intro="Paste the WhatsApp message as the customer wrote it; every M-Pesa code in it becomes a claim.",
        question="Message",
        form=form,
        confirm_label="Save and match",
        cancel_url=changelist,
    )


def upload_chat_view(model_admin, request):
    form = WhatsAppUploadForm(request.POST or None, request.FILES or None)
    changelist = reverse("admin:reconciliation_claim_changelist")
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            data = read_limited(upload, limit("UPLOAD_CHAT_MAX_BYTES"), what="chat export")
            # A usual export imports at once (its errors on this form); a big one in the worker.
            inline = len(data) <= settings.CHAT_IMPORT_INLINE_MAX_BYTES
            service = claim_services.whatsapp_import if inline else claim_services.whatsapp_import_queue
            imp = service(
                data=data,
                filename=upload.name,
                business_number=form.cleaned_data["business_number"] or None,
                user=request.user,
            )
        except (ImportRefused, UploadRefused) as exc:
            form.add_error("file", exc.message)
        else:
            if imp.status != ImportStatus.DONE:
                messages.info(request, CHAT_QUEUED.format(name=imp.original_name))
                return redirect(reverse("admin:reconciliation_whatsappimport_change", args=[imp.pk]))
            c = imp.counts
            messages.success(
                request,
                f"{c['messages']} messages ({c['new_messages']} new): {c['claims_new']} new claims, "
                f"{c['unparseable']} unparseable, {c['chatter']} chatter, "
                f"{c['system'] + c['media']} system/media, "
                f"{c['from_business']} from us. " + MATCH_NOTES.get(c.get("matched"), ""),
            )
            return redirect(changelist)
    return form_page(
        model_admin,
        request,
        "Upload a WhatsApp chat export",
        intro="In WhatsApp: chat → ⋮ → More → Export chat → Without media. Upload the .txt or .zip.",
        question="Chat export",
        form=form,
        confirm_label="Import and match",
        cancel_url=changelist,
    )


class MessageInActions:
    """The list buttons that bring customers' messages in (paste one, upload a chat export),
    shared by the claims, messages and chat-import lists."""

    @action(
        description="Paste a message",
        icon="content_paste",
        permissions=["reconciliation.add_whatsappmessage"],
        url_path="paste",
    )
    def paste_message(self, request):
        return paste_message_view(self, request)

    @action(
        description="Upload chat export",
        icon="upload_file",
        permissions=["reconciliation.add_whatsappimport"],
        url_path="upload-chat",
    )
    def upload_chat(self, request):
        return upload_chat_view(self, request)


class WhatsAppMessageAdmin(MessageInActions, ReadOnlyAdminMixin, ModelAdmin):
    list_display = [
        "display_sent",
        "display_sender",
        "display_text",
        "display_claims",
        "kind",
    ]
    list_filter = ["kind", "is_from_business", ("sent_at", NairobiRangeDateTimeFilter)]
    list_filter_submit = True
    search_fields = ["sender_msisdn"]
    search_help_text = "Phone number in any form (0712…, +254712…)"
    paginator = InfinitePaginator
    show_full_result_count = False
    readonly_fields = [
        "display_sender" if f.name == "sender_msisdn" else f.name for f in WhatsAppMessage._meta.fields
    ]
    actions_list = ["paste_message"]

    empty_message = "No messages yet. Paste a WhatsApp message or upload a chat export."

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("chat_import").annotate(claim_count=Count("claims"))
        )

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, phone_search_term(search_term.strip()))

    @display(description="sent (Nairobi)", ordering="sent_at")
    def display_sent(self, obj):
        return nairobi(obj.sent_at)

    @display(description="sender", ordering="sender_msisdn")
    def display_sender(self, obj):
        number = obj.sender_msisdn
        phone = customer_link(number, phone_display(number)) if number else "—"
        label = obj.sender_label
        if label and not label.lstrip("+").replace(" ", "").isdigit():
            return format_html("{}<br>{}", label, phone)
        return phone

    @display(description="text")
    def display_text(self, obj):
        return obj.text[:80] + ("…" if len(obj.text) > 80 else "")

    @display(description="claims", ordering="claim_count")
    def display_claims(self, obj):
        return obj.claim_count


class WhatsAppImportAdmin(MessageInActions, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ["original_name", "display_uploaded", "uploaded_by", "status", "display_counts"]
    list_select_related = ["uploaded_by"]
    list_filter = ["status"]
    list_filter_submit = True
    empty_message = "No chat exports yet. Use “Upload chat export” with a WhatsApp export (.txt or .zip)."
    readonly_fields = [
        "original_name",
        "sha256",
        "uploaded_by",
        "uploaded_at",
        "status",
        "display_business_number",
        "business_name",
        "counts",
        "errors",
    ]
    exclude = ["file"]
    actions_list = ["upload_chat"]

    @display(description="uploaded (Nairobi)", ordering="uploaded_at")
    def display_uploaded(self, obj):
        return nairobi(obj.uploaded_at)

    @display(description="our WhatsApp number")
    def display_business_number(self, obj):
        return phone_display(obj.business_number)

    @display(description="counts")
    def display_counts(self, obj):
        c = obj.counts or {}
        return (
            f"{c.get('messages', 0)} messages, {c.get('claims_new', 0)} new claims, "
            f"{c.get('unparseable', 0)} unparseable"
        )


admin.site.register(WhatsAppMessage, WhatsAppMessageAdmin)
admin.site.register(WhatsAppImport, WhatsAppImportAdmin)
