from django.urls import path

from warmysender.web import views

urlpatterns = [
    path("", views.home, name="home"),
]
