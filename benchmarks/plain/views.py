from types import SimpleNamespace

from django.shortcuts import get_object_or_404, render

from benchmarks.plain.models import Page

# The shared templates name the site as ``request.tenant.name`` and ask whether it is the
# platform's own (``is_default``); a plain site has one name and is not.
SITE = SimpleNamespace(name="Plain Site 0", is_default=False)


def index(request):
    request.tenant = SITE
    pages = Page.objects.filter(published=True)
    return render(request, "home/index.html", {"pages": pages})


def page(request, pk):
    request.tenant = SITE
    content = get_object_or_404(Page, pk=pk, published=True)
    return render(request, "home/page.html", {"page": content})
