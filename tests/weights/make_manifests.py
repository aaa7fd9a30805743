"""Write the manifests of the MobileNet weight files in the shared data folder, the fixtures of
``test_manifest.py``. Run once per file change; never edit the JSON by hand:

    JAXVISION_DATA=../shared/data python tests/weights/make_manifests.py
"""

from pathlib import Path

from jaxvision.applications import MobileNet
from jaxvision.data import data_root
from jaxvision.weights import make_manifest

HERE = Path(__file__).resolve().parent / "fixtures"
TF_PREPROCESSING = {"scale": 1 / 127.5, "offset": -1.0}  # mobilenet.preprocess_input
FILES = {  # file under pretrained/ → the model it is loaded into
    "mobilenet_2_5_224_tf_no_top.h5": dict(alpha=0.25, include_top=False),
    "mobilenet_v1_0.75_224_tfjs": dict(alpha=0.75, include_top=True),
}


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for name, kwargs in FILES.items():
        path = data_root() / "pretrained" / name
        model = MobileNet(weights=str(path), **kwargs)
        make_manifest(model, path, input_shape=(1, 128, 128, 3), preprocessing=TF_PREPROCESSING,
                      out=HERE / f"{name}.manifest.json")
        print("wrote", HERE / f"{name}.manifest.json")


if __name__ == "__main__":
    main()
