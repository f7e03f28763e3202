# A real sentry-python application (Debian's python3-sentry-sdk): errors go to /store/ gzipped.
import sys

import sentry_sdk

sentry_sdk.init(dsn=sys.argv[1], release="python-client@1.0.0", environment="test")


def divide(n):
    return n / 0


try:
    divide(1)
except ZeroDivisionError as error:
    sentry_sdk.capture_exception(error)

for n in (1231, 77):
    sentry_sdk.capture_message("payment %d declined" % n)

sentry_sdk.flush(10)
