#!/usr/bin/env python3
"""Regenerates the time-series fixtures of src/tsbucket.rs.

For every collection below it creates a time-series collection in a database
named tsbucket_gen on the server at $MONGODB_URI (default: the test server),
inserts varied measurements, then saves

  <name>.buckets.bson       the raw bucket documents of system.buckets.<name>
  <name>.measurements.bson  the raw measurements, find() in natural order

and drops the database. Deterministic (fixed seed), so a rerun against the same
server gives the same measurements (ObjectIds aside).

A field missing from the first measurement of a bucket but present later gets its
column after the columns seen before, so unpacking puts it after them (as mongod
does), while this server's find returns each measurement in its inserted field
order. The data below keeps the first measurement of every bucket complete so that
both orders agree and the bytes can be compared exactly.
"""
import datetime
import math
import os
import random
import struct
import sys

import bson
import pymongo
from bson import (Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId,
                  Regex, Timestamp)
from bson.raw_bson import RawBSONDocument

URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:38149/?directConnection=true")
OUT = os.path.dirname(os.path.abspath(__file__))
DB = "tsbucket_gen"
RAW = bson.CodecOptions(document_class=RawBSONDocument)
T0 = datetime.datetime(2024, 3, 1)
rnd = random.Random(20240301)


def at(i, step=1.0):
    return T0 + datetime.timedelta(seconds=i * step)


def ints():
    """1150 measurements, 1100 under one meta value (a full bucket of 1000), scalar meta,
    small and large deltas. Short field names keep the files small."""
    docs = []
    big = 1 << 40
    for i in range(1150):
        d = {"t": at(i), "m": 0 if i < 1100 else 1, "s": i, "n": -i * 3,
             "b": Int64(big), "i": [2**31 - 1, -2**31, 0, 1][i % 4],
             "r": rnd.randint(-1000, 1000), "c": 7}
        big += rnd.choice([1, -1, 1 << 35, -(1 << 33), 12345678901])
        if i % 7 == 3:
            del d["r"]
        if i % 100 == 50:
            d["x"] = Int64(i)
        docs.append(d)
    return {"timeField": "t", "metaField": "m", "granularity": "seconds"}, docs


def doubles():
    """No meta; integral, fractional, special and mixed-scale doubles."""
    specials = [float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 5e-324,
                1.7976931348623157e308, 1e300, -1e-300]
    docs = []
    for i in range(200):
        d = {"t": at(i, 0.5), "integral": float(i * 10), "tenths": round(i * 0.1, 1),
             "cents": round(100 + i * 0.01, 2), "scale4": i * 0.0001,
             "scale8": i * 1e-8, "noisy": rnd.random() * 1000,
             "special": specials[i % len(specials)],
             "mixed": [1.5, 2.25, 3.125, 1e-8, 123456789.0, float(i)][i % 6]}
        if i % 11 == 5:
            del d["noisy"]
        docs.append(d)
    return {"timeField": "t"}, docs


def strings():
    """Document meta with unsorted keys; short, long, repeating and empty strings."""
    metas = [
        {"zone": "eu", "host": {"name": "b", "dc": 2}, "arr": [{"k2": 1, "k1": 2}, 3]},
        {"b": 1, "a": {"d": {"z": 1, "y": 2}, "c": None}},
        {"only": "x"},
    ]
    docs = []
    for i in range(150):
        d = {"time": at(i), "meta": metas[i % 3], "short": "s%d" % i,
             "long": "a fairly long string value number %06d" % i,
             "rep": "same", "sixteen": "0123456789abcde%s" % "xyz"[i % 3],
             "empty": "" if i % 2 else "e", "uni": "ünïcödé-%d" % (i % 5)}
        if i % 5 == 3:
            del d["long"]
        docs.append(d)
    return {"timeField": "time", "metaField": "meta"}, docs


