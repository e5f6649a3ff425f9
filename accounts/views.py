"""Sign-up on the platform's own site: an HTML page and a JSON endpoint, one service."""

import json

from django.conf import settings
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import is_platform_site
from accounts.forms import SignUpForm
from accounts.services import SignUpRefused, sign_up


@require_http_methods(["GET", "POST"])
def register(request):
    """``/register/``: the sign-up form; on success, off to the new site."""
    if not is_platform_site():
        raise Http404("Sign-up is on the platform's own site.")
    form = SignUpForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            result = sign_up(**form.cleaned_data)
        except SignUpRefused as refused:
            for field, messages in refused.errors.items():
                for message in messages:
                    form.add_error(None if field == "__all__" else field, message)
        else:
            return redirect(result.provisioned.tenant.url("/", request))
    status = 400 if form.is_bound else 200
    context = {"form": form, "base_domain": settings.TENANT_BASE_DOMAIN}
    return render(request, "accounts/register.html", context, status=status)


@csrf_exempt  # JSON only: a cross-site form cannot send application/json without CORS consent.
@require_POST
def register_api(request):
    """``POST /api/register/`` with JSON ``{username, email, password, site_name?}``.

    201 with the new site's URLs; 400 with ``errors`` by field; 404 off the platform site;
    415 for a body that is not JSON.
    """
    if not is_platform_site():
        return _error(404, "Sign-up is on the platform's own site.")
    if request.content_type != "application/json":
        return _error(415, "Send the sign-up as JSON (Content-Type: application/json).")
    try:
        data = json.loads(request.body)
    except (UnicodeDecodeError, ValueError):
        return _error(400, "The request body is not valid JSON.")
    if not isinstance(data, dict):
        return _error(400, "Send a JSON object with username, email and password.")
    not_text = sorted(
        field
        for field in SignUpForm.base_fields
        if field in data and data[field] is not None and not isinstance(data[field], str)
    )
    if not_text:
        errors = {
            field: [{"message": "Must be a string.", "code": "invalid"}] for field in not_text
        }
        return _error(400, "Some fields are not strings.", errors)
    form = SignUpForm({k: v for k, v in data.items() if k in SignUpForm.base_fields})
    if not form.is_valid():
        return _error(400, "The sign-up was refused.", form.errors.get_json_data())
    try:
        result = sign_up(**form.cleaned_data)
    except SignUpRefused as refused:
        errors = {
            f: [{"message": m, "code": "unavailable"} for m in ms]
            for f, ms in refused.errors.items()
        }
        return _error(400, "The sign-up was refused.", errors)
    tenant = result.provisioned.tenant
    return JsonResponse(
        {
            "tenant": tenant.slug,
            "name": tenant.name,
            "domain": result.provisioned.domain.domain,
            "url": tenant.url("/", request),
            "admin_url": tenant.url("/admin/", request),
            "message": result.provisioned.message,
        },
        status=201,
    )


def _error(status, message, errors=None):
    body = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return JsonResponse(body, status=status)
