"""Excuse pages."""

from django.urls import path

from attendance.excuses import api, views

urlpatterns = [
    path("records/<int:pk>/excuse/", views.excuse_request_view, name="excuse-request"),
    path("excuses/", views.excuse_inbox, name="excuse-inbox"),
    path("excuses/<int:pk>/decide/", views.excuse_decide_view, name="excuse-decide"),
    path("excuses/<int:pk>/document/", views.excuse_document, name="excuse-document"),
    # API
    path("api/excuses/", api.ExcuseListApi.as_view(), name="api-excuse-list"),
    path("api/records/<int:pk>/excuse/", api.RecordExcuseApi.as_view(), name="api-record-excuse"),
    path("api/excuses/<int:pk>/decision/", api.ExcuseDecisionApi.as_view(), name="api-excuse-decide"),
]
