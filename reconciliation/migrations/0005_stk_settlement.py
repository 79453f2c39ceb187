# STK settlements on till receipts, and the claim reasons of a payment already made by STK, a
# reversed payment and a verification that failed.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0004_job_leases"),
    ]

    operations = [
        migrations.AddField(
            model_name="tillreceipt",
            name="settlement",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "Till payment"),
                    ("settled", "Settles an STK payment"),
                    ("review", "Settles an STK payment; amounts differ (review)"),
                ],
                default="",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="tillreceipt",
            name="settlement_note",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AlterField(
            model_name="claim",
            name="reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("amount_mismatch", "Amount does not match a bundle or the pasted SMS"),
                    ("code_already_used", "Code already used by another claim"),
                    ("unknown_code", "No such payment on the till"),
                    ("possible_typo", "Code looks like a typo of a real receipt"),
                    ("ambiguous", "Ambiguous"),
                    ("unparseable", "Could not read the message"),
                    ("paid_by_stk", "Already paid by STK"),
                    ("payment_reversed", "Payment reversed by finance"),
                    ("verify_failed", "Automatic verification failed"),
                ],
                db_index=True,
                max_length=20,
            ),
        ),
    ]
