#!/usr/bin/env bash
# The sample configuration (contrib/ballotd.conf) names every setting
# ballotd knows, and ballotd accepts it as it is.
# Usage: sample_config_test.sh SOURCE_DIR BALLOTD
set -euo pipefail
src=$1
ballotd=$2
sample=$src/contrib/ballotd.conf
# The names of net/config.c's setting table.
names=$(grep -oE 'strcmp\(name, "[a-z_]+"\)|\{"[a-z_]+", [0-9]' "$src/net/config.c" |
    sed -E 's/.*"([a-z_]+)".*/\1/' | sort -u)
missing=
for n in $names; do
    [ "$n" = config ] && continue
    grep -qE "^#? ?$n = " "$sample" || missing="$missing $n"
done
[ -z "$missing" ] || { echo "settings missing from contrib/ballotd.conf:$missing"; exit 1; }
# The files the sample names under /etc/ballot (the package's postinst
# makes the cluster secret there) are made in a scratch directory.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$ballotd" secret "$dir/cluster.secret"
echo "sample password" | "$ballotd" passwd "$dir/client.password"
sed -e "s#/etc/ballot/#$dir/#" "$sample" >"$dir/sample.conf"
"$ballotd" --config "$dir/sample.conf" --check-config | grep -qx "configuration ok"
# Every commented default is accepted too.
tmp=$dir/all.conf
sed -E 's/^# ([a-z_]+ = )/\1/' "$dir/sample.conf" |
    grep -vE '^(member = [23]=|voters = )' >"$tmp"
"$ballotd" --config "$tmp" --check-config | grep -qx "configuration ok"
echo "$(wc -w <<<"$names") settings, all in the sample, which ballotd accepts"
