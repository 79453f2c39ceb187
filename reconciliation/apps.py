from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reconciliation"
    verbose_name = "Reconciliation"

    def ready(self):
        # Not a cycle: models and services can only be imported once the app registry is ready.
        from ledger.models import CallbackSource
        from ledger.services import callback_processor_register, payment_reversed_hook_register
        from reconciliation.services.receipts import c2b_confirmation_apply
        from reconciliation.services.reopen import payment_reversed_reopen

        # Stored C2B confirmations are retried and re-processed like STK callbacks.
        callback_processor_register(
            CallbackSource.C2B_CONFIRMATION, lambda log: c2b_confirmation_apply(log=log)
        )
        # A reversed till payment reopens its claim and receipt in the reversal's transaction.
        payment_reversed_hook_register(payment_reversed_reopen)
