#!/usr/bin/env bash
# Regenerates the local flag mirror in this directory (flags_data/):
#   country_codes.txt            the 194 codes, upper case, on one line
#   flags/<cc>/<cc>.gif          a 16x11 GIF of the flag
#   flags/<cc>/metadata.json     {"tld_cc": ..., "iso_cc": ..., "country": ...}
# from Debian's famfamfam-flag-gif and iso-codes packages, plus npm's
# flag-icons package for the one flag Debian lacks (South Sudan).
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
ISO_JSON=/usr/share/iso-codes/json/iso_3166-1.json
FAMFAMFAM=/usr/share/flags/countries/16x11
# flag-icons is pinned to one release (and its tarball checked) so that
# reruns give the same South Sudan image.
FLAG_ICONS_VERSION=7.5.0
FLAG_ICONS_SHA256=c0b80bf0e08006a60f56621d6bc49f8c7131f4d1fef6737a165a673431f4b518
# Codes not in famfamfam-flag-gif, drawn from flag-icons instead.
FROM_FLAG_ICONS="SS"

die() { echo "make_flags_data.sh: $*" >&2; exit 1; }

# --- tools and packages -------------------------------------------------
need_pkgs=()
[[ -f $ISO_JSON ]] || need_pkgs+=(iso-codes)
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

# --- metadata: names from iso-codes -------------------------------------
# One line per code: "<CC>\t<country as a JSON string>", common_name if the
# entry has one, else name. jq writes UTF-8 as is (no \u escapes).
jq -r '.["3166-1"][] | .alpha_2 + "\t" + ((.common_name // .name) | tojson)' \
    "$ISO_JSON" > "$tmp/names.tsv"

# The country-code top-level domain is "." + the code in lower case, except
# for the United Kingdom, whose ccTLD is .uk (.gb is reserved and unused).
tld_of() {
    case $1 in
        GB) echo .uk ;;
        *) echo ".${1,,}" ;;
    esac
}

# --- write the tree -----------------------------------------------------
rm -rf "$here/flags"
mkdir -p "$here/flags"

read -r -a codes <<< "$(echo $CODES)"
((${#codes[@]} == 194)) || die "expected 194 codes, got ${#codes[@]}"

for cc in "${codes[@]}"; do
    lc=${cc,,}
    dir="$here/flags/$lc"
    mkdir -p "$dir"

    country=$(awk -F'\t' -v cc="$cc" '$1 == cc { print $2 }' "$tmp/names.tsv")
    [[ -n $country ]] || die "$cc is not in $ISO_JSON"
    printf '{"tld_cc": "%s", "iso_cc": "%s", "country": %s}\n' \
        "$(tld_of "$cc")" "$cc" "$country" > "$dir/metadata.json"

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
    chmod 644 "$dir/$lc.gif" "$dir/metadata.json"
done

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
