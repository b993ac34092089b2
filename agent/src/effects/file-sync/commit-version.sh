#!/bin/sh
# rsyncd hooks of a file-replication module (README "File replication"), run as
#   pre-xfer exec  = commit-version.sh pre    (before a transfer; a non-zero exit refuses it)
#   post-xfer exec = commit-version.sh post   (after it, with rsync's exit status)
# The master pushes its file set into <module>/staging, hard-linking unchanged files from
# <module>/current (--link-dest=../current). Only a copy that ended with status 0 becomes the new
# version: `current` flips to it with one rename(2) of a symlink, so readers see the old complete
# set or the new complete set, never a half-copied one. A failed or interrupted copy leaves
# `staging` behind; the next run reuses it (rsync --delete-after removes what is stale).
# Env from rsyncd: RSYNC_MODULE_PATH, RSYNC_REQUEST (pre), RSYNC_EXIT_STATUS (post; -1 = connection broke).
set -eu
cd "$RSYNC_MODULE_PATH"
case "${1:-}" in
pre)
  # Writes go to staging only: `current` and the versions are never touched by rsync itself.
  case "${RSYNC_REQUEST:-}" in
  */staging | */staging/) ;;
  *) echo "only <module>/staging/ may be written, not ${RSYNC_REQUEST:-?}" >&2; exit 1 ;;
  esac
  # First copy ever: an empty version so --link-dest has a basis and readers a (empty) set.
  if [ ! -e current ]; then mkdir -p v-0; ln -sfn v-0 current; fi
  ;;
post)
  [ "${RSYNC_EXIT_STATUS:-1}" = "0" ] || exit 0
  [ -d staging ] || exit 0
  version="v-$(date +%s%N)"
  mv staging "$version"
  ln -sfn "$version" current.new
  mv -T current.new current
  # Keep the previous version too: a reader may have resolved `current` a moment ago.
  ls -1d v-* | sort | head -n -2 | while read -r old; do rm -rf -- "$old"; done
  ;;
*) echo "usage: commit-version.sh pre|post" >&2; exit 2 ;;
esac
