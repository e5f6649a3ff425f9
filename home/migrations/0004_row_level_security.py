import tenants.rls
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("home", "0003_tenant_column_without_own_index"),
    ]

    operations = [
        tenants.rls.RowLevelSecurity("pagecontent"),
        tenants.rls.RowLevelSecurity("sitesettings"),
    ]
