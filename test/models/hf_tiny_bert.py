"""A tiny random BERT in Hugging Face layouts, and its outputs from an independent plain-torch
forward, for test/models/hf-checkpoint.test.ts.

Usage: /usr/bin/python3 hf_tiny_bert.py OUT_DIR
Needs torch only (no `transformers`, no `safetensors`: the safetensors files are written by
hand below). Writes one directory per layout under OUT_DIR and prints one JSON object:
{ vocab, ids, mask, hidden, mean, cls, layouts }.

Layouts (all hold the same weights):
  st/           sentence-transformers, the common case: the transformer in the root directory
                (config.json, model.safetensors with BertForMaskedLM names `bert.*` + `cls.predictions.*`
                + the old `bert.embeddings.position_ids` buffer, vocab.txt), modules.json,
                1_Pooling/config.json (mean), a Normalize module, sentence_bert_config.json
  st0/          sentence-transformers, older layout: the transformer in 0_Transformer/ (BertModel
                names without a prefix, with `pooler.*`), 1_Pooling/config.json (cls)
  tf/           plain Hugging Face directory converted from TF: BertForPreTraining names with
                LayerNorm `gamma`/`beta`, `cls.seq_relationship.*`
  bf16/, f16/   plain BertModel directories stored in bfloat16 / float16
  bin/          pytorch_model.bin (torch.save's zip format) instead of safetensors
  bin_sharded/  pytorch_model-0000N-of-00002.bin + pytorch_model.bin.index.json

The reference forward follows Hugging Face's BertModel (modeling_bert.py): embeddings (word +
position + token type 0) → LayerNorm → post-LN layers with an additive mask of float32's
minimum at padded keys and exact (erf) GELU. LayerNorm, GELU and softmax are written out.
"""
import json
import math
import os
import struct
import sys

import torch

V, H, LAYERS, HEADS, FFN, POSITIONS, TYPES, EPS = 120, 32, 2, 4, 64, 16, 2, 1e-12
LENGTHS, SEQ, PAD = [9, 5, 1, 7], 9, 0

WORDS = ['the', 'a', 'run', '##ner', '##s', '##ning', 'ran', 'fast', 'slow', 'nurse', 'job',
         'title', 'data', 'engineer', 'python', 'skill', '.', ',', '!', '?']
VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + WORDS
VOCAB += ['word%d' % i for i in range(V - len(VOCAB))]
assert len(VOCAB) == V

CONFIG = {
    'architectures': ['BertForMaskedLM'],
    'model_type': 'bert',
    'vocab_size': V,
    'hidden_size': H,
    'num_hidden_layers': LAYERS,
    'num_attention_heads': HEADS,
    'intermediate_size': FFN,
    'hidden_act': 'gelu',
    'hidden_dropout_prob': 0.1,
    'attention_probs_dropout_prob': 0.1,
    'max_position_embeddings': POSITIONS,
    'type_vocab_size': TYPES,
    'initializer_range': 0.02,
    'layer_norm_eps': EPS,
    'pad_token_id': PAD,
    'position_embedding_type': 'absolute',
    'torch_dtype': 'float32',
    'transformers_version': '4.40.0',
}


def bert_model_weights():
    """BertModel's tensors (names without a prefix), drawn at a scale where attention is peaked."""
    torch.manual_seed(0)
    shapes = {
        'embeddings.word_embeddings.weight': [V, H],
        'embeddings.position_embeddings.weight': [POSITIONS, H],
        'embeddings.token_type_embeddings.weight': [TYPES, H],
        'embeddings.LayerNorm.weight': [H],
        'embeddings.LayerNorm.bias': [H],
    }
    for i in range(LAYERS):
        pre = 'encoder.layer.%d.' % i
        for part in ('query', 'key', 'value'):
            shapes[pre + 'attention.self.%s.weight' % part] = [H, H]
            shapes[pre + 'attention.self.%s.bias' % part] = [H]
        shapes[pre + 'attention.output.dense.weight'] = [H, H]
        shapes[pre + 'attention.output.dense.bias'] = [H]
        shapes[pre + 'attention.output.LayerNorm.weight'] = [H]
        shapes[pre + 'attention.output.LayerNorm.bias'] = [H]
        shapes[pre + 'intermediate.dense.weight'] = [FFN, H]
        shapes[pre + 'intermediate.dense.bias'] = [FFN]
        shapes[pre + 'output.dense.weight'] = [H, FFN]
        shapes[pre + 'output.dense.bias'] = [H]
        shapes[pre + 'output.LayerNorm.weight'] = [H]
        shapes[pre + 'output.LayerNorm.bias'] = [H]
    shapes['pooler.dense.weight'] = [H, H]
    shapes['pooler.dense.bias'] = [H]
    return {n: torch.randn(s) * 0.3 + (1.0 if n.endswith('LayerNorm.weight') else 0.0) for n, s in shapes.items()}


