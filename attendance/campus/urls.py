"""The management area's pages and the provisioning API."""

from django.urls import path

from attendance.campus import api, import_views, roster_views, views

urlpatterns = [
    path("manage/", views.manage_home, name="campus-home"),
    path("manage/courses/", views.course_list, name="campus-courses"),
    path("manage/courses/new/", views.course_edit, name="campus-course-create"),
    path("manage/courses/<int:pk>/edit/", views.course_edit, name="campus-course-edit"),
    path("manage/courses/<int:pk>/roster/", roster_views.course_roster, name="campus-roster"),
    path("manage/people/", views.people_list, name="campus-people"),
    path("manage/people/new/", views.person_edit, name="campus-person-create"),
    path("manage/people/<int:pk>/edit/", views.person_edit, name="campus-person-edit"),
    path("manage/lecturers/", views.people_list, {"role": "lecturer"}, name="campus-lecturers"),
    path("manage/memberships/", views.membership_list, name="campus-memberships"),
    path("manage/import/", import_views.roster_import, name="campus-import"),
    path("manage/import/template.<str:fmt>", import_views.roster_template, name="campus-import-template"),
    path("manage/import/<str:token>/", import_views.roster_import_preview, name="campus-import-preview"),
    path("manage/import/<str:token>/progress/", import_views.roster_import_progress, name="campus-import-progress"),
    path("api/provisioning/courses/", api.CourseProvisionApi.as_view(), name="api-provision-courses"),
    path("api/provisioning/people/", api.PersonProvisionApi.as_view(), name="api-provision-people"),
    path("api/provisioning/memberships/", api.MembershipProvisionApi.as_view(), name="api-provision-memberships"),
]
