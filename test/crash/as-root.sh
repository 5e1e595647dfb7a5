#!/bin/sh
# Runs a command as root in a user and mount namespace of its own when the caller is not root: the crash
# suite's full-disk case mounts a small tmpfs. Unprivileged user namespaces are on by default in Debian and Ubuntu.
set -e
if [ "$(id -u)" -ne 0 ] && unshare --user --map-root-user --mount true 2>/dev/null; then
  exec unshare --user --map-root-user --mount "$@"
fi
exec "$@"
