import tenants.rls
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("home", "0004_uploads"),
    ]

    operations = [
        tenants.rls.RowLevelSecurity("pagecontent"),
        tenants.rls.RowLevelSecurity("sitesettings"),
    ]
