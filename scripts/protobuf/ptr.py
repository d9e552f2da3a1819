import re, struct, pickle, collections
data = open('/usr/bin/kubectl','rb').read()
RO_VA, RO_OFF, RO_SZ = 0x1d25000, 0x1925000, 0xafb744
def va2off(va): return va - RO_VA + RO_OFF
def off2va(o): return o - RO_OFF + RO_VA
def uvarint(b, i):
    r = s = 0
    while True:
        c = b[i]; i += 1; r |= (c & 0x7f) << s; s += 7
        if c < 0x80: return r, i
blobs = {}  # va -> (name, tag)
ro = data[RO_OFF:RO_OFF+RO_SZ]
for m in re.finditer(rb'protobuf:"', ro):
    q = m.start()
    # search back for blob start
    for p in range(q-1, max(q-400, 0), -1):
        fl = ro[p]
        if fl & 2 == 0 or fl > 15: continue
        try:
            n, i = uvarint(ro, p+1)
            if n == 0 or n > 80: continue
            name = ro[i:i+n]
            if not re.fullmatch(rb'[A-Za-z_][A-Za-z0-9_]*', name): continue
            t, j = uvarint(ro, i+n)
            if not (j <= q < j+t): continue
            tag = ro[j:j+t]
            if not tag.endswith(b'"'): continue
            blobs[off2va(RO_OFF+p)] = (name.decode(), tag.decode())
            break
        except IndexError:
            continue
print('blobs', len(blobs))
kinds = collections.defaultdict(collections.Counter)
hits = 0
for idx, (v,) in enumerate(struct.iter_unpack('<Q', ro[:len(ro)//8*8])):
    if v in blobs:
        o = idx*8
        typ = struct.unpack_from('<Q', ro, o+8)[0]
        to = typ - RO_VA
        if 0 <= to < len(ro):
            kind = ro[to+23] & 0x1f
            kinds[v][kind] += 1; hits += 1
print('hits', hits)
res = {}
amb = 0
for va, (name, tag) in blobs.items():
    c = kinds.get(va)
    if not c: continue
    if len(c) > 1: amb += 1
    res[tag] = (name, dict(c))
print('ambiguous', amb, 'tags', len(res))
pickle.dump(res, open('/tmp/pbgen/tags.pkl','wb'))
for t,(n,c) in list(res.items())[:15]: print(n, t, c)

# ---- grouping into structs
entries = {}  # offset -> (blobva, kind)
for idx, (v,) in enumerate(struct.iter_unpack('<Q', ro[:len(ro)//8*8])):
    if v in blobs:
        o = idx*8
        typ = struct.unpack_from('<Q', ro, o+8)[0]
        to = typ - RO_VA
        if 0 <= to < len(ro):
            entries[o] = (v, ro[to+23] & 0x1f)

def is_field(o):
    v, typ = struct.unpack_from('<QQ', ro, o)
    return RO_VA <= v < RO_VA+len(ro) and RO_VA <= typ < RO_VA+len(ro)
qs = [q for (q,) in struct.iter_unpack('<Q', ro[:len(ro)//8*8])]
groups = []
lo, hi = RO_VA, RO_VA+len(ro)
for k in range(len(qs)-2):
    p = qs[k]
    if lo <= p < hi:
        n = qs[k+1]
        if 0 < n <= 120 and qs[k+2] == n:
            base = p - RO_VA
            if base % 8: continue
            g = [base + 24*x for x in range(n)]
            if any(o in entries for o in g[:3]) or any(o in entries for o in g):
                if all(is_field(o) for o in g):
                    pkg = ''
                    try:
                        t0 = (k-1)*8 - 48
                        nameoff = struct.unpack_from('<i', ro, t0+40)[0]
                        ln, st = uvarint(ro, nameoff+1)
                        tname = ro[st:st+ln].decode('latin1')
                        uo = struct.unpack_from('<i', ro, k*8+24)[0]
                        ln, st = uvarint(ro, uo+1)
                        pkg = ro[st:st+ln].decode('latin1') + '|' + tname
                    except Exception:
                        pass
                    groups.append((pkg, [o for o in g if o in entries]))
print('struct arrays', len(groups))
def ptag(tag):
    m = re.search(r'protobuf:"([^"]*)"', tag); parts = m.group(1).split(',')
    num = int(parts[1]); pname = [p[5:] for p in parts if p.startswith('name=')]
    j = re.search(r'json:"([^"]*)"', tag)
    jn, omit = None, False
    if j:
        js = j.group(1).split(','); jn = js[0]; omit = 'omitempty' in js[1:]
    return num, (pname[0] if pname else None), jn, omit
out = []
for pkg, g in groups:
    fl = {'_pkg': pkg}
    for o in g:
        va, kind = entries[o]
        name, tag = blobs[va]
        try:
            num, pname, jn, omit = ptag(tag)
        except (IndexError, ValueError, AttributeError):
            continue
        fl[num] = (pname, jn, omit, kind, name)
    out.append(fl)
pickle.dump(out, open('/tmp/pbgen/groups.pkl','wb'))
print('groups', len(out))
for fl in out[:5]: print(fl)