def objects():
    """Nested objects and arrays whose shape changes; fields missing here and there."""
    docs = []
    for i in range(200):
        o = {"x": i, "y": {"deep": i * 2, "name": "n%d" % (i % 4)}}
        if i % 3 == 0:
            o["z"] = [i, i + 1, {"w": i}]
        if i % 10 == 7:
            o = {"y": {"other": True}}
        arr = list(range(i % 5))
        d = {"ts": at(i), "tag": "sensor-%d" % (i % 4), "o": o, "arr": arr,
             "empty_obj": {}, "empty_arr": []}
        if i % 4 == 1:
            d["arr"] = [{"a": i}, {"b": [i, {"c": i}]}]
        if i % 6 == 5:
            del d["o"]
        if i >= 150:
            del d["empty_obj"]
        docs.append(d)
    return {"timeField": "ts", "metaField": "tag"}, docs


def types():
    """Every BSON type that a measurement can hold, changing type within one field."""
    oid = ObjectId("65f1a2b3c4d5e6f708091a2b")
    vals = [None, True, False, 42, Int64(-42), 4.5, "str", Decimal128("1.10"),
            Decimal128("-Infinity"), Decimal128("NaN"), Timestamp(1700000000, 7),
            datetime.datetime(1969, 12, 31, 23, 59, 59), oid, Binary(b"\x01\x02", 0),
            Binary(b"x" * 40, 5), Binary(b"0123456789abcdef", 4), Regex("^a.*b$", "im"),
            Code("function(){}"), MinKey(), MaxKey(), {"d": 1}, [1, "two"]]
    docs = []
    for i in range(150):
        d = {"t": at(i), "m": {"site": i % 2, "kind": "k"},
             "any": vals[i % len(vals)],
             "dec": Decimal128("%d.%02d" % (i, i % 100)),
             "ts": Timestamp(1700000000 + i // 3, i % 3),
             "date": datetime.datetime(2020, 1, 1) + datetime.timedelta(milliseconds=i * 1500),
             "oid": ObjectId(("%08x" % (0x65000000 + i)) + "a1b2c3d4e5" + "%06x" % (i * 3)),
             "flag": i % 3 == 0, "bin": Binary(bytes([i % 256, 1, 2]), 0),
             "nul": None}
        if i % 9 == 4:
            del d["any"]
        docs.append(d)
    return {"timeField": "t", "metaField": "m"}, docs


def raw_odd():
    """Deprecated types that drivers cannot build: undefined, symbol, DBPointer."""
    docs = []
    for i in range(20):
        body = b""
        body += b"\x09t\x00" + struct.pack("<q", int(at(i).replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))
        body += b"\x06undef\x00"
        sym = ("sym%d" % (i % 2)).encode() + b"\x00"
        body += b"\x0esym\x00" + struct.pack("<i", len(sym)) + sym
        ns = b"db.coll\x00"
        body += b"\x0cptr\x00" + struct.pack("<i", len(ns)) + ns + bytes(range(12))
        body += b"\x10n\x00" + struct.pack("<i", i)
        raw = struct.pack("<i", len(body) + 5) + body + b"\x00"
        docs.append(RawBSONDocument(raw))
    return {"timeField": "t"}, docs


COLLECTIONS = {"ints": ints, "doubles": doubles, "strings": strings, "objects": objects,
               "types": types, "raw_odd": raw_odd}


def main():
    client = pymongo.MongoClient(URI)
    client.drop_database(DB)
    db = client[DB]
    try:
        for name, make in COLLECTIONS.items():
            options, docs = make()
            db.create_collection(name, timeseries=options)
            db[name].insert_many(docs, ordered=True)
            buckets = db.get_collection("system.buckets." + name, codec_options=RAW)
            with open(os.path.join(OUT, name + ".buckets.bson"), "wb") as f:
                for b in buckets.find().sort("_id", 1):
                    f.write(b.raw)
            coll = db.get_collection(name, codec_options=RAW)
            n = 0
            with open(os.path.join(OUT, name + ".measurements.bson"), "wb") as f:
                for m in coll.find().sort("$natural", 1):
                    f.write(m.raw)
                    n += 1
            print(name, options, n, "measurements", file=sys.stderr)
    finally:
        client.drop_database(DB)


if __name__ == "__main__":
    main()
