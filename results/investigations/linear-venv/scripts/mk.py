import torch, torch.nn.functional as F, sys
from torch.utils.benchmark import Timer
torch.set_num_threads(1)
q=torch.randn(1,4,16384,16)
t=lambda stmt="F.elu(q)": round(Timer(stmt, globals=dict(F=F,q=q,torch=torch), num_threads=1).blocked_autorange(min_run_time=0.3).median*1e3,3)
a=t()
torch.backends.mkldnn.enabled=False
b=t()
torch.backends.mkldnn.enabled=True
print(sys.executable[:22], "elu mkldnn on/off:", a, b, "expm1:", t("torch.expm1(q)"), "selu:", t("F.selu(q)"), "celu", t("F.celu(q)"), "gelu", t("F.gelu(q)"), "sigmoid", t("torch.sigmoid(q)"), "tanh", t("torch.tanh(q)"))
