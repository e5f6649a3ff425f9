from django.urls import path

from home import views

app_name = "home"
urlpatterns = [
    path("", views.index, name="index"),
    path("pages/<int:pk>/", views.page, name="page"),
    path("favicon.ico", views.favicon, name="favicon"),
]
