#!/usr/bin/env python3
"""Turn a refinery int8 checkpoint (`refinery quantize`) back into f32 safetensors that
transformers loads.

    python scripts/dequantize.py INT8_DIR OUT_DIR

Every I8 tensor `<name>` with its F32 `<name>_scale` ([rows]) becomes `<name> = q * scale[:, None]`
in float32; a tensor listed in `refinery_quantization.transposed` (GPT-2's Conv1D weights, stored
`[out, in]` so that each scale is one output channel's) is transposed back to HF's `[in, out]`.
The scale tensors and the `refinery_quantization` key of config.json are dropped; other files are
copied. A GPT-2 result has no `lm_head.weight`: transformers ties it to `transformer.wte.weight`. The result holds exactly the weights the int8 model computes with (its
activations, quantized at run time, are not part of the file). Needs numpy and safetensors.
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    config = json.loads((src / "config.json").read_text())
    if "refinery_quantization" not in config:
        sys.exit(f"{src}: not a refinery int8 checkpoint (no refinery_quantization in config.json)")
    tensors = load_file(str(src / "model.safetensors"))
    transposed = set(config["refinery_quantization"].get("transposed", []))
    unknown = transposed - set(tensors)
    if unknown:
        sys.exit(f"{src}/config.json: refinery_quantization.transposed names missing tensors {sorted(unknown)}")
    result = {}
    for name, t in tensors.items():
        if name.endswith("_scale"):
            continue
        if t.dtype == np.int8:
            scale = tensors.get(name + "_scale")
            if scale is None or scale.shape != (t.shape[0],):
                sys.exit(f"{src}/model.safetensors: {name}: missing or mis-shaped {name}_scale")
            w = (t.astype(np.float32) * scale[:, None].astype(np.float32)).astype(np.float32)
            result[name] = np.ascontiguousarray(w.T) if name in transposed else w
        else:
            result[name] = t
    out.mkdir(parents=True, exist_ok=True)
    save_file(result, str(out / "model.safetensors"), metadata={"format": "pt"})
    del config["refinery_quantization"]
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for f in src.iterdir():
        if f.is_file() and f.name not in ("model.safetensors", "config.json"):
            shutil.copy(f, out / f.name)
    print(f"{src} -> {out}: {sum(1 for t in tensors.values() if t.dtype == np.int8)} int8 tensors dequantized")


if __name__ == "__main__":
    main()
