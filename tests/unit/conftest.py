"""Unit tests run with informer caches deep-frozen, so a controller changing a
shared cached object in place fails the test at the line that does it."""

from __future__ import annotations

import os

from kubesvc.client.sharedinformers import FREEZE_ENV

os.environ.setdefault(FREEZE_ENV, "1")
