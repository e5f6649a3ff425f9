"""Media configuration from the environment: the S3 store (django-storages is an extra, not
installed for the tests: only the settings it gets are checked here)."""

import json
import subprocess
import sys

from tests.support.servers import REPO

SHOW = (
    "import json; from django.conf import settings as s; "
    "print(json.dumps([s.STORAGES['default'], s.MEDIA_SERVING, s.MEDIA_URL]))"
)


def settings_with(**env):
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {SHOW}"],
        cwd=REPO,
        env={"DJANGO_SETTINGS_MODULE": "config.settings", "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done


def test_s3_media_storage_is_private_with_signed_urls_behind_the_tenant_check():
    done = settings_with(
        MEDIA_STORAGE="s3",
        MEDIA_S3_BUCKET="site-media",
        MEDIA_S3_ENDPOINT_URL="http://127.0.0.1:9000",
    )
    assert done.returncode == 0, done.stderr
    storage, serving, url = json.loads(done.stdout)
    assert storage["BACKEND"] == "tenants.media_s3.TenantS3Storage"
    assert storage["OPTIONS"]["bucket_name"] == "site-media"
    assert storage["OPTIONS"]["endpoint_url"] == "http://127.0.0.1:9000"
    assert storage["OPTIONS"]["querystring_auth"] is True
    assert storage["OPTIONS"]["default_acl"] is None
    assert (serving, url) == ("redirect", "/media/")


def test_local_media_by_default_and_bad_values_refused():
    storage, serving, _ = json.loads(settings_with().stdout)
    assert storage["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert serving == "app"
    for env in ({"MEDIA_STORAGE": "ftp"}, {"MEDIA_SERVING": "cdn"}, {"JOBS_BACKEND": "celery"}):
        done = settings_with(**env)
        assert done.returncode != 0 and "ImproperlyConfigured" in done.stderr, env
