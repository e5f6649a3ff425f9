import functools

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.urls import path

from accounts.access import is_platform_site
from accounts.forms import PlatformUserCreationForm
from accounts.models import Membership
from tenants.runtime.context import scopes_disabled


class PlatformOnlyAdmin:
    """Shown on the platform site only; tenant members never see platform tables.

    Off the platform site every page of such an admin is a 403 before it looks anything up:
    Django's change, history and delete views fetch the object first and ask for permission
    after, and in schema mode the platform tables are not on a tenant's search_path (500).

    Deleting here is platform work: a user's memberships and, in row mode, a tenant's rows are
    found in every tenant (the tenant-owned base manager is scoped, and fails closed).
    """

    def get_urls(self):
        return [_platform_site_only(url) for url in super().get_urls()]

    def get_deleted_objects(self, objs, request):
        with scopes_disabled():
            return super().get_deleted_objects(objs, request)

    def delete_model(self, request, obj):
        with scopes_disabled():
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with scopes_disabled():
            super().delete_queryset(request, queryset)

    def has_module_permission(self, request):
        return is_platform_site() and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return is_platform_site() and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return is_platform_site() and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return is_platform_site() and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return is_platform_site() and super().has_delete_permission(request, obj)


def _platform_site_only(url):
    view = url.callback

    @functools.wraps(view)
    def platform_site_only(request, *args, **kwargs):
        if not is_platform_site():
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return path(str(url.pattern), platform_site_only, url.default_args, name=url.name)


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class PlatformUserAdmin(PlatformOnlyAdmin, UserAdmin):
    # Adding a user provisions their site (accounts.signals): refuse names that cannot name one.
    add_form = PlatformUserCreationForm


@admin.register(Group)
class PlatformGroupAdmin(PlatformOnlyAdmin, admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """A tenant's members: roles can be changed or revoked here. Accounts are made by sign-up
    and operator commands, so no one picks from (and sees) other tenants' users."""

    list_display = ["user", "role", "created_at"]
    list_filter = ["role"]
    fields = ["user", "role"]
    readonly_fields = ["user"]

    def has_add_permission(self, request):
        return False
