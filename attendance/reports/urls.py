"""Report pages, their CSV files and the read-only API."""

from django.urls import path

from attendance.reports import api, views

CSV = {"extension": "csv"}
XLSX = {"extension": "xlsx"}

urlpatterns = [
    path("courses/", views.course_list, name="course-list"),
    path("courses/<int:pk>/report/", views.course_report, name="course-report"),
    path("courses/<int:pk>/report.csv", views.course_report_export, CSV, name="course-report-csv"),
    path("courses/<int:pk>/report.xlsx", views.course_report_export, XLSX, name="course-report-xlsx"),
    path("sessions/<int:pk>/report/", views.session_report, name="session-report"),
    path("sessions/<int:pk>/report.csv", views.session_report_export, CSV, name="session-report-csv"),
    path("sessions/<int:pk>/report.xlsx", views.session_report_export, XLSX, name="session-report-xlsx"),
    path("students/<int:pk>/report/", views.student_report, name="student-report"),
    path("students/<int:pk>/report.csv", views.student_report_export, CSV, name="student-report-csv"),
    path("students/<int:pk>/report.xlsx", views.student_report_export, XLSX, name="student-report-xlsx"),
    path("reports/", views.report_index, name="report-index"),
    path("me/attendance/", views.my_attendance, name="my-attendance"),
    # API: read-only, token or session authentication.
    path("api/courses/", api.CourseListApi.as_view(), name="api-course-list"),
    path("api/courses/<int:pk>/", api.CourseDetailApi.as_view(), name="api-course-detail"),
    path("api/sessions/", api.SessionListApi.as_view(), name="api-session-list"),
    path("api/sessions/<int:pk>/", api.SessionDetailApi.as_view(), name="api-session-detail"),
    path("api/records/", api.RecordListApi.as_view(), name="api-record-list"),
    path("api/reports/courses/<int:pk>/", api.CourseReportApi.as_view(), name="api-course-report"),
    path("api/reports/sessions/<int:pk>/", api.SessionReportApi.as_view(), name="api-session-report"),
    path("api/reports/students/<int:pk>/", api.StudentReportApi.as_view(), name="api-student-report"),
]
