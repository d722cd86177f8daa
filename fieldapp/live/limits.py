"""The file-descriptor limit against the open streams a host is sized for."""

import sys

# Besides the streams: database connections, the listener, log files, the worker's sends.
MARGIN = 256


def check_fd_limit(capacity: int) -> str | None:
    """Raise the soft open-files limit towards the hard one; a warning text if still too low."""
    if sys.platform == "win32":  # no rlimits there (and the app is served by gunicorn on Linux)
        return None
    import resource  # Unix only: imported here so the module loads everywhere

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = capacity + MARGIN
    if soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft >= need:
        return None
    message = (
        f"WARNING: open-files limit is {soft} but {capacity} live streams need about {need}: "
        f"streams past ~{max(soft - MARGIN, 0)} will fail. Raise it (ulimit -n {need}, or "
        f"LimitNOFILE={need} in the systemd unit) or lower FIELDAPP_LIVE_CAPACITY."
    )
    return message
