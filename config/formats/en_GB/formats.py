"""British English dates as the app has always shown them (24-hour clock; Django's en_GB uses "4 p.m.").

Only the names overridden here differ from Django's own en_GB module; the rest (numbers, input formats)
fall through to it.
"""

DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "D j M Y, H:i"
SHORT_DATETIME_FORMAT = "j M Y H:i"
MONTH_DAY_FORMAT = "j M"
