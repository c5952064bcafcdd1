"""The term's timetable: recurring series of sessions, CSV imports, and today's classes."""
