"""Embeds texts with sentence-transformers from `kiln export --format sentence-transformers` directories.

Used by test/export/sentence-transformers.test.ts, with .cache/pylib-st on PYTHONPATH (made by
test/reference/ensure.mjs) and the Hub switched off (HF_HUB_OFFLINE=1): everything is read from
the directories themselves.

stdin:  {"models": [{"dir": str, "texts": [str], "prompt_names": [str | null]}]}
stdout: {"versions": {package: version},
         "models": [{"dir": str, "modules": [class name], "similarity_fn_name": str,
                     "max_seq_length": int, "prompts": {name: prefix}, "default_prompt_name": str | null,
                     "embeddings": {prompt name or "": [[float]]},
                     "pooler_output_max_abs": float}]}
"""

import json
import sys

import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer


def main() -> None:
    request = json.load(sys.stdin)
    results = []
    for spec in request["models"]:
        model = SentenceTransformer(spec["dir"], device="cpu", local_files_only=True)
        embeddings = {}
        for prompt_name in spec["prompt_names"]:
            vectors = model.encode(spec["texts"], prompt_name=prompt_name, convert_to_numpy=True, batch_size=64)
            embeddings[prompt_name or ""] = vectors.astype("float64").tolist()
        # The zero pooler: BertModel's pooler_output must be exactly 0, never random weights.
        bert = model[0].model
        features = model[0].tokenizer(spec["texts"][:2], padding=True, return_tensors="pt")
        with torch.no_grad():
            pooler_output = bert(**features).pooler_output
        results.append(
            {
                "dir": spec["dir"],
                "modules": [type(module).__name__ for module in model],
                "similarity_fn_name": model.similarity_fn_name,
                "max_seq_length": model.max_seq_length,
                "prompts": model.prompts,
                "default_prompt_name": model.default_prompt_name,
                "embeddings": embeddings,
                "pooler_output_max_abs": float(pooler_output.abs().max()),
            }
        )
    versions = {"sentence-transformers": sentence_transformers.__version__, "transformers": transformers.__version__, "torch": torch.__version__}
    json.dump({"versions": versions, "models": results}, sys.stdout)


if __name__ == "__main__":
    main()
