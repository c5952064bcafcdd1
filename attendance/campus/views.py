"""The management area: courses, people, memberships and lecturers, for admins (lecturers: rosters).

Each list takes its search and filters from the query string, shows 50 rows a page and offers bulk
actions on the ticked rows; a bulk action is a POST that redirects back to the same filtered page
with a message saying what was done and what was skipped, and why. The messages are written in the
admin's language when the action is done (they are shown on the very next page).
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from attendance import permissions
from attendance.campus import selectors, services
from attendance.campus.forms import CourseForm, PersonForm
from attendance.campus.services import BulkResult
from attendance.models import Course, CourseMembership, User

PAGE_SIZE = 50


def require_admin(request: HttpRequest) -> User:
    user = cast(User, request.user)
    if not user.is_admin:
        raise PermissionDenied(_("Managing courses and people is for admins. Lecturers manage their courses' "
                                 "rosters."))
    return user


def require_staff(request: HttpRequest) -> User:
    user = cast(User, request.user)
    if not permissions.is_staff_role(user):
        raise PermissionDenied(_("The management area is for lecturers and admins."))
    return user


def paginate(request: HttpRequest, rows: QuerySet[Any]) -> Page[Any]:
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def back(request: HttpRequest, name: str, *args: object) -> HttpResponse:
    """Back to the list the action came from, with its filters."""
    from django.urls import reverse

    query = request.POST.get("query_string", "")
    return redirect(reverse(name, args=args) + (f"?{query}" if query and "\n" not in query else ""))


def report(request: HttpRequest, result: BulkResult, done: str) -> None:
    """`done`: what was done, already in words (ngettext of result.done)."""
    messages.success(request, done)
    if result.skipped:
        shown = ", ".join(result.skipped[:10])
        if len(result.skipped) > 10:
            more = len(result.skipped) - 10
            shown = ngettext("%(names)s and %(n)s more", "%(names)s and %(n)s more", more) % {"names": shown, "n": more}
        messages.warning(request, _("Left as they were: %(names)s.") % {"names": shown})


def selected_people(request: HttpRequest) -> list[User]:
    ids = [int(i) for i in request.POST.getlist("selected") if i.isdigit()]
    return list(User.objects.filter(pk__in=ids))


def course_from_post(request: HttpRequest) -> Course | None:
    pk = request.POST.get("course", "")
    return Course.objects.filter(pk=int(pk)).first() if pk.isdigit() else None


@login_required
def manage_home(request: HttpRequest) -> HttpResponse:
    user = require_staff(request)
    if user.is_admin:
        return render(request, "campus/home.html", {"counts": {
            "courses": Course.objects.count(), "people": User.objects.count(),
            "memberships": CourseMembership.objects.count(),
            "lecturers": User.objects.filter(role=User.Role.LECTURER).count(),
        }})
    courses = selectors.course_search().filter(lecturers=user)
    return render(request, "campus/home_lecturer.html", {"courses": courses})


@login_required
@require_http_methods(["GET", "POST"])
def course_list(request: HttpRequest) -> HttpResponse:
    require_admin(request)
    if request.method == "POST":
        ids = [int(i) for i in request.POST.getlist("selected") if i.isdigit()]
        lecturer = User.objects.filter(pk=request.POST.get("lecturer") or 0).first()
        if request.POST.get("action") == "assign" and lecturer is not None:
            done = sum(services.lecturers_assign(course=c, people=[lecturer]).done
                       for c in Course.objects.filter(pk__in=ids))
            messages.success(request, ngettext("%(name)s now teaches %(n)s more course.",
                                               "%(name)s now teaches %(n)s more courses.", done)
                             % {"name": lecturer.display_name, "n": done})
        else:
            messages.error(request, _("Tick some courses and choose a lecturer first."))
        return back(request, "campus-courses")
    query, term = request.GET.get("q", "").strip(), request.GET.get("term", "")
    context = {
        "page": paginate(request, selectors.course_search(query=query, term=term)),
        "query": query, "term": term, "terms": selectors.terms(),
        "lecturers": User.objects.filter(role=User.Role.LECTURER, is_active=True),
    }
    return render(request, "campus/courses.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def course_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    require_admin(request)
    course = get_object_or_404(Course, pk=pk) if pk is not None else None
    form = CourseForm(request.POST or None, instance=course)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, _("%(code)s (%(term)s) saved.") % {"code": saved.code, "term": saved.term})
        return redirect("campus-roster", saved.pk)
    return render(request, "campus/course_form.html", {"form": form, "course": course})


@login_required
@require_http_methods(["GET", "POST"])
def people_list(request: HttpRequest, role: str = "") -> HttpResponse:
    user = require_admin(request)
    name = "campus-lecturers" if role else "campus-people"
    if request.method == "POST":
        people, action, course = selected_people(request), request.POST.get("action"), course_from_post(request)
        if not people:
            messages.error(request, _("Tick at least one person first."))
        elif action in ("deactivate", "activate"):
            result = services.users_set_active(people=people, active=action == "activate", by=user)
            if action == "activate":
                done = ngettext("%(n)s account activated.", "%(n)s accounts activated.", result.done)
            else:
                done = ngettext("%(n)s account deactivated.", "%(n)s accounts deactivated.", result.done)
            report(request, result, done % {"n": result.done})
        elif action == "add_to_course" and course is not None:
            result = services.memberships_add(course=course, people=people)
            report(request, result, ngettext("%(n)s student added to %(course)s.",
                                             "%(n)s students added to %(course)s.",
                                             result.done) % {"n": result.done, "course": course.code})
        elif action == "assign_course" and course is not None:
            result = services.lecturers_assign(course=course, people=people)
            report(request, result, ngettext("%(n)s more lecturer on %(course)s.",
                                             "%(n)s more lecturers on %(course)s.",
                                             result.done) % {"n": result.done, "course": course.code})
        else:
            messages.error(request, _("Choose an action (and a course for the course actions)."))
        return back(request, name)
    query, active = request.GET.get("q", "").strip(), request.GET.get("active", "")
    role = role or request.GET.get("role", "")
    course_pk = request.GET.get("course", "")
    course = Course.objects.filter(pk=int(course_pk)).first() if course_pk.isdigit() else None
    people_qs = selectors.people_search(query=query, role=role, active=active, course=course)
    if name == "campus-lecturers":
        people_qs = people_qs.prefetch_related("taught_courses")
    context = {
        "page": paginate(request, people_qs), "query": query, "role": role, "active": active,
        "course": course, "courses": Course.objects.order_by("-term", "code"), "roles": User.Role.choices,
        "lecturers_page": name == "campus-lecturers", "list_url": name,
    }
    return render(request, "campus/people.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def person_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    require_admin(request)
    person = get_object_or_404(User, pk=pk) if pk is not None else None
    initial = {"role": request.GET.get("role")} if person is None and request.GET.get("role") else None
    form = PersonForm(request.POST or None, instance=person, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, _("%(name)s saved.") % {"name": saved.display_name})
        return redirect("campus-people")
    memberships = person.memberships.select_related("course") if person else []
    teaching = person.taught_courses.all() if person else []
    return render(request, "campus/person_form.html", {"form": form, "person": person,
                                                       "memberships": memberships, "teaching": teaching})


@login_required
@require_http_methods(["GET", "POST"])
def membership_list(request: HttpRequest) -> HttpResponse:
    require_admin(request)
    if request.method == "POST":
        ids = [int(i) for i in request.POST.getlist("selected") if i.isdigit()]
        if request.POST.get("action") == "remove" and ids:
            removed = services.memberships_remove(memberships=CourseMembership.objects.filter(pk__in=ids))
            messages.success(request, ngettext("%(n)s membership removed.", "%(n)s memberships removed.", removed)
                             % {"n": removed})
        else:
            messages.error(request, _("Tick some memberships first."))
        return back(request, "campus-memberships")
    query, term = request.GET.get("q", "").strip(), request.GET.get("term", "")
    course_pk = request.GET.get("course", "")
    course = Course.objects.filter(pk=int(course_pk)).first() if course_pk.isdigit() else None
    rows = selectors.membership_search(courses=Course.objects.all(), query=query, course=course, term=term)
    context = {"page": paginate(request, rows), "query": query, "term": term, "terms": selectors.terms(),
               "course": course, "courses": Course.objects.order_by("-term", "code")}
    return render(request, "campus/memberships.html", context)
