#!/usr/bin/env python3
"""Keeps the layout the architecture (docs/adr/0001-layout.md): every
#include "..." of a source folder must resolve to a folder that folder may
depend on, and the system headers of the event loop and of LMDB stay in
the folders that own them. Prints every broken rule; exits 1 if any."""
import os
import re
import sys

# The tree to check: this checkout, or the one given (its self-test).
ROOT = sys.argv[1] if len(sys.argv) > 1 else \
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# folder -> folders whose headers it may include (its own always).
DEPENDS = {
    "raft": set(),
    "storage": {"raft"},
    "kv": {"raft"},
    "net/resp": set(),
    # TLS as a layer on libuv streams: OpenSSL and libuv, nothing of ours.
    "net/tls": set(),
    "net/peer": {"raft", "net/tls"},
    "net/node": {"net/peer", "storage", "kv", "raft"},
    "net/server": {"net/resp", "kv", "raft", "net/node", "net/tls"},
    "net/embed": {"include", "include/ballot", "net", "net/node",
                  "net/server", "net/resp", "net/peer", "net/tls", "storage",
                  "kv", "raft"},
    "net": {"include", "include/ballot", "net/resp", "net/peer", "net/node",
            "net/server", "net/tls", "storage", "kv", "raft"},
    "cli": {"kv", "raft"},
    "include": set(),
    "include/ballot": {"include"},
}
# Files held to fewer arrows than their folder: the daemon is a main over
# the public API, the one code path it shares with embedding programs.
FILE_DEPENDS = {"net/ballotd.c": {"include", "include/ballot"}}
# The client layer reaches the node only through the node's header.
ONLY = {("net/server", "net/node"): {"bnode.h"}}
# System headers a folder must not include.
FORBIDDEN_SYSTEM = {
    "raft": {"uv.h", "lmdb.h"},
    "storage": {"uv.h", "lmdb.h"},
    "kv": {"uv.h"},
    "net/resp": {"uv.h", "lmdb.h"},
    "net/server": {"lmdb.h"},
    "net/tls": {"lmdb.h"},
    "net/node": {"lmdb.h"},
    "net": {"lmdb.h"},
    "cli": {"lmdb.h"},
    "include": {"lmdb.h"},
}
# Codecs include no libuv, file by file where a folder holds more.
CODEC_FILES = {"net/peer/codec.c", "net/peer/codec.h"}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def sources(folder):
    path = os.path.join(ROOT, folder)
    if not os.path.isdir(path):
        return []
    return sorted(f for f in os.listdir(path) if f.endswith((".c", ".h")))


def main():
    owner = {}
    for folder in DEPENDS:
        for f in sources(folder):
            if f.endswith(".h"):
                owner.setdefault(f, folder)
    bad = []
    for folder, deps in DEPENDS.items():
        for f in sources(folder):
            rel = f"{folder}/{f}"
            allowed_deps = FILE_DEPENDS.get(rel, deps)
            with open(os.path.join(ROOT, rel), encoding="utf-8") as fh:
                for no, line in enumerate(fh, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    kind, name = m.groups()
                    base = os.path.basename(name)
                    if kind == "<":
                        if base in FORBIDDEN_SYSTEM.get(folder, set()) or (
                                rel in CODEC_FILES and base == "uv.h"):
                            bad.append(f"{rel}:{no}: {folder}/ may not "
                                       f"include <{name}>")
                        continue
                    home = owner.get(base)
                    if home is None or home == folder:
                        continue
                    if home not in allowed_deps:
                        bad.append(f"{rel}:{no}: {folder}/ may not include "
                                   f"{base} (it belongs to {home}/)")
                    elif (folder, home) in ONLY and \
                            base not in ONLY[(folder, home)]:
                        allowed = ", ".join(sorted(ONLY[(folder, home)]))
                        bad.append(f"{rel}:{no}: {folder}/ reaches {home}/ "
                                   f"only through {allowed}, not {base}")
    for line in bad:
        print(line)
    if bad:
        print(f"{len(bad)} layering rule(s) broken")
        return 1
    print("layout: every include follows the layering rules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
