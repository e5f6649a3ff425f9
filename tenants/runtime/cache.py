"""Cache keys that carry the current tenant, so tenant data never meets in a shared cache."""

from tenants.runtime.context import current_tenant


def make_key(key, key_prefix, version):
    """KEY_FUNCTION of the "default" cache: ``t<tenant id>:`` or ``platform:`` leads every key."""
    tenant = current_tenant()
    scope = f"t{tenant.id}" if tenant is not None else "platform"
    return f"{scope}:{key_prefix}:{version}:{key}"
