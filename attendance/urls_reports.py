"""Pages and API endpoints for roles, reports and privacy (included from attendance/urls.py)."""

from django.urls import path

from attendance import apis_reports, views_reports

urlpatterns = [
    path("courses/", views_reports.course_list, name="course-list"),
    path("courses/<int:pk>/report/", views_reports.course_report, name="course-report"),
    path("courses/<int:pk>/report.csv", views_reports.course_report_csv, name="course-report-csv"),
    path("sessions/<int:pk>/report/", views_reports.session_report, name="session-report"),
    path("sessions/<int:pk>/report.csv", views_reports.session_report_csv, name="session-report-csv"),
    path("students/<int:pk>/report/", views_reports.student_report, name="student-report"),
    path("students/<int:pk>/report.csv", views_reports.student_report_csv, name="student-report-csv"),
    path("students/<int:pk>/data.json", views_reports.student_data_export, name="student-data-export"),
    path(
        "students/<int:pk>/withdraw-consent/", views_reports.student_withdraw_consent,
        name="student-withdraw-consent",
    ),
    path("reports/", views_reports.report_index, name="report-index"),
    path("me/attendance/", views_reports.my_attendance, name="my-attendance"),
    path("me/data.json", views_reports.my_data_export, name="my-data-export"),
    path("me/withdraw-consent/", views_reports.withdraw_consent, name="withdraw-consent"),
    # API: read-only, token or session authentication.
    path("api/courses/", apis_reports.CourseListApi.as_view(), name="api-course-list"),
    path("api/courses/<int:pk>/", apis_reports.CourseDetailApi.as_view(), name="api-course-detail"),
    path("api/sessions/", apis_reports.SessionListApi.as_view(), name="api-session-list"),
    path("api/sessions/<int:pk>/", apis_reports.SessionDetailApi.as_view(), name="api-session-detail"),
    path("api/records/", apis_reports.RecordListApi.as_view(), name="api-record-list"),
    path("api/reports/courses/<int:pk>/", apis_reports.CourseReportApi.as_view(), name="api-course-report"),
    path("api/reports/sessions/<int:pk>/", apis_reports.SessionReportApi.as_view(), name="api-session-report"),
    path("api/reports/students/<int:pk>/", apis_reports.StudentReportApi.as_view(), name="api-student-report"),
    path("api/auth/token/", apis_reports.TokenApi.as_view(), name="api-token"),
    path("api/users/<int:pk>/token/", apis_reports.UserTokenRevokeApi.as_view(), name="api-user-token"),
]
