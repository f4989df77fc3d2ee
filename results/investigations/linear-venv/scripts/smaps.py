import torch, sys, re
x=torch.randn(262144); torch.expm1(x)
cur=None; tot={}
for line in open('/proc/self/smaps'):
    if re.match(r'^[0-9a-f]+-[0-9a-f]+ ', line):
        cur=line.split()[-1] if 'libtorch_cpu' in line else None
        perms=line.split()[1]
    elif cur and line.startswith(('FilePmdMapped','Rss','AnonHugePages')):
        k=line.split(':')[0]; tot[(perms,k)]=tot.get((perms,k),0)+int(line.split()[1])
print(sys.prefix[:25], {f"{p}:{k}":v for (p,k),v in tot.items() if v})