def heads_weights():
    """The pre-training heads' tensors (BertForMaskedLM / BertForPreTraining names)."""
    torch.manual_seed(1)
    return {
        'cls.predictions.bias': torch.randn(V) * 0.1,
        'cls.predictions.transform.dense.weight': torch.randn(H, H) * 0.1,
        'cls.predictions.transform.dense.bias': torch.randn(H) * 0.1,
        'cls.predictions.transform.LayerNorm.weight': torch.ones(H),
        'cls.predictions.transform.LayerNorm.bias': torch.zeros(H),
        'cls.predictions.decoder.weight': torch.randn(V, H) * 0.1,
    }


# --- safetensors, written by hand (https://github.com/huggingface/safetensors, "Format") ----------

DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.int64: 'I64'}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.view(torch.int16)  # numpy has no bfloat16: the raw 16-bit patterns
    assert sys.byteorder == 'little'  # safetensors data is little-endian
    return t.numpy().tobytes()


def save_safetensors(path, tensors):
    header, blobs, offset = {'__metadata__': {'format': 'pt'}}, [], 0
    for name in sorted(tensors):
        data = tensor_bytes(tensors[name])
        header[name] = {'dtype': DTYPES[tensors[name].dtype], 'shape': list(tensors[name].shape),
                        'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode('utf8')
    text += b' ' * ((8 - (8 + len(text)) % 8) % 8)  # data 8-byte aligned, as the spec asks
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


# --- the reference forward -------------------------------------------------------------------

def layer_norm(x, P, pre):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased, as LayerNorm
    return (x - mu) / torch.sqrt(var + EPS) * P[pre + '.weight'] + P[pre + '.bias']


def dense(x, P, pre):
    return x @ P[pre + '.weight'].t() + P[pre + '.bias']


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def softmax(x):
    e = torch.exp(x - x.max(-1, keepdim=True).values)
    return e / e.sum(-1, keepdim=True)


def bert(P, ids, mask):
    B, L = ids.shape
    d = H // HEADS
    word = P['embeddings.word_embeddings.weight'][ids]
    pos = P['embeddings.position_embeddings.weight'][:L]
    typ = P['embeddings.token_type_embeddings.weight'][torch.zeros_like(ids)]
    h = layer_norm(word + pos + typ, P, 'embeddings.LayerNorm')
    bias = (1.0 - mask.float())[:, None, None, :] * torch.finfo(torch.float32).min
    for i in range(LAYERS):
        pre = 'encoder.layer.%d.' % i
        heads = lambda x: x.reshape(B, L, HEADS, d).transpose(1, 2)
        q = heads(dense(h, P, pre + 'attention.self.query'))
        k = heads(dense(h, P, pre + 'attention.self.key'))
        v = heads(dense(h, P, pre + 'attention.self.value'))
        a = (softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias) @ v).transpose(1, 2).reshape(B, L, H)
        h = layer_norm(dense(a, P, pre + 'attention.output.dense') + h, P, pre + 'attention.output.LayerNorm')
        f = dense(gelu(dense(h, P, pre + 'intermediate.dense')), P, pre + 'output.dense')
        h = layer_norm(f + h, P, pre + 'output.LayerNorm')
    return h


# --- the layouts -----------------------------------------------------------------------------

def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2)


