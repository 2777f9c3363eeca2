#!/usr/bin/env python3
# Generates lua/moonlet/api/proto_schema.lua from the protobuf descriptors
# that kubectl carries: every Kubernetes Go package registers its
# generated.proto as a gzipped FileDescriptorProto, so the field numbers come
# from the same generated.proto files the API server uses, for kubectl's
# version. Re-run (python3, no modules needed) with the kubectl to match:
#   python3 tests/gen_proto_schema.py [path/to/kubectl] > lua/moonlet/api/proto_schema.lua
import json, re, shutil, subprocess, sys, zlib

FILES = ["k8s.io/api/core/v1/generated.proto", "k8s.io/api/apps/v1/generated.proto",
         "k8s.io/api/batch/v1/generated.proto", "k8s.io/api/coordination/v1/generated.proto",
         "k8s.io/api/authorization/v1/generated.proto", "k8s.io/api/authentication/v1/generated.proto",
         "k8s.io/api/autoscaling/v1/generated.proto", "k8s.io/api/autoscaling/v2/generated.proto",
         "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto",
         "k8s.io/apimachinery/pkg/runtime/generated.proto",
         "k8s.io/apimachinery/pkg/util/intstr/generated.proto",
         "k8s.io/apimachinery/pkg/api/resource/generated.proto"]
# apiVersion/kind served by moonlet -> message (batch/v1beta1 CronJob is
# decoded as the v1 message, as moonlet serves it through batch/v1).
KINDS = [("v1", "Pod", "core.v1.Pod"), ("v1", "ConfigMap", "core.v1.ConfigMap"),
         ("v1", "Service", "core.v1.Service"), ("v1", "Endpoints", "core.v1.Endpoints"),
         ("v1", "Namespace", "core.v1.Namespace"), ("v1", "Node", "core.v1.Node"),
         ("v1", "Event", "core.v1.Event"), ("apps/v1", "Deployment", "apps.v1.Deployment"),
         ("apps/v1", "ReplicaSet", "apps.v1.ReplicaSet"), ("apps/v1", "DaemonSet", "apps.v1.DaemonSet"),
         ("apps/v1", "ControllerRevision", "apps.v1.ControllerRevision"),
         ("batch/v1", "Job", "batch.v1.Job"), ("batch/v1", "CronJob", "batch.v1.CronJob"),
         ("batch/v1beta1", "CronJob", "batch.v1.CronJob"),
         ("coordination.k8s.io/v1", "Lease", "coordination.v1.Lease"),
         ("authorization.k8s.io/v1", "SelfSubjectAccessReview", "authorization.v1.SelfSubjectAccessReview"),
         ("authentication.k8s.io/v1", "SelfSubjectReview", "authentication.v1.SelfSubjectReview"),
         ("autoscaling/v1", "HorizontalPodAutoscaler", "autoscaling.v1.HorizontalPodAutoscaler"),
         ("autoscaling/v2", "HorizontalPodAutoscaler", "autoscaling.v2.HorizontalPodAutoscaler")]
ROOTS = sorted({k[2] for k in KINDS} | {"runtime.Unknown"})
TYPES = {1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64",
         7: "fixed32", 8: "bool", 9: "string", 11: "message", 12: "bytes", 13: "uint32",
         14: "enum", 15: "sfixed32", 16: "sfixed64", 17: "sint32", 18: "sint64"}


def fields(buf):
  """Yields (number, wire type, value) of one protobuf message."""
  i = 0
  def varint():
    nonlocal i
    v = s = 0
    while True:
      b = buf[i]; i += 1
      v |= (b & 0x7f) << s; s += 7
      if b < 0x80: return v
  while i < len(buf):
    key = varint(); num, wt = key >> 3, key & 7
    if wt == 0: yield num, wt, varint()
    elif wt == 2:
      n = varint(); yield num, wt, buf[i:i + n]; i += n
    elif wt == 1: yield num, wt, buf[i:i + 8]; i += 8
    elif wt == 5: yield num, wt, buf[i:i + 4]; i += 4
    else: raise ValueError("wire type %d" % wt)


def short(name):
  name = name.lstrip(".")
  for p in ("k8s.io.api.", "k8s.io.apimachinery.pkg.apis.", "k8s.io.apimachinery.pkg.util.",
            "k8s.io.apimachinery.pkg.api.", "k8s.io.apimachinery.pkg."):
    if name.startswith(p): return name[len(p):]
  return name


