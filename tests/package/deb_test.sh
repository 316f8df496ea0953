#!/usr/bin/env bash
# Builds the Debian package with CPack, unpacks it into a scratch root
# (dpkg -x: nothing is installed on this machine), and runs what it holds
# the way its systemd unit would: the unit's own command lines against the
# sample configuration, a restart after the process dies (Restart=), and
# the CLI from the package. Also checks the package's contents and
# dependencies. Usage: deb_test.sh BUILD_DIR
set -euo pipefail
build=$1
# shellcheck source=../lib/scratch.sh
. "$(dirname "$0")/../lib/scratch.sh"
scratch_init deb

(cd "$build" && cpack -G DEB -B "$tmp/out" >/dev/null)
deb=$(ls "$tmp"/out/ballot_*.deb)
dpkg-deb --info "$deb" >"$tmp/info"
grep -q '^ Package: ballot$' "$tmp/info"
grep -q '^ Depends:.*libuv1' "$tmp/info" || { cat "$tmp/info"; exit 1; }
grep -q 'postinst' "$tmp/info"
dpkg-deb --contents "$deb" >"$tmp/contents"
for f in ./usr/bin/ballotd ./usr/bin/ballot ./usr/include/ballot.h \
    ./usr/include/ballot/uv.h ./usr/lib/libballot.so.0.1.0 \
    ./usr/lib/pkgconfig/ballot.pc ./usr/share/man/man8/ballotd.8 \
    ./usr/share/man/man1/ballot.1 ./usr/lib/systemd/system/ballotd.service \
    ./usr/share/ballot/ballotd.conf ./usr/share/ballot/grafana-ballot.json; do
    grep -q " $f" "$tmp/contents" || { echo "missing $f"; cat "$tmp/contents"; exit 1; }
done
root=$tmp/root
dpkg -x "$deb" "$root"

# The unit's command lines, pointed at the scratch root.
unit=$root/usr/lib/systemd/system/ballotd.service
pre=$(sed -n 's/^ExecStartPre=//p' "$unit")
start=$(sed -n 's/^ExecStart=//p' "$unit")
grep -q '^Restart=on-failure$' "$unit"

# systemd makes the StateDirectory (/var/lib/ballot) before starting.
mkdir -p "$root/etc/ballot" "$root/var/lib/ballot"
sed -e "s#^data = .*#data = $root/var/lib/ballot#" \
    -e "s#^member = 1=127.0.0.1:7379:7380#member = 1=127.0.0.1:$base:$((base + 1))#" \
    -e "s#^cluster_secret_file = /etc/ballot/#cluster_secret_file = $root/etc/ballot/#" \
    "$root/usr/share/ballot/ballotd.conf" >"$root/etc/ballot/ballotd.conf"
# The secret postinst makes.
dpkg-deb -e "$deb" "$tmp/ctl"
grep -q 'ballotd secret /etc/ballot/cluster.secret' "$tmp/ctl/postinst"
"$root/usr/bin/ballotd" secret "$root/etc/ballot/cluster.secret"
rewrite() { sed -e "s#/usr/bin/#$root/usr/bin/#g" -e "s#/etc/ballot/#$root/etc/ballot/#g" <<<"$1"; }
# shellcheck disable=SC2046
$(rewrite "$pre") | grep -qx "configuration ok"
"$root/usr/bin/ballotd" --version | grep -q "^ballotd 0\."
cli=("$root/usr/bin/ballot" --endpoints "127.0.0.1:$base" --timeout 2000)
run_node() { # starts the node as the unit would, in the background
    # shellcheck disable=SC2046
    $(rewrite "$start") >>"$tmp/node.log" 2>&1 &
    pid=$!
    pids+=("$pid")
}
run_node
for _ in $(seq 100); do "${cli[@]}" put pkg/k v1 >/dev/null 2>&1 && break; sleep 0.1; done
[ "$("${cli[@]}" get pkg/k)" = v1 ] || { cat "$tmp/node.log"; exit 1; }
# The process dies; the supervisor starts it again (Restart=on-failure),
# and nothing acknowledged is lost.
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
run_node
for _ in $(seq 100); do "${cli[@]}" get pkg/k >/dev/null 2>&1 && break; sleep 0.1; done
[ "$("${cli[@]}" get pkg/k)" = v1 ] || { cat "$tmp/node.log"; exit 1; }
# A graceful stop exits 0, as the unit's KillSignal=SIGTERM expects.
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { echo "SIGTERM exit $rc"; cat "$tmp/node.log"; exit 1; }
echo "the .deb unpacks, its unit's commands run a node that survives a restart, and stops cleanly"
