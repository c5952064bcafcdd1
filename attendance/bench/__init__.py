"""manage.py bench: the app's speed against the model's own limit (see the command's docstring)."""
