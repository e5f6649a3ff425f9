from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from accounts import password_reset
from tenants.media import serve_media

urlpatterns = [
    # The site's own pages first: they are most of the traffic, and Django tries patterns in
    # order (home's "" and "pages/<pk>/" shadow nothing below).
    path("", include("home.urls")),
    # The admin's log-in page links to this name ("Forgotten your password?").
    path(
        "admin/password_reset/",
        RedirectView.as_view(pattern_name="password_reset"),
        name="admin_password_reset",
    ),
    path("admin/", admin.site.urls),
    # Log-in for platform accounts on the platform's host (members on a tenant's own host);
    # accounts.backends decides who may sign in where.
    path("login/", auth_views.LoginView.as_view(next_page="home:index"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="home:index"), name="logout"),
    # Password reset on every site, in its own look (accounts.password_reset).
    path("password-reset/", password_reset.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        password_reset.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        password_reset.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        password_reset.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    # Uploads, on their own tenant's host only (tenants.media).
    path("media/<path:name>", serve_media, name="media"),
    path("", include("accounts.urls")),
]

# Django's 500 page, except for a database outage raised outside a view
# (tenants.runtime.unavailable).
handler500 = "tenants.runtime.unavailable.server_error"
