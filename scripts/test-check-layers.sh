#!/usr/bin/env bash
# The layering lint must be able to fail: in a scratch tree, each rule is
# broken once and must be reported, and the clean tree must pass.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mk() { mkdir -p "$tmp/$(dirname "$1")"; printf '%s\n' "$2" >"$tmp/$1"; }
mk raft/raft.h '/* core */'
mk kv/kv.h '#include "raft.h"'
mk storage/wal.h '#include "raft.h"'
mk net/resp/resp.h '#include <stddef.h>'
mk net/peer/codec.h '#include "raft.h"'
mk net/node/bnode.h '#include "kv.h"'
mk net/node/bnode_internal.h '#include "bnode.h"'
mk net/server/server.h '#include "resp.h"'
mk cli/cli.h '#include "kv.h"'
mk include/ballot.h '#include <stddef.h>'
mk net/ballotd.c '#include "ballot.h"'
if ! out=$(python3 scripts/check-layers.py "$tmp"); then
    echo "clean tree refused: $out"
    exit 1
fi
fail=0
expect() { # FILE LINE WHAT: adding LINE to FILE must be reported
    local file=$1 line=$2 what=$3
    cp "$tmp/$file" "$tmp/$file.orig"
    printf '%s\n' "$line" >>"$tmp/$file"
    if python3 scripts/check-layers.py "$tmp" >/dev/null; then
        echo "not caught: $what"
        fail=1
    fi
    mv "$tmp/$file.orig" "$tmp/$file"
}
expect kv/kv.h '#include "bnode.h"' 'kv/ including the node'
expect kv/kv.h '#include <uv.h>' 'kv/ including libuv'
expect storage/wal.h '#include "kv.h"' 'storage/ including kv/'
expect raft/raft.h '#include "wal.h"' 'raft/ including storage/'
expect net/server/server.h '#include "bnode_internal.h"' \
    'the client layer past the node header'
expect net/server/server.h '#include "codec.h"' 'the client layer in peer/'
expect net/resp/resp.h '#include <uv.h>' 'the RESP codec using libuv'
expect net/peer/codec.h '#include <uv.h>' 'the peer codec using libuv'
expect cli/cli.h '#include "server.h"' 'cli/ including net/'
expect net/node/bnode.h '#include <lmdb.h>' 'net/ using LMDB directly'
expect net/ballotd.c '#include "bnode.h"' 'the daemon past the public API'
[ $fail -eq 0 ] && echo "layering lint catches every rule broken on purpose"
exit $fail
