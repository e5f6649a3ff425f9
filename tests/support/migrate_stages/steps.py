"""The bench app's migrations, defined once; migrations_stageN packages expose the first N.

* 0001 creates a table with foreign keys to a tenant table (auth_user) and to a public-only
  table (tenants_tenant), and an index;
* 0002 adds a column with a default: the benchmark's "one new migration";
* 0003 alters, renames and constrains (schema-editor paths that introspect the database);
* 0004 is a data migration (RunPython): not precomputable, Django's executor applies it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

APP = "migrate_bench_app"


class Initial(migrations.Migration):
    initial = True
    dependencies = [
        ("tenants", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]
    operations = [
        migrations.CreateModel(
            name="Widget",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100)),
                ("created_at", models.DateTimeField(null=True)),
                (
                    "owner",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to="tenants.tenant"
                    ),
                ),
            ],
            options={"indexes": [models.Index(fields=["name"], name="bench_widget_name")]},
        ),
    ]


class AddScore(migrations.Migration):
    dependencies = [(APP, "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="widget", name="score", field=models.IntegerField(default=0)
        ),
    ]


class Reshape(migrations.Migration):
    dependencies = [(APP, "0002_widget_score")]
    operations = [
        migrations.AlterField(
            model_name="widget", name="name", field=models.CharField(max_length=200, unique=True)
        ),
        migrations.AddField(
            model_name="widget",
            name="code",
            field=models.CharField(max_length=20, null=True, unique=True),
        ),
        migrations.RenameField(model_name="widget", old_name="created_at", new_name="made_at"),
        migrations.AddConstraint(
            model_name="widget",
            constraint=models.CheckConstraint(
                condition=models.Q(score__gte=0), name="bench_widget_score_positive"
            ),
        ),
        migrations.CreateModel(
            name="Gadget",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("label", models.SlugField()),
                ("widgets", models.ManyToManyField(to=f"{APP}.widget")),
            ],
            options={"permissions": [("tune_gadget", "Can tune gadgets")]},
        ),
        migrations.RemoveField(model_name="widget", name="owner"),
    ]


def number_widgets(apps, schema_editor):
    Widget = apps.get_model(APP, "Widget")
    for n, widget in enumerate(Widget.objects.order_by("pk"), start=1):
        widget.code = f"W{n:05d}"
        widget.save(update_fields=["code"])


class NumberWidgets(migrations.Migration):
    dependencies = [(APP, "0003_reshape")]
    operations = [migrations.RunPython(number_widgets, migrations.RunPython.noop)]
