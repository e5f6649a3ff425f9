import tenants.rls
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_log_entry_tenant"),
    ]

    operations = [
        tenants.rls.RowLevelSecurity("membership"),
        tenants.rls.RowLevelSecurity("logentrytenant"),
        # Deleting a user on the platform takes their memberships in every site, and deleting
        # an admin log entry (with its user) its tenant mark, whichever tenant is active.
        tenants.rls.CascadeAcrossTenants("membership", "user"),
        tenants.rls.CascadeAcrossTenants("logentrytenant", "entry"),
    ]
