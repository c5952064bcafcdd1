"""The site's embedding space: recorded at the first enrolment, served whatever the settings say
later, switched only by `manage.py reembed` (atomically; never two spaces searched together)."""
