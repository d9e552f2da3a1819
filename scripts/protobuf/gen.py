import pickle, collections, re, sys
msgs = pickle.load(open('/tmp/pbgen/msgs.pkl','rb'))
groups = pickle.load(open('/tmp/pbgen/groups.pkl','rb'))
PKG = {
 'k8s.io.apimachinery.pkg.apis.meta.v1': 'meta/v1',
 'k8s.io.apimachinery.pkg.api.resource': 'resource',
 'k8s.io.apimachinery.pkg.util.intstr': 'intstr',
 'k8s.io.apimachinery.pkg.runtime': 'runtime',
}
GROUPS = {'core/v1':'v1','apps/v1':'apps/v1','batch/v1':'batch/v1','rbac/v1':'rbac.authorization.k8s.io/v1',
 'networking/v1':'networking.k8s.io/v1','policy/v1':'policy/v1','scheduling/v1':'scheduling.k8s.io/v1',
 'authentication/v1':'authentication.k8s.io/v1','authorization/v1':'authorization.k8s.io/v1',
 'coordination/v1':'coordination.k8s.io/v1','discovery/v1':'discovery.k8s.io/v1','autoscaling/v1':'autoscaling/v1',
 'autoscaling/v2':'autoscaling/v2','storage/v1':'storage.k8s.io/v1','certificates/v1':'certificates.k8s.io/v1',
 'events/v1':'events.k8s.io/v1','node/v1':'node.k8s.io/v1','admissionregistration/v1':'admissionregistration.k8s.io/v1',
 'flowcontrol/v1':'flowcontrol.apiserver.k8s.io/v1'}
def short(full):
    full = full.lstrip('.')
    for p, s in PKG.items():
        if full.startswith(p + '.'): return s + '.' + full[len(p)+1:]
    m = re.match(r'k8s\.io\.api\.(\w+)\.(\w+)\.(.*)', full)
    if m: return f'{m.group(1)}/{m.group(2)}.{m.group(3)}'
    return None
S = {m: short(m) for m in msgs}
SPECIAL = {'resource.Quantity':'quantity','meta/v1.Time':'time','meta/v1.MicroTime':'microtime',
 'intstr.IntOrString':'intorstring','runtime.RawExtension':'rawextension','meta/v1.Duration':'duration',
 'meta/v1.FieldsV1':'fieldsv1', 'authentication/v1.ExtraValue':'stringlist', 'authorization/v1.ExtraValue':'stringlist', 'certificates/v1.ExtraValue':'stringlist'}
SCALAR = {1:'double',2:'float',3:'int64',4:'uint64',5:'int32',6:'fixed64',7:'fixed32',8:'bool',9:'string',12:'bytes',13:'uint32',15:'sfixed32',16:'sfixed64',17:'sint32',18:'sint64'}
# kinds
kinds = {}
for full, m in msgs.items():
    s = S[full]
    if not s: continue
    pkg, name = s.split('.', 1)
    if pkg not in GROUPS or '.' in name: continue
    f1 = [f for f in m['fields'] if f['number'] == 1]
    if f1 and f1[0]['name'] == 'metadata' and f1[0].get('type_name','').endswith('meta.v1.ObjectMeta') and not name.endswith('TemplateSpec'):
        kinds[(GROUPS[pkg], name)] = s
# closure
need = set(kinds.values()) | {'meta/v1.DeleteOptions'}
byshort = {S[k]: k for k in msgs if S[k]}
todo = list(need)
while todo:
    s = todo.pop()
    if s in SPECIAL: continue
    for f in msgs[byshort[s]]['fields']:
        if f['type'] == 11:
            t = S[f['type_name']]
            if t not in need: need.add(t); todo.append(t)
# group matching
gindex = collections.defaultdict(list)
for g in groups:
    pkg = g.pop('_pkg')
    if '|' in pkg:
        p, t = pkg.split('|', 1)
        gindex[(p, t.lstrip('*').split('.', 1)[-1])].append(g)
from collections import Counter
print(Counter(k[0] for k in gindex).most_common(8))
unmatched = []; conflicts = []
def flags_for(s):
    m = msgs[byshort[s]]
    gopkg = byshort[s].lstrip('.').rsplit('.',1)[0]
    gopkg = 'k8s.io/' + gopkg[len('k8s.io.'):].replace('.', '/')
    key = (gopkg, byshort[s].rsplit('.', 1)[1])
    gs = gindex.get(key)
    if not gs: unmatched.append(s); return {}
    res = {}
    for f in m['fields']:
        if any(f['number'] not in g for g in gs): print('MISSING', s, f['name']); continue
        vals = {(g[f['number']][2], g[f['number']][3] == 22) for g in gs}
        if len(vals) > 1: conflicts.append((s, f['name'], vals))
        omit, ptr = sorted(vals)[0]
        res[f['number']] = (omit, ptr, {g[f['number']][1] for g in gs})
    if set(res) != {f['number'] for f in m['fields']}: print('FIELD MISMATCH', s)
    return res
lines = []
for s in sorted(need):
    if s in SPECIAL: continue
    m = msgs[byshort[s]]
    if m['map']: continue
    fl = flags_for(s)
    items = []
    for f in sorted(m['fields'], key=lambda f: f['number']):
        if f['type'] == 11:
            tn = S[f['type_name']]; tm = msgs[f['type_name']]
            if tm['map']:
                kf = [x for x in tm['fields'] if x['number']==1][0]; vf = [x for x in tm['fields'] if x['number']==2][0]
                vt = S[vf['type_name']] if vf['type'] == 11 else SCALAR[vf['type']]
                vt = SPECIAL.get(vt, vt)
                typ = f'map:{SCALAR[kf["type"]]}:{vt}'
            else:
                typ = SPECIAL.get(tn, tn)
        else:
            typ = SCALAR[f['type']]
        flag = ''
        if f['label'] == 3 and not typ.startswith('map:'): flag += 'r'
        omit, ptr, jns = fl.get(f['number'], (False, False, {None}))
        if omit and not ptr and f['type'] != 11 and f['label'] != 3: flag += 'z'
        inline = '' in jns
        jn = [j for j in jns if j]
        if jn and jn[0] != f['name'] and jn[0] != '-': print('JSON NAME DIFF', s, f['name'], jn, file=sys.stderr)
        if inline: flag += 'i'
        name = jn[0] if jn and jn[0] not in ('', '-') else f['name']
        items.append((f['number'], name, typ, flag))
    lines.append((s, items))
pickle.dump((lines, kinds), open('/tmp/pbgen/table.pkl','wb'))
print('kinds', len(kinds), 'messages', len(lines), 'fields', sum(len(i) for _, i in lines))
print('unmatched', unmatched)
print('conflicts', conflicts[:20], len(conflicts))
