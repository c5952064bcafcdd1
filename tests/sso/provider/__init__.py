"""A minimal OpenID Connect provider (django-oauth-toolkit) that tests/sso runs as its own process."""
