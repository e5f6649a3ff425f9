from django.contrib import admin
from django.urls import include, path

from benchmarks.djt import views

home_patterns = (
    [path("", views.index, name="index"), path("pages/<int:pk>/", views.page, name="page")],
    "home",
)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include(home_patterns)),
]
