"""Rewrites the RECORD lines of files in the venv's bin/ after their shebangs
were made relocatable, so each RECORD again matches the bytes installed (pip
checks them on uninstall) and, unlike the build path, is the same every build.

    python update_records.py VENV
"""
import base64
import csv
import glob
import hashlib
import io
import os
import sys


def record_hash(path: str) -> tuple[str, str]:
    with open(path, "rb") as f:
        data = f.read()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}", str(len(data))


def main() -> None:
    venv = os.path.realpath(sys.argv[1])
    bin_dir = os.path.join(venv, "bin")
    for record in glob.glob(os.path.join(venv, "lib", "python*", "site-packages", "*.dist-info", "RECORD")):
        site_packages = os.path.dirname(os.path.dirname(record))
        with open(record, newline="") as f:
            rows = list(csv.reader(f))
        changed = False
        for row in rows:
            if len(row) != 3 or not row[1]:
                continue
            target = os.path.realpath(os.path.join(site_packages, row[0]))
            if os.path.dirname(target) == bin_dir and os.path.isfile(target):
                new_hash, new_size = record_hash(target)
                if (row[1], row[2]) != (new_hash, new_size):
                    row[1], row[2] = new_hash, new_size
                    changed = True
        if changed:
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows)
            with open(record, "w", newline="") as f:
                f.write(out.getvalue())


if __name__ == "__main__":
    main()
