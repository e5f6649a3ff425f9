from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # Log-in for platform accounts on the platform's host (members on a tenant's own host);
    # accounts.backends decides who may sign in where.
    path("login/", auth_views.LoginView.as_view(next_page="home:index"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="home:index"), name="logout"),
    path("", include("accounts.urls")),
    path("", include("home.urls")),
]
