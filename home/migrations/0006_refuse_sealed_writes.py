import tenants.seal
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("home", "0005_row_level_security"),
        ("tenants", "0007_sealed_tenants"),
    ]

    operations = [
        tenants.seal.RefuseSealedWrites("pagecontent"),
        tenants.seal.RefuseSealedWrites("sitesettings"),
    ]
