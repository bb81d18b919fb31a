#!/edgejoin/bin/sh
# edgejoin's stand-in installer for the machine lab: what Ubuntu's autoinstall does to a machine,
# in seconds instead of half an hour. Booted by iPXE as a cluster's installer profile (the lab
# guest's own kernel and initrd, plus this script and a static busybox in a second initrd, run
# as `rdinit=`), it
#   1. fetches the NoCloud user-data named by `ds=nocloud-net;s=…` on the kernel command line,
#   2. posts autoinstall `reporting` webhook events to its `endpoint` (start events, then the
#      final `finish` with `result: SUCCESS`, or FAIL on any error),
#   3. writes the machine's disks: the lab guest image onto /dev/vda and its EFI system partition
#      onto /dev/vdb, streamed from /artifacts/ (only the extents that hold data),
#   4. installs the nested `user-data:` as the installed system's NoCloud seed, as subiquity does,
#   5. reboots, the firmware's boot order untouched: PXE stays first.
# Every line it prints starts with "edgejoin-installer:" so the lab can follow it on the console.
PATH=/edgejoin/bin:/usr/bin:/usr/sbin:/bin:/sbin
export PATH

say() { echo "edgejoin-installer: $*"; }
# Every download is bounded by `timeout`: busybox 1.35's `wget -T` segfaults when it fires up.

bb=/edgejoin/bin/busybox
$bb mkdir -p /proc /sys /dev /tmp /mnt
$bb mount -t proc proc /proc
# Symlinks for every applet (the archive carries only `sh`); needs /proc/self/exe.
$bb --install -s /edgejoin/bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

ENDPOINT=""
# One JSON event, as curtin's webhook reporter sends it. Failed POSTs are not retried (as upstream).
post() {
	[ -n "$ENDPOINT" ] || return 0
	result=""
	[ -n "${3:-}" ] && result=",\"result\":\"$3\""
	body="{\"name\":\"$1\",\"description\":\"$1\",\"event_type\":\"$2\",\"origin\":\"curtin\",\"level\":\"INFO\",\"timestamp\":$(date +%s)$result}"
	if timeout 20 wget -q -O /tmp/post.out --header "Content-Type: application/json" --post-data "$body" "$ENDPOINT"; then
		say "event $2 $1 ${3:-} posted"
	else
		say "event $2 $1 ${3:-} NOT accepted"
	fi
}

fail() {
	say "FAILED: $*"
	post "subiquity/Install/install" finish FAIL
	sync
	sleep 5
	poweroff -f
}

say "started ($(uname -r))"
for m in virtio_pci virtio_net virtio_blk ext4; do
	modprobe "$m" || fail "modprobe $m"
done

# The NIC: the first ethernet interface the kernel named.
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
ip link set lo up
ip link set eth0 up || fail "no eth0"
udhcpc -i eth0 -s /edgejoin/udhcpc.script -q -n -t 10 -T 2 || fail "no DHCP lease"
say "network up: $(ip -4 -o addr show dev eth0 | awk '{ print $4 }')"

SEED=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^ds=nocloud-net;s=//p' | head -n 1)
[ -n "$SEED" ] || fail "no ds=nocloud-net;s=URL/ on the kernel command line"
BASE=${SEED%%/cloud-init/*}
timeout 30 wget -q -O /tmp/user-data "${SEED}user-data" || fail "cannot fetch ${SEED}user-data"
timeout 30 wget -q -O /tmp/meta-data "${SEED}meta-data" || fail "cannot fetch ${SEED}meta-data"
# reporting: {edgejoin: {type: webhook, endpoint: URL}} (the value may be YAML-quoted).
ENDPOINT=$(sed -n 's/^ *endpoint: *//p' /tmp/user-data | head -n 1 | sed 's/^"\(.*\)"$/\1/')
[ -n "$ENDPOINT" ] || fail "the user-data names no reporting endpoint"
say "user-data fetched; reporting to ${ENDPOINT%%\?*}"
post "subiquity/Early/run" start
post "subiquity/Early/run" finish SUCCESS
post "subiquity/Install/install" start

# The installed system's first-boot cloud-config: autoinstall's nested `user-data:` (the last key
# of the section, indented by four).
awk 'BEGIN { print "#cloud-config" }
	/^  user-data:$/ { on = 1; next }
	on && /^ {0,3}[^ ]/ { on = 0 }
	on { print substr($0, 5) }' /tmp/user-data >/tmp/installed-user-data
grep -q "^write_files:" /tmp/installed-user-data || fail "no nested user-data under autoinstall"

post "subiquity/Install/install/curtin_install/partitioning" start
timeout 30 wget -q -O /tmp/extents "$BASE/artifacts/edgejoin-installer/extents" || fail "cannot fetch the image's extent list"
post "subiquity/Install/install/curtin_install/partitioning" finish SUCCESS
post "subiquity/Install/install/curtin_install/extract" start
# One stream, the data extents of both images back to back; each line of `extents` says where
# the next run of MiB goes: device, first MiB, MiB count. Holes stay zeros on the blank disks.
total=$(awk '{ n += $3 } END { print n + 0 }' /tmp/extents)
timeout $((120 + total / 2)) wget -q -O - "$BASE/artifacts/edgejoin-installer/payload" | {
	while read -r dev first count <&3; do
		dd of="/dev/$dev" bs=1M seek="$first" count="$count" iflag=fullblock conv=notrunc 2>/tmp/dd.err
		grep -q "^$count+0 records out" /tmp/dd.err || {
			echo "/dev/$dev at MiB $first: $(cat /tmp/dd.err)" >/tmp/write.err
			exit 1
		}
	done 3</tmp/extents
} || fail "writing the disks: $(cat /tmp/write.err 2>/dev/null)"
sync
say "disks written ($total MiB)"
post "subiquity/Install/install/curtin_install/extract" finish SUCCESS

post "subiquity/Install/install/curtin_install/curthooks" start
mount -t ext4 /dev/vda /mnt || fail "cannot mount the written root file system"
mkdir -p /mnt/var/lib/cloud/seed/nocloud
cp /tmp/installed-user-data /mnt/var/lib/cloud/seed/nocloud/user-data
cp /tmp/meta-data /mnt/var/lib/cloud/seed/nocloud/meta-data
echo "installed by edgejoin's stand-in installer at $(date -u +%Y-%m-%dT%H:%M:%SZ)" >/mnt/etc/edgejoin-installed
umount /mnt || fail "cannot unmount the root file system"
sync
post "subiquity/Install/install/curtin_install/curthooks" finish SUCCESS
post "subiquity/Install/install" finish SUCCESS
say "done - rebooting"
sleep 1
reboot -f
