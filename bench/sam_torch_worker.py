"""The torch half of bench/bench_sam.py: Meta's reference SAM on random vit_b weights, timed
on request. Runs in the reference environment (torch + segment-anything, see
tests/models/segment_anything/make_fixture.py); reads one command a line on stdin
(``encoder`` or ``decoder N``) and answers the seconds it took, one line on stdout.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "models" / "segment_anything"))
import make_fixture  # noqa: E402,F401  (installs the torchvision stand-in, imports segment_anything)
import torch  # noqa: E402
from segment_anything import sam_model_registry  # noqa: E402


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    sam = sam_model_registry["vit_b"]().eval()
    image = torch.randn(1, 3, 1024, 1024)
    embedding = torch.randn(1, 256, 64, 64)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        command = line.split()
        with torch.inference_mode():
            start = time.perf_counter()
            if command[0] == "encoder":
                sam.image_encoder(image)
            else:
                n = int(command[1])
                points = torch.rand(n, 1, 2) * 1024
                sparse, dense = sam.prompt_encoder(points=(points, torch.ones(n, 1, dtype=torch.int)), boxes=None,
                                                   masks=None)
                sam.mask_decoder(image_embeddings=embedding, image_pe=sam.prompt_encoder.get_dense_pe(),
                                 sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                 multimask_output=True)
            print(time.perf_counter() - start, flush=True)


if __name__ == "__main__":
    main()
