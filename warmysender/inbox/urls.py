from django.urls import path

from warmysender.inbox import views

urlpatterns = [
    path("prospects/<uuid:pk>/thread/", views.thread, name="prospect-thread"),
]
