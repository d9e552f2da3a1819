import zlib, re, pickle
data = open('/usr/bin/kubectl','rb').read()

def varint(b, i):
    r = s = 0
    while True:
        c = b[i]; i += 1
        r |= (c & 0x7f) << s; s += 7
        if c < 0x80: return r, i

def fields(b):
    i = 0
    while i < len(b):
        k, i = varint(b, i)
        f, w = k >> 3, k & 7
        if w == 0: v, i = varint(b, i)
        elif w == 2:
            n, i = varint(b, i); v = b[i:i+n]; i += n
        elif w == 1: v = b[i:i+8]; i += 8
        elif w == 5: v = b[i:i+4]; i += 4
        else: raise ValueError(w)
        yield f, v

def parse_field(b):
    d = {}
    for f, v in fields(b):
        if f == 1: d['name'] = v.decode()
        elif f == 3: d['number'] = v
        elif f == 4: d['label'] = v
        elif f == 5: d['type'] = v
        elif f == 6: d['type_name'] = v.decode()
    return d

def parse_msg(b, prefix, out):
    name = None; flds = []; nested = []; mapentry = False
    for f, v in fields(b):
        if f == 1: name = v.decode()
        elif f == 2: flds.append(parse_field(v))
        elif f == 3: nested.append(v)
        elif f == 7:
            for ff, vv in fields(v):
                if ff == 7 and vv: mapentry = True
    full = prefix + '.' + name
    out[full] = {'fields': flds, 'map': mapentry}
    for n in nested: parse_msg(n, full, out)

msgs = {}
for m in re.finditer(rb'\x1f\x8b\x08\x00\x00\x00\x00\x00', data):
    i = m.start()
    try:
        out = zlib.decompressobj(16+zlib.MAX_WBITS).decompress(data[i:i+2_000_000])
    except Exception:
        continue
    if b'.proto' not in out[:200]: continue
    pkg = None
    for f, v in fields(out):
        if f == 2: pkg = v.decode()
    for f, v in fields(out):
        if f == 4: parse_msg(v, '.' + pkg, msgs)
pickle.dump(msgs, open('/tmp/pbgen/msgs.pkl','wb'))
print(len(msgs))
for k in ['.k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta', '.k8s.io.api.apps.v1.DeploymentSpec', '.k8s.io.api.core.v1.Secret']:
    print(k, msgs[k])
