from django.db import migrations

from ledger.books.chart import chart_ensure


def create_chart(apps, schema_editor):
    chart_ensure(apps.get_model("ledger", "Account"), apps.get_model("ledger", "EntryCounter"))


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(create_chart, migrations.RunPython.noop)]
