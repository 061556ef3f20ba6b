#!/bin/bash
# uml-run.sh -- run one command inside a User-Mode-Linux guest that has SocketCAN, return its exit status.
#
#   usage: test/support/uml-run.sh 'COMMAND'      (needs: user-mode-linux iproute2 kmod; can-utils for the tests)
#
# The guest is the host's own root filesystem, mounted read-only over hostfs (no image, no initramfs, no KVM);
# /tmp and /run are fresh tmpfs and the current directory is mounted read-write. The modules can, can-raw and
# vcan are loaded and vcan0, vcan1 are up. COMMAND runs with `sh -c` in the current directory with PATH, HOME, CI,
# TERM, NODE_OPTIONS (plus the names in $UML_ENV) passed through.
# Exit status: COMMAND's; 125 when the guest did not boot or never reported a status (it says why on stderr);
# 126 when the CAN set-up in the guest failed. env: UML_MEM (default 768M), UML_TIMEOUT (s, default 150).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 COMMAND" >&2; exit 2; }
command -v linux.uml >/dev/null || { echo "uml-run: linux.uml not found (apt-get install user-mode-linux)" >&2; exit 125; }
kver=$(linux.uml --version 2>/dev/null | head -n 1)
moddir=/usr/lib/uml/modules/$kver
[ -d "$moddir" ] || { echo "uml-run: no UML modules for kernel '$kver' in /usr/lib/uml/modules" >&2; exit 125; }

state=$(mktemp -d /tmp/bb-uml.XXXXXX)
trap 'rm -rf "$state"' EXIT

{
  echo '#!/bin/sh'
  for name in PATH HOME CI TERM NODE_OPTIONS ${UML_ENV:-}; do
    if [ -n "${!name+set}" ]; then printf 'export %s=%q\n' "$name" "${!name}"; fi
  done
  printf 'cd %q || exit 125\n' "$PWD"
  printf '%s\n' "$*"
} >"$state/command.sh"

cat >"$state/init" <<INIT
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mkdir -p "$state" "$PWD" 2>/dev/null
mount -t hostfs -o "$state" none "$state"
mount -t hostfs -o "$PWD" none "$PWD"
ip link set lo up
ok=1
for m in net/can/can net/can/can-raw drivers/net/can/dev/can-dev drivers/net/can/vcan; do
  insmod "$moddir/kernel/\$m.ko" || { echo "uml-run: insmod \$m failed" >&2; ok=0; }
done
for i in vcan0 vcan1; do
  { ip link add dev \$i type vcan && ip link set \$i up; } || { echo "uml-run: cannot create \$i" >&2; ok=0; }
done
if [ \$ok = 1 ]; then sh "$state/command.sh" </dev/null; echo \$? >"$state/rc"; else echo 126 >"$state/rc"; fi
sync
poweroff -f 2>/dev/null || echo o >/proc/sysrq-trigger
sleep 10
INIT
chmod +x "$state/init" "$state/command.sh"

set +e
timeout --kill-after=5 "${UML_TIMEOUT:-150}" \
  linux.uml mem="${UML_MEM:-768M}" root=/dev/root rootfstype=hostfs rootflags=/ ro init="$state/init" \
  con=null con0=null,fd:1 quiet loglevel=1 </dev/null 2>&1 | grep --line-buffered -v -e '^epollctl add err' -e '^Checking' -e '^mconsole' -e '^reboot: System halted'
uml_status=${PIPESTATUS[0]}
set -e
if [ ! -s "$state/rc" ]; then
  echo "uml-run: the guest did not boot or did not report an exit status (linux.uml status $uml_status)" >&2
  exit 125
fi
exit "$(cat "$state/rc")"
