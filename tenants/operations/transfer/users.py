"""The archive's accounts on the target platform, and the rule for a username already taken.

* Schema mode: the tenant's accounts go into its new schema with their ids (nothing there to
  clash with); its owner's platform account is found or made as below.
* Row mode: accounts are the platform's. A username not on the target is created (with its
  password hash; never staff or superuser). A username that exists is **reused only if its
  e-mail (case aside) and password hash are the archive's**: the same person, who can already
  sign in with that password. Any other existing account is a stranger's, and the tenant is
  never attached to it: the import is refused, naming the usernames, or with ``rename_users``
  the archive's account is created as ``<username>-<slug>`` (``-2``, ``-3``... if taken).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils.dateparse import parse_datetime

from tenants.conf import schema_mode
from tenants.operations.transfer.tables import ArchiveError, label, read_rows
from tenants.runtime.context import no_tenant


def same_account(existing, account: dict) -> bool:
    return (
        existing.has_usable_password()
        and existing.password == account["password"]
        and (existing.email or "").lower() == (account["email"] or "").lower()
    )


def place_users(restorer, table, rows: list[tuple]):
    """Create or reuse each archived account; fills ``restorer.maps['auth.user']``."""
    ids = restorer.maps[label(table)]
    restorer.archive_users = {row[0]: table.as_dict(row) for row in rows}
    users = get_user_model()._default_manager.using(restorer.alias(get_user_model()))
    conflicts = []
    for old_id, account in restorer.archive_users.items():
        existing = None if schema_mode() else users.filter(username=account["username"]).first()
        if existing is None:
            ids[old_id] = _create(restorer, account)
            restorer.created.append(account["username"])
        elif same_account(existing, account):
            ids[old_id] = existing.pk
            restorer.reused.append(account["username"])
            restorer.kept_ids.add(old_id)
        elif restorer.rename_users:
            new_name = _free_username(users, account["username"], restorer.tenant.slug)
            ids[old_id] = _create(restorer, {**account, "username": new_name})
            restorer.renamed[account["username"]] = new_name
            restorer.kept_ids.add(old_id)
        else:
            conflicts.append(account["username"])
    if conflicts:
        raise ArchiveError(_conflict_message(conflicts))


def _conflict_message(names: list[str]) -> str:
    return (
        f"The username(s) {', '.join(sorted(names))} belong to other accounts on this platform "
        "(a different e-mail or password): the imported site is never attached to someone "
        "else's account. Rename those accounts here first, or import with --rename-users "
        "(the archive's accounts become <username>-<slug>). Nothing was imported."
    )


def _create(restorer, account: dict) -> int:
    values = {**account, "is_staff": False, "is_superuser": False}
    if restorer.remap:
        values["id"] = None
    user = get_user_model()(**values)
    user.save_base(raw=True, force_insert=True, using=restorer.alias(type(user)))
    return user.pk


def _free_username(users, username: str, slug: str) -> str:
    base = f"{username}-{slug}"[:140]
    candidate, n = base, 1
    while users.filter(username=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def platform_owner(restorer):
    """The new tenant's owner: a platform account (row mode: the archive's account of that
    username, as placed above; schema mode: found or made in public by the same rule)."""
    owner = restorer.manifest.get("owner")
    if owner is None:
        return None
    User = get_user_model()
    if not schema_mode():
        for old_id, account in restorer.archive_users.items():
            if account["username"] == owner["username"]:
                return User._default_manager.using(restorer.alias(User)).get(
                    pk=restorer.maps["auth.user"][old_id]
                )
    with no_tenant():
        existing = User._default_manager.filter(username=owner["username"]).first()
        if existing is not None and same_account(existing, owner):
            restorer.reused.append(owner["username"])
            return existing
        username = owner["username"]
        if existing is not None:
            if not restorer.rename_users:
                raise ArchiveError(_conflict_message([username]))
            username = _free_username(User._default_manager, username, restorer.tenant.slug)
            restorer.renamed[owner["username"]] = username
        fields = {k: owner[k] for k in ("email", "password", "first_name", "last_name")}
        user = User(username=username, is_active=owner["is_active"], **fields)
        user.date_joined = parse_datetime(owner["date_joined"])
        user.provision_site = False  # the site is the one being imported
        user.save()
        restorer.created.append(username)
        return user


def users_read_back(restorer, table, inverse: dict) -> list[tuple]:
    """The accounts as they are in the target, in the archive's terms: created ones column by
    column; reused or renamed ones by who they are (username as archived, e-mail, hash)."""
    users = get_user_model()._default_manager.using(restorer.alias(get_user_model()))
    ids = restorer.maps[label(table)]
    if not schema_mode():
        users = users.filter(pk__in=list(ids.values()))
    back = inverse[label(table)]
    rows = []
    for row in read_rows(table, users.all()):
        account = table.as_dict(row)
        old_id = back.get(account["id"])
        account["id"] = old_id
        if old_id in restorer.kept_ids:
            archived = restorer.archive_users[old_id]
            same = (
                account["password"] == archived["password"]
                and (account["email"] or "").lower() == (archived["email"] or "").lower()
            )
            account = {**archived} if same else account
        rows.append(tuple(account[c] for c in table.columns))
    return sorted(rows, key=lambda r: (r[0] is None, r[0] or 0))
