"""The one exception type for bad input or environment, shared by the whole product.

It lives here, at the bottom, so that `ground_truth` depends on nothing above it;
`harness_plugins.errors` re-exports it beside its helpers for user files. Commands show
it as one ``introspect: error: ...`` line instead of a traceback.
"""

from __future__ import annotations


class IntrospectError(ValueError):
    """Bad input or environment: the message names what is wrong and how to fix it."""
