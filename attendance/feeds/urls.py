"""Calendar feed URLs."""

from django.urls import path

from attendance.feeds import views

urlpatterns = [
    path("calendar/", views.feed_list, name="feed-list"),
    path("calendar/new/", views.feed_create, name="feed-create"),
    path("calendar/reset/", views.feed_revoke_view, name="feed-revoke"),
    path("calendar/<str:token>.ics", views.feed_ics, name="feed-ics"),
]
