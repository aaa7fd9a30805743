"""The fixture generators import torch / KerasHub, which CI never installs: they are run by
hand (see their docstrings), so pytest's doctest collection must not import them."""

collect_ignore = ["make_fixture.py", "make_keras_hub_fixture.py"]
