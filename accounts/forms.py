from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AdminUserCreationForm
from django.contrib.auth.validators import ASCIIUsernameValidator

from accounts.services import username_problem
from accounts.signals import provisions_site

PASSWORD_MAX_LENGTH = 4096


class SignUpForm(forms.Form):
    """Sign-up on the platform site (HTML page and JSON API alike)."""

    username = forms.CharField(
        max_length=150,
        validators=[ASCIIUsernameValidator()],
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    site_name = forms.CharField(
        required=False,
        max_length=100,
        help_text="Shown at the top of every page. Leave it empty for “your-username's site”.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        base = settings.TENANT_BASE_DOMAIN
        self.fields["username"].help_text = (
            f"It is also your site's address, your-username.{base}: letters a-z, digits, "
            "hyphens and underscores."
        )

    def clean_username(self):
        username = self.cleaned_data["username"]
        problem = username_problem(username)
        if problem:
            raise forms.ValidationError(problem, code="username_unavailable")
        return username

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            candidate = get_user_model()(
                username=cleaned.get("username", ""), email=cleaned.get("email", "")
            )
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class PlatformUserCreationForm(AdminUserCreationForm):
    """The platform admin's "add user": refuses names that cannot name the user's site."""

    def clean_username(self):
        username = super().clean_username()
        if username and provisions_site(get_user_model()(username=username)):
            problem = username_problem(username)
            if problem:
                raise forms.ValidationError(problem, code="username_unavailable")
        return username
