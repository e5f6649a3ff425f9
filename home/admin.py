from django import forms
from django.contrib import admin
from django.db import models
from django.shortcuts import redirect
from django.urls import reverse

from accounts.access import current_membership, is_platform_site
from accounts.models import Membership
from home.images import SiteImageField
from home.models import PageContent, SiteSettings


class LabelledRowForm(forms.ModelForm):
    """A row of the change list's editable columns: Django renders those inputs without a
    label, so each gets an accessible name that says what and which row ("Ordering of
    “About us”")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs["aria-label"] = f"{field.label} of “{self.instance}”"


@admin.register(PageContent)
class PageContentAdmin(admin.ModelAdmin):
    list_display = ["title", "ordering", "published", "updated_at"]
    list_editable = ["ordering", "published"]
    list_filter = ["published"]
    search_fields = ["title", "body"]
    fields = ["title", "body", "image", "image_alt", "ordering", "published"]
    formfield_overrides = {models.ImageField: {"form_class": SiteImageField}}

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=LabelledRowForm, **kwargs)


class SiteSettingsForm(forms.ModelForm):
    logo_url = forms.URLField(
        label="Logo URL",
        required=False,
        assume_scheme="https",
        help_text=SiteSettings._meta.get_field("logo_url").help_text,
    )

    class Meta:
        model = SiteSettings
        fields = ["site_name", "tagline", "brand_colour", "logo", "logo_url"]
        field_classes = {"logo": SiteImageField}
        widgets = {"brand_colour": forms.TextInput(attrs={"type": "color"})}


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    """The site's branding: one object per tenant, changed by its owner (not by editors)."""

    form = SiteSettingsForm

    def changelist_view(self, request, extra_context=None):
        # There is at most one object: go straight to it (or to the form that creates it).
        existing = SiteSettings.objects.first()
        if existing is not None:
            return redirect(reverse("admin:home_sitesettings_change", args=[existing.pk]))
        if self.has_add_permission(request):
            return redirect(reverse("admin:home_sitesettings_add"))
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request):
        return (
            super().has_add_permission(request)
            and _may_brand(request)
            and not SiteSettings.objects.exists()
        )

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and _may_brand(request)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and _may_brand(request)


def _may_brand(request) -> bool:
    """Platform staff on the platform site; on a tenant's site, its owners."""
    if is_platform_site():
        return True
    membership = current_membership(request.user)
    return membership is not None and membership.role == Membership.Role.OWNER
