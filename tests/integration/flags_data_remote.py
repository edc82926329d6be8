"""flags_data against the REMOTE site's names: every metadata.json is
byte for byte what the REMOTE site serves for its code, as listed in
flags_data/remote-metadata.tsv, and the generator rebuilds them exactly.

Usage: flags_data_remote.py SRCDIR"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SRCDIR = sys.argv.pop(1) if len(sys.argv) > 1 else os.environ.get("GF_SRCDIR", "")
DATA = os.path.join(SRCDIR, "flags_data")
TSV = os.path.join(DATA, "remote-metadata.tsv")


def read_tsv():
    """The TSV's rows as (iso_cc, tld_cc, gec_cc, country) tuples."""
    rows = []
    with open(TSV, encoding="utf-8", newline="") as f:
        for line in f:
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            assert len(fields) == 4, "malformed TSV row: %r" % line
            rows.append(tuple(fields))
    return rows


def remote_bytes(iso, tld, gec, country):
    """What the REMOTE site serves: four keys in its order, ", " and ": "
    between items, non-ASCII as lower-case \\u escapes, no newline."""
    obj = {"tld_cc": tld, "iso_cc": iso, "country": country, "gec_cc": gec}
    return json.dumps(obj, ensure_ascii=True, separators=(", ", ": ")).encode("ascii")


class RemoteMetadata(unittest.TestCase):
    def setUp(self):
        self.rows = read_tsv()

    def test_tsv_lists_the_194_codes_of_country_codes_txt(self):
        with open(os.path.join(DATA, "country_codes.txt"), encoding="ascii") as f:
            codes = f.read().split()
        self.assertEqual(len(codes), 194)
        self.assertEqual([r[0] for r in self.rows], codes)
        self.assertEqual(sorted(os.listdir(os.path.join(DATA, "flags"))),
                         sorted(c.lower() for c in codes))

    def test_every_metadata_file_is_what_remote_serves(self):
        wrong = []
        for iso, tld, gec, country in self.rows:
            path = os.path.join(DATA, "flags", iso.lower(), "metadata.json")
            with open(path, "rb") as f:
                got = f.read()
            if got != remote_bytes(iso, tld, gec, country):
                wrong.append("%s: %r" % (iso, got))
        self.assertEqual(wrong, [])

    def test_serialisation_details(self):
        """Spot checks of the format itself, independent of json.dumps."""
        def raw(cc):
            with open(os.path.join(DATA, "flags", cc, "metadata.json"), "rb") as f:
                return f.read()
        self.assertEqual(raw("br"),
                         b'{"tld_cc": ".br", "iso_cc": "BR", "country": "Brazil", "gec_cc": "BR"}')
        self.assertEqual(raw("ci"), b'{"tld_cc": ".ci", "iso_cc": "CI", '
                                    b'"country": "C\\u00f4te d\'Ivoire", "gec_cc": "IV"}')
        self.assertEqual(raw("gb")[:17], b'{"tld_cc": ".uk",')
        for cc in ("vc", "tr", "us", "cd"):
            self.assertFalse(raw(cc).endswith(b"\n"))
        names = {cc: json.loads(raw(cc))["country"] for cc in ("vc", "tr", "us", "cd", "cg")}
        self.assertEqual(names, {"vc": "Grenadines", "tr": "Turkey",
                                 "us": "United States of America",
                                 "cd": "Congo (Kinshasa)", "cg": "Congo (Brazzaville)"})

    def test_names_give_distinct_file_names(self):
        """getflags saves <country with spaces as _>.gif: 194 distinct files."""
        names = {country.replace(" ", "_") for _, _, _, country in self.rows}
        self.assertEqual(len(names), 194)

    def test_generator_rebuilds_the_metadata_byte_for_byte(self):
        with tempfile.TemporaryDirectory(prefix="gf-flags-data-") as tmp:
            copy = os.path.join(tmp, "flags_data")
            os.makedirs(os.path.join(copy, "flags"))
            for name in ("make_flags_data.sh", "remote-metadata.tsv"):
                shutil.copy(os.path.join(DATA, name), copy)
            r = subprocess.run(["bash", os.path.join(copy, "make_flags_data.sh"),
                                "--metadata-only"], capture_output=True, timeout=240)
            self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
            for iso, _, _, _ in self.rows:
                rel = os.path.join("flags", iso.lower(), "metadata.json")
                with open(os.path.join(copy, rel), "rb") as f, \
                        open(os.path.join(DATA, rel), "rb") as g:
                    self.assertEqual(f.read(), g.read(), rel)

    def test_generator_refuses_a_damaged_tsv(self):
        with tempfile.TemporaryDirectory(prefix="gf-flags-data-") as tmp:
            copy = os.path.join(tmp, "flags_data")
            os.makedirs(copy)
            shutil.copy(os.path.join(DATA, "make_flags_data.sh"), copy)
            with open(TSV, encoding="utf-8") as f:
                lines = f.readlines()
            first = next(i for i, line in enumerate(lines) if not line.startswith("#"))
            # The first row twice: refused before anything else is written.
            with open(os.path.join(copy, "remote-metadata.tsv"), "w", encoding="utf-8") as f:
                f.writelines(lines[:first + 1] + lines[first:])
            r = subprocess.run(["bash", os.path.join(copy, "make_flags_data.sh"),
                                "--metadata-only"], capture_output=True, timeout=240)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(b"AD listed twice", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
