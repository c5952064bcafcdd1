"""A student's data export and the withdrawal of consent."""

from django.urls import path

from attendance.privacy import views

urlpatterns = [
    path("students/<int:pk>/data.json", views.student_data_export, name="student-data-export"),
    path("students/<int:pk>/withdraw-consent/", views.student_withdraw_consent, name="student-withdraw-consent"),
    path("me/data.json", views.my_data_export, name="my-data-export"),
    path("me/withdraw-consent/", views.withdraw_consent, name="withdraw-consent"),
    path("privacy/", views.privacy_notice, name="privacy-notice"),
    path("privacy/biometric/", views.biometric_overview, name="biometric-overview"),
]
