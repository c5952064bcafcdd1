"""Croatian dates: day first with a full stop after the day and the year, months in the genitive (E).

"3. prosinca 2026.", "čet, 3. prosinca 2026., 13:05", "3. 12. 2026. 13:05". Numbers (decimal comma,
thousands dot) fall through to Django's own hr module.
"""

DATE_FORMAT = "j. E Y."
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "D, j. E Y., H:i"
SHORT_DATE_FORMAT = "j. n. Y."
SHORT_DATETIME_FORMAT = "j. n. Y. H:i"
MONTH_DAY_FORMAT = "j. E"
