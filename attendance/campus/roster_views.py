"""One course's roster: who is on it, adding students by number, taking them off.

For the course's lecturers and admins; a lecturer of another course gets a 404 (the course is not
revealed), a student a 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from attendance import permissions
from attendance.campus import selectors, services
from attendance.campus.forms import StudentNumbersForm
from attendance.campus.views import back, paginate, report, require_staff
from attendance.models import Course, User


@login_required
@require_http_methods(["GET", "POST"])
def course_roster(request: HttpRequest, pk: int) -> HttpResponse:
    user = require_staff(request)
    course = get_object_or_404(permissions.courses_managed_by(user), pk=pk)
    add_form = StudentNumbersForm(request.POST if request.POST.get("action") == "add" else None)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "add" and add_form.is_valid():
            numbers = add_form.numbers_list()
            found = list(User.objects.filter(student_number__in=numbers))
            result = services.memberships_add(course=course, people=found)
            unknown = sorted(set(numbers) - {p.student_number for p in found})
            if unknown:
                result.skipped.extend(_("%(number)s (no such student number)") % {"number": n} for n in unknown)
            report(request, result, ngettext("%(n)s student added to %(course)s.",
                                             "%(n)s students added to %(course)s.",
                                             result.done) % {"n": result.done, "course": course.code})
            return back(request, "campus-roster", course.pk)
        if action == "remove":
            ids = [int(i) for i in request.POST.getlist("selected") if i.isdigit()]
            removed = services.memberships_remove(memberships=course.memberships.filter(pk__in=ids))
            if removed:
                messages.success(request, ngettext("%(n)s student taken off %(course)s.",
                                                   "%(n)s students taken off %(course)s.", removed)
                                 % {"n": removed, "course": course.code})
            else:
                messages.error(request, _("Tick the students to take off the course first."))
            return back(request, "campus-roster", course.pk)
        if action != "add":
            messages.error(request, _("Unknown action."))
            return back(request, "campus-roster", course.pk)
    query = request.GET.get("q", "").strip()
    rows = selectors.membership_search(courses=Course.objects.filter(pk=course.pk), query=query)
    lecturers = list(course.lecturers.all())
    context = {"course": course, "page": paginate(request, rows), "query": query, "add_form": add_form,
               "lecturers": lecturers, "lecturer_names": ", ".join(lecturer.display_name for lecturer in lecturers)}
    return render(request, "campus/roster.html", context)
