"""Private iCalendar feeds: a course's sessions, a lecturer's, a student's, behind revocable URLs."""
