# The app's tables come from its migrations (steps.py); which ones depends on the stage chosen
# in tests/support/migrate_stages/settings.py. Content types are made from the migration state.
