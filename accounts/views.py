"""Sign-up on the platform's own site: an HTML page and a JSON endpoint, one service."""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
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
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _error(400, f"The request body is too large (at most {limit} bytes).")
    except RecursionError:
        return _error(400, "The request body is nested too deeply to be a sign-up.")
    except (UnicodeDecodeError, ValueError):
        return _error(400, "The request body is not valid JSON.")
    if not isinstance(data, dict):
        return _error(400, "Send a JSON object with username, email and password.")
    fields = {k: v for k, v in data.items() if k in SignUpForm.base_fields}
    errors = {
        field: [{"message": problem, "code": "invalid"}]
        for field, value in sorted(fields.items())
        if (problem := _not_text(value))
    }
    if errors:
        return _error(400, "Some fields are not text.", errors)
    form = SignUpForm(fields)
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


def _not_text(value) -> str | None:
    """Why a JSON value cannot be a form field's text, or None. JSON's \\u escapes can spell
    lone surrogates, which are not text: no database or password hasher can encode them."""
    if value is None:
        return None
    if not isinstance(value, str):
        return "Must be a string."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Must be valid Unicode text (it contains a lone surrogate)."
    return None


def _error(status, message, errors=None):
    body = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return JsonResponse(body, status=status)
