from django.contrib import admin

from home.models import PageContent


@admin.register(PageContent)
class PageContentAdmin(admin.ModelAdmin):
    list_display = ["title", "ordering", "published", "updated_at"]
    list_editable = ["ordering", "published"]
    list_filter = ["published"]
    search_fields = ["title", "body"]
