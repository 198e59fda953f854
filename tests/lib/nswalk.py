#!/usr/bin/python3
"""List a mount's registry directories as relative paths (stdlib only).

  nswalk.py MOUNT TAGS

Prints every path below MOUNT, one per line, in the order the directories list them,
descending into every directory except those whose relative path is a line of the file
TAGS (the tag directories: their contents are images, not namespace). Callers sort.
"""
import os
import sys


def main():
    root = sys.argv[1]
    with open(sys.argv[2]) as f:
        tags = set(f.read().split("\n"))

    def walk(rel):
        with os.scandir(os.path.join(root, rel)) as it:
            for e in it:
                p = rel + "/" + e.name if rel else e.name
                print(p)
                if p not in tags and e.is_dir(follow_symlinks=False):
                    walk(p)

    walk("")


if __name__ == "__main__":
    main()
