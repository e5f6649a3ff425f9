from django.shortcuts import get_object_or_404, render

from home.models import PageContent


def index(request):
    pages = PageContent.objects.filter(published=True)
    return render(request, "home/index.html", {"pages": pages})


def page(request, pk):
    content = get_object_or_404(PageContent, pk=pk, published=True)
    return render(request, "home/page.html", {"page": content})
