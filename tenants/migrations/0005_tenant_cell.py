from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_domain_base_manager"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="cell",
            field=models.CharField(blank=True, db_default="", db_index=True, default="", max_length=31),
        ),
    ]
