"""Cache keys that carry the current tenant, so tenant data never meets in a shared cache."""

from tenants.runtime.context import current_tenant


def make_key(key, key_prefix, version):
    """KEY_FUNCTION of the "default" cache: the deployment's prefix (CACHE_KEY_PREFIX), then
    ``t<tenant id>`` or ``platform``, lead every key."""
    tenant = current_tenant()
    scope = f"t{tenant.id}" if tenant is not None else "platform"
    return f"{key_prefix}:{scope}:{version}:{key}"
