#!/usr/bin/env python3
"""Write a tar archive from entry specs, keeping names exactly as given
(so tests can build hostile archives: "../evil", "/abs", escaping links).

  mktar.py OUT.tar[.gz|.xz] SPEC...
    file:PATH=CONTENT   regular file (CONTENT may be empty)
    big:PATH=N          regular file of N bytes
    dir:PATH            directory
    sym:PATH=TARGET     symbolic link
    hard:PATH=TARGET    hard link to an earlier entry
"""
import io
import sys
import tarfile

out, specs = sys.argv[1], sys.argv[2:]
mode = "w:gz" if out.endswith(".gz") else "w:xz" if out.endswith(".xz") else "w"
with tarfile.open(out, mode, format=tarfile.GNU_FORMAT) as tar:
    for spec in specs:
        kind, _, rest = spec.partition(":")
        path, _, value = rest.partition("=")
        info = tarfile.TarInfo(path)
        info.mtime = 1700000000
        info.mode = 0o755 if kind == "dir" else 0o644
        data = None
        if kind == "file":
            data = value.encode()
        elif kind == "big":
            data = bytes((i * 7) & 0xFF for i in range(int(value)))
        elif kind == "dir":
            info.type = tarfile.DIRTYPE
        elif kind == "sym":
            info.type, info.linkname = tarfile.SYMTYPE, value
        elif kind == "hard":
            info.type, info.linkname = tarfile.LNKTYPE, value
        else:
            sys.exit(f"mktar.py: unknown kind {kind!r}")
        if data is not None:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        else:
            tar.addfile(info)
