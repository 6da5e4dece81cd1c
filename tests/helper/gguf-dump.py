#!/usr/bin/env python3
"""gguf-dump: an independent GGUF reader for cairn's shell tests.

Standard library only, written from the GGUF specification (not from
cairn's reader), so a test can check what `cairn quantize` wrote the way
another runtime would read it.

  gguf-dump.py FILE              one JSON object: version, metadata
                                 (scalars and strings; arrays as their
                                 length), tensors (name, type, dims, offset)
  gguf-dump.py FILE NAME         the tensor's values, dequantised to floats
                                 (F32, F16, BF16, Q8_0), one JSON array
"""
import json
import struct
import sys

ALIGN_DEFAULT = 32
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
           10: "<Q", 11: "<q", 12: "<d"}
TYPE_NAMES = {0: "F32", 1: "F16", 8: "Q8_0", 30: "BF16"}


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.p:self.p + n].decode("utf-8")
        self.p += n
        return s

    def value(self, t):
        if t in SCALARS:
            return self.take(SCALARS[t])
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        raise ValueError("unknown metadata type %d" % t)


def parse(data):
    r = Reader(data)
    if data[:4] != b"GGUF":
        raise ValueError("not GGUF")
    r.p = 4
    version, nt, nkv = r.take("<I"), r.take("<Q"), r.take("<Q")
    kv = {}
    for _ in range(nkv):
        k = r.string()
        kv[k] = r.value(r.take("<I"))
    tensors = []
    for _ in range(nt):
        name = r.string()
        dims = [r.take("<Q") for _ in range(r.take("<I"))]
        tensors.append({"name": name, "type": TYPE_NAMES.get(r.take("<I"), "other"),
                        "dims": dims, "offset": r.take("<Q")})
    align = kv.get("general.alignment", ALIGN_DEFAULT)
    start = (r.p + align - 1) // align * align
    for t in tensors:
        t["start"] = start + t["offset"]
    return version, kv, tensors


def half(h):
    return struct.unpack("<e", struct.pack("<H", h))[0]


def values(data, t):
    n = 1
    for d in t["dims"]:
        n *= d
    p = t["start"]
    if t["type"] == "F32":
        return list(struct.unpack_from("<%df" % n, data, p))
    if t["type"] == "F16":
        return list(struct.unpack_from("<%de" % n, data, p))
    if t["type"] == "BF16":
        return [struct.unpack("<f", struct.pack("<I", h << 16))[0]
                for h in struct.unpack_from("<%dH" % n, data, p)]
    if t["type"] == "Q8_0":
        out = []
        for b in range(n // 32):
            d = half(struct.unpack_from("<H", data, p + 34 * b)[0])
            out += [q * d for q in struct.unpack_from("<32b", data, p + 34 * b + 2)]
        return out
    raise ValueError("cannot read type %s" % t["type"])


def main():
    data = open(sys.argv[1], "rb").read()
    version, kv, tensors = parse(data)
    if len(sys.argv) > 2:
        t = next(t for t in tensors if t["name"] == sys.argv[2])
        print(json.dumps(values(data, t)))
        return
    meta = {k: (len(v) if isinstance(v, list) else v) for k, v in kv.items()}
    print(json.dumps({"version": version, "metadata": meta, "tensors": tensors}))


if __name__ == "__main__":
    main()
