from django.db import migrations, models


def first_row(apps, schema_editor):
    apps.get_model("tenants", "Generation").objects.using(schema_editor.connection.alias).create(
        pk=1, value=0
    )


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_alter_tenant_options_alter_tenant_managers"),
    ]

    operations = [
        migrations.CreateModel(
            name="Generation",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("value", models.BigIntegerField(default=0)),
            ],
            options={"db_table": "tenants_generation"},
        ),
        migrations.RunPython(first_row, migrations.RunPython.noop),
    ]
