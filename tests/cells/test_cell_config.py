"""Reading TENANCY_CELLS (tenants.cellconfig): no database, every pass."""

import pytest

from tenants.cellconfig import (
    CellConfigError,
    alias_for_cell,
    cell_databases,
    owner_alias,
    parse_cells,
)


def test_cells_are_named_aliases_with_room_for_an_owner_alias():
    assert parse_cells(" eu1=postgres://a/x , eu2=postgres://b/y ,") == {
        "eu1": "postgres://a/x",
        "eu2": "postgres://b/y",
    }
    assert alias_for_cell("eu1") == "cell_eu1"
    assert alias_for_cell("") == alias_for_cell("default") == "default"
    assert owner_alias("default") == "owner"
    assert owner_alias("cell_eu1") == "cell_eu1_owner"


@pytest.mark.parametrize(
    "value", ["eu1", "eu1=", "default=postgres://a/x", "EU1=postgres://a/x", "e-1=postgres://a/x"]
)
def test_malformed_cells_are_refused(value):
    with pytest.raises(CellConfigError):
        parse_cells(value)


def test_the_same_cell_twice_is_refused():
    with pytest.raises(CellConfigError, match="twice"):
        parse_cells("eu1=postgres://a/x,eu1=postgres://b/y")


def test_a_cell_takes_the_control_settings_but_its_own_server_and_credentials():
    import environ

    control = {
        "ENGINE": "tenants.backends.postgresql",
        "NAME": "control",
        "USER": "site",
        "PASSWORD": "secret",
        "HOST": "control.internal",
        "PORT": 5432,
        "CONN_MAX_AGE": 60,
        "OPTIONS": {"sslmode": "require"},
    }
    databases = cell_databases(
        "eu1=postgres://cell:pw@pg-eu1:6432/cells",
        control,
        environ.Env.db_url_config,
        connect_timeout=3,
    )
    cell = databases["cell_eu1"]
    assert (cell["NAME"], cell["USER"], cell["PASSWORD"]) == ("cells", "cell", "pw")
    assert (cell["HOST"], cell["PORT"]) == ("pg-eu1", 6432)
    assert cell["ENGINE"] == control["ENGINE"] and cell["CONN_MAX_AGE"] == 60
    assert cell["OPTIONS"] == {"sslmode": "require", "connect_timeout": 3}
    assert control["OPTIONS"] == {"sslmode": "require"}  # not changed
