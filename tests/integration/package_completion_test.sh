#!/usr/bin/env bash
# The bash completions of getflags and flagserver: sources each file in a
# clean bash, calls its completion function with COMP_WORDS and COMP_CWORD
# set as bash would, and checks COMPREPLY.
#
#   package_completion_test.sh COMPLETION_DIR
#
# That the option lists match --help is checked by package_manpage_check.py.
set -u

dir=${1:?usage: package_completion_test.sh COMPLETION_DIR}
dir=$(cd "$dir" && pwd) || exit 1
failures=0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# expect FILE "EXPECTED,WORDS" WORD...: completes the command line WORD...
# (the last word is the one being completed) in $scratch, and compares the
# sorted COMPREPLY with EXPECTED,WORDS (comma-separated, any order).
expect() {
    local file=$1 want=$2 out got rc
    shift 2
    out=$(cd "$scratch" && bash --norc --noprofile -c '
        source "$1" || exit 1
        shift
        func=$(complete -p -- "$1" | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
        [[ -n $func ]] || { echo "no completion registered for $1" >&2; exit 1; }
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        COMPREPLY=()
        prev=
        ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
        "$func" "$1" "${COMP_WORDS[COMP_CWORD]}" "$prev"
        printf "%s\n" "${COMPREPLY[@]}"
    ' bash "$file" "$@")
    rc=$?
    got=$(printf '%s\n' "$out" | sed '/^$/d' | LC_ALL=C sort | paste -sd, -)
    want=$(tr ',' '\n' <<<"$want" | sed '/^$/d' | LC_ALL=C sort | paste -sd, -)
    if ((rc == 0)) && [[ $got == "$want" ]]; then
        echo "ok: '$*' -> $got"
    else
        echo "FAIL: '$*' -> '$got' (bash exit $rc), expected '$want'" >&2
        failures=$((failures + 1))
    fi
}

g=$dir/getflags.bash
f=$dir/flagserver.bash
for file in "$g" "$f"; do
    [[ -r $file ]] || { echo "FAIL: cannot read $file" >&2; exit 1; }
    bash -n "$file" || { echo "FAIL: syntax error in $file" >&2; exit 1; }
done

mkdir -p "$scratch/out dir" "$scratch/other"
touch "$scratch/ca.pem" "$scratch/notes.txt"

# getflags
expect "$g" "LOCAL,REMOTE,DELAY,ERROR" getflags -s ""
expect "$g" "LOCAL,REMOTE,DELAY,ERROR" getflags -a -m 20 -s ""
expect "$g" "DELAY" getflags -s d
expect "$g" "REMOTE" getflags -s Re
expect "$g" "http://,https://" getflags -s h
expect "$g" "--timeout" getflags --ti
expect "$g" "--max-size,--max_req" getflags -a --max
expect "$g" "--max_req" getflags --max_
# The long options of the flags2 scripts, whole or abbreviated.
expect "$g" "LOCAL,REMOTE,DELAY,ERROR" getflags --server ""
expect "$g" "REMOTE" getflags --serv r
expect "$g" "--server=LOCAL" getflags --server=l
expect "$g" "LOCAL" getflags --se = l
expect "$g" "auto" getflags --max_req ""
expect "$g" "auto" getflags --max_r a
expect "$g" "" getflags --limit ""
expect "$g" "" getflags --lim ""
expect "$g" "--all" getflags --al
expect "$g" "--every" getflags --ev
expect "$g" "--verbose,--version" getflags --ve
expect "$g" "--help,--http1.1,--http2" getflags --h
expect "$g" "--http1.1,--http2" getflags -a --http
expect "$g" "-a" getflags -a
expect "$g" "out dir,other" getflags -o ""
expect "$g" "other" getflags -v -o ot
expect "$g" "ca.pem,notes.txt,out dir,other" getflags --cacert ""
expect "$g" "ca.pem" getflags --cacert c
expect "$g" "ca.pem" getflags --cacert = c
expect "$g" "--cacert=ca.pem" getflags --cacert=c
expect "$g" "auto" getflags -m ""
expect "$g" "" getflags --rate ""
expect "$g" "--retry-failed" getflags --retry-f
expect "$g" "" getflags --timeout ""
expect "$g" "" getflags -- -
# flagserver
expect "$f" "local,delay,error" flagserver --preset ""
expect "$f" "delay" flagserver --quiet --preset d
expect "$f" "error" flagserver --preset = e
expect "$f" "--preset=local" flagserver --preset=l
expect "$f" "--directory" flagserver --di
expect "$f" "--delay,--directory" flagserver --d
expect "$f" "out dir,other" flagserver --directory ""
expect "$f" "" flagserver --port ""
expect "$f" "127.0.0.1,::1,0.0.0.0,::" flagserver --bind ""

if ((failures > 0)); then
    echo "$failures completion case(s) failed" >&2
    exit 1
fi
echo "all completion cases passed"
