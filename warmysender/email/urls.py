from django.urls import path

from warmysender.email.views import unsubscribe_page

urlpatterns = [path("u/<str:token>/", unsubscribe_page, name="unsubscribe")]
