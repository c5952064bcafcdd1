"""Points and warnings settings, and the gradebook downloads."""

from django.urls import path

from attendance.grades import views

urlpatterns = [
    path("courses/<int:pk>/grading/", views.course_grading, name="course-grading"),
    path("courses/<int:pk>/gradebook.csv", views.course_gradebook, {"extension": "csv"}, name="course-gradebook-csv"),
    path(
        "courses/<int:pk>/gradebook.xlsx", views.course_gradebook, {"extension": "xlsx"}, name="course-gradebook-xlsx"
    ),
]
