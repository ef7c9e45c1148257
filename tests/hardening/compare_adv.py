#!/usr/bin/env python3
"""compare_adv.py - tests/ext4/compare.py for the adversarial trees.

Same commands and arguments as compare.py. One difference: debugfs prints
an xattr name with bytes it does not consider printable (ü in "user.ü") as
hex bytes ("75 73 65 72 2e c3 bc"); compare.py's debugfs view takes that
text for the name. Here such names are decoded back before comparing. (A
real name never looks like that: it starts with a namespace and a dot.)
"""
import os
import re
import sys

sys.dont_write_bytecode = True     # no __pycache__ in tests/ext4
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "ext4"))
import compare  # noqa: E402

HEX_NAME = re.compile(r"^[0-9a-f]{2}( [0-9a-f]{2})*$")
_parse_stat = compare.parse_stat


def parse_stat(text):
    e = _parse_stat(text)
    e["xattr_names"] = sorted(
        os.fsdecode(bytes.fromhex(n.replace(" ", ""))) if HEX_NAME.match(n) else n
        for n in e["xattr_names"])
    return e


compare.parse_stat = parse_stat

if __name__ == "__main__":
    cmd = sys.argv[1]
    sys.exit({"snap": compare.cmd_snap, "kernel": compare.cmd_kernel,
              "debugfs": compare.cmd_debugfs}[cmd](sys.argv[2:]) or 0)
