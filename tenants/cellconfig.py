"""``TENANCY_CELLS`` read into database aliases; imported by the settings (no Django imports).

Naming: cell ``eu1`` is alias ``cell_eu1``. With row-level security a cell has the same role
split as the control database (``default`` = the site's role, ``owner`` = the tables' owner):
``cell_eu1`` is the site's role and ``cell_eu1_owner`` the owner (``owner_alias()``); cell names
(letters and digits) cannot make an alias that ends in ``_owner`` otherwise.
"""

from __future__ import annotations

import re

CELL_PREFIX = "cell_"
CONTROL = "default"  # the cell name (and alias) of the control database
_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,30}\Z")


class CellConfigError(ValueError):
    pass


def alias_for_cell(name: str) -> str:
    """Database alias of cell ``name`` (``""`` and ``"default"``: the control database)."""
    return CONTROL if name in ("", CONTROL) else f"{CELL_PREFIX}{name}"


def owner_alias(alias: str) -> str:
    """The tables' owner's alias beside ``alias`` under row-level security."""
    return "owner" if alias == CONTROL else f"{alias}_owner"


def parse_cells(value: str) -> dict[str, str]:
    """``"eu1=postgres://...,eu2=postgres://..."`` -> ``{"eu1": url, "eu2": url}``."""
    cells: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, url = item.partition("=")
        name = name.strip()
        if not sep or not url.strip():
            raise CellConfigError(f"TENANCY_CELLS: {item!r} is not name=postgres://...")
        if not _NAME_RE.match(name) or name == CONTROL:
            raise CellConfigError(
                f"TENANCY_CELLS: cell name {name!r} must be lowercase letters and digits, "
                "starting with a letter, at most 31, and not 'default'."
            )
        if name in cells:
            raise CellConfigError(f"TENANCY_CELLS: cell {name!r} is given twice.")
        cells[name] = url.strip()
    return cells


def is_owner_alias(alias: str) -> bool:
    return alias == "owner" or (alias.startswith(CELL_PREFIX) and alias.endswith("_owner"))


def cell_databases(
    value: str, control: dict, url_config, *, connect_timeout: int, owner: dict | None = None
) -> dict:
    """DATABASES entries of the cells: each like the control database's (engine, connection
    settings, pool) but at its own URL, and quick to give up on a server that is down.

    With ``owner`` (row-level security: the control database's owner alias), each cell gets
    two: ``cell_<name>_owner`` as the URL's role, like ``owner``, and ``cell_<name>`` as the
    control database's application role (same name and password on every cell), like
    ``default``."""
    try:
        cells = parse_cells(value)
    except CellConfigError as problem:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(str(problem)) from problem
    databases = {}
    for name, url in cells.items():
        parsed = url_config(url)
        where = {key: parsed.get(key, "") for key in ("NAME", "HOST", "PORT")}
        role = {key: parsed.get(key, "") for key in ("USER", "PASSWORD")}
        alias = alias_for_cell(name)
        if owner is None:
            databases[alias] = _like(control, {**where, **role}, connect_timeout)
        else:
            app_role = {key: control.get(key, "") for key in ("USER", "PASSWORD")}
            databases[alias] = _like(control, {**where, **app_role}, connect_timeout)
            databases[owner_alias(alias)] = _like(owner, {**where, **role}, connect_timeout)
    return databases


def _like(template: dict, server: dict, connect_timeout: int) -> dict:
    config = {k: v for k, v in template.items() if k not in ("NAME", "USER", "PASSWORD")}
    config.update(server)
    config["OPTIONS"] = {**template.get("OPTIONS", {}), "connect_timeout": connect_timeout}
    config["TEST"] = {"NAME": None}
    return config
