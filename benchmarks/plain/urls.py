"""config.urls' shape: the site under the "home" namespace first, then the admin."""

from django.contrib import admin
from django.urls import include, path

from benchmarks.plain import views

home_patterns = (
    [path("", views.index, name="index"), path("pages/<int:pk>/", views.page, name="page")],
    "home",
)

urlpatterns = [
    path("", include(home_patterns)),
    path("admin/", admin.site.urls),
]
