"""The private parts of Django, django-tenants and django-scopes we lean on still look as
expected (tenants/internals.py). After an upgrade this fails with the name of what changed."""

import pytest
from django.db.models import Lookup

from tenants import internals


def test_every_borrowed_internal_is_as_expected():
    problems = internals.verify()
    assert not problems, "Upgrade broke a borrowed internal:\n" + "\n".join(problems)


def test_a_changed_internal_is_reported_by_name(monkeypatch):
    """The checks can fail: a Lookup.__init__ that sets one more attribute is named."""

    def changed_init(self, lhs, rhs):
        self.lhs, self.rhs = lhs, rhs
        self.bilateral_transforms = []
        self.something_new = True

    monkeypatch.setattr(Lookup, "__init__", changed_init)
    problems = internals.verify()
    assert any("Lookup.__init__" in p and "something_new" in p for p in problems), problems


@pytest.mark.parametrize("borrowed", internals.BORROWED, ids=lambda b: f"{b.library}: {b.what}")
def test_each_check_runs(borrowed):
    borrowed.check()