def message(buf, prefix, out):
  name, flds, nested, is_map = None, [], [], False
  for num, _, v in fields(buf):
    if num == 1: name = v.decode()
    elif num == 2: flds.append(v)
    elif num == 3: nested.append(v)
    elif num == 7:
      is_map = any(n == 7 and x == 1 for n, _, x in fields(v))
  full = prefix + "." + name
  out[full] = {"map": is_map, "fields": []}
  for f in flds:
    d = {"label": 1}
    for num, _, v in fields(f):
      if num == 1: d["name"] = v.decode()
      elif num == 3: d["number"] = v
      elif num == 4: d["label"] = v
      elif num == 5: d["type"] = TYPES[v]
      elif num == 6: d["type_name"] = v.decode()
      elif num == 8:  # FieldOptions: gogoproto.nullable (65001) = false is a Go non-pointer
        d["nonnull"] = any(n == 65001 and x == 0 for n, _, x in fields(v))
    out[full]["fields"].append(d)
  for n in nested: message(n, full, out)


def main():
  kubectl = sys.argv[1] if len(sys.argv) > 1 else shutil.which("kubectl")
  version = json.loads(subprocess.run([kubectl, "version", "--client", "-o", "json"],
                                      capture_output=True, text=True).stdout)["clientVersion"]["gitVersion"]
  data = open(kubectl, "rb").read()
  msgs, seen = {}, set()
  for m in re.finditer(b"\x1f\x8b\x08\x00\x00\x00\x00\x00", data):
    try: fd = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[m.start():m.start() + 1 << 20])
    except zlib.error: continue
    top = list(fields(fd)) if fd[:1] == b"\x0a" else []
    fname = top[0][2].decode() if top else ""
    if fname not in FILES or fname in seen: continue
    seen.add(fname)
    pkg = next(v.decode() for n, _, v in top if n == 2)
    for n, _, v in top:
      if n == 4: message(v, "." + pkg, msgs)
  missing = set(FILES) - seen
  if missing: sys.exit("descriptors not found in %s: %s" % (kubectl, ", ".join(sorted(missing))))
  by_short = {short(k): k for k in msgs}
  want, todo = set(), list(ROOTS)
  while todo:
    s = todo.pop()
    if s in want: continue
    want.add(s)
    for f in msgs[by_short[s]]["fields"]:
      tn = f.get("type_name")
      if not tn: continue
      if msgs[tn]["map"]:
        for g in msgs[tn]["fields"]:
          if g.get("type_name"): todo.append(short(g["type_name"]))
      else: todo.append(short(tn))
  w = sys.stdout.write
  w("-- Protobuf field numbers of the Kubernetes messages moonlet decodes, made\n")
  w("-- mechanically by tests/gen_proto_schema.py from the generated.proto\n")
  w("-- descriptors built into kubectl %s. Do not edit.\n" % version)
  w("-- messages[name][number] = { n = JSON name, t = protobuf type | \"message\" |\n")
  w("-- \"map\", r = true when repeated, m = message name (for a map: k = key\n")
  w("-- type, m = value type: a scalar type name or a message name), z = true\n")
  w("-- for a scalar that is not a pointer in Go (its zero value means unset) }.\n")
  w("local M = {}\n\nM.version = %s\n\n" % json.dumps(version))
  w("-- apiVersion/kind -> message of the object in a runtime.Unknown envelope.\nM.kinds = {\n")
  for av, k, msg in KINDS: w('  ["%s/%s"] = "%s",\n' % (av, k, msg))
  w("}\n\nM.messages = {\n")
  for s in sorted(want):
    w('  ["%s"] = {\n' % s)
    for f in sorted(msgs[by_short[s]]["fields"], key=lambda f: f["number"]):
      tn = f.get("type_name")
      if tn and msgs[tn]["map"]:
        kv = {g["number"]: g for g in msgs[tn]["fields"]}
        val = short(kv[2]["type_name"]) if kv[2].get("type_name") else kv[2]["type"]
        w('    [%d] = { n = "%s", t = "map", k = "%s", m = "%s" },\n' % (f["number"], f["name"], kv[1]["type"], val))
        continue
      extra = ", r = true" if f["label"] == 3 else ""
      if f.get("nonnull") and f["label"] != 3 and not tn: extra += ", z = true"
      if tn: extra += ', m = "%s"' % short(tn)
      w('    [%d] = { n = "%s", t = "%s"%s },\n' % (f["number"], f["name"], f["type"], extra))
    w("  },\n")
  w("}\n\nreturn M\n")


main()
