import torch, torch.nn.functional as F, time, sys
from torch.utils.benchmark import Timer
torch.set_num_threads(2)
torch.manual_seed(0)
B,h,N,d=1,4,128*128,16
x=torch.randn(1,128,128,64)
qkv_lin=torch.nn.Linear(64,192)
q,k,v=[torch.randn(B,h,N,d) for _ in range(3)]
def t(stmt, g):
    m=Timer(stmt, globals=g, num_threads=2).blocked_autorange(min_run_time=0.5)
    return m.median*1e3
g=dict(F=F,q=q,k=k,v=v,x=x,lin=qkv_lin,torch=torch)
kv=(F.elu(k)+1).transpose(-2,-1)@v
qq=F.elu(q)+1
g.update(kv=kv,qq=qq)
res={}
with torch.inference_mode():
    res['qkv_linear']=t("lin(x.reshape(1,N,64))", {**g,'N':N})
    res['elu']=t("F.elu(q)+1", g)
    res['kTv']=t("k.transpose(-2,-1)@v", g)
    res['q@kv']=t("qq@kv", g)
    res['ksum']=t("qq@k.sum(dim=-2,keepdim=True).transpose(-2,-1)", g)
    res['qkv_permute']=t("lin(x.reshape(1,N,64)).reshape(1,N,3,4,16).permute(2,0,3,1,4).unbind(0)[0].float()", {**g,'N':N})
print(sys.executable, {k: round(v,3) for k,v in res.items()})
