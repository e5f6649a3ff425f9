"""Test databases with row-level security: made and migrated by the owner role, used by the
application role (which may not create databases or tables)."""

from django.conf import settings
from django.db import connections
from django.db.backends.postgresql.creation import DatabaseCreation as PostgresCreation

from tenants import rls


class DatabaseCreation(PostgresCreation):
    def create_test_db(self, verbosity=1, autoclobber=False, serialize=True, keepdb=False):
        if self.connection.alias == rls.OWNER:
            return super().create_test_db(verbosity, autoclobber, serialize, keepdb)
        owner = connections[rls.OWNER]
        name = owner.creation.create_test_db(verbosity, autoclobber, False, keepdb)
        self.connection.close()
        settings.DATABASES[self.connection.alias]["NAME"] = name
        self.connection.settings_dict["NAME"] = name
        if serialize:
            self.connection._test_serialized_contents = self.serialize_db_to_string()
        return name

    def destroy_test_db(self, old_database_name=None, verbosity=1, keepdb=False, suffix=None):
        if self.connection.alias == rls.OWNER:
            return super().destroy_test_db(old_database_name, verbosity, keepdb, suffix)
        self.connection.close()
        connections[rls.OWNER].creation.destroy_test_db(
            old_database_name, verbosity, keepdb, suffix
        )
        if old_database_name is not None:
            settings.DATABASES[self.connection.alias]["NAME"] = old_database_name
            self.connection.settings_dict["NAME"] = old_database_name
