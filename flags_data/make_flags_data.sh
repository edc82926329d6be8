#!/usr/bin/env bash
# Regenerates the local flag mirror in this directory (flags_data/):
#   country_codes.txt            the 194 codes, upper case, on one line
#   flags/<cc>/<cc>.gif          a 16x11 GIF of the flag
#   flags/<cc>/metadata.json     {"tld_cc": ..., "iso_cc": ..., "country": ..., "gec_cc": ...}
# The images come from Debian's famfamfam-flag-gif package, plus npm's
# flag-icons package for the one flag Debian lacks (South Sudan); the
# metadata comes from remote-metadata.tsv, the names and codes the REMOTE
# site publishes, written exactly as that site serves them.
#
#   make_flags_data.sh                  everything (needs packages, npm)
#   make_flags_data.sh --metadata-only  only the metadata.json files (bash only)
#
# See README.md. Writes only inside flags_data/; the output is deterministic.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LC_ALL=C.UTF-8

CODES="AD AE AF AG AL AM AO AR AT AU AZ BA BB BD BE BF BG BH BI BJ BN BO BR BS
BT BW BY BZ CA CD CF CG CH CI CL CM CN CO CR CU CV CY CZ DE DJ DK DM DZ EC EE
EG ER ES ET FI FJ FM FR GA GB GD GE GH GM GN GQ GR GT GW GY HN HR HT HU ID IE
IL IN IQ IR IS IT JM JO JP KE KG KH KI KM KN KP KR KW KZ LA LB LC LI LK LR LS
LT LU LV LY MA MC MD ME MG MH MK ML MM MN MR MT MU MV MW MX MY MZ NA NE NG NI
NL NO NP NR NZ OM PA PE PG PH PK PL PT PW PY QA RO RS RU RW SA SB SC SD SE SG
SI SK SL SM SN SO SR SS ST SV SY SZ TD TG TH TJ TL TM TN TO TR TT TV TW TZ UA
UG US UY UZ VA VC VE VN VU WS YE ZA ZM ZW"

# Sources.
FAMFAMFAM=/usr/share/flags/countries/16x11
# flag-icons is pinned to one release (and its tarball checked) so that
# reruns give the same South Sudan image.
FLAG_ICONS_VERSION=7.5.0
FLAG_ICONS_SHA256=c0b80bf0e08006a60f56621d6bc49f8c7131f4d1fef6737a165a673431f4b518
# Codes not in famfamfam-flag-gif, drawn from flag-icons instead.
FROM_FLAG_ICONS="SS"

TSV=$here/remote-metadata.tsv

die() { echo "make_flags_data.sh: $*" >&2; exit 1; }

metadata_only=0
case ${1:-} in
    '') ;;
    --metadata-only) metadata_only=1 ;;
    *) die "usage: make_flags_data.sh [--metadata-only]" ;;
esac

