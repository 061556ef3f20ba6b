#!/bin/sh
# Restarts dbus-batterybank after config.ini changed: re-reads the serial ports to leave to the driver, starts
# the service if a battery is configured now (or keeps it down if none is) and sends TERM to the running driver
# (it publishes a clean disconnect, daemontools starts it again).
set -eu
HERE=$(cd -P "$(dirname "$0")" && pwd -P)
# shellcheck source=install/lib.sh
. "$HERE/lib.sh"

[ -d "$APP/service" ] || die "$APP is not installed; run installservice.sh first"
if ! problem=$(check_node "$APP"); then
  printf '%s\n' "$problem" >&2
  exit 1
fi
link_service
serial_starter_apply
if apply_down_file; then
  if [ -p "$APP/service/supervise/control" ]; then
    svc_do -u "$SERVICE_LINK"
    svc_do -t "$SERVICE_LINK"
  fi
  say "Restarted /service/$APP_NAME; log: tail -F /var/log/$APP_NAME/current | tai64nlocal"
else
  svc_do -d "$SERVICE_LINK"
  say "No [battery.<id>] or [bank] section in $DEVICE_APP/config.ini: the service stays down until there is one."
fi
