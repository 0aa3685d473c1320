#!/usr/bin/python3
"""A FUSE filesystem whose reads hang: a stand-in for a network mount that stopped answering.

    hangfs.py MOUNTPOINT RELEASE_FILE [-f]

It holds two files, `ok.md` and `hang.md`. `getattr` and `readdir` answer at once (so a walk
lists both); reading `hang.md` blocks until RELEASE_FILE exists. Debian's python3-fuse.
"""
import errno
import os
import stat
import sys
import time

import fuse

fuse.fuse_python_api = (0, 2)

FILES = {"/ok.md": b"# Fine\n", "/hang.md": b"# Hung until released\n"}
STARTED = time.time()


class HangFS(fuse.Fuse):
    release_file = None

    def getattr(self, path):
        st = fuse.Stat()
        st.st_atime = st.st_mtime = st.st_ctime = int(STARTED)
        if path == "/":
            st.st_mode = stat.S_IFDIR | 0o755
            st.st_nlink = 2
        elif path in FILES:
            st.st_mode = stat.S_IFREG | 0o644
            st.st_nlink = 1
            st.st_size = len(FILES[path])
        else:
            return -errno.ENOENT
        return st

    def readdir(self, path, offset):
        for name in [".", ".."] + [p[1:] for p in FILES]:
            yield fuse.Direntry(name)

    def open(self, path, flags):
        return 0 if path in FILES else -errno.ENOENT

    def read(self, path, size, offset):
        if path == "/hang.md":
            while not os.path.exists(self.release_file):
                time.sleep(0.05)
        return FILES[path][offset:offset + size]


def main():
    mountpoint, release = sys.argv[1], sys.argv[2]
    server = HangFS(usage=__doc__, dash_s_do="setsingle")
    server.release_file = release
    server.multithreaded = True
    server.fuse_args.mountpoint = mountpoint
    server.fuse_args.add("allow_other")
    server.fuse_args.setmod("foreground")
    server.main()


if __name__ == "__main__":
    main()
