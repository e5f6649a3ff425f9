from django.contrib.auth.backends import ModelBackend

from accounts.access import is_platform_site, may_sign_in, role_permissions


class TenantMembershipBackend(ModelBackend):
    """Django's model backend, limited to the current tenant's members.

    * ``authenticate``: a member of tenant A cannot sign in on tenant B's host;
    * ``get_user``: a session is only a signed-in session where its user may sign in;
    * permissions: those of the user's role on the current tenant's site; a user's own
      (platform-wide) permissions count on the platform site only.
    """

    def user_can_authenticate(self, user):
        return super().user_can_authenticate(user) and may_sign_in(user)

    def get_user(self, user_id):
        user = super().get_user(user_id)
        return user if user is not None and may_sign_in(user) else None

    def has_perm(self, user_obj, perm, obj=None):
        if not user_obj.is_active:
            return False
        if role_permissions(user_obj, perm):
            return True
        return is_platform_site() and super().has_perm(user_obj, perm, obj)

    def has_module_perms(self, user_obj, app_label):
        if not user_obj.is_active:
            return False
        if role_permissions(user_obj, f"{app_label}."):
            return True
        return is_platform_site() and super().has_module_perms(user_obj, app_label)
