#!/usr/bin/env bash
# The default mirror is the first Debian archive of the host's apt sources
# (deb822 .sources or one-line .list), skipping security, disabled and
# non-Debian entries. RPIFS_APT_DIR points rpifs at a fixture; the chosen
# mirror shows in the firmware stage's progress (an unreachable address:
# the stage fails fast, which is all this test needs).
. "$TESTS_DIR/lib.sh"
R=$T/root
mkdir -p "$R/boot" "$T/apt/sources.list.d"
export RPIFS_APT_DIR=$T/apt

mirror_used() {
	"$RPIFS" build firmware "$R" >"$T/out" 2>&1 && { cat "$T/out"; fail "firmware succeeded"; }
	grep -q "apt-get update ($1 bookworm non-free-firmware)" "$T/out" || { cat "$T/out"; fail "mirror $1 not used"; }
}

cat > "$T/apt/sources.list.d/a.sources" <<'EOT'
Types: deb
URIs: http://127.0.0.3:9/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://127.0.0.4:9/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src
URIs: http://127.0.0.5:9/debian
Suites: bookworm
Components: main

Types: deb
# a comment inside a stanza
URIs: http://127.0.0.1:9/debian/
Suites: bookworm
  bookworm-updates
Components: main
EOT
echo "deb http://127.0.0.6:9/other nodistro main" > "$T/apt/sources.list.d/0.list"
mirror_used http://127.0.0.1:9/debian

# sources.list is read first.
echo "deb [arch=amd64 signed-by=/x.gpg] http://127.0.0.2:9/debian bookworm main contrib" > "$T/apt/sources.list"
mirror_used http://127.0.0.2:9/debian

# Without any Debian archive: a clear message.
rm -f "$T/apt/sources.list" "$T/apt/sources.list.d/"*
"$RPIFS" build firmware "$R" >"$T/out" 2>&1 && fail "firmware without a mirror succeeded"
grep -q "no Debian archive in the host's apt configuration: pass --mirror URL" "$T/out" ||
	{ cat "$T/out"; fail "no message"; }
echo ok
