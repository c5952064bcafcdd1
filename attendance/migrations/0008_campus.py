"""Memberships only of students, lecturers only lecturers, enforced by PostgreSQL; the audit row of a
manual correction keeps the record as it was.

A CHECK constraint cannot look at another table, so the role rules are triggers: inserting or
changing a membership or a course's lecturer checks the user's role, and changing a user's role
checks the courses they are on. Either raises check_violation (SQLSTATE 23514), which Django
raises as IntegrityError. SQLite (development only) gets no trigger; the services check too.
"""

from django.db import migrations, models

ROLE_TRIGGERS = r"""
CREATE OR REPLACE FUNCTION rollcall_membership_student_only() RETURNS trigger AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM attendance_user u
                   WHERE u.id = NEW.student_id AND u.role = 'student' AND NOT u.is_superuser) THEN
        RAISE EXCEPTION 'only a student can be a member of a course (user %)', NEW.student_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'membership_student_role';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER membership_student_role BEFORE INSERT OR UPDATE OF student_id ON attendance_coursemembership
    FOR EACH ROW EXECUTE FUNCTION rollcall_membership_student_only();

CREATE OR REPLACE FUNCTION rollcall_course_lecturer_only() RETURNS trigger AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM attendance_user u WHERE u.id = NEW.user_id AND u.role = 'lecturer') THEN
        RAISE EXCEPTION 'only a lecturer can teach a course (user %)', NEW.user_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'course_lecturer_role';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER course_lecturer_role BEFORE INSERT OR UPDATE OF user_id ON attendance_course_lecturers
    FOR EACH ROW EXECUTE FUNCTION rollcall_course_lecturer_only();

CREATE OR REPLACE FUNCTION rollcall_user_role_keeps_courses() RETURNS trigger AS $$
BEGIN
    IF NEW.role IS NOT DISTINCT FROM OLD.role AND NEW.is_superuser IS NOT DISTINCT FROM OLD.is_superuser THEN
        RETURN NEW;  -- Django's save() writes every column: only a real change is checked
    END IF;
    IF (NEW.role <> 'student' OR NEW.is_superuser)
       AND EXISTS (SELECT 1 FROM attendance_coursemembership m WHERE m.student_id = NEW.id) THEN
        RAISE EXCEPTION 'user % is on courses as a student: take them off first', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'membership_student_role';
    END IF;
    IF NEW.role <> 'lecturer'
       AND EXISTS (SELECT 1 FROM attendance_course_lecturers l WHERE l.user_id = NEW.id) THEN
        RAISE EXCEPTION 'user % teaches courses: take them off first', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'course_lecturer_role';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER user_role_keeps_courses BEFORE UPDATE OF role, is_superuser ON attendance_user
    FOR EACH ROW EXECUTE FUNCTION rollcall_user_role_keeps_courses();
"""

# Rows the rule forbids (a lecturer "taking" a course, as the issue found) are removed first: they
# were never right, and a trigger does not look at rows already there.
REMOVE_WRONG_ROWS = """
DELETE FROM attendance_coursemembership m USING attendance_user u
    WHERE u.id = m.student_id AND (u.role <> 'student' OR u.is_superuser);
DELETE FROM attendance_course_lecturers l USING attendance_user u
    WHERE u.id = l.user_id AND u.role <> 'lecturer';
"""

DROP_ROLE_TRIGGERS = """
DROP TRIGGER IF EXISTS user_role_keeps_courses ON attendance_user;
DROP TRIGGER IF EXISTS course_lecturer_role ON attendance_course_lecturers;
DROP TRIGGER IF EXISTS membership_student_role ON attendance_coursemembership;
DROP FUNCTION IF EXISTS rollcall_user_role_keeps_courses();
DROP FUNCTION IF EXISTS rollcall_course_lecturer_only();
DROP FUNCTION IF EXISTS rollcall_membership_student_only();
"""


def _role_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REMOVE_WRONG_ROWS, params=None)
        schema_editor.execute(ROLE_TRIGGERS, params=None)


def _drop_role_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_ROLE_TRIGGERS, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("attendance", "0011_grades_warnings"),
    ]

    operations = [
        migrations.AlterField(
            model_name="coursemembership",
            name="student",
            field=models.ForeignKey(
                limit_choices_to={"is_superuser": False, "role": "student"},
                on_delete=models.deletion.CASCADE,
                related_name="memberships",
                to="attendance.user",
            ),
        ),
        migrations.AddField(
            model_name="attendancechange",
            name="old_method",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AddField(
            model_name="attendancechange",
            name="old_marked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="attendancechange",
            name="old_confidence",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="attendancechange",
            name="new_method",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.RunPython(_role_triggers, _drop_role_triggers),
    ]
