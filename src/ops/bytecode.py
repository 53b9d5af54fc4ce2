"""liftoff's byte-code compiler for the requirements layer.

Run as `python -S -s -B bytecode.py LIST` in a folder holding LIST, src/ and out/, with
PYTHONHASHSEED=0 and nothing else in the environment. LIST holds NUL-terminated triples
(source, output, the source's path in the image); each source is compiled as pip's installer
compiles it (py_compile, warnings silenced), with unchecked-hash invalidation (PEP 552), so the
bytes hold no file time. A source that does not compile gets no output, as with pip. One
process compiles every file in the list's order: the bytes depend only on the list.
`done` is written last, with the number of files compiled.
"""

import py_compile
import sys
import warnings


def main(listing):
    with open(listing, "rb") as f:
        fields = f.read().split(b"\0")
    made = 0
    for i in range(0, len(fields) - 2, 3):
        src, out, dfile = (
            fields[i + k].decode("utf-8", "surrogateescape") for k in range(3)
        )
        try:
            py_compile.compile(
                src,
                cfile=out,
                dfile=dfile,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
            made += 1
        except py_compile.PyCompileError:
            pass
    with open("done", "w") as f:
        f.write("%d\n" % made)


with warnings.catch_warnings():
    warnings.filterwarnings("ignore")
    main(sys.argv[1])
