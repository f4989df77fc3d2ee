import torch, sys
torch.expm1(torch.randn(1000))
libs=sorted({l.split()[-1].split('/')[-1] for l in open('/proc/self/maps') if '.so' in l})
print(len(libs)); print("\n".join(libs))
