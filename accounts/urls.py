from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("register/", views.register, name="register"),
    path("api/register/", views.register_api, name="api-register"),
]
