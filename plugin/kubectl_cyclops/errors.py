"""Typed errors, each with the exit code the CLI turns it into.

Library code raises these; only the CLI boundary (cli.py) prints them. Every
message is one line that names the object and the cause.
"""

from __future__ import annotations

import os
import re
import sys
from enum import IntEnum

# C0 and C1 controls, the Unicode line and paragraph separators (a line break to str.splitlines), and the
# bidirectional overrides that can make a terminal show text in another order than it is.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def debug(line: str) -> None:
    """A line on stderr for someone finding out what the plugin does (KUBECTL_CYCLOPS_DEBUG=1); else nothing."""
    if os.environ.get("KUBECTL_CYCLOPS_DEBUG"):
        print(escape(line), file=sys.stderr)


def escape(text: str) -> str:
    """Terminal control characters as visible escapes: \\x1b[31m cannot colour anything (tables and errors)."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), _code(m.group())), text)


def _code(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # unexpected failure; the message still says what happened
    USAGE = 2  # bad flags, bad resource name, bad label selector
    CONFIG = 3  # no kubeconfig, unknown context, unusable credentials file
    UNKNOWN_KIND = 4  # the server has no such resource type
    NOT_FOUND = 5  # the named object does not exist
    UNAUTHORIZED = 6  # HTTP 401: the credentials were rejected
    FORBIDDEN = 7  # HTTP 403: the user may not read the object
    UNREACHABLE = 8  # connection refused, DNS failure, or --request-timeout exceeded
    FIELD_MAP = 9  # a malformed field map or JSONPath expression
    WAIT_FAILED = 10  # wait: an object failed while waiting for healthy
    WAIT_TIMEOUT = 11  # wait: the timeout passed before every object had the status
    INTERRUPTED = 130  # Ctrl-C outside --watch
    BROKEN_PIPE = 141  # stdout closed by its reader (128 + SIGPIPE, as a process SIGPIPE ends)


class CyclopsError(Exception):
    exit_code = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CyclopsError):
    exit_code = ExitCode.USAGE


class ConfigError(CyclopsError):
    exit_code = ExitCode.CONFIG


class UnknownKindError(CyclopsError):
    exit_code = ExitCode.UNKNOWN_KIND


class NotFoundError(CyclopsError):
    exit_code = ExitCode.NOT_FOUND


class UnauthorizedError(CyclopsError):
    exit_code = ExitCode.UNAUTHORIZED


class ForbiddenError(CyclopsError):
    exit_code = ExitCode.FORBIDDEN


class UnreachableError(CyclopsError):
    exit_code = ExitCode.UNREACHABLE


class WaitFailedError(CyclopsError):
    exit_code = ExitCode.WAIT_FAILED


class WaitTimeoutError(CyclopsError):
    exit_code = ExitCode.WAIT_TIMEOUT


class GoneError(CyclopsError):
    """A watch's resourceVersion, or a list's continue token, is too old (HTTP 410): the caller reads again.

    `reason` is the Status reason (Expired, Gone); `continue_token` the token an expired list may go on with.
    """

    def __init__(self, message: str, reason: str = "", continue_token: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.continue_token = reason, continue_token


class FieldMapError(CyclopsError):
    exit_code = ExitCode.FIELD_MAP

    def __init__(self, source: str, where: str, reason: str) -> None:
        location = f"{source}: {where}" if where else source
        super().__init__(f"invalid field map {location}: {reason}")
        self.source, self.where, self.reason = source, where, reason
