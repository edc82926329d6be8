#!/usr/bin/env bash
# Chart of a `getflags --sweep LIST --json` result: elapsed time and p95
# latency against the concurrency level m, x axis in log scale.
#
#   bash bench/plot_sweep.sh [-t TITLE] SWEEP.json|- [OUT]
#
# Writes OUT.png and OUT.svg (OUT defaults to the input path without .json;
# with - for standard input, to ./sweep). Needs gnuplot and python3 (the
# JSON is read with Python's standard library). Example:
#
#   getflags -e --sweep 1,5,20,100,1000 --json -s http://127.0.0.1:8001/flags \
#       > sweep.json && bash bench/plot_sweep.sh sweep.json
set -euo pipefail

title=""
while getopts "t:h" opt; do
    case "$opt" in
    t) title=$OPTARG ;;
    h) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: plot_sweep.sh [-t TITLE] SWEEP.json|- [OUT]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: plot_sweep.sh [-t TITLE] SWEEP.json|- [OUT]" >&2
    exit 2
fi
input=$1
if [ $# -eq 2 ]; then
    out=$2
elif [ "$input" = - ]; then
    out=sweep
else
    out=${input%.json}
fi
for tool in gnuplot python3; do
    command -v "$tool" >/dev/null || {
        echo "plot_sweep.sh: $tool not found (apt-get install gnuplot-nox python3)" >&2
        exit 1
    }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

if [ "$input" = - ]; then
    cat >"$work/in.json"
else
    [ -r "$input" ] || { echo "plot_sweep.sh: cannot read $input" >&2; exit 1; }
    cp "$input" "$work/in.json"
fi

# JSON -> whitespace-separated columns: m elapsed_s p95_ms req/s errors
# "elapsed label" "p95 label", sorted by m. Levels that ran at the same m
# (a level above the number of codes runs at that number) share one label
# listing their values, on the first of them. Refuses input that is not a
# sweep. The number of such repeated points goes to $work/repeats.txt.
python3 - "$work/in.json" "$work/data.txt" "$work/repeats.txt" <<'PY'
import json, sys

src, dst, rep = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    with open(src) as f:
        doc = json.load(f)
except ValueError as e:
    sys.exit(f"plot_sweep.sh: not JSON: {e}")
if isinstance(doc, dict) and isinstance(doc.get("sweep"), list):
    doc = doc["sweep"]
if not isinstance(doc, list) or not doc:
    sys.exit("plot_sweep.sh: expected a non-empty JSON array, one object per level")
rows = []
for i, o in enumerate(doc):
    try:
        m = float(o["m"])
        el = float(o["elapsed_s"])
        p95 = float(o["latency_ms"]["p95"])
    except (KeyError, TypeError, ValueError):
        sys.exit(f"plot_sweep.sh: item {i} lacks m, elapsed_s or latency_ms.p95")
    if m <= 0:
        sys.exit(f"plot_sweep.sh: item {i}: m must be positive for a log axis")
    rps = o.get("requests_per_s")
    err = o.get("error", 0)
    rows.append((m, el, p95, float(rps) if rps is not None else float("nan"), err))
rows.sort(key=lambda r: r[0])  # stable: same-m levels keep their order


def fmt_s(v):
    return f"{v:.0f} s" if v >= 100 else (f"{v:.1f} s" if v >= 10 else f"{v:.3g} s")


def fmt_ms(v):
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


by_m = {}
for r in rows:
    by_m.setdefault(r[0], []).append(r)
repeats = []
with open(dst, "w") as f:
    done = set()
    for m, el, p95, rps, err in rows:
        if m in done:
            el_label = p95_label = ""
        else:
            done.add(m)
            same = by_m[m]
            if len(same) > 1:
                repeats.append(f"{len(same)} levels ran at m = {m:g}")
            el_label = " / ".join(fmt_s(r[1]) for r in same)
            p95_label = " / ".join(fmt_ms(r[2]) for r in same) + " ms"
        f.write(f'{m:g} {el:.9g} {p95:.9g} {rps:.9g} {err} "{el_label}" "{p95_label}"\n')
with open(rep, "w") as f:
    f.write("; ".join(repeats))
PY

npoints=$(wc -l <"$work/data.txt")
xlabel="concurrency m (-m), log scale"
repeats=$(cat "$work/repeats.txt")
# A level above the number of codes runs at that number: say so under the axis.
[ -z "$repeats" ] ||
    xlabel+="\\n$repeats (a level above the number of codes runs at that number)"
[ -n "$title" ] || title="getflags --sweep: elapsed and p95 latency by concurrency"
# gnuplot string literal: escape backslashes and double quotes.
gtitle=${title//\\/\\\\}
gtitle=${gtitle//\"/\\\"}
# Elapsed spans orders of magnitude from m=1 to m=1000 against a slow
# server: a log y axis then keeps the high-m end readable.
ylog=$(awk 'NR==1{lo=hi=$2} {if($2<lo)lo=$2; if($2>hi)hi=$2} END{print (lo>0 && hi/lo>20)?1:0}' \
    "$work/data.txt")
if [ "$ylog" = 1 ]; then
    yset='set logscale y 10
set ylabel "elapsed (s), log scale" textcolor rgb "#1f5fa8"
set yrange [*:*]'
else
    yset='set ylabel "elapsed (s)" textcolor rgb "#1f5fa8"
set yrange [0:*]'
fi

cat >"$work/plot.gp" <<GP
data = "$work/data.txt"
set title "$gtitle"
set logscale x 10
set xlabel "$xlabel"
$yset
set y2label "p95 latency (ms)" textcolor rgb "#c0392b"
set ytics nomirror textcolor rgb "#1f5fa8"
set y2tics textcolor rgb "#c0392b"
set y2range [0:*]
set grid xtics ytics lc rgb "#dddddd"
set key outside top center horizontal
set offsets graph 0.06, graph 0.06, graph 0.12, 0
set xtics nomirror
set format x "%g"
set style line 1 lc rgb "#1f5fa8" lw 2 pt 7 ps 1.2
set style line 2 lc rgb "#c0392b" lw 2 pt 5 ps 1.2 dt 2
plot data using 1:2 axes x1y1 with linespoints ls 1 title "elapsed (s)", \\
     data using 1:3 axes x1y2 with linespoints ls 2 title "p95 latency (ms)", \\
     data using 1:2:6 axes x1y1 with labels left offset 0.9,0.9 \\
         textcolor rgb "#1f5fa8" font ",9" notitle, \\
     data using 1:3:7 axes x1y2 with labels offset 0,-1.1 \\
         textcolor rgb "#c0392b" font ",9" notitle
GP

{
    echo 'set terminal pngcairo size 960,600 enhanced font "DejaVu Sans,11"'
    echo "set output \"$work/out.png\""
    cat "$work/plot.gp"
    echo 'set output'
    echo 'set terminal svg size 960,600 dynamic enhanced font "DejaVu Sans,11" background rgb "white"'
    echo "set output \"$work/out.svg\""
    echo 'replot'
    echo 'set output'
} >"$work/all.gp"
gnuplot "$work/all.gp"

mv "$work/out.png" "$out.png"
mv "$work/out.svg" "$out.svg"
echo "plot_sweep.sh: $npoints levels -> $out.png, $out.svg"
