"""How groups and claim values become a role (attendance/sso/services.RoleMap), without a directory."""

from __future__ import annotations

import pytest

from attendance.sso.services import RoleMap, SignInRefused

MAP = RoleMap.of(admin=["CN=Admins,DC=uni"], lecturer=["cn=lecturers,dc=uni"], student=[])


def test_admin_wins_over_lecturer_and_groups_compare_in_any_case():
    assert MAP.role_for(["cn=LECTURERS,dc=uni", "cn=admins,dc=uni"]) == "admin"
    assert MAP.role_for(["CN=Lecturers,DC=uni"]) == "lecturer"


def test_with_no_student_group_everyone_else_is_a_student():
    assert MAP.role_for([]) == "student"
    assert MAP.role_for(["cn=library,dc=uni"]) == "student"


def test_with_a_student_group_someone_in_none_is_refused():
    strict = RoleMap.of(admin=[], lecturer=["lecturers"], student=["students"])
    assert strict.role_for(["students"]) == "student"
    with pytest.raises(SignInRefused, match="none of the groups"):
        strict.role_for(["alumni"])


def test_with_no_mapping_the_role_is_left_alone():
    assert RoleMap.of(admin=[""], lecturer=[], student=[" "]).role_for(["anything"]) is None
