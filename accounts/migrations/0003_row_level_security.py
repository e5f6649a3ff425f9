import tenants.rls
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_tenant_column_without_own_index"),
    ]

    operations = [
        tenants.rls.RowLevelSecurity("membership"),
        # Deleting a user on the platform takes their memberships in every site.
        tenants.rls.CascadeAcrossTenants("membership", "user"),
    ]
