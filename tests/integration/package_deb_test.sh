#!/usr/bin/env bash
# The Debian package, end to end: builds it with cpack from the build tree
# (into a scratch directory, so the build tree is left alone), checks its
# control fields and contents, extracts it with dpkg -x into a scratch root,
# runs lintian on it (any error fails, and so does an unhardened binary when
# the build is hardened), and runs the extracted flagserver and getflags
# against each other: all 194 flags must arrive byte-identical to the
# packaged flag mirror.
#
#   package_deb_test.sh BUILD_DIR SOURCE_DIR [CPACK]
#
# Needs dpkg-dev's tools, lintian and python3 (scripts/check.sh installs them).
set -u

build=${1:?usage: package_deb_test.sh BUILD_DIR SOURCE_DIR [CPACK]}
src=${2:?usage: package_deb_test.sh BUILD_DIR SOURCE_DIR [CPACK]}
cpack=${3:-cpack}
ncodes=194

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
die() {
    echo "FAIL: $*" >&2
    exit 1
}

for tool in dpkg-deb:dpkg dpkg:dpkg lintian:lintian python3:python3; do
    command -v "${tool%%:*}" >/dev/null ||
        die "${tool%%:*} not found (apt-get install ${tool#*:}, or run scripts/check.sh, which does)"
done

work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The extracted programs talk to 127.0.0.1: keep proxies out of the way.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy=127.0.0.1,localhost

# --- build the package --------------------------------------------------------
[[ -f $build/CPackConfig.cmake ]] || die "$build/CPackConfig.cmake missing: is cmake/Packaging.cmake included?"
if ! "$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1; then
    cat "$work/cpack.log" >&2
    die "cpack -G DEB failed"
fi
debs=("$work"/out/*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || die "expected one .deb in $work/out, got: ${debs[*]}"
deb=${debs[0]}
echo "built ${deb##*/} ($(stat -c %s "$deb") bytes)"

# --- control fields -----------------------------------------------------------
info=$(dpkg-deb -I "$deb") || die "dpkg-deb -I failed"
dpkg-deb -f "$deb" Package Version Architecture Section Maintainer Depends
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == getflags ]] || fail "Package is '$(field Package)'"
[[ $(field Section) == net ]] || fail "Section is '$(field Section)'"
# "Name <user@host.tld>", a host lintian accepts (not localhost).
maintainer=$(field Maintainer)
[[ $maintainer =~ ^[^\<\>@]+\ \<[^\<\>@\ ]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]+\>$ ]] ||
    fail "Maintainer is '$maintainer', not 'Name <address>' with a real-looking address"
[[ $(field Recommends) == *ca-certificates* ]] ||
    fail "Recommends is '$(field Recommends)', wanted ca-certificates (REMOTE is https)"
[[ -n $(field Description) ]] || fail "no Description"
[[ $(field Architecture) == "$(dpkg --print-architecture)" ]] ||
    fail "Architecture is '$(field Architecture)'"
