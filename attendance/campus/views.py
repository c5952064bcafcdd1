"""The management area: courses, people, memberships and lecturers, for admins (lecturers: rosters).

Each list takes its search and filters from the query string, shows 50 rows a page and offers bulk
actions on the ticked rows; a bulk action is a POST that redirects back to the same filtered page
with a message saying what was done and what was skipped, and why.
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
        raise PermissionDenied("Managing courses and people is for admins. Lecturers manage their courses' rosters.")
    return user


def require_staff(request: HttpRequest) -> User:
    user = cast(User, request.user)
    if not permissions.is_staff_role(user):
        raise PermissionDenied("The management area is for lecturers and admins.")
    return user


def paginate(request: HttpRequest, rows: QuerySet[Any]) -> Page[Any]:
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def back(request: HttpRequest, name: str, *args: object) -> HttpResponse:
    """Back to the list the action came from, with its filters."""
    from django.urls import reverse

    query = request.POST.get("query_string", "")
    return redirect(reverse(name, args=args) + (f"?{query}" if query and "\n" not in query else ""))


def report(request: HttpRequest, result: BulkResult, done: str) -> None:
    messages.success(request, done.format(n=result.done, s="" if result.done == 1 else "s"))
    if result.skipped:
        shown = ", ".join(result.skipped[:10]) + (f" and {len(result.skipped) - 10} more" if len(result.skipped) > 10
                                                   else "")
        messages.warning(request, f"Left as they were: {shown}.")


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
            messages.success(request, f"{lecturer.display_name} now teaches {done} more course{'s' * (done != 1)}.")
        else:
            messages.error(request, "Tick some courses and choose a lecturer first.")
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
        messages.success(request, f"{saved.code} ({saved.term}) saved.")
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
            messages.error(request, "Tick at least one person first.")
        elif action in ("deactivate", "activate"):
            result = services.users_set_active(people=people, active=action == "activate", by=user)
            report(request, result, f"{{n}} account{{s}} {action}d.")
        elif action == "add_to_course" and course is not None:
            report(request, services.memberships_add(course=course, people=people),
                   f"{{n}} student{{s}} added to {course.code}.")
        elif action == "assign_course" and course is not None:
            report(request, services.lecturers_assign(course=course, people=people),
                   f"{{n}} more lecturer{{s}} on {course.code}.")
        else:
            messages.error(request, "Choose an action (and a course for the course actions).")
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
        messages.success(request, f"{saved.display_name} saved.")
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
            messages.success(request, f"{removed} membership{'s' * (removed != 1)} removed.")
        else:
            messages.error(request, "Tick some memberships first.")
        return back(request, "campus-memberships")
    query, term = request.GET.get("q", "").strip(), request.GET.get("term", "")
    course_pk = request.GET.get("course", "")
    course = Course.objects.filter(pk=int(course_pk)).first() if course_pk.isdigit() else None
    rows = selectors.membership_search(courses=Course.objects.all(), query=query, course=course, term=term)
    context = {"page": paginate(request, rows), "query": query, "term": term, "terms": selectors.terms(),
               "course": course, "courses": Course.objects.order_by("-term", "code")}
    return render(request, "campus/memberships.html", context)
