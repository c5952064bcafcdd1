"""Which identity-provider subject an account belongs to (single sign-on, attendance/sso)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SsoIdentity(models.Model):
    """An OpenID Connect subject (`sub`, unique per issuer and never reused) bound to one account: the
    next sign-in finds the account by it, whatever the email, and no other subject of the same
    issuer can take the account over through a shared email or student number."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_unique_subject")]
        verbose_name_plural = _("SSO identities")

    def __str__(self) -> str:
        return f"{self.issuer} {self.subject} -> {self.user_id}"