def write_transformer(d, tensors, config, weights='safetensors'):
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, 'config.json'), config)
    with open(os.path.join(d, 'vocab.txt'), 'w') as f:
        f.write(''.join(t + '\n' for t in VOCAB))
    write_json(os.path.join(d, 'tokenizer_config.json'), {'do_lower_case': True, 'tokenizer_class': 'BertTokenizer'})
    if weights == 'safetensors':
        save_safetensors(os.path.join(d, 'model.safetensors'), tensors)
    elif weights == 'bin':
        torch.save(tensors, os.path.join(d, 'pytorch_model.bin'))
    else:  # two shards and their index, as save_pretrained(max_shard_size=...) writes them
        names = sorted(tensors)
        halves = [names[: len(names) // 2], names[len(names) // 2:]]
        weight_map = {}
        for i, half in enumerate(halves):
            shard = 'pytorch_model-%05d-of-%05d.bin' % (i + 1, len(halves))
            torch.save({n: tensors[n] for n in half}, os.path.join(d, shard))
            weight_map.update({n: shard for n in half})
        write_json(os.path.join(d, 'pytorch_model.bin.index.json'), {'metadata': {'total_size': 0}, 'weight_map': weight_map})


def modules(transformer_path, normalize):
    out = [
        {'idx': 0, 'name': '0', 'path': transformer_path, 'type': 'sentence_transformers.models.Transformer'},
        {'idx': 1, 'name': '1', 'path': '1_Pooling', 'type': 'sentence_transformers.models.Pooling'},
    ]
    if normalize:
        out.append({'idx': 2, 'name': '2', 'path': '2_Normalize', 'type': 'sentence_transformers.models.Normalize'})
    return out


def pooling_config(mode):
    return {
        'word_embedding_dimension': H,
        'pooling_mode_cls_token': mode == 'cls',
        'pooling_mode_mean_tokens': mode == 'mean',
        'pooling_mode_max_tokens': False,
        'pooling_mode_mean_sqrt_len_tokens': False,
        'pooling_mode_weightedmean_tokens': False,
        'pooling_mode_lasttoken': False,
        'include_prompt': True,
    }


def main():
    out = sys.argv[1]
    torch.set_num_threads(1)
    P = bert_model_weights()
    heads = heads_weights()
    prefixed = {'bert.' + n: t for n, t in P.items() if not n.startswith('pooler.')}
    prefixed['bert.embeddings.position_ids'] = torch.arange(POSITIONS).unsqueeze(0)

    st = os.path.join(out, 'st')
    write_transformer(st, {**prefixed, **heads}, CONFIG)
    write_json(os.path.join(st, 'modules.json'), modules('', normalize=True))
    write_json(os.path.join(st, '1_Pooling', 'config.json'), pooling_config('mean'))
    write_json(os.path.join(st, 'sentence_bert_config.json'), {'max_seq_length': 12, 'do_lower_case': False})

    st0 = os.path.join(out, 'st0')
    write_transformer(os.path.join(st0, '0_Transformer'), P, {**CONFIG, 'architectures': ['BertModel']})
    write_json(os.path.join(st0, 'modules.json'), modules('0_Transformer', normalize=False))
    write_json(os.path.join(st0, '1_Pooling', 'config.json'), pooling_config('cls'))

    tf_names = {}
    for n, t in {**prefixed, **heads}.items():
        n = n[: -len('.weight')] + '.gamma' if n.endswith('LayerNorm.weight') else n
        n = n[: -len('.bias')] + '.beta' if n.endswith('LayerNorm.bias') else n
        tf_names[n] = t
    torch.manual_seed(2)
    tf_names['cls.seq_relationship.weight'] = torch.randn(2, H) * 0.1
    tf_names['cls.seq_relationship.bias'] = torch.zeros(2)
    write_transformer(os.path.join(out, 'tf'), tf_names, {**CONFIG, 'architectures': ['BertForPreTraining']})

    for name, dtype in (('bf16', torch.bfloat16), ('f16', torch.float16)):
        write_transformer(os.path.join(out, name), {n: t.to(dtype) for n, t in P.items()}, {**CONFIG, 'architectures': ['BertModel']})
    write_transformer(os.path.join(out, 'bin'), {**prefixed, **heads}, CONFIG, weights='bin')
    write_transformer(os.path.join(out, 'bin_sharded'), {**prefixed, **heads}, CONFIG, weights='bin_sharded')

    # Inputs: random non-special ids, right-padded with [PAD] to ragged lengths.
    torch.manual_seed(3)
    ids = torch.randint(len(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']), V, (len(LENGTHS), SEQ))
    mask = (torch.arange(SEQ)[None, :] < torch.tensor(LENGTHS)[:, None]).long()
    ids = ids * mask + PAD * (1 - mask)
    with torch.no_grad():
        h = bert(P, ids, mask)
        m = mask.float()[:, :, None]
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1)
    print(json.dumps({
        'vocab': VOCAB,
        'ids': ids.tolist(),
        'mask': mask.tolist(),
        'hidden': h.flatten().tolist(),
        'mean': mean.flatten().tolist(),
        'cls': h[:, 0].flatten().tolist(),
        'layouts': {name: os.path.join(out, name) for name in ('st', 'st0', 'tf', 'bf16', 'f16', 'bin', 'bin_sharded')},
    }))


if __name__ == '__main__':
    main()