read -r -a codes <<< "$(echo $CODES)"
((${#codes[@]} == 194)) || die "expected 194 codes, got ${#codes[@]}"

# --- metadata: the REMOTE site's format ---------------------------------
# json_string TEXT: sets REPLY to TEXT as a JSON string the way the REMOTE site writes it
# (Python's json.dumps with its default ensure_ascii): '"' and '\' escaped,
# control characters and everything outside ASCII as lower-case \uXXXX
# escapes of UTF-16, so a code point past U+FFFF becomes a surrogate pair.
json_string() {
    local s=$1 out='"' ch cp hi lo i
    for ((i = 0; i < ${#s}; i++)); do
        ch=${s:i:1}
        printf -v cp '%d' "'$ch"
        if [[ $ch == '"' || $ch == '\' ]]; then
            out+="\\$ch"
        elif ((cp >= 0x20 && cp < 0x7F)); then
            out+=$ch
        elif ((cp == 0x0A)); then
            out+='\n'
        elif ((cp == 0x09)); then
            out+='\t'
        elif ((cp == 0x0D)); then
            out+='\r'
        elif ((cp == 0x08)); then
            out+='\b'
        elif ((cp == 0x0C)); then
            out+='\f'
        elif ((cp < 0x10000)); then
            printf -v ch '\\u%04x' "$cp"
            out+=$ch
        else
            hi=$((0xD800 + ((cp - 0x10000) >> 10)))
            lo=$((0xDC00 + ((cp - 0x10000) & 0x3FF)))
            printf -v ch '\\u%04x\\u%04x' "$hi" "$lo"
            out+=$ch
        fi
    done
    REPLY="$out\""
}

# write_metadata: flags/<cc>/metadata.json for every code, from the TSV.
# Each row is "iso_cc TAB tld_cc TAB gec_cc TAB country"; lines starting
# with '#' are comments. One object, keys in the REMOTE site's order,
# ", " and ": " between items, no newline at the end.
write_metadata() {
    local iso tld gec country extra n=0 lc out
    local -A seen=()
    [[ -f $TSV ]] || die "missing $TSV"
    while IFS=$'\t' read -r iso tld gec country extra; do
        [[ $iso == '#'* ]] && continue
        [[ -z ${extra:-} && -n $iso && -n $tld && -n $gec && -n $country ]] \
            || die "$TSV: malformed row for '$iso'"
        [[ $iso =~ ^[A-Z]{2}$ ]] || die "$TSV: bad iso_cc '$iso'"
        [[ -z ${seen[$iso]:-} ]] || die "$TSV: $iso listed twice"
        seen[$iso]=1
        lc=${iso,,}
        [[ " $CODES " == *[[:space:]]$iso[[:space:]]* ]] || die "$TSV: $iso is not one of the 194 codes"
        mkdir -p "$here/flags/$lc"
        json_string "$tld" && out='{"tld_cc": '$REPLY
        json_string "$iso" && out+=', "iso_cc": '$REPLY
        json_string "$country" && out+=', "country": '$REPLY
        json_string "$gec" && out+=', "gec_cc": '$REPLY'}'
        printf '%s' "$out" > "$here/flags/$lc/metadata.json"
        chmod 644 "$here/flags/$lc/metadata.json"
        n=$((n + 1))
    done < "$TSV"
    ((n == ${#codes[@]})) || die "$TSV: expected ${#codes[@]} rows, got $n"
}

if ((metadata_only)); then
    write_metadata
    echo "flags_data: wrote ${#codes[@]} metadata.json files to $here/flags"
    exit 0
fi

# --- tools and packages -------------------------------------------------
need_pkgs=()
[[ -d $FAMFAMFAM ]] || need_pkgs+=(famfamfam-flag-gif)
command -v jq >/dev/null || need_pkgs+=(jq)
command -v rsvg-convert >/dev/null || need_pkgs+=(librsvg2-bin)
command -v pngtopnm >/dev/null || need_pkgs+=(netpbm)
command -v npm >/dev/null || need_pkgs+=(npm)
if ((${#need_pkgs[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing packages, install them: ${need_pkgs[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- flag-icons, for the codes famfamfam lacks ---------------------------
(cd "$tmp" && npm pack --silent "flag-icons@$FLAG_ICONS_VERSION" >/dev/null)
tgz="$tmp/flag-icons-$FLAG_ICONS_VERSION.tgz"
[[ -f $tgz ]] || die "npm pack did not give $tgz"
echo "$FLAG_ICONS_SHA256  $tgz" | sha256sum -c --quiet - \
    || die "flag-icons $FLAG_ICONS_VERSION tarball has an unexpected checksum"
tar -xzf "$tgz" -C "$tmp" package/LICENSE package/flags/4x3

# --- write the tree -----------------------------------------------------
rm -rf "$here/flags"
mkdir -p "$here/flags"

for cc in "${codes[@]}"; do
    lc=${cc,,}
    dir="$here/flags/$lc"
    mkdir -p "$dir"

    if [[ " $FROM_FLAG_ICONS " == *" $cc "* ]]; then
        svg="$tmp/package/flags/4x3/$lc.svg"
        [[ -f $svg ]] || die "flag-icons has no $svg"
        rsvg-convert -w 16 -h 11 -f png -o "$tmp/$lc.png" "$svg"
        pngtopnm "$tmp/$lc.png" 2>/dev/null | ppmquant 256 2>/dev/null \
            | ppmtogif 2>/dev/null > "$dir/$lc.gif"
    else
        src="$FAMFAMFAM/$lc.gif"
        [[ -f $src ]] || die "famfamfam-flag-gif has no $src"
        cp "$src" "$dir/$lc.gif"
    fi
    chmod 644 "$dir/$lc.gif"
done
write_metadata

printf '%s\n' "${codes[*]}" > "$here/country_codes.txt"

# --- checks -------------------------------------------------------------
dups=$(for cc in "${codes[@]}"; do jq -r .country "$here/flags/${cc,,}/metadata.json"; done \
    | sort | uniq -d)
[[ -z $dups ]] || die "country names not distinct: $dups"
for cc in "${codes[@]}"; do
    lc=${cc,,}
    magic=$(head -c 6 "$here/flags/$lc/$lc.gif")
    [[ $magic == GIF87a || $magic == GIF89a ]] || die "$lc.gif is not a GIF"
    jq -e --arg cc "$cc" '.iso_cc == $cc and (.country | length > 0)' \
        "$here/flags/$lc/metadata.json" >/dev/null || die "bad metadata for $cc"
done
echo "flags_data: wrote ${#codes[@]} flags to $here/flags"
