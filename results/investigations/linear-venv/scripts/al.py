import torch, sys
from torch.utils.benchmark import Timer
torch.set_num_threads(1)
base=torch.randn(262144+1024)
res=[]
for off in (0,1,4,16,64,256,1024):
    x=base[off:off+262144]
    out=torch.empty_like(x)
    ms=Timer("torch.expm1(x, out=out)", globals=dict(torch=torch,x=x,out=out), num_threads=1).blocked_autorange(min_run_time=0.2).median*1e3
    res.append((off, x.data_ptr()%4096, out.data_ptr()%4096, round(ms,2)))
print(sys.executable[:22], res)
