"""The one error the local stack raises: its message always names the fix."""


class StackError(RuntimeError):
    """A service of the local stack cannot be prepared or started."""
