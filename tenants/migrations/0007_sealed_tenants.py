import tenants.seal
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0006_tenant_schema_name_upper"),
    ]

    operations = [
        tenants.seal.SealedTenants(),
    ]
