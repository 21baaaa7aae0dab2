#!/bin/sh
# SPDX-License-Identifier: MIT
# Every tracked source file names its licence: an SPDX-License-Identifier
# line in its first five lines (README.md, Licence). Data without comments
# (JSON, archives, model weights, fuzz corpora) is exempt; debian/copyright
# covers it. Run outside a git checkout (a release tarball) it checks the
# files the tarball ships in the same folders.
set -eu
S=${top_srcdir:-.}
cd "$S"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && [ -z "$(git rev-parse --show-prefix)" ]; then
	list=$(git ls-files)
else
	list=$(find . -type f ! -path './autom4te.cache/*' ! -path './build*' ! -path './_build/*' ! -path './build-aux/*' |
		sed 's|^\./||' | grep -E '\.(c|h|cl|sh|py|am|ac|mk|conf|in|[1-8])$' | grep -v -x -e Makefile.in -e config.h.in)
fi
exempt() {
	case "$1" in
	LICENSE | .gitignore | m4/.keep | *.json | *.gz | *.bz2 | *.safetensors | *.png | *.pgm | tests/fuzz/corpus/*) return 0 ;;
	debian/compat | debian/*.symbols | debian/source/format | debian/changelog | debian/copyright | debian/*.install | \
		debian/*.links | debian/*.dirs | debian/*.manpages | debian/*.docs | debian/*.examples | debian/*.lintian-overrides | \
		debian/*.maintscript | debian/clean | debian/not-installed) return 0 ;;
	esac
	return 1
}
missing=0 checked=0
for f in $list; do
	exempt "$f" && continue
	[ -f "$f" ] || continue
	checked=$((checked + 1))
	if ! head -n 5 "$f" | grep -q 'SPDX-License-Identifier: [A-Za-z0-9.+-]'; then
		echo "FAIL: $f has no SPDX-License-Identifier line in its first five lines" >&2
		missing=$((missing + 1))
	fi
done
# The licences named must be ones the README's Licence section explains.
bad=$(for f in $list; do exempt "$f" || [ ! -f "$f" ] || head -n 5 "$f"; done |
	sed -n 's/.*SPDX-License-Identifier: \([A-Za-z0-9.+ -]*[A-Za-z0-9.+]\).*/\1/p' | sort -u |
	grep -v -x -e MIT -e 'BSD-3-Clause' -e 'GPL-2.0-or-later' || true)
[ -z "$bad" ] || { echo "FAIL: licences the README does not explain: $bad" >&2; missing=$((missing + 1)); }
[ "$checked" -gt 50 ] || { echo "FAIL: only $checked files checked: is the file list right?" >&2; exit 1; }
[ -f LICENSE ] && grep -q '^MIT License' LICENSE || { echo "FAIL: no MIT LICENSE file" >&2; exit 1; }
[ "$missing" = 0 ] || exit 1
echo "ok: $checked files carry an SPDX-License-Identifier"
