from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    # The site's own pages first: they are most of the traffic, and Django tries patterns in
    # order (home's "" and "pages/<pk>/" shadow nothing below).
    path("", include("home.urls")),
    path("admin/", admin.site.urls),
    # Log-in for platform accounts on the platform's host (members on a tenant's own host);
    # accounts.backends decides who may sign in where.
    path("login/", auth_views.LoginView.as_view(next_page="home:index"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="home:index"), name="logout"),
    path("", include("accounts.urls")),
]
