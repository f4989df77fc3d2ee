import torch, torch.nn.functional as F, sys
from torch.utils.benchmark import Timer
torch.set_num_threads(1)
q=torch.randn(1,4,16384,16)
den=(torch.tensor([1e-39])*1.0).item()
t=lambda: round(Timer("F.elu(q)", globals=dict(F=F,q=q), num_threads=1).blocked_autorange(min_run_time=0.3).median*1e3,3)
a=t()
torch.set_flush_denormal(True)
b=t()
torch.set_flush_denormal(False)
c=t()
print(sys.executable[:22], "denormal survives:", den!=0.0, "elu ms default/ftz/noftz:", a, b, c)