grep -q '^ Depends: ' <<<"$info" || fail "dpkg-deb -I shows no Depends line"
depends=$(field Depends)
# depends_on PREFIX [MIN]: some package named PREFIX* is required, at
# least at version MIN when given.
depends_on() {
    local item name ver found=0
    IFS=',' read -ra items <<<"$depends"
    for item in "${items[@]}"; do
        item=${item# }
        name=${item%% *}
        [[ $name == "$1"* ]] || continue
        found=1
        if [[ -n ${2:-} ]]; then
            ver=$(sed -n 's/.*(>= \([^)]*\)).*/\1/p' <<<"$item")
            if [[ -z $ver ]] || ! dpkg --compare-versions "$ver" ge "$2"; then
                fail "Depends has '$item', wanted $1* (>= $2)"
            fi
        fi
    done
    ((found)) || fail "Depends lacks $1: $depends"
}
depends_on libcurl 7.85
depends_on libuv1 1.44
depends_on libcjson1
depends_on libhttp-parser

# --- lintian ------------------------------------------------------------------
# Any error (E:) fails; warnings and notes are shown. When the build is
# hardened (cmake/Hardening.cmake), a hardening-* tag fails too, notes included.
hardened=0
grep -q '^set(CPACK_GF_HARDENED "ON")' "$build/CPackConfig.cmake" && hardened=1
lintian --tag-display-limit 0 -I "$deb" >"$work/lintian.out" 2>"$work/lintian.err"
lintian_rc=$?
sed 's/^/lintian: /' "$work/lintian.out"
errors=$(grep -c '^E: ' "$work/lintian.out")
if ((errors > 0)); then
    fail "lintian finds $errors error(s): $(grep '^E: ' "$work/lintian.out" | paste -sd';' -)"
elif ((lintian_rc != 0)); then
    fail "lintian exited $lintian_rc: $(grep -v 'root privileges' "$work/lintian.err")"
fi
if ((hardened)) && grep -q ': hardening-' "$work/lintian.out"; then
    fail "the build is hardened but lintian finds binaries that are not: $(grep ': hardening-' "$work/lintian.out" | paste -sd';' -)"
fi
echo "lintian: $errors errors, $(grep -c '^W: ' "$work/lintian.out") warnings, $(grep -c '^I: ' "$work/lintian.out") notes (hardened build: $hardened)"

# --- contents -----------------------------------------------------------------
dpkg-deb -c "$deb" >"$work/contents" || die "dpkg-deb -c failed"
outside=$(awk '{print $6}' "$work/contents" | grep -v -e '^\./$' -e '^\./usr/' || true)
[[ -z $outside ]] || fail "files outside /usr: $outside"

root=$work/root
dpkg -x "$deb" "$root" || die "dpkg -x failed"
for f in usr/bin/getflags usr/bin/flagserver; do
    [[ -f $root/$f && -x $root/$f ]] || fail "$f missing or not executable"
done
for page in getflags flagserver; do
    man=$(ls "$root/usr/share/man/man1/$page.1"* 2>/dev/null | head -n1)
    if [[ -z $man ]]; then
        fail "usr/share/man/man1/$page.1[.gz] missing"
        continue
    fi
    text=$(if [[ $man == *.gz ]]; then gzip -dc "$man"; else cat "$man"; fi)
    grep -q '^\.SH OPTIONS' <<<"$text" || fail "$man has no OPTIONS section"
    if command -v man >/dev/null; then
        warnings=$(MANWIDTH=80 man --warnings -l -E UTF-8 "$man" 2>&1 >/dev/null)
        [[ -z $warnings ]] || fail "man -l $man warns: $warnings"
    fi
    c=$root/usr/share/bash-completion/completions/$page
    [[ -f $c ]] || fail "${c#"$root"/} missing"
done
[[ -f $root/usr/share/doc/getflags/copyright ]] || fail "usr/share/doc/getflags/copyright missing"
changelog=$root/usr/share/doc/getflags/changelog.Debian.gz
if [[ -f $changelog ]]; then
    # The newest entry is this package's version.
    first=$(gzip -dc "$changelog" | head -n1)
    [[ $first == "getflags ($(field Version)) "* ]] ||
        fail "changelog.Debian.gz starts '$first', not with getflags ($(field Version))"
else
    fail "usr/share/doc/getflags/changelog.Debian.gz missing"
fi
grep -q 'Panayiotis Lipiridis' "$root/usr/share/doc/getflags/copyright" 2>/dev/null ||
    fail "copyright lacks the MIT notice of the South Sudan flag"

data=$root/usr/share/getflags/flags_data
ndirs=$(find "$data/flags" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
[[ $ndirs -eq $ncodes ]] || fail "$ndirs flag directories in flags_data, expected $ncodes"
diff -r "$src/flags_data/flags" "$data/flags" >/dev/null || fail "packaged flags differ from $src/flags_data/flags"
cmp -s "$src/flags_data/country_codes.txt" "$data/country_codes.txt" ||
    fail "packaged country_codes.txt differs"

# The package's version is the program's.
version=$("$root/usr/bin/getflags" --version | sed -n '1s/^getflags //p')
[[ -n $version && $(field Version) == "$version"* ]] ||
    fail "Version is '$(field Version)', getflags --version says '$version'"
man_version=$(gzip -dc "$root/usr/share/man/man1/getflags.1.gz" 2>/dev/null ||
    cat "$root/usr/share/man/man1/getflags.1" 2>/dev/null)
grep -q "^\.TH .*\"getflags $version\"" <<<"$man_version" || fail "getflags.1's .TH does not say $version"

# The packaged completion offers the packaged country codes.
want=$(tr -s ' \n' '\n' <"$data/country_codes.txt" | grep '^B' | paste -sd' ' -)
got=$(bash --norc --noprofile -c '
    source "$1" || exit 1
    COMP_WORDS=("$2" b); COMP_CWORD=1; COMPREPLY=()
    _getflags "$2" b "$2"
    printf "%s\n" "${COMPREPLY[@]}"' bash \
    "$root/usr/share/bash-completion/completions/getflags" "$root/usr/bin/getflags" |
    paste -sd' ' -)
[[ -n $want && $got == "$want" ]] || fail "completion of 'getflags b' gave '$got', expected '$want'"

((failures == 0)) || die "$failures problem(s) with the package; not running it"

# --- run the extracted programs -----------------------------------------------
# A file only the packaged copy has: proves flagserver serves its own data.
probe=package-test-$$.txt
echo "served from the package" >"$data/$probe"

"$root/usr/bin/flagserver" --port 0 --bind 127.0.0.1 --quiet >"$work/fs.out" 2>"$work/fs.err" &
server_pid=$!
port=
for _ in $(seq 1 200); do
    port=$(sed -n '1s|^listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$work/fs.out")
    [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
done
if [[ -z $port ]]; then
    cat "$work/fs.out" "$work/fs.err" >&2
    die "the extracted flagserver did not say where it listens"
fi
echo "extracted flagserver on port $port: $(cat "$work/fs.err")"

# GET /probe over bash's /dev/tcp: no curl needed.
exec 3<>"/dev/tcp/127.0.0.1/$port" || die "cannot connect to port $port"
printf 'GET /%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$probe" >&3
answer=$(timeout 10 cat <&3)
exec 3<&-
grep -q '^HTTP/1.1 200' <<<"$answer" && grep -q 'served from the package' <<<"$answer" ||
    fail "flagserver does not serve the packaged flags_data: $(head -n1 <<<"$answer")"

out=$work/downloaded
timeout 120 "$root/usr/bin/getflags" -a -m 20 -s "http://127.0.0.1:$port/flags" -o "$out" \
    >"$work/getflags.out" 2>"$work/getflags.err"
rc=$?
cat "$work/getflags.out"
[[ $rc -eq 0 ]] || {
    cat "$work/getflags.err" >&2
    fail "getflags exited $rc"
}
grep -q "^$ncodes flags downloaded\.$" "$work/getflags.out" || fail "report does not say $ncodes flags downloaded"

ngifs=$(find "$out" -maxdepth 1 -type f -name '*.gif' | wc -l)
# Besides the flags, only getflags's state directory: its manifest and lock.
nfiles=$(find "$out" -mindepth 1 -not -path "$out/.getflags" -not -path "$out/.getflags/manifest.json" \
    -not -path "$out/.getflags/lock" | wc -l)
[[ $ngifs -eq $ncodes ]] || fail "$ngifs .gif files downloaded, expected $ncodes"
[[ $nfiles -eq $ngifs ]] || fail "$((nfiles - ngifs)) other files left in the output directory"
mismatched=0
# The names are JSON strings with \u escapes ("C\u00f4te d'Ivoire"): one
# python3 run decodes them all, "<cc> TAB <country>" a line.
declare -A country_of=()
while IFS=$'\t' read -r cc country; do
    country_of[$cc]=$country
done < <(python3 -c 'import json, os, sys
for p in sys.argv[1:]:
    with open(p, encoding="utf-8") as f:
        line = os.path.basename(os.path.dirname(p)) + "\t" + json.load(f)["country"] + "\n"
    sys.stdout.buffer.write(line.encode("utf-8"))' \
    "$data"/flags/*/metadata.json)
for meta in "$data"/flags/*/metadata.json; do
    cc=${meta%/metadata.json}
    cc=${cc##*/}
    country=${country_of[$cc]:-}
    file=$out/${country// /_}.gif
    if ! cmp -s "$data/flags/$cc/$cc.gif" "$file"; then
        ((mismatched < 5)) && echo "  $cc: $file missing or different" >&2
        mismatched=$((mismatched + 1))
    fi
done
((mismatched == 0)) || fail "$mismatched flags not byte-identical to flags_data"

kill -TERM "$server_pid"
wait "$server_pid"
rc=$?
server_pid=
[[ $rc -eq 0 ]] || fail "flagserver exited $rc after SIGTERM"

if ((failures > 0)); then
    echo "$failures problem(s)" >&2
    exit 1
fi
echo "package ok: ${deb##*/}"
