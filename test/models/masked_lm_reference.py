"""An independent plain-torch BERT masked language model, for test/models/masked-lm.test.ts.

Usage: /usr/bin/python3 masked_lm_reference.py < request.json
Needs torch only (the safetensors file is read by hand below, so neither `safetensors` nor
`transformers` is required). Reads one JSON request on stdin:
  { config: EncoderConfig (Kiln's camelCase keys), weights: path of the safetensors file Kiln
    wrote from MaskedLanguageModel.stateDict(), ids: [B][L], mask: [B][L], positions: [N] flat
    indices into the B·L tokens, targets: [N], grad_params: [names] }
and prints one JSON object: { names, logits, loss, grads, grad_lookup, grad_output }.

The forward follows Hugging Face's BertForMaskedLM (modeling_bert.py) with `bert.` read as
`encoder.`: embeddings (word + position + token type 0, word lookup with
nn.Embedding(padding_idx) semantics) → LayerNorm → post-LN layers with an additive mask of
float32's minimum at padded keys and exact (erf) GELU; then the MLM head at the chosen flat
positions only:

    t      = LayerNorm(GELU_erf(h W_t + b_t))       cls.predictions.transform
    logits = t Eᵀ + b                               E = encoder.embeddings.word_embeddings.weight

The decoder weight is E itself (tied): the file holds no `cls.predictions.decoder.weight`, and
the gradient of E accumulates from the input lookup and from the output layer. `grad_lookup` and
`grad_output` are those two parts, taken separately from untied copies of E.
LayerNorm, GELU and softmax are written out rather than taken from torch.nn.functional.
"""
import json
import math
import struct
import sys

import torch

DTYPES = {'F32': torch.float32, 'F64': torch.float64, 'I64': torch.int64}


def load_safetensors(path):
    """{name: tensor} from a safetensors file (https://github.com/huggingface/safetensors, "Format")."""
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, entry in header.items():
        if name == '__metadata__':
            continue
        begin, end = entry['data_offsets']
        assert sys.byteorder == 'little'  # safetensors data is little-endian
        flat = torch.frombuffer(bytearray(data[begin:end]), dtype=DTYPES[entry['dtype']])
        out[name] = flat.reshape(entry['shape']).clone()
    return out


def main():
    torch.set_num_threads(1)
    req = json.load(sys.stdin)
    c = req['config']
    P = load_safetensors(req['weights'])
    for p in P.values():
        p.requires_grad_(True)
    H, nh, eps, pad = c['hiddenSize'], c['numHeads'], c['layerNormEps'], c['padId']
    d = H // nh
    E = 'encoder.embeddings.word_embeddings.weight'

    def layer_norm(x, pre):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased, as LayerNorm
        return (x - mu) / torch.sqrt(var + eps) * P[pre + '.weight'] + P[pre + '.bias']

    def dense(x, pre):
        return x @ P[pre + '.weight'].t() + P[pre + '.bias']

    def gelu(x):
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))

    def softmax(x):
        e = torch.exp(x - x.max(-1, keepdim=True).values)
        return e / e.sum(-1, keepdim=True)

    def bert(ids, mask, word_table):
        B, L = ids.shape
        word = torch.nn.functional.embedding(ids, word_table, padding_idx=pad)
        pos = P['encoder.embeddings.position_embeddings.weight'][:L]
        typ = P['encoder.embeddings.token_type_embeddings.weight'][torch.zeros_like(ids)]
        h = layer_norm(word + pos + typ, 'encoder.embeddings.LayerNorm')
        bias = (1.0 - mask.float())[:, None, None, :] * torch.finfo(torch.float32).min
        for i in range(c['numLayers']):
            pre = 'encoder.encoder.layer.%d.' % i
            heads = lambda x: x.reshape(B, L, nh, d).transpose(1, 2)  # (B, nh, L, d)
            q = heads(dense(h, pre + 'attention.self.query'))
            k = heads(dense(h, pre + 'attention.self.key'))
            v = heads(dense(h, pre + 'attention.self.value'))
            a = (softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias) @ v).transpose(1, 2).reshape(B, L, H)
            h = layer_norm(dense(a, pre + 'attention.output.dense') + h, pre + 'attention.output.LayerNorm')
            f = dense(gelu(dense(h, pre + 'intermediate.dense')), pre + 'output.dense')
            h = layer_norm(f + h, pre + 'output.LayerNorm')
        return h  # (B, L, H)

    def mlm_logits(ids, mask, positions, word_in, word_out):
        h = bert(ids, mask, word_in).reshape(-1, H)[positions]  # (N, H)
        t = layer_norm(gelu(dense(h, 'cls.predictions.transform.dense')), 'cls.predictions.transform.LayerNorm')
        return t @ word_out.t() + P['cls.predictions.bias']  # (N, V)

    def cross_entropy(logits, targets):
        logp = logits - logits.logsumexp(-1, keepdim=True)
        return -logp[torch.arange(logits.shape[0]), targets].mean()

    ids = torch.tensor(req['ids'], dtype=torch.long)
    mask = torch.tensor(req['mask'], dtype=torch.long)
    positions = torch.tensor(req['positions'], dtype=torch.long)
    targets = torch.tensor(req['targets'], dtype=torch.long)

    logits = mlm_logits(ids, mask, positions, P[E], P[E])  # tied: one tensor, two uses
    loss = cross_entropy(logits, targets)
    loss.backward()

    # The two uses of E apart: untied copies with E's values.
    e_in = P[E].detach().clone().requires_grad_(True)
    e_out = P[E].detach().clone().requires_grad_(True)
    g_in, g_out = torch.autograd.grad(cross_entropy(mlm_logits(ids, mask, positions, e_in, e_out), targets), [e_in, e_out])

    print(json.dumps({
        'names': sorted(P),
        'logits': logits.detach().flatten().tolist(),
        'loss': loss.item(),
        'grads': {n: P[n].grad.flatten().tolist() for n in req['grad_params']},
        'grad_lookup': g_in.flatten().tolist(),
        'grad_output': g_out.flatten().tolist(),
    }))


if __name__ == '__main__':
    main()
