"""The timetable pages of a course."""

from django.urls import path

from attendance.timetable import api, views

urlpatterns = [
    path("courses/<int:pk>/timetable/", views.course_timetable, name="course-timetable"),
    path("courses/<int:pk>/timetable/<int:series_pk>/", views.series_edit, name="series-edit"),
    path("courses/<int:pk>/timetable/<int:series_pk>/delete/", views.series_delete_view, name="series-delete"),
    path("courses/<int:pk>/timetable/import/", views.sessions_import, name="sessions-import"),
    # API
    path("api/courses/<int:pk>/timetable/", api.CourseTimetableApi.as_view(), name="api-course-timetable"),
]
