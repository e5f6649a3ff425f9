from django.shortcuts import get_object_or_404, render

from benchmarks.plain.models import Page


def index(request):
    pages = Page.objects.filter(published=True)
    return render(request, "home/index.html", {"pages": pages})


def page(request, pk):
    content = get_object_or_404(Page, pk=pk, published=True)
    return render(request, "home/page.html", {"page": content})
