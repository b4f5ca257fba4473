import re,os,collections
edges=collections.defaultdict(set)
for root,_,files in os.walk('src'):
    for f in files:
        if not f.endswith('.rs'): continue
        p=os.path.join(root,f); rel=p[4:]
        top=rel.split('/')[0].replace('.rs','')
        if top in ('main','lib'): continue
        text=open(p).read().split('#[cfg(test)]')[0]
        # doc links and comments name modules without depending on them
        text='\n'.join(l.split('//')[0] for l in text.splitlines())
        for m in re.finditer(r'crate::(\w+)', text):
            if m.group(1)!=top: edges[top].add(m.group(1))
def cycles():
    found=[]
    for a in edges:
        for b in edges[a]:
            # path b -> a ?
            seen=set(); stack=[b]
            while stack:
                n=stack.pop()
                if n==a: found.append((a,b)); break
                if n in seen: continue
                seen.add(n); stack.extend(edges.get(n,()))
    return found
for k in sorted(edges): print(k,'->',', '.join(sorted(edges[k])))
print('cycles:', cycles())
