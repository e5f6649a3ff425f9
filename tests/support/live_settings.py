"""Settings of the real server started by tests/http/test_signup_live.py.

The project's settings, with a fast password hasher: those tests are about concurrency and
crashes, and 70 deliberately slow PBKDF2 hashes would only make them slow (hashing once per
sign-up is tested in tests/accounts/test_signup.py, the cost is measured in benchmarks/).
"""

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
