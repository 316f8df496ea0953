#!/usr/bin/env bash
# Every C file in the repository follows .clang-format.
set -u
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format missing"; exit 1; }
bad=0
while IFS= read -r f; do
    [ -f "$f" ] || continue
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f (run clang-format -i $f)"
        bad=1
    fi
done < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
[ $bad -eq 0 ] && echo "all C files formatted"
exit $bad
